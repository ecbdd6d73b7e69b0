"""The learnable expressive dialogue corpus of `make paper-mini`, synthesised with espeak-ng.

Every reply sentence is spoken by one assistant voice in 5 delivery styles (espeak-ng SSML
`<prosody>` presets, as `data/tiny_corpus` is made), and its user question by one user voice in the
same 5 presets as user emotions. Each (sentence, style) is a training target in two dialogue contexts:

* `spoken`: the user *speaks* the question with an emotion (audio only, no text) and the reply text
  is the same for every style, so the delivery can only come from how the user sounded; the style
  the reply takes is `STYLE_FOR_USER_EMOTION[user emotion]` (the reply mirrors the user's register);
* `asked`: the user's *text* asks for the delivery ("Say it cheerfully. <question>"), no audio.

Every sentence gives 10 manifest rows, each style once per context, so the styles are balanced and a
model that ignores the context can only sit at chance. Whole sentences are held out into the test
split. Layout under the output folder::

    wavs/reply/<sid>_<style>.wav     sentence `sid` in each style, its assistant voice
    wavs/user/<sid>_<emotion>.wav    its question in each emotion preset, its user voice
    train.jsonl, test.jsonl          `sa_slm.data.load_manifest` rows, audio paths relative to the folder
    corpus.json                      config, espeak-ng version, presets, voices, counts, hours, held-out ids
    skipped.jsonl                    sentences left out because a clip failed (only when any did)

Clips are 16 kHz mono 16-bit PCM with leading/trailing silence trimmed to a 50 ms pad. The texts come
from fixed templates and word lists; `CorpusConfig.seed` alone decides which sentences are held out
and which voice, question and instruction phrasing each sentence gets, so a build is byte-for-byte
reproducible with the same espeak-ng version.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from ..audio import resample, trim_silence, write_wav
from ..config import ConfigError
from ..errors import SASLMError
from ..paths import path_inside


class EspeakError(SASLMError, RuntimeError):
    """espeak-ng is missing, or lacks a voice the corpus uses."""


# --------------------------------------------------------------------------------------------------
# Delivery presets and the context -> style mapping
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """SSML `<prosody>` values, all relative to the voice's defaults as espeak-ng reads them.

    pitch shifts the baseline F0, range scales the F0 excursions, rate the speaking rate and volume
    the loudness. The rates are spread so that every style differs in timing (the cue a small speech
    tokenizer keeps best): calm is slowest, then sad, neutral, happy, angry.
    """

    pitch: str
    range: str
    rate: str
    volume: str

    def prosody(self, text: str) -> str:
        """`text` (XML-escaped) as an SSML `<prosody>` element with these values."""
        return (f'<prosody pitch="{self.pitch}" range="{self.range}" rate="{self.rate}" '
                f'volume="{self.volume}">{escape(text)}</prosody>')


PRESETS: dict[str, Preset] = {
    "neutral": Preset(pitch="+0%", range="+0%", rate="+0%", volume="+0%"),
    "happy": Preset(pitch="+25%", range="+80%", rate="+15%", volume="+10%"),
    "sad": Preset(pitch="-20%", range="-60%", rate="-20%", volume="-20%"),
    "angry": Preset(pitch="+10%", range="+30%", rate="+35%", volume="+40%"),
    "calm": Preset(pitch="-5%", range="-30%", rate="-35%", volume="-10%"),
}
STYLES: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "calm")  # the delivery styles, in row order

# The style a reply takes when the user spoke with an emotion: the reply mirrors the register the user
# set. It must map the styles one-to-one onto themselves, so every style appears once per sentence.
STYLE_FOR_USER_EMOTION: dict[str, str] = {emotion: emotion for emotion in STYLES}

# How the user's text asks for each style: 3 phrasings, one picked per (sentence, style) by the seed.
INSTRUCTIONS: dict[str, tuple[str, str, str]] = {
    "neutral": ("Say it plainly.", "Answer in a neutral tone.", "Reply in an even, matter-of-fact voice."),
    "happy": ("Say it cheerfully.", "Answer in a happy voice.", "Sound delighted when you reply."),
    "sad": ("Say it sadly.", "Answer in a sad voice.", "Sound downcast when you reply."),
    "angry": ("Say it angrily.", "Answer in an angry voice.", "Sound furious when you reply."),
    "calm": ("Say it calmly.", "Answer in a calm voice.", "Sound relaxed and gentle when you reply."),
}

# espeak-ng voices (`-v` language[+variant], variants from espeak-ng-data/voices/!v). espeak-ng silently
# drops a variant it cannot attach (any on "en-gb"), which `check_voices` catches.
USER_VOICES: tuple[str, ...] = ("en-us", "en+m3", "en-us+f4")  # "en" is British English
ASSISTANT_VOICES: tuple[str, ...] = ("en-us+f3", "en-us+m1")

SAMPLE_RATE = 16_000
ESPEAK_AMPLITUDE = 80  # `-a` (default 100): headroom so the loud "angry" preset never saturates 16-bit PCM
TRIM_REL_DB = -40.0  # samples this far below the clip's peak at either end count as silence
PAD_S = 0.05  # silence kept on each side after trimming
MAX_REPLY_S = 2.6  # a longer reply clip (slow styles) fails its sentence: training cost grows with length
SYNTH_TIMEOUT_S = 60.0
# The 5 clips of one sentence and speaker come from one espeak-ng call (a third of the time of 5 calls):
# their <prosody> elements are separated by BREAK_MS of silence (which espeak-ng stretches by the next
# element's rate), and the output is cut at the runs of digital silence at least SPLIT_GAP_S long.
# The texts hold no commas, so their own pauses stay far shorter (under 0.1 s in every clip of the
# default corpus, while a comma's pause reaches 0.7 s in the slowest style).
BREAK_MS = 1500
SPLIT_GAP_S = 1.0
SILENCE_LEVEL = 2 / 32768  # |sample| at or below this is silence (espeak-ng pauses are exact zeros)

# --------------------------------------------------------------------------------------------------
# Texts: reply sentences from templates, a pool of user questions
# --------------------------------------------------------------------------------------------------

_NAMES = ("Anna", "Tom", "Maria", "Sam", "Lucy", "Ben")
_DAYS = ("Monday", "Tuesday", "Thursday", "Friday", "Sunday")  # the short ones
_HOURS = ("two", "three", "four", "five", "six", "eight", "nine", "ten", "noon")  # one syllable

# (pattern, slot word lists): short everyday statements (4-7 words) that are emotionally open so any
# delivery fits; no commas in them or in QUESTIONS, as the clips of one espeak-ng call are split at pauses.
_TEMPLATES: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    ("The {} leaves at {}.", (("bus", "train", "boat", "ferry", "plane"), _HOURS)),
    ("{} is home on {}.", (_NAMES, _DAYS)),
    ("The {} moved to {}.", (("meeting", "dinner", "party", "lesson", "game", "trip"), _DAYS)),
    ("I left my {} in the {}.", (("keys", "phone", "bag", "coat", "book", "hat"),
                                 ("car", "kitchen", "office", "garden", "hall"))),
    ("The {} closes at {}.", (("bank", "pool", "store", "shop", "club", "school"), _HOURS)),
    ("Your {} came this {}.", (("letter", "order", "parcel", "ticket"), ("morning", "evening"))),
    ("It will {} all {}.", (("rain", "snow"), ("day", "week", "weekend", "night", "morning"))),
    ("{} found a new {}.", (_NAMES, ("job", "flat", "car", "bike", "dog", "house"))),
    ("The {} is {}.", (("office", "studio", "clinic", "gym", "shop", "kitchen"), ("upstairs", "downstairs", "next door"))),
    ("{} called about the {}.", (_NAMES, ("rent", "car", "trip", "party", "plan", "house"))),
    ("The {} starts at {}.", (("movie", "film", "show", "class", "match", "game"), _HOURS)),
    ("We need {} more {}.", (("two", "three", "four", "six", "ten"), ("chairs", "plates", "cups", "eggs", "bags"))),
    ("The {} are at the {}.", (("kids", "dogs", "guests", "twins"), ("park", "beach", "zoo", "pool", "lake"))),
    ("I saw {} at the {}.", (_NAMES, ("store", "park", "bank", "gym", "game"))),
    ("{} sent you a {}.", (_NAMES, ("letter", "card", "gift", "note", "photo", "text"))),
    ("The {} is {} now.", (("soup", "tea", "cake", "bread", "rice", "pie"), ("ready", "cold", "done"))),
)

QUESTIONS: tuple[str, ...] = (
    "What's the news?", "Any updates for me?", "What did you hear?", "So what happened?",
    "What did they tell you?", "Is there anything new?", "What should I know?", "What's going on today?",
    "Did you find out?", "What's the latest?", "Any word yet?", "What did you learn?",
    "Can you fill me in?", "What's the plan?", "How did it turn out?", "What's the situation?",
    "Did anything change?", "What did they decide?", "What's happening?", "Have you heard anything?",
    "Is there any news?", "What came up today?", "What's new with you?", "Did you check?",
    "What's going on?", "Where do things stand?", "Any news from home?", "What's the word?",
    "Anything I should know?", "What did you find?",
)


def _spread_order(n: int) -> list[int]:
    """0..n-1 stepped by a stride near n/golden ratio that is coprime with n: a fixed permutation in
    which neighbours differ in several slots, so the first few fills of a template already vary."""
    stride = max(1, round(n / 1.618))
    while math.gcd(stride, n) != 1:
        stride += 1
    return [(k * stride) % n for k in range(n)]


def _reply_pool() -> tuple[str, ...]:
    """Every reply sentence, in the fixed order `CorpusConfig.sentences` takes the first N of.

    Templates take turns (round robin), each filled in `_spread_order`, so any prefix mixes them all.
    """
    filled = []
    for pattern, slots in _TEMPLATES:
        combos = list(product(*slots))
        filled.append([pattern.format(*combos[i]) for i in _spread_order(len(combos))])
    out = []
    for k in range(max(map(len, filled))):
        out.extend(texts[k] for texts in filled if k < len(texts))
    return tuple(out)


REPLY_SENTENCES: tuple[str, ...] = _reply_pool()


# --------------------------------------------------------------------------------------------------
# Config, plan and result
# --------------------------------------------------------------------------------------------------


@dataclass
class CorpusConfig:
    """What to build. `workers` only changes speed, never the output."""

    sentences: int = 200  # distinct reply sentences (>= 10), the first N of REPLY_SENTENCES
    heldout_sentences: int = 40  # whole sentences held out into the test split
    seed: int = 0  # which sentences are held out; voice, question and instruction assignment
    workers: int = 2  # parallel espeak-ng processes

    def validate(self) -> None:
        """ConfigError naming the field when a value cannot give two splits that hold every voice."""
        for name in ("sentences", "heldout_sentences", "seed", "workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"CorpusConfig.{name} = {value!r}: must be an integer")
        if not 10 <= self.sentences <= len(REPLY_SENTENCES):
            raise ConfigError(f"CorpusConfig.sentences = {self.sentences}: must be between 10 and "
                              f"{len(REPLY_SENTENCES)} (the reply sentences this module can make)")
        least = max(len(USER_VOICES), len(ASSISTANT_VOICES))  # every voice in both splits
        if not least <= self.heldout_sentences <= self.sentences - least:
            raise ConfigError(f"CorpusConfig.heldout_sentences = {self.heldout_sentences}: must be between {least} "
                              f"and sentences - {least} = {self.sentences - least}, so both splits hold every voice")
        if self.workers < 1:
            raise ConfigError(f"CorpusConfig.workers = {self.workers}: must be at least 1")


@dataclass(frozen=True)
class SentencePlan:
    """One reply sentence and everything the seed assigned to it."""

    sid: str  # "s000", "s001", ...
    split: str  # "train" or "test"
    text: str  # the reply, identical in every style
    question: str  # the user's question, identical in every emotion
    voice: str  # assistant voice of the reply clips
    user_voice: str  # user voice of the question clips
    instructions: dict[str, str]  # style -> the phrasing of the instruction asking for it


@dataclass
class CorpusInfo:
    """What `build_corpus` made: the two manifests and what is in them."""

    root: Path
    train: Path
    test: Path
    sentences: dict[str, list[str]]  # split -> sentence ids
    rows: dict[str, int]  # split -> manifest rows
    skipped: list[dict]  # {"sentence", "text", "reason"} of each sentence left out


SPLITS = ("train", "test")


def plan_corpus(cfg: CorpusConfig) -> list[SentencePlan]:
    """The sentences of `cfg`, their split and assignments; depends on nothing but `cfg` (no espeak-ng).

    One `random.Random(cfg.seed)` draws, in this order: the held-out sentences, then per sentence its
    question and the phrasing of each style's instruction, then per split a shuffled order in which
    the voices are dealt round robin (so each split holds every voice, as evenly as it can).
    """
    cfg.validate()
    rng = random.Random(cfg.seed)
    n = cfg.sentences
    sids = [f"s{i:03d}" for i in range(n)]
    heldout = set(rng.sample(range(n), cfg.heldout_sentences))
    questions = [QUESTIONS[rng.randrange(len(QUESTIONS))] for _ in range(n)]
    instructions = [{s: INSTRUCTIONS[s][rng.randrange(len(INSTRUCTIONS[s]))] for s in STYLES} for _ in range(n)]
    voices: dict[int, tuple[str, str]] = {}
    for split in SPLITS:
        members = [i for i in range(n) if (i in heldout) == (split == "test")]
        rng.shuffle(members)
        for k, i in enumerate(members):
            voices[i] = (ASSISTANT_VOICES[k % len(ASSISTANT_VOICES)], USER_VOICES[k % len(USER_VOICES)])
    return [SentencePlan(sid=sids[i], split="test" if i in heldout else "train", text=REPLY_SENTENCES[i],
                         question=questions[i], voice=voices[i][0], user_voice=voices[i][1],
                         instructions=instructions[i]) for i in range(n)]


# --------------------------------------------------------------------------------------------------
# Synthesis
# --------------------------------------------------------------------------------------------------


class _ClipFailed(Exception):
    """One clip could not be made; the message is the reason recorded in skipped.jsonl."""


def espeak_info(espeak: str) -> tuple[str, str]:
    """(executable path, version) of espeak-ng; EspeakError when it is not there."""
    exe = shutil.which(espeak)
    if exe is None:
        raise EspeakError(f"{espeak}: espeak-ng not found; install it (apt-get install espeak-ng) or pass its path")
    try:
        proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EspeakError(f"{exe}: cannot run espeak-ng --version ({exc}); reinstall espeak-ng") from exc
    # "eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/x86_64-linux-gnu/espeak-ng-data": the data path
    # is left out, so a copy of the corpus built elsewhere with the same version is still reused
    return exe, proc.stdout.strip().partition("Data at:")[0].strip()


def check_voices(exe: str) -> None:
    """EspeakError naming the first voice espeak-ng cannot load. An unknown language fails the call; an
    unknown variant is silently ignored, so a variant counts as loaded only when it changes the sound."""
    sound: dict[str, bytes] = {}
    for voice in sorted({v.partition("+")[0] for v in USER_VOICES + ASSISTANT_VOICES}) + sorted(
            {v for v in USER_VOICES + ASSISTANT_VOICES if "+" in v}):
        proc = subprocess.run([exe, "-v", voice, "--stdout", "a"], capture_output=True, timeout=SYNTH_TIMEOUT_S)
        if proc.returncode != 0 or not proc.stdout:
            raise EspeakError(f"espeak-ng cannot load voice '{voice}' ({proc.stderr.decode(errors='replace').strip()}); "
                              "install the full espeak-ng-data package")
        sound[voice] = proc.stdout
        if "+" in voice and sound[voice] == sound[voice.partition("+")[0]]:
            raise EspeakError(f"espeak-ng has no voice variant '{voice.partition('+')[2]}' (of '{voice}'): it sounds "
                              "like the plain language; install the full espeak-ng-data package")


def trim(audio: np.ndarray, sr: int) -> np.ndarray:
    """`audio` (T,) trimmed at TRIM_REL_DB with PAD_S seconds kept on each side (`audio.trim_silence`)."""
    try:
        return trim_silence(audio, sr, TRIM_REL_DB, PAD_S)
    except ValueError:
        raise _ClipFailed("espeak-ng produced only silence") from None


def split_at_pauses(audio: np.ndarray, sr: int, parts: int) -> list[np.ndarray]:
    """`audio` (T,) cut in the middle of each inner run of silence of at least SPLIT_GAP_S: `parts` pieces.

    _ClipFailed when the number of such pauses is not `parts - 1` (a text with a long pause of its own).
    """
    silent = np.concatenate([[False], np.abs(audio) <= SILENCE_LEVEL, [False]])  # (T + 2,)
    edges = np.flatnonzero(np.diff(silent.astype(np.int8)))  # starts and ends of silent runs, alternating
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if a > 0 and b < audio.size]
    cuts = [(a + b) // 2 for a, b in runs if b - a >= SPLIT_GAP_S * sr]
    if len(cuts) != parts - 1:
        raise _ClipFailed(f"espeak-ng output has {len(cuts)} pauses of {SPLIT_GAP_S} s or more, "
                          f"expected {parts - 1} between {parts} clips")
    return np.split(audio, cuts)


def synthesize(exe: str, voice: str, elements: list[str]) -> list[np.ndarray]:
    """One espeak-ng call speaking the SSML `elements` in turn: one (T_i,) float32 clip at SAMPLE_RATE
    each, silence trimmed. _ClipFailed on any fault."""
    ssml = "<speak>" + f'<break time="{BREAK_MS}ms"/>'.join(elements) + "</speak>"
    cmd = [exe, "-m", "-a", str(ESPEAK_AMPLITUDE), "-v", voice, "--stdout", ssml]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=SYNTH_TIMEOUT_S, check=True)
        audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)  # (T, C)
    except subprocess.CalledProcessError as exc:
        raise _ClipFailed(f"espeak-ng exited with {exc.returncode}: {exc.stderr.decode(errors='replace').strip()}") from exc
    except subprocess.TimeoutExpired as exc:
        raise _ClipFailed(f"espeak-ng took over {SYNTH_TIMEOUT_S:.0f} s") from exc
    except (OSError, sf.LibsndfileError) as exc:
        raise _ClipFailed(f"espeak-ng output unreadable ({exc})") from exc
    audio = audio[:, 0]  # (T,)
    if audio.size == 0:
        raise _ClipFailed("espeak-ng produced no audio")
    if np.abs(audio).max() >= 32767 / 32768:
        raise _ClipFailed(f"espeak-ng output clips at amplitude {ESPEAK_AMPLITUDE}")
    return [np.clip(resample(trim(piece, sr), sr, SAMPLE_RATE), -1.0, 32767 / 32768)
            for piece in split_at_pauses(audio, sr, len(elements))]


@dataclass(frozen=True)
class _Group:
    """The 5 clips of one sentence and speaker (its reply in every style, or its question in every
    emotion), made by one espeak-ng call."""

    sid: str
    kind: str  # "reply" or "user"
    voice: str
    text: str
    paths: dict[str, Path]  # style -> WAV to write
    max_s: float | None  # longest allowed clip, None: any


def _render(exe: str, group: _Group) -> dict[str, int]:
    """Write the clips of `group`; return style -> length in samples. _ClipFailed when a clip cannot
    be made or is too long (then none is written)."""
    clips = dict(zip(STYLES, synthesize(exe, group.voice, [PRESETS[s].prosody(group.text) for s in STYLES])))
    for style, audio in clips.items():
        if group.max_s is not None and audio.size > group.max_s * SAMPLE_RATE:
            raise _ClipFailed(f"{group.kind} clip {style} lasts {audio.size / SAMPLE_RATE:.2f} s, "
                              f"over the {group.max_s} s limit")
    for style, audio in clips.items():
        write_wav(group.paths[style], audio, SAMPLE_RATE)
    return {style: int(audio.size) for style, audio in clips.items()}


def clip_path(out: Path, kind: str, sid: str, style: str) -> Path:
    """Where the `kind` ("reply" or "user") clip of sentence `sid` in `style` lies in the corpus `out`."""
    return path_inside(out / "wavs" / kind, f"{sid}_{style}", suffix=".wav")


def _groups(out: Path, plans: list[SentencePlan]) -> list[_Group]:
    """The reply and the user group of every sentence of `plans`."""
    groups = []
    for p in plans:
        for kind, voice, text, max_s in (("reply", p.voice, p.text, MAX_REPLY_S),
                                         ("user", p.user_voice, p.question, None)):
            paths = {s: clip_path(out, kind, p.sid, s) for s in STYLES}
            groups.append(_Group(p.sid, kind, voice, text, paths, max_s))
    return groups


# --------------------------------------------------------------------------------------------------
# Manifests and the build
# --------------------------------------------------------------------------------------------------


def _rows(p: SentencePlan, reply: dict[str, str], user: dict[str, str]) -> list[dict]:
    """The 10 manifest rows of one sentence: `spoken` then `asked`, styles in STYLES order.

    reply / user: style (emotion) -> clip path relative to the corpus folder.
    """
    rows = []
    for emotion in STYLES:
        style = STYLE_FOR_USER_EMOTION[emotion]
        rows.append({"id": f"spoken/{p.sid}_{style}", "user_audio": user[emotion], "user_text": None,
                     "reply_text": p.text, "reply_audio": reply[style], "emotion": style, "context": "spoken",
                     "user_emotion": emotion, "sentence": p.sid, "voice": p.voice})
    for style in STYLES:
        rows.append({"id": f"asked/{p.sid}_{style}", "user_audio": None,
                     "user_text": f"{p.instructions[style]} {p.question}", "reply_text": p.text,
                     "reply_audio": reply[style], "emotion": style, "context": "asked", "sentence": p.sid,
                     "voice": p.voice})
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    """One JSON object per line."""
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _identity(cfg: CorpusConfig, version: str, plans: list[SentencePlan]) -> dict:
    """Everything the corpus's bytes depend on: a built corpus with the same identity is reused as it is."""
    plan_json = json.dumps([asdict(p) for p in plans], sort_keys=True).encode()
    return {"sentences": cfg.sentences, "heldout_sentences": cfg.heldout_sentences, "seed": cfg.seed,
            "espeak": version, "presets": {s: asdict(PRESETS[s]) for s in STYLES},
            "voices": {"user": list(USER_VOICES), "assistant": list(ASSISTANT_VOICES)},
            "style_for_user_emotion": STYLE_FOR_USER_EMOTION,
            "audio": {"sample_rate": SAMPLE_RATE, "amplitude": ESPEAK_AMPLITUDE, "trim_rel_db": TRIM_REL_DB,
                      "pad_s": PAD_S, "max_reply_s": MAX_REPLY_S, "break_ms": BREAK_MS, "split_gap_s": SPLIT_GAP_S,
                      "silence_level": SILENCE_LEVEL},
            "plan_sha256": hashlib.sha256(plan_json).hexdigest()}


