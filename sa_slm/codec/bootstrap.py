"""Self-bootstrapped (audio, codes) pairs: the base model's Talker samples codes for varied texts and
every speaker, Token2Wav renders them. Cached to disk as a manifest, resumable, with a progress bar."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from ..audio import write_wav
from ..paths import safe_filename, write_text_atomic
from ..pipeline import speak
from ..processor import READ_ALOUD, Conversation, OmniProcessor
from ..seeding import derive_seed, prompt_seeds
from ..speakers import SpeakerBank
from ..talker.sampling import SamplingConfig
from ..token2wav import SAMPLE_RATE

if TYPE_CHECKING:
    from ..modeling import SASLMOmniModel

log = logging.getLogger(__name__)
MANIFEST_NAME = "pairs.jsonl"

#: Varied sentences used when no text file is given (questions, exclamations, lists, numbers).
DEFAULT_TEXTS = [
    "Good morning! Did you sleep well?",
    "I can't believe we actually won the game.",
    "Please leave the package at the front door.",
    "The meeting moved to three thirty on Thursday.",
    "Oh no, I think I left my keys at the office.",
    "That is the most beautiful sunset I have ever seen.",
    "Could you speak a little more slowly, please?",
    "We need eggs, flour, sugar and a pinch of salt.",
    "I'm sorry to hear that. Is there anything I can do?",
    "Turn left at the second traffic light.",
    "Wow, that's fantastic news, congratulations!",
    "It has been raining for three days straight.",
    "Honestly, I don't think that's a good idea.",
    "The train to the airport leaves every twenty minutes.",
    "Let's take a deep breath and start again.",
    "Why would anyone do something like that?",
]


@dataclass
class BootstrapConfig:
    """What to synthesise. Items are (text, speaker, sample k); ids are stable across runs."""

    texts: list[str] = field(default_factory=lambda: list(DEFAULT_TEXTS))
    speakers: list[str] | None = None  # None: every speaker of the model
    num_samples: int = 2  # code samples per (text, speaker)
    texts_per_batch: int = 8
    seed: int = 0
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_new_codes=600))


def _read_done(manifest: Path) -> set[str]:
    """Ids already written; a torn last line (killed mid-write) is dropped from the file.

    The file is rewritten only when it needs that repair, and then atomically: other processes of a
    distributed run read it while this one checks it.
    """
    if not manifest.is_file():
        return set()
    text = manifest.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    done, keep = set(), []
    for i, line in enumerate(lines):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                log.warning("%s: dropping a torn last line from an interrupted run", manifest)
                continue
            raise
        if not line.endswith("\n"):
            line += "\n"
        keep.append(line)
        done.add(obj["id"])
    if "".join(keep) != text:
        write_text_atomic(manifest, "".join(keep))
    return done


def bootstrap_pairs(model: "SASLMOmniModel", processor: OmniProcessor, speakers: SpeakerBank, out_dir: str | Path,
                    cfg: BootstrapConfig, progress: bool = True) -> Path:
    """Write `out_dir/pairs.jsonl` + `out_dir/wavs/*.wav` (24 kHz); skip items already there.

    Item `<speaker>_<text index>_<k>` samples its codes from `derive_seed(seed, "bootstrap", "<speaker>_<text
    index>", k)` and its Token2Wav noise from `derive_seed(seed, "token2wav", item id)`, so it is the same in
    every run, and no two texts share the Talker's random draws.
    """
    out_dir = Path(out_dir)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST_NAME
    done = _read_done(manifest)
    names = cfg.speakers or speakers.names
    K = cfg.num_samples
    todo = [(spk, t) for spk in names for t in range(len(cfg.texts))
            if any(f"{spk}_{t:05d}_{k}" not in done for k in range(K))]
    bar = tqdm(total=len(todo) * K, desc="bootstrap pairs", unit="clip", disable=not progress)
    for spk in names:
        items = [t for s, t in todo if s == spk]
        for start in range(0, len(items), cfg.texts_per_batch):
            chunk = items[start : start + cfg.texts_per_batch]
            convs = [Conversation.user(READ_ALOUD) for _ in chunk]
            replies = [torch.tensor(processor.encode_reply(cfg.texts[t])) for t in chunk]
            seeds = prompt_seeds(cfg.seed, [f"{spk}_{t:05d}" for t in chunk], K, "bootstrap")
            spoken = speak(model, processor, speakers, convs, cfg.sampling, K, replies, speaker=spk, seeds=seeds)
            rows, clips = [], []
            for r in range(len(chunk) * K):
                t, k = chunk[r // K], r % K
                item_id = f"{spk}_{t:05d}_{k}"
                codes = spoken.codes.audio_codes(r)
                if item_id in done:
                    continue
                if codes.numel() == 0:
                    log.warning("%s: the Talker stopped at once; no pair written", item_id)
                    continue
                clips.append((item_id, t, codes))
            wavs = model.decode_codes([c for _, _, c in clips], [speakers[spk]] * len(clips),
                                      [derive_seed(cfg.seed, "token2wav", item_id) for item_id, _, _ in clips])
            for (item_id, t, codes), wav in zip(clips, wavs):
                wav_rel = f"wavs/{safe_filename(item_id)}.wav"  # speaker names come from the checkpoint
                write_wav(out_dir / wav_rel, wav.numpy(), SAMPLE_RATE)
                rows.append(json.dumps({"id": item_id, "user_text": READ_ALOUD, "reply_text": cfg.texts[t],
                                        "reply_audio": wav_rel, "reply_codes": codes.tolist(), "speaker": spk}))
            with open(manifest, "a", encoding="utf-8") as f:
                f.write("".join(row + "\n" for row in rows))
                f.flush()
                os.fsync(f.fileno())
            bar.update(len(chunk) * K)
    bar.close()
    return manifest
