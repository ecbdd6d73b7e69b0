"""EchoMind benchmark adapter: run an SA-SLM checkpoint as EchoMind's own scripts do, score the spoken
replies under both protocols, or turn a test file into our JSONL manifest.

EchoMind (Zhou et al., 2025, "An Interrelated Multi-Level Benchmark for Evaluating Empathetic Speech
Language Models"; code: github.com/hlt-cuhksz/EchoMind) asks a spoken dialogue model to answer the
same semantically neutral user script spoken in different voices. Everything below follows its public
code: `src/eval-slm/eval_response_main.py`, `eval_asr_main.py`, `eval_mcq_main.py`, `utils.py`,
`model/__init__.py`, `model/base.py`, `model/qwen25omni.py`, `model/gpt4o.py` and
`src/eval-result/evaluation_metric.py`.

- A model is a class built as `Cls(args)` (the scripts' argparse namespace, with `args.device`) whose
  `generate_audio(audio, output_file, system_prompt, user_instruction=None, audio_output=None)` returns
  `{"response_audio_transcript": str, "response_text": str}`. On any failure upstream's model classes
  print the reason and return both strings empty; the response script then retries that item on its
  next run (an empty transcript counts as "not inferred yet").
- The test file is `dataset/data_<type>/script_info_<type>.json`: a JSON list of cases with `case_id`,
  `topic`, `spoken_info` (the vocal cue, one of `utils.voice_info`: 5 speaker traits, 19 paralinguistic
  cues, 21 environment sounds) and, per voice type `ty` in `target` / `neutral` / `alternative`,
  `<ty>_audio_info.<ty>_input_audio_file`, the input wav relative to `dataset/data_<type>/audio/`
  (first path component: the cue folder, e.g. `tired/id_0_tired_family_target.wav`).
- The response script skips `neutral` when `spoken_info` is a speaker trait, writes
  `output/output_<type>/response_output/<model>/<prompt>/<model>_<prompt>_output_responses.json` (the
  cases with `model`, `ouput_prompt` (sic) and `output_content.<ty>.{file, response_audio_transcript,
  response_text}`; rewritten after every item and read back on the next run) and the reply audio to
  `<same folder>/<cue folder>/<case_id>_<model>_response_<ty>.wav`.
- The voices: `target` speaks the script with the case's cue, `neutral` without any, `alternative`
  with a different cue of the same inventory (the project page's examples: elderly → child,
  breath → happy, angry → sad, fast → slow, ...). The public code names no key for the alternative's
  cue; a string value in `alternative_audio_info` that names one of the benchmark's cues is read as it.

Optional extras (never required; no upstream key carries them): the user's words from the first of
`speak_A` (the judge prompt's name), `script`, `text`, `transcript`, `utterance`; a reference reply
from `<ty>_response` / `<ty>_response_text` / `response` in `<ty>_audio_info` (or `<ty>_response` at
top level) and its audio from `<ty>_response_audio_file`; the emotion the reply should carry from
`<ty>_response_emotion` (used by EmoAlign). Every other scalar key is kept as a label.

Names: the model name, the prompt mode and the case id become file names through
`sa_slm.paths.safe_filename` (ordinary ids such as `id_12` are kept as they are); the cue folder is
kept verbatim when it is one of the benchmark's cue names (`sound of wind blowing` has spaces),
else made safe the same way; every path is checked to stay inside the output folder.

Usage:
    python -m sa_slm.eval.echomind run --model tiny --root-dir <EchoMind> --data-type synthesis --prompt basic
    python -m sa_slm.eval.echomind run --model tiny --script-info X.json --out DIR
    python -m sa_slm.eval.echomind score --responses DIR/saslm/basic/saslm_basic_output_responses.json
    python -m sa_slm.eval.echomind to-manifest --script-info X.json [--responses ...json] --out manifest.jsonl
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import SASLMError
from ..paths import UnsafePathError, is_inside, path_inside, safe_filename, write_text_atomic

if TYPE_CHECKING:
    import torch

    from ..facade import SASLM
    from ..talker.sampling import SamplingConfig

log = logging.getLogger(__name__)

VOICE_TYPES = ("target", "neutral", "alternative")
# utils.py `voice_info["speaker"]`: cues for which the response script skips the neutral voice.
SPEAKER_CUES = ("male", "female", "child", "adult", "elderly")
# utils.py `speech_info["speaker-paralinguistic"]`: spoken_info -> its short name (the audio folder).
SPEAKER_PARALINGUISTIC = {
    "male": "male", "female": "female", "child": "child", "adult": "adult", "elderly": "elderly",
    "Hoarse voice": "hoarse", "vocal fatigue": "tired",
    "breathless sound / gasping sound / heavy breathing sound": "breath", "sobbing sound": "sobbing",
    "happy-toned expressive voice": "happy", "sad-toned expressive voice": "sad",
    "surprise-toned expressive voice": "surprise", "angry-toned expressive voice": "angry",
    "fear-toned expressive voice": "fear", "disgust-toned expressive voice": "disgust",
    "shout": "shout", "whisper": "whisper", "fast speaking pace": "fast", "slow speaking pace": "slow",
    "cough voice": "cough", "sigh sound": "sigh", "laughter sound": "laughter", "yawn sound": "yawn",
    "moan sound": "moan",
}
PARALINGUISTIC_CUES = tuple(c for c in SPEAKER_PARALINGUISTIC if c not in SPEAKER_CUES)
# utils.py `voice_info["environment"]` (these have no short name).
ENVIRONMENT_CUES = (
    "sound of wind blowing", "sound of thunderstorm and thunder", "sound of raining", "sound of driving a car",
    "sound of subway", "sound of sea waves", "sound of playing basketball", "sound of applause from a crowd",
    "sound of crowd cheering", "sound of crowd's chatter", "sound of children playing",
    "sound of children speaking", "sound of dog(s) barking", "sound of alarm clock ringing",
    "sound of ringtone", "sound of happy music", "sound of funny music", "sound of sad music",
    "sound of exciting music", "sound of angry music", "sound of vehicle honking",
)
# Short cue names that are emotions -> our `emotion` label (the emotion2vec target names).
CUE_EMOTIONS = {"happy": "happy", "sad": "sad", "surprise": "surprise", "angry": "angry", "fear": "fear",
                "disgust": "disgust"}
# Any spelling of a cue (long name, short name; case-insensitive) -> (short name, group).
_CUES: dict[str, tuple[str, str]] = {
    **{name.casefold(): (short, "speaker" if name in SPEAKER_CUES else "paralinguistic")
       for name, short in SPEAKER_PARALINGUISTIC.items()},
    **{short.casefold(): (short, "speaker" if short in SPEAKER_CUES else "paralinguistic")
       for short in SPEAKER_PARALINGUISTIC.values()},
    **{name.casefold(): (name, "environment") for name in ENVIRONMENT_CUES},
}
# Folder names kept verbatim in output paths: the benchmark's own cue names, exactly as it spells them.
_CUE_FOLDERS = frozenset([*SPEAKER_PARALINGUISTIC, *SPEAKER_PARALINGUISTIC.values(), *ENVIRONMENT_CUES])

# eval_response_main.py `--system_prompt` modes.
PROMPT_MODES = ("no", "basic", "enhance", "basic_plus_basic", "qwen25omni_default")
QWEN_SYSTEM_PROMPT = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
                      "perceiving auditory and visual inputs, as well as generating text and speech.")
ECHOX_PROMPT = "Recognize what the voice said and respond to it."
TEXT_KEYS = ("speak_A", "script", "text", "transcript", "utterance")
EMPTY_RESPONSE = {"response_audio_transcript": "", "response_text": ""}
#: Our key beside upstream's two in a response (and its `output_content` entry): the Talker reached the code
#: budget without ending the reply, so the audio lacks its last words (upstream's scripts ignore the key).
RESPONSE_TRUNCATED = "response_truncated"
DEFAULT_MODEL_NAME = "saslm"


class EchoMindError(SASLMError, ValueError):
    """An EchoMind test file, responses file or argument that cannot be used."""


class EchoMindWarning(UserWarning):
    """Cases skipped while reading a test file (missing audio, a repeated case_id, ...)."""


# ---- the benchmark's cues ---------------------------------------------------------------------
def cue_info(name: object) -> tuple[str, str] | None:
    """(short name, group) of one of the benchmark's cues, by its long or short name; None for other text.

    group: `speaker` (5 traits), `paralinguistic` (19) or `environment` (21).
    """
    return _CUES.get(name.strip().casefold()) if isinstance(name, str) else None


def alternative_cue(info: dict, voice_type: str = "alternative") -> str | None:
    """The cue a voice's `<ty>_audio_info` names in one of its string values (not the input file)."""
    for key, value in info.items():
        if key != f"{voice_type}_input_audio_file" and cue_info(value) is not None:
            return str(value)
    return None


