"""Manifests fed to `sa-slm tokenize` (finding 8): every bad line is reported as `file:line: problem`,
the output keeps one line per input line, every good line gets its codes, and the exit status is 1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from faults import Fault, cli
from sa_slm.codec import SpeechTokenizer, SpeechTokenizerConfig

SUMMARY = r"1 of 3 lines failed; see the lines above"
GOOD = [  # (id, samples at 24 kHz): 25 and 15 codes
    ("g0", 12_000),
    ("g2", 7_200),
]


def _tokenize(bad: str | dict, bom: bool = False, reply_text: str = "fine"):
    """tmp -> (cli, argv) for a manifest [good, bad, good] with a tiny random tokenizer saved in tmp."""

    def setup(tmp: Path):
        torch.manual_seed(0)
        SpeechTokenizer(SpeechTokenizerConfig(hidden_size=32, num_layers=1, num_heads=2, codebook_size=64,
                                              max_codes=100)).save_pretrained(tmp / "tok")
        (tmp / "wavs").mkdir()
        rng = np.random.default_rng(0)
        for name, n in GOOD + [("tiny", 100)]:
            sf.write(tmp / "wavs" / f"{name}.wav", 0.1 * rng.standard_normal(n), 24_000)
        good = [{"id": i, "user_text": "q", "reply_text": reply_text, "reply_audio": f"wavs/{i}.wav"} for i, _ in GOOD]
        lines = [json.dumps(good[0], ensure_ascii=False), bad if isinstance(bad, str) else json.dumps(bad),
                 json.dumps(good[1], ensure_ascii=False)]
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        (tmp / "in.jsonl").write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
        return cli, ["tokenize", "--manifest", str(tmp / "in.jsonl"), "--out", str(tmp / "out.jsonl"),
                     "--tokenizer", str(tmp / "tok"), "--batch-size", "1"]

    return setup


def _lost(tmp: Path) -> list[str]:
    """Good items without their codes, or an output whose line count differs from the input's."""
    out = tmp / "out.jsonl"
    if not out.is_file():
        return [i for i, _ in GOOD]
    lines = out.read_text(encoding="utf-8").split("\n")[:-1]
    if len(lines) != 3:
        return [f"output has {len(lines)} lines, input 3"]
    rows = {0: lines[0], 1: lines[2]}
    return [i for k, (i, n) in enumerate(GOOD)
            if json.loads(rows[k]).get("id") != i or len(json.loads(rows[k]).get("reply_codes", [])) != n // 480]


_ROW = {"id": "b1", "user_text": "q", "reply_text": "x", "reply_audio": "wavs/g0.wav"}
FAULTS = [
    Fault(8, "tokenize: U+2028 inside a JSON string",
          _tokenize({**_ROW, "reply_text": "split\u2028here", "reply_audio": 5}, reply_text="a\u2028b"),
          r":2: 'reply_audio' must be a path string[\s\S]*" + SUMMARY, exit_code=1, lost=_lost),
    Fault(8, "tokenize: manifest with a UTF-8 BOM", _tokenize({**_ROW, "id": 7}, bom=True),
          r"in\.jsonl:2: 'id' must be a string[\s\S]*" + SUMMARY, exit_code=1, lost=_lost),
    Fault(8, "tokenize: non-object JSON line", _tokenize("[1, 2, 3]"),
          r"in\.jsonl:2: expected a JSON object, got list[\s\S]*" + SUMMARY, exit_code=1, lost=_lost),
    Fault(8, "tokenize: reply_audio not a string", _tokenize({**_ROW, "reply_audio": ["a.wav"]}),
          r"in\.jsonl:2: 'reply_audio' must be a path string[\s\S]*" + SUMMARY, exit_code=1, lost=_lost),
    Fault(8, "tokenize: clip under 20 ms alone in a batch", _tokenize({**_ROW, "reply_audio": "wavs/tiny.wav"}),
          r"in\.jsonl:2: audio shorter than one code \(20 ms\)[\s\S]*" + SUMMARY, exit_code=1, lost=_lost),
    Fault(8, "tokenize: missing reply_text", _tokenize({k: v for k, v in _ROW.items() if k != "reply_text"}),
          r"in\.jsonl:2: 'reply_text' is missing or empty[\s\S]*" + SUMMARY, exit_code=1, lost=_lost),
    Fault(8, "tokenize: reply_codes given as a string", _tokenize({**_ROW, "reply_codes": "12 873 5"}),
          r"in\.jsonl:2: 'reply_codes' must be a non-empty list of integers[\s\S]*" + SUMMARY, exit_code=1,
          lost=_lost),
]


def _long_clip(tmp: Path):
    """A 25 s reply, 12.5 times the tokenizer's 2 s window (finding 9)."""
    torch.manual_seed(0)
    SpeechTokenizer(SpeechTokenizerConfig(hidden_size=32, num_layers=1, num_heads=2, codebook_size=64,
                                          max_codes=100)).save_pretrained(tmp / "tok")
    sf.write(tmp / "long.wav", 0.1 * np.random.default_rng(0).standard_normal(25 * 24_000), 24_000)
    (tmp / "in.jsonl").write_text(json.dumps({"id": "long", "user_text": "q", "reply_text": "a long reply",
                                              "reply_audio": "long.wav"}) + "\n", encoding="utf-8")
    return cli, ["tokenize", "--manifest", str(tmp / "in.jsonl"), "--out", str(tmp / "out.jsonl"),
                 "--tokenizer", str(tmp / "tok")]


def _long_clip_lost(tmp: Path) -> list[str]:
    """The long clip, unless it got 25 s x 50 codes/s (+-1) in one sequence."""
    out = tmp / "out.jsonl"
    codes = json.loads(out.read_text(encoding="utf-8")).get("reply_codes", []) if out.is_file() else []
    return [] if abs(len(codes) - 1250) <= 1 else [f"long: {len(codes)} codes, expected 1250"]


FAULTS.append(Fault(9, "tokenize: a 25 s clip longer than the encoder window", _long_clip, r"1 encoded",
                    exit_code=0, lost=_long_clip_lost))
