"""`sa-slm` command line: generate, score, tokenize, probe, eval, demo, doctor, data."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from .config import TORCH_DTYPES, ConfigError, check_range
from .errors import OutputError, report_errors
from .talker.sampling import SamplingConfig

SAMPLING_DEFAULTS = SamplingConfig()
#: Extensions `audio.write_wav` (16-bit PCM through soundfile) can write.
AUDIO_EXTENSIONS = sorted(f".{f.lower()}" for f in sf.available_formats() if sf.check_format(f, "PCM_16"))


def _check_model_args(args, critic: str | None = None) -> None:
    """Before any model loads: `--device` exists here and `--model` (and `--critic`) is a preset, a model
    folder or a hub id (a config.json read, no weights)."""
    from .facade import resolve_device
    from .presets import model_config

    resolve_device(args.device, "--device")
    model_config(args.model, "--model")
    if critic is not None:
        model_config(critic, "--critic")


def _load(args, name: str | None = None):
    from .facade import SASLM

    return SASLM.from_pretrained(name or args.model, device=args.device, dtype=TORCH_DTYPES[args.dtype])


def _check_audio_in(path: str | None) -> None:
    """A user clip decodes (missing, corrupt or empty files are reported before any model loads)."""
    from .audio import load_audio

    if path is not None:
        load_audio(path, target_sr=16_000)


def _check_writable_folder(flag: str, shown: Path, folder: Path) -> None:
    """Files can be created in `folder` (or, where it does not exist yet, in its nearest existing ancestor,
    under which the writer creates the rest): a probe file is created and removed."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "a file" if existing == shown else f"{existing} is a file"
        raise ConfigError(f"{flag} {shown}: {where}, not a folder; choose another path")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag} {shown}: cannot create files in {existing} ({exc.strerror}); "
                          "choose a writable folder") from exc


def _out_paths(out: Path, n: int) -> list[Path]:
    return [out] if n == 1 else [out.with_name(f"{out.stem}_{k}{out.suffix}") for k in range(n)]


def _check_audio_out(out: Path, n: int) -> list[Path]:
    """The `n` output files of `--out`: a known audio extension, no folder in the way, a writable folder."""
    if out.is_dir():
        raise ConfigError(f"--out {out}: a folder, not a file name; give a file such as {out / 'answer.wav'}")
    if not out.suffix:
        raise ConfigError(f"--out {out}: no file extension; give e.g. {out}.wav ({', '.join(AUDIO_EXTENSIONS)})")
    if out.suffix.lower() not in AUDIO_EXTENSIONS:
        raise ConfigError(f"--out {out}: unknown audio extension {out.suffix!r}; use one of {', '.join(AUDIO_EXTENSIONS)}")
    paths = _out_paths(out, n)
    for path in paths:
        if path.is_dir():
            raise ConfigError(f"--out {out}: {path} is a folder; choose another file name")
    _check_writable_folder("--out", out, out.parent)
    return paths


def _save_elsewhere(path: Path, wav: np.ndarray, sr: int) -> Path | None:
    """Write audio that could not go to `path` to a new file beside it, else in the temp folder."""
    from . import audio

    for folder in (path.parent, Path(tempfile.gettempdir())):
        try:
            handle, name = tempfile.mkstemp(prefix=f"{path.stem}.", suffix=".wav", dir=folder)
            os.close(handle)
            return audio.write_wav(name, wav, sr)
        except (OSError, RuntimeError):
            continue
    return None


def _write_outputs(paths: list[Path], waveforms: list[np.ndarray], sr: int) -> None:
    """Write every waveform; one that cannot be written goes to a fallback file and the error says where
    (generation took minutes: its audio is never dropped)."""
    from . import audio

    failed: list[str] = []
    for path, wav in zip(paths, waveforms):
        try:
            audio.write_wav(path, wav, sr)
        except (OSError, RuntimeError) as exc:  # soundfile's LibsndfileError is a RuntimeError
            fallback = _save_elsewhere(path, wav, sr)
            kept = f"the audio was saved to {fallback} instead" if fallback else "the audio could not be saved anywhere"
            failed.append(f"{path}: could not write ({exc}); {kept}")
            continue
        print(f"wrote {path} ({len(wav) / sr:.2f} s at {sr} Hz)")
    if failed:
        more = f" (and {len(failed) - 1} more: {'; '.join(failed[1:])})" if len(failed) > 1 else ""
        raise OutputError(f"--out {failed[0]}{more}")