def _info(out: Path, meta: dict) -> CorpusInfo:
    return CorpusInfo(root=out, train=out / "train.jsonl", test=out / "test.jsonl",
                      sentences={s: list(meta["sentences"][s]) for s in SPLITS},
                      rows={s: int(meta["rows"][s]) for s in SPLITS}, skipped=list(meta["skipped"]))


def _reusable(out: Path, identity: dict) -> CorpusInfo | None:
    """The finished corpus in `out` when it was built with `identity` and none of its files is gone."""
    try:
        meta = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
        if meta.get("identity") != identity:
            return None
        info = _info(out, meta)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    needed = [info.train, info.test] + ([out / "skipped.jsonl"] if info.skipped else [])
    needed += [clip_path(out, kind, sid, style) for sid in info.sentences["train"] + info.sentences["test"]
               for kind in ("reply", "user") for style in STYLES]
    return info if all(p.is_file() for p in needed) else None


def build_corpus(out: Path, cfg: CorpusConfig, espeak: str = "espeak-ng", progress: bool = True) -> CorpusInfo:
    """Synthesise the corpus of `cfg` into `out` (layout in the module docstring) and describe it.

    Returns at once when `out` already holds this corpus (same config, espeak-ng version and texts,
    every file present); otherwise rebuilds it, replacing earlier clips. A sentence any of whose 10
    clips fails is left out whole and listed in skipped.jsonl. Raises ConfigError for a bad `cfg`,
    EspeakError when espeak-ng or one of its voices is missing, SASLMError when a split ends up empty.
    """
    out = Path(out)
    plans = plan_corpus(cfg)
    exe, version = espeak_info(espeak)
    identity = _identity(cfg, version, plans)
    done = _reusable(out, identity)
    if done is not None:
        return done
    check_voices(exe)

    out.mkdir(parents=True, exist_ok=True)
    for stale in [out / "corpus.json", out / "skipped.jsonl", *out.glob("wavs/reply/*.wav"), *out.glob("wavs/user/*.wav")]:
        stale.unlink(missing_ok=True)
    groups = _groups(out, plans)
    samples: dict[tuple[str, str, str], int] = {}  # (sid, kind, style) -> length
    failed: dict[tuple[str, str], str] = {}  # (sid, kind) -> reason
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:  # each thread waits on one espeak-ng process
        futures = {pool.submit(_render, exe, group): group for group in groups}
        with tqdm(total=len(groups) * len(STYLES), desc="paper-mini corpus", unit="clip", disable=not progress) as bar:
            for future in as_completed(futures):
                group = futures[future]
                try:
                    for style, n in future.result().items():
                        samples[group.sid, group.kind, style] = n
                except _ClipFailed as exc:
                    failed[group.sid, group.kind] = f"{group.kind} {group.text!r} ({group.voice}): {exc}"
                bar.update(len(STYLES))
    failures = {g.sid: "; ".join(failed[g.sid, k] for k in ("reply", "user") if (g.sid, k) in failed)
                for g in groups if (g.sid, g.kind) in failed}  # sid -> reasons, in a fixed order

    skipped = [{"sentence": p.sid, "text": p.text, "reason": failures[p.sid]} for p in plans if p.sid in failures]
    for group in groups:
        if group.sid in failures:
            for path in group.paths.values():
                path.unlink(missing_ok=True)
    kept = [p for p in plans if p.sid not in failures]
    rows: dict[str, list[dict]] = {split: [] for split in SPLITS}
    seconds = {split: 0.0 for split in SPLITS}
    for p in kept:
        rel = {kind: {s: clip_path(out, kind, p.sid, s).relative_to(out).as_posix() for s in STYLES}
               for kind in ("reply", "user")}
        rows[p.split] += _rows(p, rel["reply"], rel["user"])
        seconds[p.split] += sum(samples[p.sid, kind, s] for kind in ("reply", "user") for s in STYLES) / SAMPLE_RATE
    for split in SPLITS:
        if not rows[split]:
            raise SASLMError(f"{out}: no sentence of the {split} split could be synthesised (first reason: "
                             f"{skipped[0]['reason']}); check the espeak-ng install")
    for split in SPLITS:
        _write_jsonl(out / f"{split}.jsonl", rows[split])
    if skipped:
        _write_jsonl(out / "skipped.jsonl", skipped)

    meta = {
        "config": asdict(cfg), "espeak": version, "presets": identity["presets"], "voices": identity["voices"],
        "style_for_user_emotion": STYLE_FOR_USER_EMOTION,
        "instructions": {s: list(INSTRUCTIONS[s]) for s in STYLES},
        "sentences": {split: [p.sid for p in kept if p.split == split] for split in SPLITS},
        "heldout": [p.sid for p in plans if p.split == "test"],
        "rows": {split: len(rows[split]) for split in SPLITS},
        "clips": {"reply": len(kept) * len(STYLES), "user": len(kept) * len(STYLES)},
        "hours": {split: round(seconds[split] / 3600, 4) for split in SPLITS},
        "mean_reply_seconds": {s: round(float(np.mean([samples[p.sid, "reply", s] for p in kept])) / SAMPLE_RATE, 3)
                               for s in STYLES},
        "skipped": skipped,
        "items": {p.sid: {"split": p.split, "text": p.text, "question": p.question, "voice": p.voice,
                          "user_voice": p.user_voice} for p in plans},
        "identity": identity,
    }
    (out / "corpus.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return _info(out, meta)