def voice_labels(case: dict, voice_type: str) -> dict[str, Any]:
    """What one (case, voice) expresses: `cue` / `cue_group` (the case's cue, as the benchmark names it),
    `expressed_cue` / `expressed_group` (what this voice carries: the cue for `target`, `neutral` for the
    neutral voice, the alternative's own cue when the file names it), `emotion` where that is an emotion,
    and `alternative_of` (the target cue) for alternative voices."""
    spoken = case.get("spoken_info")
    known = cue_info(spoken)
    labels: dict[str, Any] = {}
    if known is not None:
        labels.update(cue=known[0], cue_group=known[1])
    if voice_type == "target":
        expressed = known
    elif voice_type == "neutral":
        expressed = ("neutral", "neutral")
    else:
        info = case.get(f"{voice_type}_audio_info")
        expressed = cue_info(alternative_cue(info, voice_type)) if isinstance(info, dict) else None
        if known is not None:
            labels["alternative_of"] = known[0]
    if expressed is not None:
        labels.update(expressed_cue=expressed[0], expressed_group=expressed[1])
        emotion = "neutral" if expressed[0] == "neutral" else CUE_EMOTIONS.get(expressed[0])
        if emotion:
            labels["emotion"] = emotion
    return labels


def skips_neutral(spoken_info: object) -> bool:
    """eval_response_main.py: the neutral voice is not run when the cue is a speaker trait."""
    return spoken_info in SPEAKER_CUES


# ---- system prompts ---------------------------------------------------------------------------
def check_prompt_mode(mode: str) -> None:
    if mode not in PROMPT_MODES:
        raise EchoMindError(f"unknown EchoMind prompt mode {mode!r}; use {', '.join(PROMPT_MODES)}")


def echomind_system_prompt(mode: str, topic: object, spoken_info: object,
                           model_name: str = DEFAULT_MODEL_NAME) -> str | None:
    """The system prompt eval_response_main.py sends for `mode` (see PROMPT_MODES), byte for byte.

    `basic` and `basic_plus_basic` are the same text for every model but two: under model name
    `qwen25omni` the first line of `basic` / `enhance` becomes Qwen's own system prompt, and under
    `echoX` the modes are rewritten as upstream does (`no` → None). `enhance` picks its text by the
    cue's group; a cue outside the benchmark's lists has no enhance prompt (EchoMindError).
    """
    check_prompt_mode(mode)
    scene = f"The current topic/scenario is: {topic}.\n"
    task = "Your task is to provide a one-turn response based on the input audio"
    parts: tuple[str, ...] | str
    if mode == "no":
        parts = ""
    elif mode in ("basic", "basic_plus_basic"):
        parts = ("You are a helpful assistant.\n", scene, f"{task}.")
    elif mode == "enhance":
        if spoken_info in SPEAKER_CUES:
            parts = ("You are an assistant in a customer service setting.\n", scene,
                     f"{task}, considering both the spoken content and any personal information present in the "
                     "user's voice. The response should:\n"
                     "- Include an appropriate form of address based on the personal information.\n"
                     "- Be tailored to the content of the user's spoken text and their personal information.\n"
                     "- Avoid any form of gender bias.")
        elif spoken_info in PARALINGUISTIC_CUES:
            parts = ("You are a helpful assistant.\n", scene,
                     f"{task}, considering both the spoken content and any voice characteristics present in "
                     "the user's voice.")
        elif spoken_info in ENVIRONMENT_CUES:
            parts = ("You are a helpful assistant.\n", scene,
                     f"{task}, considering both the spoken content and any background sounds present.")
        else:
            raise EchoMindError(f"spoken_info {spoken_info!r} is none of EchoMind's cues, so the `enhance` prompt "
                                "has no text for it (utils.py voice_info lists them); use another prompt mode")
    else:  # qwen25omni_default
        parts = QWEN_SYSTEM_PROMPT
    if model_name == "qwen25omni" and mode in ("basic", "enhance"):
        parts = (QWEN_SYSTEM_PROMPT + "\n",) + tuple(parts[1:])
    if model_name == "echoX":
        if mode == "no":
            return None
        if mode == "basic":
            return ECHOX_PROMPT
        if mode in ("basic_plus_basic", "enhance"):
            return ECHOX_PROMPT + "\n" + "\n".join(parts[1:])
        raise EchoMindError(f"EchoMind has no {mode!r} prompt for model echoX")
    return "".join(parts)


