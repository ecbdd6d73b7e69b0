"""Measure the acoustic metrics on real expressive recordings: the EchoMind demo clips.

The public EchoMind repository (hlt-cuhksz/EchoMind) ships 84 demo clips under `Demo/Audio` (14 cases;
per case a `target` voice with the case's vocal cue, a `neutral` voice and an `alternative` voice, each
with the model reply `..._response.wav`) and their scripts in `index.html`. Get both with

    git clone https://github.com/hlt-cuhksz/EchoMind && cd EchoMind   # or `git archive HEAD Demo/Audio index.html`
    python scripts/measure_real_metrics.py --echomind . --out real_metrics.json

For every clip it computes energy (dBFS over speech frames), speaking rate (words of the page's script
for that clip per second of the speech span), F0 variance (semitones²) and voiced fraction, twice:
`before`, the previous level rule (speech = frames within 35 dB of the loudest and above -60 dBFS;
words split at any non-ASCII apostrophe), and `after`, `sa_slm.metrics.acoustic_metrics` (Silero
voice-activity detection, contractions one word). Then every input clip is mixed with seeded wind-like
and sea-like noise at 10 dB SNR (speech power over the clean clip's detected speech) and the clean vs
noisy speaking rate and voiced fraction are compared under both rules. It prints Markdown tables and
whether the style rankings hold (shout/angry louder than neutral, fast > neutral > slow,
happy/surprise more F0 variance than sad/tired).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import statistics
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt
from tqdm.auto import tqdm

from sa_slm.audio import to_mono
from sa_slm.metrics import acoustic_metrics
from sa_slm.metrics.acoustic import FRAME_S, HOP_S, frame_levels_db, speech_segments
from sa_slm.prosody import pitch_track

KEYS = ("energy_db_mean", "speaking_rate_wps", "f0_var_st2", "voiced_fraction")
SNR_DB = 10.0
_FILE = re.compile(r"id_(\d+)_(.+?)_(target|neutral|alternative)(_response)?$")


def read_page(root: Path) -> dict[str, dict]:
    """Clip file name -> {"text", "style", "voice", "response"} from the demo table of `index.html`.

    Style: the target voice's cue from its file name (`id_682_tired_school_target` -> tired), `neutral`
    for the neutral voice, the page's label for the alternative voice (`Alternative:Happy` -> happy);
    a reply (`_response`) has the style of the voice it answers. Text: the input script for the three
    input clips of a case, the page's reply text for each reply clip.
    """
    page = (root / "index.html").read_text(encoding="utf-8")
    clips = {}
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if len(cells) != 4 or "Demo/Audio/" not in cells[1]:
            continue
        script = html.unescape(re.sub(r"<[^>]+>", " ", cells[0])).split()
        labels = re.findall(r'font-size: 12px[^"]*">([^<]*)</div>', cells[1])
        inputs = re.findall(r'src="Demo/Audio/([^"]+)"', cells[1])
        replies = [html.unescape(re.sub(r"<[^>]+>", " ", t))
                   for t in re.findall(r'font-size: 14px;">(.*?)</div>', cells[2], re.S)]
        outputs = re.findall(r'src="Demo/Audio/([^"]+)"', cells[3])
        for name, label in zip(inputs, labels):
            m = _FILE.match(Path(name).stem)
            voice = m.group(3)
            style = {"target": m.group(2).split("_")[0],
                     "neutral": "neutral"}.get(voice, label.split(":", 1)[-1].lower())
            clips[name] = {"text": " ".join(script), "style": style, "voice": voice, "response": False}
        for name, text in zip(outputs, replies):
            voice = _FILE.match(Path(name).stem).group(3)
            source = next(n for n in inputs if _FILE.match(Path(n).stem).group(3) == voice)
            clips[name] = {"text": " ".join(text.split()), "style": clips[source]["style"], "voice": voice,
                           "response": True}
    return clips


def before_metrics(wav: np.ndarray, sr: int, text: str) -> dict[str, float | None]:
    """The previous rule, for comparison: speech frames within 35 dB of the loudest (and >= -60 dBFS),
    the span from the first to the last such frame, words split at anything but letters, digits, _ and '."""
    wav = to_mono(np.asarray(wav, dtype=np.float64))
    levels = frame_levels_db(wav, sr)
    mask = levels >= max(-60.0, float(levels.max()) - 35.0)
    idx = np.flatnonzero(mask)
    start, end = idx[0] * HOP_S, idx[-1] * HOP_S + FRAME_S
    words = [w.strip("'") for w in re.sub(r"[^\w']+", " ", text.lower().replace("_", " ")).split() if w.strip("'")]
    times, f0 = pitch_track(wav, sr)
    inside = (times >= start) & (times <= end)
    return {"energy_db_mean": float(levels[mask].mean()), "speaking_rate_wps": len(words) / (end - start),
            "voiced_fraction": float(np.mean(f0[inside] > 0))}


