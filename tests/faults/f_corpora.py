"""`sa-slm data prepare`: bad arguments end with one `error:` line before anything is read or written
(finding 7); a bad row of a download is skipped and reported, the others are prepared (finding 4: exit 1,
as `sa-slm tokenize` does when its output was written but some lines failed)."""

from __future__ import annotations

import json
from pathlib import Path

from faults import Fault, cli
from sa_slm.paths import CORPUS_DIR

GOOD = {"LJ001-0001": "r00_neutral", "LJ001-0002": "r01_neutral", "LJ001-0003": "r02_neutral"}


def ljspeech(tmp: Path, garbage_row: bool = False) -> Path:
    """An LJSpeech-1.1 folder (metadata.csv, wavs/<id>.wav) of three good clips, plus one whose WAV is garbage."""
    src = tmp / "LJSpeech-1.1"
    (src / "wavs").mkdir(parents=True)
    lines = []
    for item_id, clip in GOOD.items():
        (src / "wavs" / f"{item_id}.wav").write_bytes((CORPUS_DIR / "wavs" / f"{clip}.wav").read_bytes())
        lines.append(f"{item_id}|Text of {item_id}.|Text of {item_id}.")
    if garbage_row:
        (src / "wavs" / "LJ001-0009.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 8)
        lines.insert(1, "LJ001-0009|Garbage.|Garbage.")
    (src / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return src


def prepare(*extra: str, garbage_row: bool = False, recipe: str = "table", src: str | None = None):
    def setup(tmp: Path):
        folder = ljspeech(tmp, garbage_row)
        return cli, ["data", "prepare", recipe, "--src", src or str(folder), "--out", str(tmp / "out"), *extra]

    return setup


def lost_items(tmp: Path) -> list[str]:
    manifest = tmp / "out" / "train.jsonl"
    kept = {json.loads(line)["id"] for line in manifest.read_text().splitlines()} if manifest.is_file() else set()
    return sorted(set(GOOD) - kept)


FAULTS = [
    Fault(7, "data prepare: unknown recipe", prepare(recipe="tabel"),
          r"unknown recipe 'tabel'; recipes: .*folder, .*hf, .*; did you mean 'table'"),
    Fault(7, "data prepare: --src missing", prepare(src="no/such/download"),
          r"--src no/such/download: not found; give the folder of the table download"),
    Fault(7, "data prepare: unknown split", prepare("--split", "dev"), r"has no split 'dev'; splits: train"),
    Fault(7, "data prepare: unknown option", prepare("--option", "delimeter=|"),
          r"recipe 'table' has no option 'delimeter'.*did you mean 'delimiter'"),
    Fault(7, "data prepare: --out inside --src", lambda tmp: (cli, [
        "data", "prepare", "table", "--src", str(ljspeech(tmp)), "--out", str(tmp / "LJSpeech-1.1" / "prepared")]),
        r"overlap"),
    Fault(7, "data prepare: hf folder that is no dataset", prepare(recipe="hf"),
          r"not a Hugging Face dataset on disk"),
    Fault(4, "data prepare: one clip undecodable", prepare(garbage_row=True),
          r"prepared 3 items \(0\.00 h\); skipped 1 \(see .*train\.skipped\.jsonl\)", exit_code=1, lost=lost_items),
]
