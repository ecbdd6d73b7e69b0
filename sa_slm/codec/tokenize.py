"""Fill `reply_codes` for every `reply_audio` of a manifest: batched, resumable, bad files reported."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from ..audio import AudioInput, load_audio
from ..errors import SASLMError
from .encoder import SpeechTokenizer


def encode(tokenizer: SpeechTokenizer, audio: AudioInput, sampling_rate: int | None = None) -> torch.Tensor:
    """One clip (path or array at any rate) → (n,) Talker codes."""
    cfg = tokenizer.config
    wav = load_audio(audio, cfg.sample_rate, sampling_rate, max_seconds=cfg.max_codes / cfg.codes_per_second)
    return tokenizer.encode(torch.from_numpy(wav)[None].to(tokenizer.device))[0].cpu()


@dataclass
class TokenizeReport:
    encoded: int = 0  # lines that got codes in this run
    skipped: int = 0  # lines that already had codes from an earlier run
    passed_through: int = 0  # lines without reply_audio, copied unchanged
    failed: list[str] = field(default_factory=list)  # "file:line: problem"


def _rebase(path: str, src_dir: Path, dst_dir: Path) -> str:
    """A manifest-relative path re-expressed relative to another manifest's folder."""
    full = (src_dir / path).resolve()
    return os.path.relpath(full, dst_dir.resolve())


def _write_atomic(path: Path, lines: list[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)


def tokenize_manifest(tokenizer: SpeechTokenizer, manifest: str | Path, out: str | Path, batch_size: int = 8,
                      progress: bool = True) -> TokenizeReport:
    """Write `out`, line-aligned with `manifest`, with reply_codes filled in.

    Bad lines (invalid JSON, missing or undecodable audio) are copied unchanged and reported; a rerun
    keeps the codes an earlier run wrote and only encodes what is still missing.
    """
    manifest, out = Path(manifest), Path(out)
    src_dir, dst_dir = manifest.parent, out.parent
    dst_dir.mkdir(parents=True, exist_ok=True)
    raw = manifest.read_text(encoding="utf-8").splitlines()
    previous = out.read_text(encoding="utf-8").splitlines() if out.is_file() else []
    report, lines, pending = TokenizeReport(), list(raw), []
    cfg = tokenizer.config
    for i, line in enumerate(raw):
        where = f"{manifest}:{i + 1}"
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            report.failed.append(f"{where}: not valid JSON ({exc.msg}); line copied unchanged")
            continue
        for key in ("user_audio", "reply_audio"):
            if isinstance(obj.get(key), str) and src_dir != dst_dir:
                obj[key] = _rebase(obj[key], src_dir, dst_dir)
        lines[i] = json.dumps(obj, ensure_ascii=False)
        if not obj.get("reply_audio"):
            report.passed_through += 1
            continue
        if i < len(previous):
            try:
                old = json.loads(previous[i])
            except json.JSONDecodeError:
                old = {}
            if old.get("reply_codes") and old.get("reply_audio") == obj["reply_audio"]:
                lines[i] = previous[i]
                report.skipped += 1
                continue
        pending.append((i, obj))

    bar = tqdm(total=len(pending), desc="tokenize", unit="clip", disable=not progress)
    for start in range(0, len(pending), batch_size):
        chunk, wavs = [], []
        for i, obj in pending[start : start + batch_size]:
            try:
                wav = load_audio(dst_dir / obj["reply_audio"], cfg.sample_rate,
                                 max_seconds=cfg.max_codes / cfg.codes_per_second)
            except SASLMError as exc:
                report.failed.append(f"{manifest}:{i + 1}: {exc}")
                continue
            chunk.append((i, obj))
            wavs.append(torch.from_numpy(np.ascontiguousarray(wav)))
        if chunk:
            audio = pad_sequence(wavs, batch_first=True).to(tokenizer.device)
            codes = tokenizer.encode(audio, torch.tensor([len(w) for w in wavs], device=tokenizer.device))
            for (i, obj), c in zip(chunk, codes):
                if c.numel() == 0:
                    report.failed.append(f"{manifest}:{i + 1}: audio shorter than one code "
                                         f"({cfg.samples_per_code / cfg.sample_rate * 1000:.0f} ms)")
                    continue
                obj["reply_codes"] = c.tolist()
                lines[i] = json.dumps(obj, ensure_ascii=False)
                report.encoded += 1
            _write_atomic(out, lines)  # progress survives an interruption
        bar.update(len(pending[start : start + batch_size]))
    bar.close()
    _write_atomic(out, lines)
    return report
