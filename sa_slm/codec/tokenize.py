"""Fill `reply_codes` for every `reply_audio` of a manifest: batched, resumable, bad files reported."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..audio import AudioInput, load_audio
from ..data.manifest import check_lines, read_lines
from ..errors import ManifestError, SASLMError
from ..paths import write_text_atomic
from .encoder import SpeechTokenizer


def encode(tokenizer: SpeechTokenizer, audio: AudioInput, sampling_rate: int | None = None) -> torch.Tensor:
    """One clip (path or array at any rate, any length) → (n,) Talker codes, n = samples // samples_per_code."""
    wav = load_audio(audio, tokenizer.config.sample_rate, sampling_rate)
    return tokenizer.encode_long([torch.from_numpy(wav)])[0].cpu()


@dataclass
class TokenizeReport:
    lines: int = 0  # non-blank lines read
    encoded: int = 0  # lines that got codes in this run
    skipped: int = 0  # lines that already had codes from an earlier run
    passed_through: int = 0  # lines without reply_audio, copied unchanged
    failed: list[str] = field(default_factory=list)  # "file:line: problem", one per failed line


def _rebase(path: str, src_dir: Path, dst_dir: Path) -> str:
    """A manifest-relative path re-expressed relative to another manifest's folder."""
    full = (src_dir / path).resolve()
    return os.path.relpath(full, dst_dir.resolve())


def _earlier_codes(previous: list[str], i: int, reply_audio: str) -> bool:
    """Whether line `i` of an earlier run's output already holds codes for the same reply_audio."""
    if i >= len(previous):
        return False
    try:
        old = json.loads(previous[i])
    except json.JSONDecodeError:
        return False
    return isinstance(old, dict) and bool(old.get("reply_codes")) and old.get("reply_audio") == reply_audio


def tokenize_manifest(tokenizer: SpeechTokenizer, manifest: str | Path, out: str | Path, batch_size: int = 8,
                      progress: bool = True) -> TokenizeReport:
    """Write `out`, line-aligned with `manifest` (one output line per input line), with reply_codes filled in.

    Every line is checked with the manifest reader's schema (`check_lines`); a bad line (invalid JSON,
    schema problem, duplicate id, missing, undecodable or under-one-code audio) is reported as
    `file:line: problem` and copied, never raised. Clips of any length are encoded (`encode_long`). A
    rerun keeps the codes an earlier run wrote and only encodes what is still missing.
    """
    manifest, out = Path(manifest), Path(out)
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: manifest not found")
    src_dir, dst_dir = manifest.parent, out.parent
    raw = read_lines(manifest)
    previous = read_lines(out) if out.is_file() else []
    dst_dir.mkdir(parents=True, exist_ok=True)
    checked = check_lines(manifest, raw, check_files=False)
    report, lines, pending = TokenizeReport(lines=len(checked)), list(raw), []
    failures: list[tuple[int, str]] = []  # (line number, "file:line: problem"), sorted into the report
    cfg = tokenizer.config
    for entry in checked:
        i, obj = entry.lineno - 1, entry.obj
        if entry.problems:  # copied unchanged
            failures.append((entry.lineno, f"{entry.where}: {'; '.join(entry.problems)}"))
            continue
        for key in ("user_audio", "reply_audio"):
            if obj.get(key) is not None and src_dir != dst_dir:
                obj[key] = _rebase(obj[key], src_dir, dst_dir)
        lines[i] = json.dumps(obj, ensure_ascii=False)
        if not obj.get("reply_audio"):
            report.passed_through += 1
        elif _earlier_codes(previous, i, obj["reply_audio"]):
            lines[i] = previous[i]
            report.skipped += 1
        else:
            pending.append((entry, obj))

    bar = tqdm(total=len(pending), desc="tokenize", unit="clip", disable=not progress)
    for start in range(0, len(pending), batch_size):
        chunk, wavs = [], []
        for entry, obj in pending[start : start + batch_size]:
            try:
                wav = load_audio(dst_dir / obj["reply_audio"], cfg.sample_rate)
            except SASLMError as exc:
                failures.append((entry.lineno, f"{entry.where}: {exc}"))
                continue
            chunk.append((entry, obj))
            wavs.append(torch.from_numpy(np.ascontiguousarray(wav)))
        for (entry, obj), codes in zip(chunk, tokenizer.encode_long(wavs, batch_size)):
            if codes.numel() == 0:
                failures.append((entry.lineno, f"{entry.where}: audio shorter than one code "
                                                f"({cfg.samples_per_code / cfg.sample_rate * 1000:.0f} ms)"))
                continue
            obj["reply_codes"] = codes.tolist()
            lines[entry.lineno - 1] = json.dumps(obj, ensure_ascii=False)
            report.encoded += 1
        write_text_atomic(out, "".join(line + "\n" for line in lines))  # progress survives an interruption
        bar.update(len(pending[start : start + batch_size]))
    bar.close()
    write_text_atomic(out, "".join(line + "\n" for line in lines))
    report.failed = [message for _, message in sorted(failures)]
    return report
