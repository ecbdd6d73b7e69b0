"""Stage-1 training step vs a plain forward+backward of the same Talker on the same batch.

The stage-1 step is what the trainer runs: a frozen Thinker pass over prompt + reply, the intent
bridge (VIB + AdaLN, KL to the OU prior), the exact Talker layout, the Talker's teacher-forced
forward, codec CE + beta * KL, backward. The baseline feeds the same Talker the same (precomputed)
input rows and runs forward + CE + backward only: the cost floor of training this Talker at all.
Both are timed side by side in one run (median of --repeats).

    python benchmarks/train_step.py
    python benchmarks/train_step.py --model random-3b --dtype bf16 --device cuda --batch 8
"""

from __future__ import annotations


import torch
from torch.nn.utils.rnn import pad_sequence

from sa_slm import SASLM
from sa_slm.bridge import IntentBridgeConfig
from sa_slm.data import TeacherForcingCollator, load_manifest
from sa_slm.paths import CORPUS_DIR
from sa_slm.pipeline import prompt_inputs
from sa_slm.sft.objective import sft_loss
from sa_slm.talker.layout import stream_at, text_positions
from timing import bench_parser, median_seconds


def main() -> None:
    ap = bench_parser(__doc__, repeats=5)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()

    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    saslm = SASLM.from_pretrained(args.model, device=args.device, dtype=dtype,
                                  bridge=IntentBridgeConfig(mode="vib_adaln", acoustic_context="audio_tower"))
    model = saslm.model.train()
    model.set_trainable()
    examples = load_manifest(CORPUS_DIR / "manifest_codes.jsonl")[: args.batch]
    collate = TeacherForcingCollator.for_model(model, saslm.processor, saslm.speakers)
    batch = {k: v.to(saslm.device) for k, v in collate(examples).items()}

    # The baseline's input: the exact Talker rows of this batch, computed once, detached.
    talker = model.talker
    codes, lengths = batch["codes"], batch["code_lengths"]
    reply = [r[:n] for r, n in zip(batch["reply_ids"], batch["reply_lengths"].tolist())]
    with torch.no_grad():
        states = model.thinker_states(**prompt_inputs(batch), reply_ids=reply)
        prefix = model.condition(states, batch["speaker_bos"]).prefix
        rows = []
        for b, row in enumerate(prefix.rows):
            n = int(lengths[b])
            k = torch.arange(1, n, device=row.device)[None]
            rows.append(torch.cat([row, talker.get_input_embeddings()(codes[b, : n - 1]) + stream_at(prefix.stream[b:b + 1], k)[0]]))
    inputs = pad_sequence(rows, batch_first=True).detach()
    mask = pad_sequence([torch.ones(len(r), dtype=torch.long, device=inputs.device) for r in rows], batch_first=True)
    positions = text_positions(mask)
    starts = torch.tensor([len(r) - 1 for r in prefix.rows], device=inputs.device)
    idx = starts[:, None] + torch.arange(codes.shape[1], device=inputs.device)[None]
    valid = torch.arange(codes.shape[1], device=inputs.device)[None] < lengths[:, None]
    idx = torch.where(valid, idx, 0)

    def plain_talker_step():
        logits = talker(inputs_embeds=inputs, attention_mask=mask, position_ids=positions, use_cache=False).logits
        picked = torch.gather(logits, 1, idx[..., None].expand(-1, -1, logits.shape[-1]))
        ce = torch.nn.functional.cross_entropy(picked.transpose(1, 2), codes, reduction="none")
        ((ce * valid).sum() / valid.sum()).backward()
        model.zero_grad(set_to_none=True)

    def stage1_step():  # what SFTTrainer.compute_loss runs
        out = model(**batch, with_logprobs=False, sample_latent=True)
        sft_loss(out, batch, kl_weight=0.25).loss.backward()
        model.zero_grad(set_to_none=True)

    t_plain = median_seconds(plain_talker_step, args.repeats, saslm.device)
    t_stage1 = median_seconds(stage1_step, args.repeats, saslm.device)
    n_codes = int(valid.sum())
    print(f"model={args.model} device={saslm.device} dtype={args.dtype} batch={args.batch} codes={n_codes} "
          f"talker rows={inputs.shape[1]} positions")
    print(f"{'step':<44}{'seconds':>10}{'codes/s':>12}")
    print(f"{'plain Talker forward+backward (baseline)':<44}{t_plain:>10.4f}{n_codes / t_plain:>12.0f}")
    print(f"{'stage-1 step (Thinker+bridge+Talker+KL)':<44}{t_stage1:>10.4f}{n_codes / t_stage1:>12.0f}")
    print(f"ratio stage-1 / plain: {t_stage1 / t_plain:.3f}x")
    if saslm.device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
