"""K rollouts per prompt: the batched SA-SLM path vs transformers' generate, two ways.

Every path produces K waveforms per prompt from the same model (Thinker reply, Talker codes,
Token2Wav audio). Ours runs the Thinker once per prompt batch, the K Talker samples in one batched
decoding loop and Token2Wav batched by length. The baselines call
`Qwen2_5OmniForConditionalGeneration.generate` (a) K times per prompt, and (b) once, on a padded batch
of the P prompts each repeated K times (what a user would try first). Times are measured side by
side in one run (median of --repeats).

    python benchmarks/rollouts.py                                  # tiny model, CPU
    python benchmarks/rollouts.py --model random-3b --dtype bf16 --k 32 --device cuda
"""

from __future__ import annotations


import numpy as np
import torch

from sa_slm import SASLM
from sa_slm.talker.sampling import SamplingConfig
from timing import bench_parser, median_seconds


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--num-samples", "--k", dest="k", type=int, default=8, help="rollouts per prompt K")
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--reply-tokens", type=int, default=16)
    ap.add_argument("--codes", type=int, default=100, help="Talker codes per rollout (no early stop on random weights)")
    args = ap.parse_args()

    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    saslm = SASLM.from_pretrained(args.model, device=args.device, dtype=dtype)
    sr = 16_000
    rng = np.random.default_rng(0)
    convs = [
        saslm.conversation(audio=(0.1 * rng.standard_normal(sr * (1 + i))).astype(np.float32), sampling_rate=sr,
                           text=f"Question number {i}?")
        for i in range(args.prompts)
    ]
    sampling = SamplingConfig(do_sample=True, max_new_codes=args.codes)
    batch = saslm.encode_prompts(convs)

    def ours():
        replies = saslm.model.generate_replies(**batch, max_new_tokens=args.reply_tokens)
        saslm.rollouts(convs, num_samples=args.k, sampling=sampling, reply_ids=replies, seeds=list(range(args.k)))

    def transformers_loop():
        for i in range(args.prompts):
            single = {k: v[i:i + 1] for k, v in batch.items() if k in ("input_ids", "attention_mask")}
            if "input_features" in batch:
                single.update(input_features=batch["input_features"][i:i + 1],
                              feature_attention_mask=batch["feature_attention_mask"][i:i + 1])
            keep = single["attention_mask"][0].bool()
            single = {**single, "input_ids": single["input_ids"][:, keep], "attention_mask": single["attention_mask"][:, keep]}
            for _ in range(args.k):
                saslm.model.generate(**single, speaker="Chelsie", thinker_max_new_tokens=args.reply_tokens,
                                     talker_max_new_tokens=args.codes, talker_do_sample=True)

    repeated = saslm.encode_prompts([c for c in convs for _ in range(args.k)])  # P x K rows, left-padded

    def transformers_padded_batch():
        saslm.model.generate(**repeated, speaker="Chelsie", thinker_max_new_tokens=args.reply_tokens,
                             talker_max_new_tokens=args.codes, talker_do_sample=True)

    t_ours = median_seconds(ours, args.repeats, saslm.device)  # warm-up call first (allocator, kernels)
    t_hf = median_seconds(transformers_loop, args.repeats, saslm.device, warmup=False)
    t_padded = median_seconds(transformers_padded_batch, args.repeats, saslm.device, warmup=False)
    n = args.prompts * args.k
    print(f"model={args.model} device={saslm.device} dtype={args.dtype} prompts={args.prompts} K={args.k} "
          f"codes/rollout={args.codes}")
    print(f"{'path':<40}{'seconds':>10}{'rollouts/s':>12}{'ours faster by':>16}")
    for name, t in (("SA-SLM batched rollouts", t_ours), ("transformers generate x K per prompt", t_hf),
                    ("transformers generate, one padded batch", t_padded)):
        print(f"{name:<40}{t:>10.3f}{n / t:>12.2f}{t / t_ours:>15.2f}x")


if __name__ == "__main__":
    main()