# ---- test files -------------------------------------------------------------------------------
def read_script_info(path: str | Path) -> list[dict]:
    """The list of case objects of an EchoMind test (or responses) JSON file, checked for shape."""
    path = Path(path)
    if not path.is_file():
        raise EchoMindError(f"{path}: EchoMind file not found (EchoMind ships its test files as "
                            "dataset/data_<human|synthesis>/script_info_<type>.json)")
    try:
        cases = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EchoMindError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    if not isinstance(cases, list):
        raise EchoMindError(f"{path}: expected a JSON list of cases, got {type(cases).__name__}")
    problems = []
    for i, case in enumerate(cases):
        if not isinstance(case, dict):
            problems.append(f"{path}: case #{i}: expected a JSON object, got {type(case).__name__}")
        elif case.get("case_id") in (None, ""):
            problems.append(f"{path}: case #{i}: no 'case_id'")
    if problems:
        raise EchoMindError(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(problems))
    if not cases:
        raise EchoMindError(f"{path}: holds no cases")
    return cases


@dataclass
class EchoMindItem:
    """One (case, voice type): the unit the benchmark sends to a model."""

    id: str  # <case_id>_<voice type>
    case_id: str
    voice_type: str
    audio: Path  # input wav (audio_root / audio_file)
    audio_file: str  # as written in the test file
    case: dict  # the case object it belongs to (shared by its voices)
    script: str | None = None
    reference_reply: str | None = None
    reference_audio: Path | None = None
    response_emotion: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> Any:
        return self.case.get("topic")

    @property
    def spoken_info(self) -> Any:
        return self.case.get("spoken_info")

    @property
    def cue_folder(self) -> str:
        """eval_response_main.py's output sub-folder: the first component of the input file's path."""
        return self.audio_file.split("/")[0]


def _first_text(obj: dict, keys: Sequence[str]) -> str | None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _scalars(obj: dict, skip: set[str]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in skip and isinstance(v, (str, int, float, bool))}


def default_audio_root(script_info: str | Path) -> Path:
    """`audio/` beside the test file: EchoMind's `dataset/data_<type>/audio/`."""
    return Path(script_info).parent / "audio"


def case_items(
    cases: list[dict],
    source: str | Path,
    audio_root: str | Path,
    voice_types: Sequence[str] = VOICE_TYPES,
    prompt: str | None = None,
    check_audio: bool = True,
) -> tuple[list[EchoMindItem], list[str]]:
    """Items with an existing input wav, and one `file: case X (type): problem` line per skipped item.

    Follows eval_response_main.py: the neutral voice of a speaker-trait case is not an item (not a
    problem either); an input wav that is not there is skipped. Beyond it: a repeated case_id (the
    first is kept), a case with none of `voice_types`, and, for prompt `enhance`, a cue the benchmark
    does not list are reported instead of ending or corrupting the run. check_audio False: items are
    made whether or not their input wav is there (reading a responses file).
    """
    bad = [t for t in voice_types if t not in VOICE_TYPES]
    if bad or not voice_types:
        raise EchoMindError(f"unknown voice type(s) {bad or list(voice_types)}; use {', '.join(VOICE_TYPES)}")
    root = Path(audio_root)
    items, problems = [], []
    first: dict[str, int] = {}  # case_id -> index of the case that has it
    for i, case in enumerate(cases):
        cid = str(case["case_id"])
        if cid in first:
            problems.append(f"{source}: case #{i}: duplicate case_id {cid!r} (first at case #{first[cid]}); skipped")
            continue
        first[cid] = i
        spoken = case.get("spoken_info")
        if prompt == "enhance" and spoken not in (*SPEAKER_CUES, *PARALINGUISTIC_CUES, *ENVIRONMENT_CUES):
            problems.append(f"{source}: case {cid}: spoken_info {spoken!r} is none of EchoMind's cues; the enhance "
                            "prompt has no text for it")
            continue
        script = _first_text(case, TEXT_KEYS)
        found = 0
        for ty in voice_types:
            if ty == "neutral" and skips_neutral(spoken):
                continue
            info = case.get(f"{ty}_audio_info")
            rel = info.get(f"{ty}_input_audio_file") if isinstance(info, dict) else None
            if not isinstance(rel, str) or not rel:
                continue
            found += 1
            if check_audio and not (root / rel).is_file():
                problems.append(f"{source}: case {cid} ({ty}): audio file not found: {root / rel}")
                continue
            extras = {f"{ty}_input_audio_file", f"{ty}_response", f"{ty}_response_text", "response",
                      f"{ty}_response_audio_file", f"{ty}_response_emotion"}
            ref_audio = info.get(f"{ty}_response_audio_file")
            labels = {**_scalars(case, {"case_id", *TEXT_KEYS}), **_scalars(info, extras),
                      **voice_labels(case, ty), "case_id": cid, "voice_type": ty}
            items.append(EchoMindItem(
                id=f"{cid}_{ty}", case_id=cid, voice_type=ty, audio=root / rel, audio_file=rel, case=case,
                script=script,
                reference_reply=_first_text(info, (f"{ty}_response", f"{ty}_response_text", "response"))
                or _first_text(case, (f"{ty}_response", f"{ty}_response_text")),
                reference_audio=root / ref_audio if isinstance(ref_audio, str) and (root / ref_audio).is_file() else None,
                response_emotion=_first_text(info, (f"{ty}_response_emotion",)), labels=labels,
            ))
        if not found:
            problems.append(f"{source}: case {cid}: no input audio for voice type(s) {', '.join(voice_types)}")
    return items, problems


