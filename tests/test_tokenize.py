"""Manifest line splitting, BOM, duplicate ids, and `sa-slm tokenize` on bad lines (finding 8)."""

import json
import re

import numpy as np
import pytest
import soundfile as sf
import torch

from sa_slm.cli import main as cli_main
from sa_slm.codec import SpeechTokenizer, SpeechTokenizerConfig
from sa_slm.codec.tokenize import tokenize_manifest
from sa_slm.data.manifest import load_manifest, read_manifest
from sa_slm.errors import ManifestError

SEP = "\u2028"  # LINE SEPARATOR: valid unescaped inside a JSON string, a line break for str.splitlines()


@pytest.fixture(scope="module")
def tok():
    torch.manual_seed(0)
    cfg = SpeechTokenizerConfig(hidden_size=32, num_layers=1, num_heads=2, codebook_size=64, max_codes=100)
    return SpeechTokenizer(cfg).eval()


def _row(i: int, **kw) -> dict:
    return {"id": f"u{i}", "user_text": "q", "reply_text": f"a{i}", **kw}


def _dump(rows: list) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)


def test_manifest_splits_on_newline_only_and_accepts_bom_and_crlf(tmp_path):
    path = tmp_path / "m.jsonl"
    rows = [_row(0, reply_text=f"one{SEP}two"), _row(1), {"id": "u2", "user_text": "q"}, _row(3)]
    text = _dump(rows).replace(_dump(rows[1:2]), _dump(rows[1:2]).replace("\n", "\r\n"))
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    examples, bad = read_manifest(path, check_files=False)
    assert [ex.id for ex in examples] == ["u0", "u1", "u3"]
    assert [ex.source for ex in examples] == [f"{path}:1", f"{path}:2", f"{path}:4"]
    assert examples[0].reply_text == f"one{SEP}two"
    assert [(b.where, b.id) for b in bad] == [(f"{path}:3", "u2")]


def test_non_utf8_manifest_names_line_and_byte(tmp_path):
    path = tmp_path / "latin1.jsonl"
    first, second = _dump([_row(0)]).encode(), _dump([_row(1, reply_text="caf\xe9")]).encode("latin-1")
    path.write_bytes(first + second)
    offset = len(first) + second.index(b"\xe9")
    with pytest.raises(ManifestError, match=rf"{path}:2: not UTF-8 \(byte {offset}\)"):
        read_manifest(path, check_files=False)


def test_duplicate_ids_are_bad_lines(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text(_dump([_row(0), _row(1), _row(0, reply_text="again"), {"user_text": "q", "reply_text": "x"}]))
    examples, bad = read_manifest(path, check_files=False)
    assert [ex.id for ex in examples] == ["u0", "u1", f"{path}:4"]
    assert len(bad) == 1 and bad[0].where == f"{path}:3"
    assert bad[0].problems == [f"duplicate id 'u0' (first at {path}:1)"]
    with pytest.raises(ManifestError, match=rf"{path}:3: duplicate id 'u0' \(first at {path}:1\)"):
        load_manifest(path, check_files=False)


@pytest.fixture()
def wavs(tmp_path):
    (tmp_path / "wavs").mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("a", 12_000), ("b", 7_200), ("tiny", 100)):  # 0.5 s, 0.3 s at 24 kHz; tiny < one code
        sf.write(tmp_path / "wavs" / f"{name}.wav", 0.1 * rng.standard_normal(n), 24_000)
    (tmp_path / "wavs" / "corrupt.wav").write_bytes(b"RIFF....WAVEjunk")
    return tmp_path


BAD_LINES = {
    "non-object JSON": ("[1, 2]", "expected a JSON object, got list"),
    "reply_audio not a string": (_row(1, reply_audio=5), "'reply_audio' must be a path string"),
    "missing reply_text": ({"id": "u1", "user_text": "q", "reply_audio": "wavs/a.wav"}, "'reply_text' is missing"),
    "codes as a string": (_row(1, reply_audio="wavs/a.wav", reply_codes="1 2 3"), "'reply_codes' must be a non-empty"),
    "non-string id": ({**_row(1, reply_audio="wavs/a.wav"), "id": 7}, "'id' must be a string"),
    "invalid JSON": ('{"id": "u1", ', "not valid JSON"),
    "clip under one code": (_row(1, reply_audio="wavs/tiny.wav"), r"audio shorter than one code \(20 ms\)"),
    "undecodable audio": (_row(1, reply_audio="wavs/corrupt.wav"), "corrupt.wav: cannot decode audio"),
    "duplicate id": (_row(0, reply_audio="wavs/b.wav"), f"duplicate id 'u0' \\(first at .*:1\\)"),
}


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_tokenize_reports_a_bad_line_and_keeps_alignment(tok, wavs, kind):
    bad, expected = BAD_LINES[kind]
    src = wavs / "in.jsonl"
    rows = [_row(0, reply_audio="wavs/a.wav", reply_text=f"x{SEP}y"), bad, _row(2, reply_audio="wavs/b.wav")]
    src.write_text(_dump(rows), encoding="utf-8")
    out = wavs / "out.jsonl"
    # batch_size=1: the tiny clip is alone in its batch
    report = tokenize_manifest(tok, src, out, batch_size=1, progress=False)
    assert len(report.failed) == 1, report.failed
    assert report.failed[0].startswith(f"{src}:2: ")
    assert re.search(expected, report.failed[0]), report.failed[0]
    assert report.encoded == 2 and report.lines == 3
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == 3
    good = [json.loads(lines[0]), json.loads(lines[2])]
    assert [len(g["reply_codes"]) for g in good] == [25, 15]  # 12000 and 7200 samples / 480
    assert good[0]["reply_text"] == f"x{SEP}y"
    if kind not in ("clip under one code", "undecodable audio"):
        assert lines[1] == _dump([bad]).rstrip("\n")  # schema-bad lines are copied unchanged


def test_cli_tokenize_exits_1_with_a_summary(tok, wavs, capsys):
    tok.save_pretrained(wavs / "tok")
    src = wavs / "in.jsonl"
    src.write_text(_dump([_row(0, reply_audio="wavs/a.wav"), "[1]", _row(2, reply_audio=5), _row(3)]))
    argv = ["tokenize", "--manifest", str(src), "--out", str(wavs / "o.jsonl"), "--tokenizer", str(wavs / "tok")]
    assert cli_main(argv) == 1
    err = capsys.readouterr().err
    assert f"{src}:2: expected a JSON object" in err and f"{src}:3: 'reply_audio' must be a path string" in err
    assert "2 of 4 lines failed; see the lines above" in err
    src.write_text(_dump([_row(0, reply_audio="wavs/a.wav"), _row(3)]))
    assert cli_main(argv) == 0