def cmd_generate(args) -> None:
    check_range("--num-samples", args.num_samples, 1)
    sampling = SamplingConfig(not args.greedy, args.temperature, args.top_k, args.top_p, args.repetition_penalty,
                              args.max_new_codes)
    if args.reply_text is not None and not args.reply_text.strip():
        raise ConfigError("--reply-text is empty; give the text to speak, or leave it out")
    paths = _check_audio_out(Path(args.out), args.num_samples)
    _check_audio_in(args.audio)
    _check_model_args(args)
    saslm = _load(args)
    result = saslm.generate(
        audio=args.audio, text=args.text, speaker=args.speaker, num_samples=args.num_samples, sampling=sampling,
        reply_text=args.reply_text, seed=args.seed, progress=True,
    )
    print(f"reply: {result.reply_text}")
    _write_outputs(paths, result.waveforms, result.sample_rate)


def cmd_tokenize(args) -> int:
    from .codec import SpeechTokenizer
    from .codec.tokenize import tokenize_manifest

    tokenizer = SpeechTokenizer.from_pretrained(args.tokenizer).to(args.device or "cpu").eval()
    report = tokenize_manifest(tokenizer, args.manifest, args.out, batch_size=args.batch_size)
    for line in report.failed:
        print(line, file=sys.stderr)
    print(f"wrote {args.out}: {report.encoded} encoded, {report.skipped} already done, "
          f"{report.passed_through} without reply_audio, {len(report.failed)} failed")
    if report.failed:
        print(f"{len(report.failed)} of {report.lines} lines failed; see the lines above", file=sys.stderr)
        return 1
    return 0


def cmd_probe(args) -> None:
    from .data import load_manifest
    from .probe import probe_examples, run_probe

    check_range("--folds", args.folds, 2)
    examples = load_manifest(args.manifest)
    probe_examples(examples, args.label, args.group_by, where=args.manifest)
    _check_model_args(args)
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

    from .critic import load_rubric

    rubric = load_rubric(args.rubric)
    _check_audio_in(args.audio)
    _check_audio_in(args.context)
    _check_model_args(args, critic=args.critic)
    saslm = _load(args)
    critic = _load(args, args.critic) if args.critic else None
    result = saslm.score(args.audio, args.text, context_audio=args.context, context_text=args.context_text,
                         rubric=rubric, critic=critic)
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


def cmd_paper_mini(args) -> None:
    from .paper_mini.run import load_paper_mini_config, run_paper_mini

    result = run_paper_mini(load_paper_mini_config(args.config, args.overrides))
    print(f"report: {result['report']}")


def cmd_demo(args) -> None:
    from .demo import run_demo

    _check_writable_folder("--out", Path(args.out), Path(args.out))
    run_demo(Path(args.out), seed=args.seed)


def cmd_doctor(args) -> int:
    """Run the go/no-go checks, print the table at the end; exit status 1 when any check is NO-GO."""
    from .doctor import NO_GO, format_table, parse_stages, run_doctor, write_json

    stages = parse_stages(args.stages)
    rows = run_doctor(args.model, stages, device=args.device, dtype=args.dtype, config_dir=args.config_dir,
                      progress=lambda row: print(f"[doctor] {row.name}: {row.status}", file=sys.stderr, flush=True))
    if args.json:
        write_json(rows, args.json)
    print(format_table(rows))
    return 1 if any(row.status == NO_GO for row in rows) else 0


def _pairs(flag: str, values: list[str] | None) -> dict[str, str]:
    """`key=value` arguments of a repeated flag as a dict (a later key wins)."""
    out = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {value!r}: expected key=value")
        out[key.strip()] = rest
    return out


def cmd_data_prepare(args) -> int:
    """Prepare one split of a local download; exit status 1 when some rows were skipped (listed in the
    skip report), 0 when every row made it."""
    from .corpora import prepare

    options: dict[str, object] = _pairs("--option", args.option)
    if args.column:
        options["columns"] = _pairs("--column", args.column)
    kwargs = {"user_text": args.user_text} if args.user_text is not None else {}
    result = prepare(args.name, args.src, args.out, args.split, **kwargs, **options)
    print(f"wrote {result.manifest} (data card {result.card_md}, texts {result.texts})")
    summary = f"prepared {result.items} items ({result.hours:.2f} h)"
    if result.skipped:
        print(f"{summary}; skipped {len(result.skipped)} (see {result.skipped_file})", file=sys.stderr)
        return 1
    print(summary)
    return 0


def cmd_data_merge(args) -> int:
    """Merge prepared manifests into one; exit status 1 when a source line was bad (left out and listed)."""
    from .corpora.merge import merge_manifests

    result = merge_manifests(args.manifests, args.out)
    counts = ", ".join(f"{name} {n}" for name, n in result.counts.items())
    print(f"wrote {result.path}: {result.total} items ({counts})")
    for bad in result.bad:
        print(f"skipped {bad.where}: {'; '.join(bad.problems)}", file=sys.stderr)
    return 1 if result.bad else 0


