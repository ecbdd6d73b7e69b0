"""Where a stage-3 (UAPO) step spends its time: rollouts, decoding, critic, WER gate, update.

One step of the stage-3 loop on B prompts, phase by phase, with the same calls the trainer makes:
K policy rollouts + the anchors, Token2Wav of every clip, the rubric critic (instance rubric + the
batched logit scores), the model-ASR WER gate, then the policy and reference teacher-forced passes,
the UAPO loss, backward and an AdamW step on the Talker + bridge. Median of --repeats per phase.

    python benchmarks/stage3_step.py                                     # tiny, CPU, K=8
    python benchmarks/stage3_step.py --model random-3b --dtype bf16 --device cuda --k 32 --max-codes 600
"""

from __future__ import annotations


import torch

from sa_slm import SASLM
from sa_slm.asr import ModelASR
from sa_slm.critic import RubricCritic
from sa_slm.demo import DEMO_QUESTION
from sa_slm.talker.sampling import SamplingConfig
from sa_slm.token2wav import SAMPLE_RATE
from sa_slm.uapo.loss import uapo_loss
from sa_slm.uapo.rollouts import collect
from sa_slm.uapo.trainer import frozen_reference, sequence_logps
from timing import bench_parser, median_seconds

REPLY = "Congratulations, that is wonderful news!"


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--num-samples", "--k", dest="k", type=int, default=8, help="rollouts per prompt K (paper: 32)")
    ap.add_argument("--prompts", type=int, default=1, help="prompts per step (per device)")
    ap.add_argument("--max-codes", type=int, default=100, help="Talker budget per rollout (50 codes/s)")
    args = ap.parse_args()

    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    saslm = SASLM.from_pretrained(args.model, device=args.device, dtype=dtype)
    device = next(saslm.model.parameters()).device
    reference = frozen_reference(saslm.model)
    params = saslm.model.set_trainable()["speech"]
    optimizer = torch.optim.AdamW(params, lr=1e-6)
    critic, asr = RubricCritic(reference, saslm.processor), ModelASR(reference, saslm.processor)
    sampling = SamplingConfig(max_new_codes=args.max_codes)
    convs = [saslm.conversation(audio=DEMO_QUESTION) for _ in range(args.prompts)]
    B, K = args.prompts, args.k
    state: dict = {}

    def rollouts():
        state["rb"] = collect(saslm.model, saslm.processor, saslm.speakers, convs, [REPLY] * B, K, sampling, seed=0)

    def decoding():
        rb = state["rb"]
        codes = [rb.policy.audio_codes(r) for r in range(B * K)] + [rb.anchor.audio_codes(b) for b in range(B)]
        state["wavs"] = [w.numpy() for w in reference.decode_codes(codes, [saslm.speakers[None]] * len(codes))]

    def scoring():
        wavs = state["wavs"]
        for b in range(B):
            clips = wavs[b * K:(b + 1) * K] + [wavs[B * K + b]]
            critic.score(convs[b], REPLY, clips)  # writes the instance rubric, then the batched scores

    def wer_gate():
        asr(state["wavs"], SAMPLE_RATE)

    def update():
        rb = state["rb"]
        logp, _ = sequence_logps(saslm.model, rb, sampling)
        with torch.no_grad():
            ref_logp, _ = sequence_logps(reference, rb, sampling)
        utility = torch.rand(B, K, device=logp.device)
        out = uapo_loss(logp[:B * K].view(B, K), ref_logp[:B * K].view(B, K), utility, logp[B * K:],
                        ref_logp[B * K:], torch.full((B,), 0.5, device=logp.device))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()

    phases = {"rollouts (K + anchor)": rollouts, "Token2Wav decoding": decoding, "critic": scoring,
              "WER gate (model ASR)": wer_gate, "update (policy + ref TF, backward, step)": update}
    times = {}
    for name, fn in phases.items():  # in order: each phase consumes the previous one's output
        times[name] = median_seconds(fn, args.repeats, device)
    total = sum(times.values())
    codes = int(state["rb"].policy.num_steps.sum() + state["rb"].anchor.num_steps.sum())
    print(f"stage-3 step: model={args.model} device={device} dtype={args.dtype} prompts={B} K={K} "
          f"max_codes={args.max_codes} ({codes} codes sampled)")
    for name, t in times.items():
        print(f"  {name:<42} {t:8.3f} s  {100 * t / total:5.1f}%")
    print(f"  {'total':<42} {total:8.3f} s")


if __name__ == "__main__":
    main()
