"""Command-line arguments: bad values get one `error:` line before any model loads (finding 7)."""

from __future__ import annotations

from pathlib import Path

from faults import Fault, cli
from sa_slm.paths import CORPUS_DIR, RUBRIC_DIR

MANIFEST = str(CORPUS_DIR / "manifest.jsonl")
WAV = str(sorted(CORPUS_DIR.glob("**/*.wav"))[0])


def _generate(*extra: str):
    """`sa-slm generate` with a valid text prompt and output, plus `extra` (paths may use {tmp})."""
    def setup(tmp: Path):
        (tmp / "empty").mkdir()
        (tmp / "a_file").write_text("not a folder")
        return cli, ["generate", "--text", "hi", "--out", str(tmp / "o.wav"), *[a.format(tmp=tmp) for a in extra]]
    return setup


def _score_with_rubric(text: bytes):
    def setup(tmp: Path):
        (tmp / "r.yaml").write_bytes(text)
        return cli, ["score", "--audio", WAV, "--text", "x", "--context-text", "y", "--rubric", str(tmp / "r.yaml")]
    return setup


def _eval_config(text: bytes):
    def setup(tmp: Path):
        (tmp / "eval.yaml").write_bytes(text)
        return cli, ["eval", "--config", str(tmp / "eval.yaml")]
    return setup


def _demo_into_a_file(tmp: Path):
    (tmp / "taken").write_text("x")
    return cli, ["demo", "--out", str(tmp / "taken")]


RUBRIC = (RUBRIC_DIR / "expressive.yaml").read_bytes()

FAULTS = [
    Fault(7, "generate: --num-samples 0", _generate("--num-samples", "0"), r"--num-samples: 0 must be >= 1"),
    Fault(7, "generate: --max-new-codes -5", _generate("--max-new-codes", "-5"),
          r"sampling\.max_new_codes: -5 must be a positive integer"),
    Fault(7, "generate: --temperature -1", _generate("--temperature", "-1"), r"sampling\.temperature: -1\.0"),
    Fault(7, "generate: --temperature nan", _generate("--temperature", "nan"), r"sampling\.temperature: nan"),
    Fault(7, "generate: --top-p 1.5", _generate("--top-p", "1.5"), r"sampling\.top_p: 1\.5"),
    Fault(7, "generate: --top-k -1", _generate("--top-k", "-1"), r"sampling\.top_k: -1"),
    Fault(7, "generate: --repetition-penalty 0", _generate("--repetition-penalty", "0"),
          r"sampling\.repetition_penalty: 0\.0"),
    Fault(7, "generate: --model folder missing", _generate("--model", "{tmp}/nope"),
          r"--model .*/nope: model folder not found"),
    Fault(7, "generate: --model relative folder missing", _generate("--model", "outputs/stage2/model"),
          r"--model outputs/stage2/model: model folder not found"),
    Fault(7, "generate: --model folder empty", _generate("--model", "{tmp}/empty"),
          r"--model .*/empty: the folder is empty, not a model folder"),
    Fault(7, "generate: --model is a file", _generate("--model", "{tmp}/a_file"),
          r"--model .*/a_file: a file, not a model folder"),
    Fault(7, "generate: --device cuda:99", _generate("--device", "cuda:99"),
          r"--device cuda:99: (no CUDA device is visible .*use --device cpu|only \d+ CUDA device)"),
    Fault(7, "generate: --device banana", _generate("--device", "banana"), r"--device 'banana': not a device"),
    Fault(7, "generate: --out without extension", _generate("--out", "{tmp}/answer"),
          r"--out .*/answer: no file extension"),
    Fault(7, "generate: --out unknown extension", _generate("--out", "{tmp}/answer.xyz"),
          r"--out .*/answer\.xyz: unknown audio extension '\.xyz'"),
    Fault(7, "generate: --out is a folder", _generate("--out", "{tmp}/empty"), r"--out .*/empty: a folder"),
    Fault(7, "generate: --out under a file", _generate("--out", "{tmp}/a_file/o.wav"),
          r"--out .*/a_file/o\.wav: .*a_file is a file, not a folder"),
    Fault(7, "generate: --reply-text empty", _generate("--reply-text", " "), r"--reply-text is empty"),
    Fault(7, "generate: --audio missing", _generate("--audio", "{tmp}/q.wav"), r"q\.wav: audio file not found"),
    Fault(7, "score: rubric not UTF-8", _score_with_rubric(RUBRIC.replace(b"name: expressive", b"name: caf\xe9")),
          r"r\.yaml:3: not UTF-8 \(byte \d+\)"),
    Fault(7, "score: rubric YAML syntax error", _score_with_rubric(RUBRIC + b"extra: [\n"),
          r"r\.yaml:\d+:1: not valid YAML"),
    Fault(7, "score: rubric weight .nan", _score_with_rubric(RUBRIC.replace(b"weight: 1.0", b"weight: .nan", 1)),
          r"'dimensions\[0\]\.weight' is nan"),
    Fault(7, "score: --critic folder missing", lambda tmp: (cli, [
        "score", "--audio", WAV, "--text", "x", "--context-text", "y", "--critic", str(tmp / "critic")]),
        r"--critic .*/critic: model folder not found"),
    Fault(7, "score: --context missing", lambda tmp: (cli, [
        "score", "--audio", WAV, "--text", "x", "--context", str(tmp / "ctx.wav")]), r"ctx\.wav: audio file not found"),
    Fault(7, "probe: --folds 0", lambda tmp: (cli, ["probe", "--manifest", MANIFEST, "--folds", "0"]),
          r"--folds: 0 must be >= 2"),
    Fault(7, "probe: --label nobody has", lambda tmp: (cli, ["probe", "--manifest", MANIFEST, "--label", "mood"]),
          r"manifest\.jsonl: 0 example\(s\) carry the label 'mood'"),
    Fault(7, "demo: --out is a file", _demo_into_a_file, r"--out .*/taken: a file, not a folder"),
    Fault(7, "eval: config not UTF-8", _eval_config(b"manifest: caf\xe9.jsonl\n"), r"eval\.yaml:1: not UTF-8 \(byte 13\)"),
    Fault(7, "eval: config YAML syntax error", _eval_config(b"manifest: m.jsonl\nmodels: [{name: tiny}\n"),
          r"eval\.yaml:3:1: not valid YAML"),
]