def noise(kind: str, n: int, sr: int, seed: int) -> np.ndarray:
    """Seeded background noise: `wind`, brown noise band-passed to 20–500 Hz; `sea`, white noise whose
    level swells by ±50 % every 5 s."""
    rng = np.random.default_rng(seed)
    if kind == "wind":
        return sosfilt(butter(2, [20, min(500, sr / 2 - 1)], btype="band", fs=sr, output="sos"),
                       np.cumsum(rng.standard_normal(n)))
    return rng.standard_normal(n) * (1 + 0.5 * np.sin(2 * np.pi * 0.2 * np.arange(n) / sr))


def mix_at_snr(wav: np.ndarray, sr: int, kind: str, seed: int) -> np.ndarray:
    """`wav` plus noise scaled to SNR_DB, the speech power taken over the clip's detected speech."""
    speech = np.concatenate([wav[int(a * sr): int(b * sr)] for a, b in speech_segments(wav, sr)])
    n = noise(kind, len(wav), sr, seed)
    return wav + n * np.sqrt(np.mean(speech ** 2) / np.mean(n ** 2) / 10 ** (SNR_DB / 10))


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--echomind", required=True, type=Path, help="folder holding Demo/Audio and index.html")
    parser.add_argument("--out", type=Path, help="write every per-clip number here (JSON)")
    args = parser.parse_args(argv)
    if not (args.echomind / "index.html").is_file() or not (args.echomind / "Demo" / "Audio").is_dir():
        print(f"error: {args.echomind} has no index.html and Demo/Audio/ (see this script's docstring)",
              file=sys.stderr)
        return 2
    clips = read_page(args.echomind)
    rows = []
    for i, (name, info) in enumerate(tqdm(sorted(clips.items()), desc="clips")):
        wav, sr = sf.read(args.echomind / "Demo" / "Audio" / name, dtype="float64")
        wav = to_mono(wav)
        after, errors = acoustic_metrics(wav, sr, info["text"])
        row = {"clip": name, **info, "sample_rate": sr, "duration_s": len(wav) / sr, "errors": errors,
               "after": {k: after[k] for k in KEYS}, "before": {**before_metrics(wav, sr, info["text"]),
                                                               "f0_var_st2": after["f0_var_st2"]}}
        if not info["response"]:
            for kind in ("wind", "sea"):
                noisy = mix_at_snr(wav, sr, kind, seed=i)
                noisy_after = acoustic_metrics(noisy, sr, info["text"])[0]
                row[kind] = {"after": {k: noisy_after[k] for k in ("speaking_rate_wps", "voiced_fraction")},
                             "before": {k: v for k, v in before_metrics(noisy, sr, info["text"]).items()
                                        if k in ("speaking_rate_wps", "voiced_fraction")}}
        rows.append(row)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")

    inputs = [r for r in rows if not r["response"]]
    styles = sorted({r["style"] for r in inputs}, key=lambda s: (s != "neutral", s))
    print(f"{len(rows)} clips ({len(inputs)} input voices, {len(rows) - len(inputs)} replies), "
          f"{sorted({r['sample_rate'] for r in rows})} Hz\n")
    print("| style | n | " + " | ".join(f"{k} before | after" for k in KEYS) + " |")
    print("|---|---|" + "---|---|" * len(KEYS))
    means: dict[tuple[str, str, str], float | None] = {}
    for style in [*styles, "replies"]:
        group = [r for r in inputs if r["style"] == style] if style != "replies" else [r for r in rows if r["response"]]
        cells = []
        for key in KEYS:
            for when in ("before", "after"):
                means[style, key, when] = _mean([r[when][key] for r in group])
                cells.append(_fmt(means[style, key, when]))
        print(f"| {style} | {len(group)} | " + " | ".join(cells) + " |")

    lively = [s for s in ("happy", "surprise") if s in styles]  # the demo clips have no surprise voice
    subdued = [s for s in ("sad", "tired") if s in styles]
    print("\nRankings (means over the input voices of each style):")
    for when in ("before", "after"):
        m = {(s, k): means[s, k, when] for s in styles for k in KEYS}
        checks = {
            "shout, angry louder than neutral": all(m[s, "energy_db_mean"] > m["neutral", "energy_db_mean"]
                                                    for s in ("shout", "angry")),
            "fast > neutral > slow (rate)": m["fast", "speaking_rate_wps"] > m["neutral", "speaking_rate_wps"]
                                            > m["slow", "speaking_rate_wps"],
            f"{', '.join(lively)} more F0 variance than {', '.join(subdued)}":
                min(m[s, "f0_var_st2"] for s in lively) > max(m[s, "f0_var_st2"] for s in subdued),
        }
        print(f"- {when}: " + "; ".join(f"{k}: {'holds' if v else 'FAILS'}" for k, v in checks.items()))

    print(f"\nNoise at {SNR_DB:.0f} dB SNR, {len(inputs)} input clips: mean over clips (clean -> noisy), "
          "and the largest relative change of the speaking rate")
    print("| noise | rule | rate clean | rate noisy | max rate change | voiced fraction clean | noisy |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for kind in ("wind", "sea"):
        for when in ("before", "after"):
            pairs = [(r[when]["speaking_rate_wps"], r[kind][when]["speaking_rate_wps"]) for r in inputs
                     if r[when]["speaking_rate_wps"] and r[kind][when]["speaking_rate_wps"]]
            change = max(abs(b / a - 1) for a, b in pairs)
            vf = [(r[when]["voiced_fraction"], r[kind][when]["voiced_fraction"]) for r in inputs
                  if r[when]["voiced_fraction"] is not None and r[kind][when]["voiced_fraction"] is not None]
            summary[kind, when] = change
            print(f"| {kind} | {when} | {_mean([a for a, _ in pairs]):.3g} | {_mean([b for _, b in pairs]):.3g} | "
                  f"{100 * change:.0f} % | {_mean([a for a, _ in vf]):.3g} | {_mean([b for _, b in vf]):.3g} |")
    print("\nRecorded background sounds (`sound of ...` voices) vs the neutral voice of the same case "
          "(same script, no added sound): speaking rate / voiced fraction")
    print("| clip | before | after | neutral voice before | after |")
    print("|---|---|---|---|---|")
    for r in inputs:
        if r["style"].startswith("sound of"):
            case = _FILE.match(Path(r["clip"]).stem).group(1)
            neutral = next(n for n in inputs
                           if n["voice"] == "neutral" and _FILE.match(Path(n["clip"]).stem).group(1) == case)
            print(f"| {r['clip']} | " + " | ".join(
                f"{x[w]['speaking_rate_wps']:.2f} / {x[w]['voiced_fraction']:.2f}" for x in (r, neutral)
                for w in ("before", "after")) + " |")
    failed = [r["clip"] for r in rows if r["errors"]]
    if failed:
        print(f"\n{len(failed)} clips with a measure that failed: " + "; ".join(
            f"{r['clip']}: {', '.join(r['errors'])}" for r in rows if r["errors"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