def script_info_items(script_info: str | Path, audio_root: str | Path | None = None,
                      voice_types: Sequence[str] = VOICE_TYPES) -> tuple[list[EchoMindItem], list[str]]:
    """`case_items` of a test file; audio_root defaults to `audio/` beside it (EchoMind's layout)."""
    root = Path(audio_root) if audio_root is not None else default_audio_root(script_info)
    return case_items(read_script_info(script_info), script_info, root, voice_types)


def _report_skipped(problems: list[str], what: str) -> None:
    if problems:
        warnings.warn(f"skipped {len(problems)} EchoMind item(s) {what}:\n" + "\n".join(problems),
                      EchoMindWarning, stacklevel=3)


# ---- output layout ----------------------------------------------------------------------------
def response_dir(out_root: str | Path, model_name: str, prompt: str) -> Path:
    """`<out_root>/<model>/<prompt>`: eval_response_main.py's output_dir below `response_output/`."""
    return path_inside(Path(out_root), model_name, prompt)


def responses_file(out_root: str | Path, model_name: str, prompt: str) -> Path:
    """`<model>/<prompt>/<model>_<prompt>_output_responses.json` under `out_root`."""
    return path_inside(response_dir(out_root, model_name, prompt), f"{model_name}_{prompt}_output_responses",
                       suffix=".json")


def cue_dir(folder: Path, name: str) -> Path:
    """`folder/<name>`: a cue name the benchmark uses is kept verbatim (spaces and all), anything else
    goes through safe_filename; UnsafePathError when the result would leave `folder` (a symlink)."""
    path = folder / name if name in _CUE_FOLDERS else path_inside(folder, name)
    if not is_inside(folder, path):
        raise UnsafePathError(f"{path} resolves outside {folder.resolve()} (a symbolic link?); remove the link "
                              "or choose another output folder")
    return path


def response_wav(folder: Path, item: EchoMindItem, model_name: str) -> Path:
    """`folder/<cue folder>/<case_id>_<model>_response_<voice>.wav`, as eval_response_main.py names it."""
    return path_inside(cue_dir(folder, item.cue_folder), f"{item.case_id}_{model_name}_response_{item.voice_type}",
                       suffix=".wav")


# ---- the model wrapper ------------------------------------------------------------------------
def _dtype(value: "str | torch.dtype | None"):
    if value is None or not isinstance(value, str):
        return value
    from ..config import TORCH_DTYPES

    if value not in TORCH_DTYPES:
        raise EchoMindError(f"unknown dtype {value!r}; use {', '.join(sorted(TORCH_DTYPES))}")
    return TORCH_DTYPES[value]


class EchoMindModel:
    """An SA-SLM behind EchoMind's model interface.

    model: a loaded SASLM, a preset (`tiny`, ...), a checkpoint folder or hub id; or the benchmark's
    argparse namespace (EchoMind builds models as `Cls(args)`): then the checkpoint comes from
    `args.saslm_model` or the SASLM_MODEL environment variable, the device from `args.device`, and
    SASLM_SPEAKER / SASLM_ASR / SASLM_DTYPE fill speaker / asr / dtype when not given.
    device, dtype: only used when loading. seed: Talker sampling and Token2Wav noise seed, the same
    for every call (reproducible per input). asr: backend for response_audio_transcript (see module doc).
    mode: None (the bridge as trained) or `add` (the stock path). max_reply_tokens: the Thinker budget;
    sampling: the Talker's (its max_new_codes None: the checkpoint's budget).
    """

    def __init__(
        self,
        model: "str | Path | SASLM | argparse.Namespace",
        speaker: str | None = None,
        seed: int | None = 0,
        asr: str | None = None,
        mode: str | None = None,
        device: "str | torch.device | None" = None,
        dtype: "str | torch.dtype | None" = None,
        max_reply_tokens: int | None = None,
        sampling: "SamplingConfig | None" = None,
    ) -> None:
        from ..facade import SASLM
        from ..talker.sampling import SamplingConfig

        if isinstance(model, argparse.Namespace):
            args = model
            model = getattr(args, "saslm_model", None) or os.environ.get("SASLM_MODEL")
            if not model:
                raise EchoMindError("EchoMind built the model from its own arguments; say which SA-SLM checkpoint "
                                    "to load with SASLM_MODEL=<folder or preset> (or args.saslm_model)")
            device = device or getattr(args, "device", None)
            speaker = speaker or os.environ.get("SASLM_SPEAKER") or None
            asr = asr or os.environ.get("SASLM_ASR") or None
            dtype = dtype or os.environ.get("SASLM_DTYPE") or None
        if not isinstance(model, SASLM):
            model = SASLM.from_pretrained(model, device=device, dtype=_dtype(dtype))
        self.saslm = model
        self.saslm.speakers[speaker]  # fail fast on an unknown speaker
        self.speaker, self.seed, self.mode = speaker, seed, mode
        self.max_reply_tokens = max_reply_tokens or model.config.max_reply_tokens
        self.sampling = model.sampling(sampling or SamplingConfig())
        self.asr_spec = asr
        self._asr = None
        if asr:
            from ..asr import load_asr

            self._asr = load_asr(asr, self.saslm.model, self.saslm.processor)

    def generate_audio(
        self,
        audio: str | Path,
        output_file: str | Path,
        system_prompt: str | None,
        user_instruction: str | None = None,
        audio_output: bool | None = None,
        max_new_tokens: int | None = None,
    ) -> dict[str, str | bool]:
        """EchoMind's call: reply to the wav at `audio`; write the spoken reply to `output_file` when
        `audio_output` is truthy. Returns {"response_audio_transcript": str, "response_text": str}, plus
        `RESPONSE_TRUNCATED` when audio was made (True: the code budget cut the reply).

        system_prompt: "" for none, None for the checkpoint's default. max_new_tokens: Thinker budget.
        An input that cannot be used (missing, unreadable, longer than the audio tower takes) or a reply
        that is empty at once logs a warning and returns both strings empty, as upstream's model classes
        do, so the benchmark loop goes on (and retries that item on its next run).
        """
        from ..audio import write_wav
        from ..seeding import derive_seed
        from ..token2wav import SAMPLE_RATE

        if isinstance(system_prompt, (tuple, list)):
            system_prompt = "".join(system_prompt)
        saslm = self.saslm
        try:
            if not isinstance(audio, (str, Path)) or not Path(audio).is_file():
                raise SASLMError(f"{audio}: EchoMind input audio not found; check the benchmark's root_dir / "
                                 "data_type (inputs live in dataset/data_<type>/audio/)")
            conv = saslm.conversation(audio=str(audio), text=user_instruction or None, system_prompt=system_prompt)
            reply_ids = saslm.model.generate_replies(**saslm.encode_prompts([conv]),
                                                     max_new_tokens=max_new_tokens or self.max_reply_tokens)
        except SASLMError as exc:  # AudioError, InputTooLongError, EmptyReplyError: this item only
            log.warning("EchoMind item skipped, empty response returned: %s", exc)
            return dict(EMPTY_RESPONSE)
        reply = saslm.processor.decode(reply_ids[0]).strip()
        if not audio_output:
            return {"response_audio_transcript": reply, "response_text": reply}
        seeds = None if self.seed is None else [derive_seed(self.seed, "talker", 0)]
        out = saslm.rollouts([conv], 1, self.sampling, reply_ids, self.speaker, seeds=seeds, decode_seed=self.seed,
                             mode=self.mode)
        wav = out.waveforms[0].float().cpu().numpy()
        write_wav(output_file, wav, SAMPLE_RATE)
        transcript = self._asr([wav], SAMPLE_RATE)[0].strip() if self._asr is not None else reply
        truncated = not bool(out.codes.finished[0])
        if truncated:
            log.warning("EchoMind reply %s was cut by the code budget (%d codes, no end of speech); its per-word "
                        "scores are left out", output_file, self.sampling.budget)
        return {"response_audio_transcript": transcript, "response_text": reply, RESPONSE_TRUNCATED: truncated}


