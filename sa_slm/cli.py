"""`sa-slm` command line: generate, score, tokenize, probe, eval, demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import TORCH_DTYPES
from .errors import report_errors
from .talker.sampling import SamplingConfig

SAMPLING_DEFAULTS = SamplingConfig()


def _load(args):
    from .facade import SASLM

    return SASLM.from_pretrained(args.model, device=args.device, dtype=TORCH_DTYPES[args.dtype])


def _out_paths(out: Path, n: int) -> list[Path]:
    return [out] if n == 1 else [out.with_name(f"{out.stem}_{k}{out.suffix}") for k in range(n)]


def cmd_generate(args) -> None:
    from .audio import write_wav

    sampling = SamplingConfig(not args.greedy, args.temperature, args.top_k, args.top_p, args.repetition_penalty,
                              args.max_new_codes)
    saslm = _load(args)
    result = saslm.generate(
        audio=args.audio, text=args.text, speaker=args.speaker, num_samples=args.num_samples, sampling=sampling,
        reply_text=args.reply_text, seed=args.seed, progress=True,
    )
    print(f"reply: {result.reply_text}")
    for path, wav in zip(_out_paths(Path(args.out), args.num_samples), result.waveforms):
        write_wav(path, wav, result.sample_rate)
        print(f"wrote {path} ({len(wav) / result.sample_rate:.2f} s at {result.sample_rate} Hz)")


def cmd_tokenize(args) -> None:
    from .codec import SpeechTokenizer
    from .codec.tokenize import tokenize_manifest

    tokenizer = SpeechTokenizer.from_pretrained(args.tokenizer).to(args.device or "cpu").eval()
    report = tokenize_manifest(tokenizer, args.manifest, args.out, batch_size=args.batch_size)
    print(f"wrote {args.out}: {report.encoded} encoded, {report.skipped} already done, "
          f"{report.passed_through} without reply_audio, {len(report.failed)} failed")
    for line in report.failed:
        print(f"  {line}", file=sys.stderr)


def cmd_probe(args) -> None:
    from .data import load_manifest
    from .probe import run_probe

    examples = load_manifest(args.manifest)
    saslm = _load(args)
    result = run_probe(saslm.model, saslm.processor, saslm.speakers, examples, label=args.label, folds=args.folds,
                       group_by=args.group_by)
    print(f"linear {args.label} probe, {result.examples} utterances, {len(result.classes)} classes "
          f"({', '.join(result.classes)}), {args.folds}-fold CV grouped by {args.group_by}")
    for name, title in (("e", "e_t (input embeddings)"), ("h", "h_t (Thinker hidden states)"), ("z", "z_t (intent latents)")):
        acc = result.accuracy[name]
        print(f"  {title:<30} {'n/a (no latent in this bridge mode)' if acc is None else f'{acc:6.1%}'}")
    print(f"  {'chance (majority label)':<30} {result.chance:6.1%}")


def cmd_score(args) -> None:
    import json

    saslm = _load(args)
    critic = None
    if args.critic:
        from .facade import SASLM

        critic = SASLM.from_pretrained(args.critic, device=args.device, dtype=TORCH_DTYPES[args.dtype])
    result = saslm.score(args.audio, args.text, context_audio=args.context, context_text=args.context_text,
                         rubric=args.rubric, critic=critic)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    print(f"instance rubric: {result.instance_rubric}")
    for name, value in result.as_dict()["scores"].items():
        print(f"  {name:<14} {value:.3f}")
    print(f"  {'utility':<14} {float(result.utility[0]):.3f}")


def cmd_eval(args) -> None:
    from .eval.config import EvalConfig
    from .eval.runner import run_eval
    from .eval.summary import summary_markdown
    from .config import load_config

    run = run_eval(load_config(EvalConfig, args.config, args.overrides))
    print(summary_markdown(run.summary))
    print(f"items:  {run.items}")
    print(f"wavs:   {run.run_dir / 'wavs'}")
    print(f"report: {run.report}")


def cmd_demo(args) -> None:
    from .demo import run_demo

    run_demo(Path(args.out), seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sa-slm", description="Expressive speech generation with Qwen2.5-Omni")
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p):
        p.add_argument("--model", default="tiny", help="preset (tiny, random-3b, random-7b), local folder or hub id")
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
        p.add_argument("--dtype", default="fp32", choices=sorted(TORCH_DTYPES), help="Thinker/Talker dtype (Token2Wav stays fp32)")

    g = sub.add_parser("generate", help="answer user audio and/or text with reply text and speech")
    model_args(g)
    g.add_argument("--audio", help="user speech (any sample rate, mono or stereo)")
    g.add_argument("--text", help="user text")
    g.add_argument("--reply-text", help="speak this text instead of the model's own reply")
    g.add_argument("--out", required=True, help="output wav (with --num-samples N: out_0.wav ... out_{N-1}.wav)")
    g.add_argument("--speaker", default=None, help="Token2Wav speaker (default: the model's default)")
    g.add_argument("--num-samples", type=int, default=1)
    g.add_argument("--greedy", action="store_true", help="greedy Talker decoding instead of sampling")
    g.add_argument("--temperature", type=float, default=SAMPLING_DEFAULTS.temperature)
    g.add_argument("--top-k", type=int, default=SAMPLING_DEFAULTS.top_k, help="0: no top-k truncation")
    g.add_argument("--top-p", type=float, default=SAMPLING_DEFAULTS.top_p, help="1: no nucleus truncation")
    g.add_argument("--repetition-penalty", type=float, default=SAMPLING_DEFAULTS.repetition_penalty)
    g.add_argument("--max-new-codes", type=int, default=None,
                   help="Talker budget (50 codes per second; default: the model's own)")
    g.add_argument("--seed", type=int, default=None)
    g.set_defaults(func=cmd_generate)

    t = sub.add_parser("tokenize", help="fill reply_codes for every reply_audio of a manifest (stage-0 tokenizer)")
    t.add_argument("--manifest", required=True, help="input JSONL manifest")
    t.add_argument("--out", required=True, help="output manifest (line-aligned; a rerun resumes)")
    t.add_argument("--tokenizer", required=True, help="folder written by stage 0 (<output_dir>/tokenizer)")
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--device", default=None)
    t.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("probe", help="linear emotion probe on e_t, h_t and z_t (utterance-pooled)")
    model_args(p)
    p.add_argument("--manifest", required=True, help="manifest whose lines carry the label (e.g. emotion)")
    p.add_argument("--label", default="emotion")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--group-by", default="reply_text", help="reply_text or a manifest label naming the content")
    p.set_defaults(func=cmd_probe)

    sc = sub.add_parser("score", help="rubric critic: score a spoken reply to a dialogue context")
    model_args(sc)
    sc.add_argument("--audio", required=True, help="the spoken reply to score")
    sc.add_argument("--text", required=True, help="the reply's text")
    sc.add_argument("--context", help="the user's speech the reply answers")
    sc.add_argument("--context-text", help="the user's text the reply answers")
    sc.add_argument("--rubric", default="expressive", help="rubric name (rubrics/) or YAML path")
    sc.add_argument("--critic", help="score with another checkpoint instead of --model itself")
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(func=cmd_score)

    e = sub.add_parser("eval", help="run models over an eval manifest: wavs, per-item metrics, summary, HTML report")
    e.add_argument("--config", required=True, help="eval YAML (configs/eval_tiny.yaml)")
    e.add_argument("overrides", nargs="*", help="key=value overrides, e.g. max_items=4 asr=null")
    e.set_defaults(func=cmd_eval)

    d = sub.add_parser("demo", help="answer a shipped spoken question with the built-in tiny model")
    d.add_argument("--out", default="outputs/demo")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "generate" and not args.audio and not args.text:
        print("error: give --audio, --text, or both", file=sys.stderr)
        return 2
    if getattr(args, "command", None) == "score" and not args.context and not args.context_text:
        print("error: give the dialogue context: --context (speech), --context-text, or both", file=sys.stderr)
        return 2
    return report_errors(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
