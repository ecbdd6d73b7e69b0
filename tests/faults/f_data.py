"""Bad items in a training manifest: the data audit skips and lists them (or stops the run under
`on_bad_item=error`) before the model loads (finding 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from faults import Fault, recipe
from sa_slm.paths import CORPUS_DIR

BAD_ID = "r02_sad"  # the item each fault breaks (line 13 of the shipped manifest_codes.jsonl)
QUICK = ["train.max_steps=2", "train.per_device_train_batch_size=8", "train.save_steps=100", "train.logging_steps=1"]


def corpus_manifest(tmp: Path, break_item=None, source: str = "manifest_codes.jsonl") -> Path:
    """The shipped 40-item corpus manifest copied to `tmp/data/manifest.jsonl`, audio paths absolute.

    break_item(obj, folder) edits the JSON object of `BAD_ID` in place (writing any files it needs under
    `folder`); every other line is the shipped one."""
    folder = tmp / "data"
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for line in (CORPUS_DIR / source).read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        for key in ("user_audio", "reply_audio"):
            if obj.get(key):
                obj[key] = str(CORPUS_DIR / obj[key])
        if obj["id"] == BAD_ID and break_item is not None:
            break_item(obj, folder)
        lines.append(json.dumps(obj))
    path = folder / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def garbage_reply(obj: dict, folder: Path) -> None:
    (folder / "garbage.wav").write_bytes(b"RIFF\x00\x00\x00\x00not a wav file at all" * 10)
    obj["reply_audio"] = str(folder / "garbage.wav")


def garbage_user(obj: dict, folder: Path) -> None:
    (folder / "garbage_user.wav").write_bytes(b"\x00\x01garbage" * 100)
    obj["user_audio"] = str(folder / "garbage_user.wav")


def long_user(obj: dict, folder: Path) -> None:
    """A 31 s user clip: over the 30 s the audio tower takes."""
    rng = np.random.default_rng(0)
    sf.write(folder / "long.wav", (0.1 * rng.standard_normal(16_000 * 31)).astype(np.float32), 16_000,
             subtype="PCM_16")
    obj["user_audio"] = str(folder / "long.wav")


def codes_out_of_range(obj: dict, folder: Path) -> None:
    obj["reply_codes"] = obj["reply_codes"][:3] + [99_999]


def audit_lost(tmp: Path, output: str = "out") -> list[str]:
    """Good items the audit left out: anything it lists besides `BAD_ID` (or everything if it wrote no file)."""
    file = tmp / output / "audit.jsonl"
    if not file.is_file():
        return ["<no audit file>"]
    rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
    return [r["id"] for r in rows[1:] if r["id"] != BAD_ID] + ([] if rows[0]["good"] == 39 else ["<good count>"])


def stage1(break_item, *overrides: str):
    def setup(tmp: Path):
        manifest = corpus_manifest(tmp, break_item)
        return recipe(1), ["--config", "stage1_tiny", f"train_manifest={manifest}", f"output_dir={tmp / 'out'}",
                           *QUICK, *overrides]
    return setup


FAULTS = [
    Fault(4, "stage1: undecodable reply clip is skipped", stage1(garbage_reply),
          r"audit: 1 of 40 items skipped \(see .*audit\.jsonl\)", exit_code=0, lost=audit_lost, slow=True),
    Fault(4, "stage1: undecodable user clip with on_bad_item=error",
          stage1(garbage_user, "on_bad_item=error"),
          r"1 of 40 items of .*manifest\.jsonl are bad: .*manifest\.jsonl:13: 'user_audio' .*garbage_user\.wav: "
          r"cannot decode audio"),
    Fault(4, "stage1: user clip over the 30 s limit is skipped", stage1(long_user),
          r"audit: 1 of 40 items skipped", exit_code=0, lost=audit_lost, slow=True),
    Fault(4, "stage1: reply_codes out of range with on_bad_item=error", stage1(codes_out_of_range, "on_bad_item=error"),
          r"manifest\.jsonl:13: 'reply_codes' holds 99999, outside the codec vocabulary"),
    Fault(4, "stage1: on_bad_item=drop", stage1(None, "on_bad_item=drop"),
          r"on_bad_item: 'drop' is not one of skip, error"),
]