# ---- running the benchmark's cases ------------------------------------------------------------
def run_echomind(
    model: EchoMindModel,
    script_info: str | Path,
    out_root: str | Path,
    audio_root: str | Path | None = None,
    voice_types: Sequence[str] = VOICE_TYPES,
    prompt: str = "no",
    audio_output: bool = True,
    model_name: str = DEFAULT_MODEL_NAME,
    progress: bool = True,
) -> Path:
    """Every (case, voice type) through the adapter, as eval_response_main.py runs them; returns the
    responses file.

    out_root plays the part of EchoMind's `output/output_<type>/response_output/`: the responses go to
    `<out_root>/<model>/<prompt>/<model>_<prompt>_output_responses.json` (rewritten after every item) and
    the reply audio to `<out_root>/<model>/<prompt>/<cue folder>/<case_id>_<model>_response_<voice>.wav`.
    A responses file already there is read back (resume): items with a transcript are kept, the others
    are run again. Skipped items are listed in an EchoMindWarning; an item whose response came back
    empty is counted in another.
    """
    from tqdm.auto import tqdm

    check_prompt_mode(prompt)
    folder = response_dir(out_root, model_name, prompt)
    out_json = responses_file(out_root, model_name, prompt)
    root = Path(audio_root) if audio_root is not None else default_audio_root(script_info)
    cases = read_script_info(out_json if out_json.is_file() else script_info)
    items, problems = case_items(cases, script_info, root, voice_types, prompt)
    if not items:
        raise EchoMindError(f"{script_info}: no item with an input wav; {len(problems)} problem(s):\n"
                            + "\n".join(problems))
    _report_skipped(problems, f"of {script_info} (each line says why)")
    for case in cases:
        case["model"], case["ouput_prompt"] = model_name, prompt  # EchoMind's key spelling
        if not isinstance(case.get("output_content"), dict):
            case["output_content"] = {t: {} for t in VOICE_TYPES}
    empty = []
    for it in tqdm(items, desc="EchoMind", unit="item", disable=not progress):
        content = it.case["output_content"].setdefault(it.voice_type, {})
        if content.get("response_audio_transcript"):
            continue  # answered in an earlier run
        wav_path = response_wav(folder, it, model_name)
        wav_path.parent.mkdir(parents=True, exist_ok=True)
        wav_path.unlink(missing_ok=True)  # no stale audio from an earlier run
        content["file"] = wav_path.name
        system = echomind_system_prompt(prompt, it.topic, it.spoken_info, model_name)
        resp = model.generate_audio(str(it.audio), str(wav_path), system, audio_output=audio_output)
        content["response_audio_transcript"] = resp["response_audio_transcript"]
        content["response_text"] = resp["response_text"]
        if resp.get(RESPONSE_TRUNCATED):
            content[RESPONSE_TRUNCATED] = True  # beside upstream's keys: `score` leaves its per-word measures out
        else:
            content.pop(RESPONSE_TRUNCATED, None)
        if not resp["response_audio_transcript"]:
            empty.append(it.id)
        write_text_atomic(out_json, json.dumps(cases, ensure_ascii=False, indent=4))
    if empty:
        warnings.warn(f"{len(empty)} EchoMind item(s) got an empty response (the log says why; a new run retries "
                      f"them): {', '.join(empty)}", EchoMindWarning, stacklevel=2)
    if not out_json.is_file():  # every item was answered before
        write_text_atomic(out_json, json.dumps(cases, ensure_ascii=False, indent=4))
    return out_json