def cmd_data_list(args) -> None:
    from .corpora import RECIPES

    for recipe in sorted(RECIPES.values(), key=lambda r: r.name):
        splits = "from the source" if recipe.find_splits else ", ".join(recipe.splits)
        options = f"; options: {', '.join(recipe.options)}" if recipe.options else ""
        print(f"{recipe.name:<14} {recipe.stage:<16} {recipe.summary} (splits: {splits}{options})")


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

    t = sub.add_parser("tokenize", help="fill reply_codes for every reply_audio of a manifest (stage-0 tokenizer)",
                       epilog="Bad lines are listed as file:line: problem and copied unchanged; the output keeps "
                              "one line per input line. Exit status: 0 every line done; 1 the output was written "
                              "but some lines failed (fix them and rerun: done lines are kept); 2 nothing was "
                              "done (bad arguments, a manifest that is missing or not UTF-8).")
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

    pm = sub.add_parser("paper-mini", help="the paper's tables in miniature: train every stage and ablation on a "
                        "synthetic expressive-dialogue corpus, measure, write an HTML report (needs espeak-ng)")
    pm.add_argument("--config", default="paper_mini", help="a path or a shipped config (paper_mini, paper_mini_ci)")
    pm.add_argument("overrides", nargs="*", help="dotted overrides, e.g. seeds=[0] output_dir=outputs/pm")
    pm.set_defaults(func=cmd_paper_mini)

    d = sub.add_parser("demo", help="answer a shipped spoken question with the built-in tiny model")
    d.add_argument("--out", default="outputs/demo")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)

    dr = sub.add_parser("doctor", help="go/no-go checks of this machine, the model, the data and one step of each stage")
    model_args(dr)
    dr.add_argument("--stages", default="0,1,2,3", help="stages to run one batch-1 step of (comma list; '' for none)")
    dr.add_argument("--config-dir", default=None,
                    help="folder with stage<N>.yaml or stage<N>_*.yaml (default: the shipped configs of the model size)")
    dr.add_argument("--json", default=None, help="also write the rows to this JSON file")
    dr.set_defaults(func=cmd_doctor)

    da = sub.add_parser("data", help="turn a local corpus download into manifests with a data card (dataset recipes)")
    dsub = da.add_subparsers(dest="data_command", required=True)
    dp = dsub.add_parser("prepare", help="prepare one split of a download: WAVs, <split>.jsonl, texts, data card",
                         epilog="Writes <out>/<split>.jsonl, <out>/wavs/<split>/, <out>/<split>.texts.txt (stage-0 "
                                "bootstrap texts), <out>/<split>.skipped.jsonl and the data card <out>/<split>.card.md "
                                "(.card.json, .durations.png); a rerun replaces that split's outputs. Exit status: 0 "
                                "every row prepared; 1 prepared, but some rows were skipped (see the skip report); "
                                "2 nothing was done (bad arguments, a source the recipe cannot read).")
    dp.add_argument("name", help="recipe name (`sa-slm data list`)")
    dp.add_argument("--src", required=True, help="the download's folder")
    dp.add_argument("--out", required=True, help="output folder (outside --src)")
    dp.add_argument("--split", default=None, help="split to prepare (default: the recipe's first)")
    dp.add_argument("--column", action="append", metavar="FIELD=COLUMN",
                    help="map a field to a source column (hf, table): text=sentence, audio=audio, speaker_id=client_id")
    dp.add_argument("--option", action="append", metavar="KEY=VALUE", help="a recipe option (`sa-slm data list`)")
    dp.add_argument("--user-text", default=None,
                    help="user turn for items whose source has none (TTS corpora; default: 'Please read this text aloud.')")
    dp.set_defaults(func=cmd_data_prepare)
    dm = dsub.add_parser("merge", help="merge prepared manifests (e.g. Genshin + EmoVoice-DB for stage 2) into one",
                         epilog="Audio paths are rewritten relative to the merged manifest (no copies); ids become "
                                "<corpus>/<id>, the corpus being the source manifest's folder name or NAME in "
                                "NAME=path. Exit status: 0 every line merged; 1 merged, but bad source lines were "
                                "left out (listed); 2 nothing was done.")
    dm.add_argument("manifests", nargs="+", metavar="[NAME=]MANIFEST", help="prepared manifests (<out>/<split>.jsonl)")
    dm.add_argument("--out", required=True, help="the merged manifest to write")
    dm.set_defaults(func=cmd_data_merge)
    dl = dsub.add_parser("list", help="the recipes: stage they feed, splits, options")
    dl.set_defaults(func=cmd_data_list)
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
