"""Scoring K clips: the batched logit critic vs generating a free-text rating per clip and parsing it.

Both use the same model, rubric, context and clips. The logit critic reads every (clip, dimension)
score from the answer-token distribution in batched Thinker passes. The free-text baseline asks for
each clip's ratings as text ("emotion: 2, prosody: 1, naturalness: 2"), generates, and parses with a
regular expression; a clip whose text does not parse counts as a parse failure. Timed side by side
in one run (median of --repeats); the instance rubric is written once and shared by both.

    python benchmarks/critic.py
    python benchmarks/critic.py --model random-3b --dtype bf16 --device cuda --k 32
"""

from __future__ import annotations

import re

import numpy as np
import torch

from sa_slm import SASLM
from sa_slm.critic import RubricCritic
from sa_slm.demo import DEMO_QUESTION
from sa_slm.processor import Turn
from timing import bench_parser, median_seconds

FREE_TEXT = ("Listen to the assistant's spoken reply. Rate {dims} each 0, 1 or 2 and answer exactly in the form "
             "'{form}'.")


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=24, help="free-text rating budget per clip")
    args = ap.parse_args()

    torch.manual_seed(0)
    saslm = SASLM.from_pretrained(args.model, device=args.device,
                                  dtype=torch.bfloat16 if args.dtype == "bf16" else torch.float32)
    critic = RubricCritic(saslm.model, saslm.processor)
    context = saslm.conversation(audio=DEMO_QUESTION)
    reply = "Congratulations, that is wonderful news!"
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(24_000 * 2)).astype(np.float32) for _ in range(args.k)]
    instance = critic.instance_rubric(context, reply)
    dims = [d.name for d in critic.rubric.dimensions]
    pattern = re.compile("".join(rf"{d}\s*:\s*([012])\D*" for d in dims), re.IGNORECASE)
    prompt = FREE_TEXT.format(dims=", ".join(dims), form=", ".join(f"{d}: N" for d in dims))
    failures = {"count": 0}

    def logit_critic():
        critic.score(context, reply, clips, instance_rubric=instance)

    def free_text():
        failures["count"] = 0
        for clip in clips:
            conv = critic._with_system(context, Turn("user", prompt, saslm.processor.load_audio(clip, sampling_rate=24_000)))
            ids = saslm.model.generate_replies(**saslm.encode_prompts([conv]), max_new_tokens=args.max_new_tokens,
                                               allow_empty=True)
            if not pattern.search(saslm.processor.decode(ids[0])):
                failures["count"] += 1

    t_logit = median_seconds(logit_critic, args.repeats, saslm.device)
    t_text = median_seconds(free_text, args.repeats, saslm.device)
    print(f"model={args.model} device={saslm.device} K={args.k} dimensions={len(dims)}")
    print(f"{'path':<40}{'seconds':>10}{'clips/s':>10}")
    print(f"{'batched logit critic':<40}{t_logit:>10.3f}{args.k / t_logit:>10.2f}")
    print(f"{'free-text rating per clip + parse':<40}{t_text:>10.3f}{args.k / t_text:>10.2f}")
    print(f"speed-up: {t_text / t_logit:.2f}x; free-text parse failures: {failures['count']}/{args.k} "
          f"(logit critic: 0 by construction)")


if __name__ == "__main__":
    main()