def read_responses(responses: str | Path, audio_root: str | Path | None = None,
                   voice_types: Sequence[str] = VOICE_TYPES) -> list[tuple[EchoMindItem, dict, Path | None]]:
    """(item, its output_content entry, its reply wav or None) for every answered item of a responses
    file. Wavs are found where the response script writes them: `<cue folder>/<file>` beside the file.
    audio_root: where the inputs live (only needed to hear the user's turn; None: not checked)."""
    responses = Path(responses)
    cases = read_script_info(responses)
    root = Path(audio_root) if audio_root is not None else responses.parent
    items, _ = case_items(cases, responses, root, voice_types, check_audio=audio_root is not None)
    out = []
    for it in items:
        content = it.case.get("output_content")
        entry = content.get(it.voice_type) if isinstance(content, dict) else None
        if not isinstance(entry, dict) or not entry.get("response_audio_transcript"):
            continue
        name = entry.get("file")
        wav = path_inside(cue_dir(responses.parent, it.cue_folder), name) if isinstance(name, str) and name else None
        out.append((it, entry, wav if wav is not None and wav.is_file() else None))
    return out


# ---- our manifest -----------------------------------------------------------------------------
def script_info_to_manifest(
    script_info_path: str | Path,
    audio_root: str | Path | None,
    out_manifest: str | Path,
    voice_types: Sequence[str] = VOICE_TYPES,
    system_prompt: str | None = None,
    responses: str | Path | None = None,
) -> Path:
    """Write our JSONL manifest: one line per (case, voice type) as the benchmark runs them.

    Lines: id `<case_id>_<ty>`, user_audio (relative to the manifest's folder when under it, else
    absolute), user_text (when the file has the words), reply_text and reply_audio, labels (see
    `voice_labels`, plus every other scalar key of the case). The reply is the optional reference
    reply when the file has one, else the model's reply from `responses` (a `run` responses file:
    response_text, or the transcript when the model left it empty, and its wav). system_prompt: a
    text, or one of PROMPT_MODES built per case. Items without a reply are listed in an
    EchoMindWarning; when no line is left, EchoMindError lists them all.
    """
    from ..data.manifest import Example, example_to_json

    out = Path(out_manifest)
    if system_prompt in PROMPT_MODES:
        check_prompt_mode(system_prompt)
    items, problems = script_info_items(script_info_path, audio_root, voice_types)
    answered = {it.id: (entry, wav) for it, entry, wav in read_responses(responses)} if responses else {}
    lines = []
    for it in items:
        entry, wav = answered.get(it.id, ({}, None))
        reply = it.reference_reply or entry.get("response_text") or entry.get("response_audio_transcript")
        if not reply:
            problems.append(f"{script_info_path}: case {it.case_id} ({it.voice_type}): no reply text; give a "
                            f"responses file from `run` (--responses) or a reference '{it.voice_type}_response' "
                            f"in {it.voice_type}_audio_info")
            continue
        reply_audio = it.reference_audio if it.reference_reply else wav
        prompt = echomind_system_prompt(system_prompt, it.topic, it.spoken_info) \
            if system_prompt in PROMPT_MODES else system_prompt
        ex = Example(id=it.id, reply_text=reply, user_audio=it.audio.resolve(), user_text=it.script,
                     system_prompt=prompt, reply_audio=reply_audio.resolve() if reply_audio else None,
                     labels=it.labels)
        lines.append(json.dumps(example_to_json(ex, out.parent), ensure_ascii=False))
    if not lines:
        raise EchoMindError(f"{script_info_path}: no usable item; {len(problems)} problem(s):\n" + "\n".join(problems))
    _report_skipped(problems, f"while writing {out}")
    write_text_atomic(out, "\n".join(lines) + "\n")
    return out


# ---- scoring: the SASLM paper's protocol and the benchmark's, side by side --------------------
PAPER_COLUMNS = {"wer": "WER %", "f0_var_st2": "F0-Var (st²)", "emo_align": "EmoAlign % (p)",
                 "expressiveness": "Expressiveness 1–5"}
BENCH_COLUMNS = {"echomind_emoalign": "EmoAlign % (top-1)", "nisqa": "NISQA", "dnsmos": "DNSMOS OVRL",
                 "ves": "VES 1–5"}
PERCENT = {"wer", "emo_align", "echomind_emoalign"}


def dnsmos_scorer() -> tuple[Any, str | None]:
    """DNSMOS (the ONNX models upstream's DNSMOSEvaluator loads) through the `speechmos` package, which
    ships them: (fn(wav16k) -> OVRL MOS, None), or (None, why it is unavailable)."""
    missing = [m for m in ("speechmos", "onnxruntime", "librosa") if importlib.util.find_spec(m) is None]
    if missing:
        return None, f"not installed: pip install {' '.join(missing)} (speechmos ships the DNSMOS ONNX models)"
    from speechmos import dnsmos

    return (lambda wav16k: float(dnsmos.run(wav16k, 16_000)["ovrl_mos"])), None


def _mean(values: list[float | None]) -> tuple[float | None, int]:
    got = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return (sum(got) / len(got) if got else None), len(got)


