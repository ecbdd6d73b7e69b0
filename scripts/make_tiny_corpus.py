#!/usr/bin/env python3
"""Build the tiny synthetic expressive dialogue corpus in ``data/tiny_corpus``.

The corpus is meant for demos and fast tests, not for training anything real.
It holds a handful of short question/reply dialogue pairs:

* each question is spoken once by the *user* voice (voice A) in the neutral preset;
* each reply is spoken by the *assistant* voice (voice B) in every emotion preset,
  where the presets are espeak-ng SSML ``<prosody>`` settings (pitch, range, rate,
  volume) chosen so that F0 mean, F0 spread and speaking rate differ measurably.

Outputs (all paths relative to ``--out-dir``)::

    wavs/q{idx:02d}.wav             question ``idx``, user voice, neutral
    wavs/r{idx:02d}_{emotion}.wav   reply ``idx``, assistant voice, one per preset
    wavs/demo_question.wav          a single spoken question for the demo
    manifest.jsonl                  one JSON object per reply clip (see below)

Every WAV is 16 kHz, mono, 16-bit PCM, with leading/trailing silence trimmed to a
short pad. Each manifest line looks like::

    {"id": "r03_happy", "user_audio": "wavs/q03.wav", "user_text": "...",
     "reply_text": "...", "reply_audio": "wavs/r03_happy.wav", "emotion": "happy",
     "voice": "assistant_b", "history": []}

with audio paths relative to the manifest's folder.

Requirements: the ``espeak-ng`` binary (Debian package ``espeak-ng``) plus numpy,
soundfile and soxr (all project dependencies). The output depends on the
espeak-ng version, which is why the generated files are committed rather than
built on CI.

Usage::

    python scripts/make_tiny_corpus.py [--out-dir data/tiny_corpus] [--espeak espeak-ng]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf
import soxr

from sa_slm.audio import trim_silence

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "data" / "tiny_corpus"

TARGET_SR = 16_000
# espeak-ng base amplitude (``-a``, default 100). Slightly below the default so the
# louder "angry" preset keeps headroom and never saturates 16-bit PCM.
ESPEAK_AMPLITUDE = 80
# Silence trimming: samples quieter than this (relative to the clip's peak) at
# either end are dropped, then PAD_S seconds of the original signal are kept.
TRIM_REL_DB = -40.0
PAD_S = 0.05
# Sanity bounds for clip durations (seconds, after trimming).
MIN_DUR_S, MAX_DUR_S = 1.0, 3.0

USER_VOICE = "en-us"  # voice A: default American English (male)
ASSISTANT_VOICE = "en-us+f3"  # voice B: American English with the f3 (female) variant
ASSISTANT_SPEAKER = "assistant_b"


@dataclass(frozen=True)
class Preset:
    """An emotion preset: values for the SSML ``<prosody>`` attributes.

    ``pitch`` shifts the baseline F0, ``range`` scales the F0 excursions (pitch
    variability), ``rate`` changes speaking rate and ``volume`` loudness; all are
    relative changes as understood by espeak-ng.
    """

    pitch: str
    range: str
    rate: str
    volume: str

    def ssml(self, text: str) -> str:
        return (
            "<speak>"
            f'<prosody pitch="{self.pitch}" range="{self.range}" '
            f'rate="{self.rate}" volume="{self.volume}">{escape(text)}</prosody>'
            "</speak>"
        )


# Order matters: it is the order of the manifest lines.
PRESETS: dict[str, Preset] = {
    "neutral": Preset(pitch="+0%", range="+0%", rate="+0%", volume="+0%"),
    "happy": Preset(pitch="+25%", range="+80%", rate="+15%", volume="+10%"),
    "sad": Preset(pitch="-20%", range="-60%", rate="-20%", volume="-20%"),
    "angry": Preset(pitch="+10%", range="+30%", rate="+15%", volume="+40%"),
    "calm": Preset(pitch="-5%", range="-30%", rate="-30%", volume="-10%"),  # the slow preset
}

# (question, reply) pairs. Replies are emotionally open so they read naturally in
# every preset; they are kept short so that even the slow presets stay under 3 s.
DIALOGUES: list[tuple[str, str]] = [
    ("How was your weekend?", "It was quiet, I stayed at home."),
    ("Did you hear the news?", "Yes, they moved the deadline."),
    ("Where did I leave my keys?", "They are on the kitchen table."),
    ("Is it going to rain today?", "The forecast says rain tonight."),
    ("Why is the train late again?", "There is a problem with the signals."),
    ("Did you finish the report?", "I sent it to you an hour ago."),
    ("Are we still meeting tomorrow?", "Yes, at ten in the morning."),
    ("What did the doctor say?", "She said I need more rest."),
]

DEMO_QUESTION = "I just got the job! Can you believe it?"


def synthesize(espeak: str, voice: str, ssml: str) -> np.ndarray:
    """Run espeak-ng on an SSML string; return float32 mono audio at TARGET_SR."""
    cmd = [espeak, "-m", "-a", str(ESPEAK_AMPLITUDE), "-v", voice, "--stdout", ssml]
    proc = subprocess.run(cmd, capture_output=True, check=True)
    audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    audio = audio[:, 0]
    if audio.size == 0:
        raise RuntimeError(f"espeak-ng produced no audio for {ssml!r}")
    if np.abs(audio).max() >= 32767 / 32768:
        raise RuntimeError(f"espeak-ng output clips for {ssml!r}; lower ESPEAK_AMPLITUDE")
    audio = trim_silence(audio, sr, TRIM_REL_DB, PAD_S)
    if sr != TARGET_SR:
        audio = soxr.resample(audio, sr, TARGET_SR, quality="HQ").astype(np.float32)
    return np.clip(audio, -1.0, 32767 / 32768)


def write_wav(path: Path, audio: np.ndarray) -> float:
    """Write 16 kHz mono 16-bit PCM; return the duration in seconds."""
    sf.write(path, audio, TARGET_SR, subtype="PCM_16")
    dur = audio.size / TARGET_SR
    if not MIN_DUR_S <= dur <= MAX_DUR_S:
        print(f"warning: {path.name} is {dur:.2f} s (outside {MIN_DUR_S}-{MAX_DUR_S} s)", file=sys.stderr)
    return dur


def build(out_dir: Path, espeak: str) -> None:
    wav_dir = out_dir / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    # Remove clips from earlier runs so renamed/removed items do not linger.
    for old in wav_dir.glob("*.wav"):
        old.unlink()

    neutral = PRESETS["neutral"]
    records = []
    total_s = 0.0
    for idx, (question, reply) in enumerate(DIALOGUES):
        q_rel = f"wavs/q{idx:02d}.wav"
        total_s += write_wav(out_dir / q_rel, synthesize(espeak, USER_VOICE, neutral.ssml(question)))
        for emotion, preset in PRESETS.items():
            item_id = f"r{idx:02d}_{emotion}"
            r_rel = f"wavs/{item_id}.wav"
            total_s += write_wav(out_dir / r_rel, synthesize(espeak, ASSISTANT_VOICE, preset.ssml(reply)))
            records.append(
                {
                    "id": item_id,
                    "user_audio": q_rel,
                    "user_text": question,
                    "reply_text": reply,
                    "reply_audio": r_rel,
                    "emotion": emotion,
                    "voice": ASSISTANT_SPEAKER,
                    "history": [],
                }
            )

    total_s += write_wav(wav_dir / "demo_question.wav", synthesize(espeak, USER_VOICE, neutral.ssml(DEMO_QUESTION)))

    with open(out_dir / "manifest.jsonl", "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    write_user_emotion_manifest(out_dir, records)

    n_wavs = len(list(wav_dir.glob("*.wav")))
    size_mb = sum(p.stat().st_size for p in wav_dir.glob("*.wav")) / 1e6
    print(f"wrote {n_wavs} wavs ({total_s:.1f} s, {size_mb:.2f} MB) and {len(records)} manifest lines to {out_dir}")


PROBE_REPLY = "I hear you."


def write_user_emotion_manifest(out_dir: Path, records: list[dict]) -> None:
    """manifest_user_emotion.jsonl: the *user* speaks each emotional clip and the reply text is fixed.

    For the linear emotion probe (`sa-slm probe --group-by sentence`): here the emotion reaches the
    Thinker only through the user's audio, so the reply-text embeddings e_t cannot carry it while h_t
    and z_t can. `sentence` names the spoken sentence, so CV folds never split one sentence's presets.
    """
    with open(out_dir / "manifest_user_emotion.jsonl", "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps({"id": f"user_{rec['id']}", "user_audio": rec["reply_audio"], "user_text": "",
                                "reply_text": PROBE_REPLY, "emotion": rec["emotion"], "sentence": rec["id"][:3]},
                               ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--espeak", default="espeak-ng", help="espeak-ng executable (default: %(default)s)")
    args = parser.parse_args(argv)
    if shutil.which(args.espeak) is None:
        sys.exit(f"error: {args.espeak!r} not found; install espeak-ng (e.g. apt-get install espeak-ng)")
    build(args.out_dir, args.espeak)


if __name__ == "__main__":
    main()