def score_responses(
    responses: str | Path,
    out_dir: str | Path | None = None,
    audio_root: str | Path | None = None,
    asr: str | None = None,
    emotion_model: str | Path | None = None,
    critic: "str | Path | SASLM | None" = None,
    device: str = "cpu",
    progress: bool = True,
) -> dict:
    """Score the spoken replies of a `run` (or any EchoMind responses file) under both protocols.

    SASLM paper: WER of an ASR transcript against the reply text (`asr`, see sa_slm.asr), F0 variance
    in semitones², EmoAlign = emotion2vec probability of the reply's target emotion (the optional
    `<ty>_response_emotion`), expressiveness 1–5 = 1 + 4 × the rubric critic's utility (`critic`: a
    checkpoint; it hears the user's turn, so `audio_root` is needed). All through `clip_metrics` and
    `RubricCritic`, as `sa-slm eval` measures them.
    EchoMind: EmoAlign as the share of replies whose top emotion2vec_plus_large label is the target
    (upstream's Emotion2VecEvaluator returns the utterance label), DNSMOS OVRL when speechmos is
    installed, NISQA and the judge's VES only through upstream's own tools.
    Every column without a value says why in `unavailable`. Writes `echomind_scores.json` (per item
    and per voice type) and `echomind_scores.md` (the table) to out_dir (default: beside `responses`).
    """
    from ..audio import load_audio, resample
    from ..metrics import EmoAlign, clip_metrics, target_class
    from ..token2wav import SAMPLE_RATE

    responses = Path(responses)
    answered = read_responses(responses, audio_root)
    if critic is not None and audio_root is None:
        raise EchoMindError("the critic hears the user's turn: give --audio-root (dataset/data_<type>/audio)")
    if asr is not None:
        from ..asr import check_asr_spec

        check_asr_spec(asr)
    unavailable: dict[str, str] = {}
    rows = []
    scored = [(it, entry, wav) for it, entry, wav in answered if wav is not None]
    for it, _, _ in answered:
        if not any(it is s[0] for s in scored):
            rows.append({"id": it.id, "voice_type": it.voice_type, "labels": it.labels,
                         "errors": ["no reply wav (run without --no-audio to write it)"]})
    if not scored:
        raise EchoMindError(f"{responses}: no answered item with its reply wav beside the file "
                            "(<cue folder>/<case_id>_<model>_response_<voice>.wav)")
    wavs = [load_audio(wav, SAMPLE_RATE) for _, _, wav in scored]
    texts = [entry.get("response_text") or entry["response_audio_transcript"] for _, entry, _ in scored]
    targets = [it.response_emotion for it, _, _ in scored]
    judge = None
    if critic is not None or asr == "model":
        from ..facade import SASLM

        judge = critic if isinstance(critic, SASLM) else SASLM.from_pretrained(critic or "tiny", device=device)
    transcribe = None
    if asr is None:
        unavailable["wer"] = "no ASR backend given (--asr pocketsphinx, whisper:<path>, model, ...)"
    else:
        from ..asr import load_asr

        transcribe = load_asr(asr, judge.model if judge else None, judge.processor if judge else None)
    emo = EmoAlign(emotion_model, device=device)
    if not emo.available:
        unavailable["emo_align"] = unavailable["echomind_emoalign"] = str(emo.reason)
    elif not any(targets):
        unavailable["emo_align"] = unavailable["echomind_emoalign"] = (
            "no target emotion for any reply (optional <voice>_response_emotion in <voice>_audio_info)")
    metrics = clip_metrics(wavs, SAMPLE_RATE, texts, targets, transcribe, emo if emo.available else None,
                           progress=progress, truncated=[bool(entry.get(RESPONSE_TRUNCATED)) for _, entry, _ in scored])
    expressiveness: list[float | None] = [None] * len(scored)
    if critic is None:
        unavailable["expressiveness"] = "no critic checkpoint given (--critic <checkpoint or preset>)"
    else:
        from ..critic import RubricCritic
        from ..data.manifest import Example
        from .runner import Spoken, critic_metrics

        rubric = RubricCritic(judge.model, judge.processor)
        spoken = [Spoken(Example(id=it.id, reply_text=text, user_audio=it.audio),
                         judge.conversation(audio=str(it.audio), text=it.script,
                                            system_prompt=echomind_system_prompt(
                                                it.case.get("ouput_prompt", "no"), it.topic, it.spoken_info)
                                            if it.case.get("ouput_prompt") in PROMPT_MODES else None),
                         text, wav)
                      for (it, _, _), text, wav in zip(scored, texts, wavs)]
        for i, judged in enumerate(critic_metrics(rubric, spoken)):
            if "critic_utility" in judged:
                expressiveness[i] = 1.0 + 4.0 * float(judged["critic_utility"])
            else:
                metrics[i]["errors"].append(judged.get("critic_error", "critic: no score"))
    dnsmos, why = dnsmos_scorer()
    if dnsmos is None:
        unavailable["dnsmos"] = f"DNSMOS {why}"
    unavailable["nisqa"] = ("NISQA has no installable package with its weights here: upstream runs "
                            "github.com/gabrielmittag/NISQA (weights/nisqa.tar) on the reply wavs")
    unavailable["ves"] = "VES is upstream's Gemini judge (an online API): not run offline"
    for (it, entry, wav_path), wav, m, expr in zip(scored, wavs, metrics, expressiveness):
        target = target_class(it.response_emotion) if it.response_emotion else None
        top1 = None if target is None or m.get("emo_pred") is None else float(m["emo_pred"] == target)
        errors = list(m.get("errors") or [])
        dns = None
        if dnsmos is not None:
            try:
                dns = dnsmos(resample(wav, SAMPLE_RATE, 16_000))
            except Exception as exc:  # noqa: BLE001 - one bad clip must not end the table
                errors.append(f"dnsmos: {type(exc).__name__}: {exc}")
        rows.append({"id": it.id, "voice_type": it.voice_type, "labels": it.labels,
                     "wav": str(wav_path.relative_to(responses.parent)),
                     "paper": {"wer": m.get("wer"), "f0_var_st2": m.get("f0_var_st2"),
                               "emo_align": m.get("emo_align"), "expressiveness": expr},
                     "echomind": {"echomind_emoalign": top1, "nisqa": None, "dnsmos": dns, "ves": None},
                     "transcript": m.get("transcript"), "emo_pred": m.get("emo_pred"), "errors": errors})
    summary = {}
    for group in (*VOICE_TYPES, "all"):
        members = [r for r in rows if "paper" in r and (group == "all" or r["voice_type"] == group)]
        if not members:
            continue
        cells = {}
        for proto, cols in (("paper", PAPER_COLUMNS), ("echomind", BENCH_COLUMNS)):
            for key in cols:
                mean, n = _mean([r[proto][key] for r in members])
                cells[key] = {"mean": None if mean is None else mean * (100 if key in PERCENT else 1), "n": n}
        summary[group] = {"items": len(members), **cells}
    result = {"responses": str(responses), "summary": summary, "unavailable": unavailable, "items": rows}
    out = Path(out_dir) if out_dir is not None else responses.parent
    write_text_atomic(out / "echomind_scores.json", json.dumps(result, ensure_ascii=False, indent=2))
    write_text_atomic(out / "echomind_scores.md", scores_markdown(result))
    return result


def scores_markdown(result: dict) -> str:
    """The both-protocols table of a `score_responses` result (n/a where a column has no value)."""
    cols = {**PAPER_COLUMNS, **BENCH_COLUMNS}
    head = ["voices", "items", *(f"{name} [paper]" for name in PAPER_COLUMNS.values()),
            *(f"{name} [EchoMind]" for name in BENCH_COLUMNS.values())]
    lines = [f"EchoMind responses: {result['responses']}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for group, cells in result["summary"].items():
        values = [f"{cells[k]['mean']:.2f}" if cells[k]["mean"] is not None else "n/a" for k in cols]
        lines.append(f"| {group} | {cells['items']} | " + " | ".join(values) + " |")
    if result["unavailable"]:
        lines += ["", "Unavailable:"] + [f"- {cols[k]}: {why}" for k, why in result["unavailable"].items()]
    return "\n".join(lines) + "\n"


# ---- command line -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sa_slm.eval.echomind",
                                     description="EchoMind benchmark adapter for SA-SLM checkpoints")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("--script-info", required=required, default=None,
                       help="EchoMind test file (dataset/data_<type>/script_info_<type>.json)")
        p.add_argument("--audio-root", default=None, help="folder the input audio paths are relative to "
                       "(default: audio/ beside the test file)")
        p.add_argument("--voice-types", nargs="+", default=list(VOICE_TYPES), choices=VOICE_TYPES)

    r = sub.add_parser("run", help="answer every item as eval_response_main.py does")
    data_args(r, required=False)
    r.add_argument("--root-dir", default=None, help="an EchoMind checkout: reads dataset/data_<type>/"
                   "script_info_<type>.json, writes output/output_<type>/response_output/ (as upstream)")
    r.add_argument("--data-type", default="synthesis", help="with --root-dir: human or synthesis")
    r.add_argument("--out", default=None, help="folder in place of upstream's response_output/")
    r.add_argument("--model", default="tiny", help="preset (tiny, random-3b, random-7b), local folder or hub id")
    r.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="the name in output paths (upstream's "
                   "--model_name)")
    r.add_argument("--prompt", default="no", choices=PROMPT_MODES, help="EchoMind system prompt mode")
    r.add_argument("--device", default=None)
    r.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="Thinker/Talker dtype")
    r.add_argument("--speaker", default=None, help="Token2Wav speaker (default: the model's default)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--asr", default=None, help="transcribe the spoken replies: model, pocketsphinx, whisper:<path>, ...")
    r.add_argument("--no-audio", action="store_true", help="text replies only (EchoMind without --audio_output)")
    r.add_argument("--no-bridge", action="store_true", help="speak through the stock h + e path")
    r.add_argument("--greedy", action="store_true", help="greedy Talker decoding")
    r.add_argument("--max-reply-tokens", type=int, default=None)
    r.add_argument("--max-new-codes", type=int, default=None, help="Talker budget (50 codes per second)")

    s = sub.add_parser("score", help="score a responses file under the SASLM paper's and EchoMind's protocols")
    s.add_argument("--responses", required=True, help="<model>_<prompt>_output_responses.json written by `run`")
    s.add_argument("--audio-root", default=None, help="the inputs (dataset/data_<type>/audio); needed by --critic")
    s.add_argument("--out", default=None, help="folder for echomind_scores.{json,md} (default: beside --responses)")
    s.add_argument("--asr", default=None, help="ASR for WER: pocketsphinx, whisper:<path>, funasr:<model>, model")
    s.add_argument("--emotion-model", default=None, help="local emotion2vec(_plus_large) folder for EmoAlign")
    s.add_argument("--critic", default=None, help="checkpoint or preset whose rubric critic gives expressiveness")
    s.add_argument("--device", default="cpu")

    m = sub.add_parser("to-manifest", help="convert a test file into our JSONL manifest")
    data_args(m)
    m.add_argument("--responses", default=None, help="replies from `run` for items without a reference reply")
    m.add_argument("--out", required=True, help="output manifest (.jsonl)")
    m.add_argument("--system-prompt", default=None, help=f"{', '.join(PROMPT_MODES)} (EchoMind's) or a literal "
                   "text; default: none (the checkpoint's default prompt)")
    return parser


def _run_paths(args: argparse.Namespace) -> tuple[Path, Path, Path | None]:
    """(test file, output root, audio root) of `run`, from --root-dir/--data-type or --script-info/--out."""
    if args.root_dir is not None:
        if args.script_info or args.out:
            raise EchoMindError("give either --root-dir (EchoMind's layout) or --script-info with --out, not both")
        data = Path(args.root_dir) / "dataset" / f"data_{args.data_type}"
        out = Path(args.root_dir) / "output" / f"output_{args.data_type}" / "response_output"
        return data / f"script_info_{args.data_type}.json", out, args.audio_root
    if not args.script_info or not args.out:
        raise EchoMindError("`run` needs --root-dir <EchoMind checkout>, or --script-info FILE and --out DIR")
    return Path(args.script_info), Path(args.out), args.audio_root


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EchoMindWarning)
            if args.command == "to-manifest":
                path = script_info_to_manifest(args.script_info, args.audio_root, args.out, args.voice_types,
                                               args.system_prompt, args.responses)
                n = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
                print(f"wrote {path}: {n} example(s)")
            elif args.command == "score":
                result = score_responses(args.responses, args.out, args.audio_root, args.asr, args.emotion_model,
                                         args.critic, args.device)
                print(scores_markdown(result), end="")
            else:
                script_info, out_root, audio_root = _run_paths(args)
                read_script_info(script_info)  # a bad file fails before a (slow) model load
                if args.asr:
                    from ..asr import check_asr_spec

                    check_asr_spec(args.asr)
                from ..talker.sampling import SamplingConfig

                model = EchoMindModel(args.model, speaker=args.speaker, seed=args.seed, asr=args.asr,
                                      mode="add" if args.no_bridge else None, device=args.device, dtype=args.dtype,
                                      max_reply_tokens=args.max_reply_tokens,
                                      sampling=SamplingConfig(do_sample=not args.greedy,
                                                              max_new_codes=args.max_new_codes))
                path = run_echomind(model, script_info, out_root, audio_root, args.voice_types, prompt=args.prompt,
                                    audio_output=not args.no_audio, model_name=args.model_name)
                n = sum(1 for case in read_script_info(path) for ty in VOICE_TYPES
                        if (case.get("output_content") or {}).get(ty, {}).get("response_audio_transcript"))
                print(f"wrote {n} response(s) to {path}")
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
    except SASLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
