"""EchoMind benchmark adapter: run an SA-SLM checkpoint through EchoMind's own scripts, or turn its
`script_info` into our JSONL manifest.

EchoMind (Zhou et al., 2025, "An Interrelated Multi-Level Benchmark for Evaluating Empathetic Speech
Language Models"; code: github.com/hlt-cuhksz/EchoMind, `src/eval-slm/`) asks a spoken dialogue model
to answer the same semantically neutral user script spoken in different voices and scores the text
and the speech of its replies.

What its code fixes (read from `eval_response_main.py`, `eval_asr_main.py`, `eval_mcq_main.py`,
`models/qwen25omni.py`, `models/gpt4o.py`, `model/base.py`, `utils.py`):

- A model is a class built as `Cls(args)` (the scripts' argparse namespace, with `args.device`) whose
  `generate_audio(audio, output_file, system_prompt, user_instruction=None, audio_output=None)` takes
  the input wav path, the wav path to write, a system prompt (`""` for the "no" prompt) and an
  optional text instruction, and returns `{"response_audio_transcript": str, "response_text": str}`.
  The scripts pass the first three positionally. `audio_output` is falsy unless the script ran with
  `--audio_output` (the ASR task never sets it): then no audio is expected and the reply text is
  returned as the transcript.
- `dataset/data_<human|synthesis>/script_info_<type>.json` is a JSON list of cases with `case_id`,
  `topic`, `spoken_info` (the vocal cue: a speaker trait such as `male`, a paralinguistic cue such as
  `happy-toned expressive voice`, or a background such as `sound of wind blowing`) and, per voice type
  `ty` in `target` / `neutral` / `alternative`, `<ty>_audio_info.<ty>_input_audio_file`: the input wav
  relative to `dataset/data_<type>/audio/` (e.g. `happy/id_1_happy_work_target.wav`). The response
  script skips `neutral` for speaker traits, and writes back `model`, `ouput_prompt` (sic) and
  `output_content.<ty>.{file, response_audio_transcript, response_text}`.

Assumptions (the dataset JSON itself is not in the public repository): the user's utterance text is
read from the first of `script`, `speak_A`, `speaker_A`, `text`, `transcript`, `utterance`; a reference
reply from `<ty>_response`, `<ty>_response_text` or `response` inside `<ty>_audio_info` (or `<ty>_response`
at top level), its audio from `<ty>_response_audio_file`. Every other scalar key is kept as a label.

This adapter's choices:
- `generate_audio` answers with the Thinker (greedy) and, when `audio_output` is truthy, speaks that
  reply with the Talker and writes the 24 kHz wav (folders created). `response_text` is the Thinker's
  reply; `response_audio_transcript` is an ASR transcript of the written audio when an ASR backend is
  configured (`asr="pocketsphinx"`, `"whisper:<path>"`, ...; see `sa_slm.asr`), else the spoken text
  itself (the Talker speaks exactly the reply text), and the reply text when no audio is made.
- A missing input wav raises AudioError; a reply that is empty at once returns empty strings (the
  benchmark treats those as "not inferred yet" and retries them).
- Our manifest and our outputs have one item per (case, voice type): id `<case_id>_<voice type>`.
  Its wav is `<out>/<file name>.wav`, the file name made by `sa_slm.paths.distinct_filenames` (a
  case id such as `../../x` or `/abs/x` becomes a plain name with a hash added; nothing is written or
  deleted outside the output folder). `output_wav` / EchoMind's `file` hold that file name.
- A case_id that appeared earlier in the same file: the later case is skipped and reported (in the
  EchoMindWarning listing skipped cases), the first one is answered.

Usage:
    python -m sa_slm.eval.echomind run --model tiny --script-info X.json --out DIR
    python -m sa_slm.eval.echomind to-manifest --script-info X.json --out manifest.jsonl
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import AudioError, EmptyReplyError, SASLMError
from ..paths import distinct_filenames, path_inside

if TYPE_CHECKING:
    import torch

    from ..facade import SASLM
    from ..talker.sampling import SamplingConfig

VOICE_TYPES = ("target", "neutral", "alternative")
SPEAKER_TRAITS = {"male", "female", "child", "adult", "elderly"}
TEXT_KEYS = ("script", "speak_A", "speaker_A", "text", "transcript", "utterance")
# Short names of EchoMind's emotional vocal cues (the names its audio files use) → our `emotion` label.
EMOTIONS = {"happy-toned expressive voice": "happy", "sad-toned expressive voice": "sad",
            "surprise-toned expressive voice": "surprise", "angry-toned expressive voice": "angry",
            "fear-toned expressive voice": "fear", "disgust-toned expressive voice": "disgust"}
PROMPT_MODES = ("no", "basic", "enhance")


class EchoMindError(SASLMError, ValueError):
    """An EchoMind script_info file or case that cannot be used."""


class EchoMindWarning(UserWarning):
    """Cases skipped while reading a script_info file (missing audio, no reference reply)."""


# ---- script_info ------------------------------------------------------------------------------
def read_script_info(path: str | Path) -> list[dict]:
    """The list of case objects of an EchoMind script_info JSON file, checked for shape."""
    path = Path(path)
    if not path.is_file():
        raise EchoMindError(f"{path}: EchoMind script_info file not found (EchoMind ships it as "
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
        raise EchoMindError(f"{path}: script_info holds no cases")
    return cases


@dataclass
class EchoMindItem:
    """One (case, voice type): the unit the benchmark sends to a model."""

    id: str  # <case_id>_<voice type>
    case_id: str
    voice_type: str
    audio: Path  # input wav (audio_root / audio_file)
    audio_file: str  # as written in script_info
    script: str | None = None
    reference_reply: str | None = None
    reference_audio: Path | None = None
    topic: str | None = None
    spoken_info: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)


def _first_text(obj: dict, keys: Sequence[str]) -> str | None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _scalars(obj: dict, skip: set[str]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in skip and isinstance(v, (str, int, float, bool))}


def script_info_items(
    script_info: str | Path,
    audio_root: str | Path | None = None,
    voice_types: Sequence[str] = VOICE_TYPES,
) -> tuple[list[EchoMindItem], list[str]]:
    """Items with an existing input wav, and one `file: case X (type): problem` line per skipped case.

    audio_root: folder the `<ty>_input_audio_file` paths are relative to (default: `audio/` beside
    the script_info file, EchoMind's layout). A case that has none of `voice_types` is reported.
    """
    script_info = Path(script_info)
    bad = [t for t in voice_types if t not in VOICE_TYPES]
    if bad or not voice_types:
        raise EchoMindError(f"unknown voice type(s) {bad or list(voice_types)}; use {', '.join(VOICE_TYPES)}")
    root = Path(audio_root) if audio_root is not None else script_info.parent / "audio"
    cases = read_script_info(script_info)
    items, problems = [], []
    first: dict[str, int] = {}  # case_id -> index of the case that has it
    for i, case in enumerate(cases):
        cid = str(case["case_id"])
        if cid in first:
            problems.append(f"{script_info}: case #{i}: duplicate case_id {cid!r} (first at case #{first[cid]}); "
                            "skipped")
            continue
        first[cid] = i
        script = _first_text(case, TEXT_KEYS)
        spoken = case.get("spoken_info")
        found = 0
        for ty in voice_types:
            info = case.get(f"{ty}_audio_info")
            if not isinstance(info, dict):
                continue
            rel = info.get(f"{ty}_input_audio_file")
            if not isinstance(rel, str) or not rel:
                continue
            found += 1
            where = f"{script_info}: case {cid} ({ty})"
            if not (root / rel).is_file():
                problems.append(f"{where}: audio file not found: {root / rel}")
                continue
            ref = _first_text(info, (f"{ty}_response", f"{ty}_response_text", "response")) \
                or _first_text(case, (f"{ty}_response", f"{ty}_response_text"))
            ref_audio = info.get(f"{ty}_response_audio_file")
            labels = {**_scalars(case, {"case_id", *TEXT_KEYS}),
                      **_scalars(info, {f"{ty}_input_audio_file", f"{ty}_response", f"{ty}_response_text",
                                        "response", f"{ty}_response_audio_file"})}
            labels.update(case_id=cid, voice_type=ty)
            if ty == "neutral":
                labels.setdefault("emotion", "neutral")
            elif ty == "target" and spoken in EMOTIONS:
                labels.setdefault("emotion", EMOTIONS[spoken])
            items.append(EchoMindItem(
                id=f"{cid}_{ty}", case_id=cid, voice_type=ty, audio=root / rel, audio_file=rel, script=script,
                reference_reply=ref,
                reference_audio=root / ref_audio if isinstance(ref_audio, str) and (root / ref_audio).is_file() else None,
                topic=case.get("topic"), spoken_info=spoken, labels=labels,
            ))
        if not found:
            problems.append(f"{script_info}: case {cid}: no input audio for voice type(s) {', '.join(voice_types)}")
    return items, problems


def _report_skipped(problems: list[str], what: str) -> None:
    if problems:
        warnings.warn(f"skipped {len(problems)} EchoMind case(s) {what}:\n" + "\n".join(problems),
                      EchoMindWarning, stacklevel=3)


def script_info_to_manifest(
    script_info_path: str | Path,
    audio_root: str | Path | None,
    out_manifest: str | Path,
    voice_types: Sequence[str] = VOICE_TYPES,
    system_prompt: str | None = None,
) -> Path:
    """Write our JSONL manifest: one line per (case, voice type) with audio and a reference reply.

    Lines: id `<case_id>_<ty>`, user_audio (relative to the manifest's folder when under it, else
    absolute), user_text (the script), reply_text (the reference reply, which our manifest requires),
    reply_audio when given, and labels case_id, voice_type, topic, spoken_info, emotion (target cues
    that are emotions; `neutral` for the neutral voice) and any other scalar keys of the case.
    system_prompt: a text, or one of EchoMind's prompt modes `no` / `basic` / `enhance` per case.
    Skipped cases (missing audio, no reference reply) are listed in an EchoMindWarning; when no
    line is left, EchoMindError lists them all.
    """
    from ..data.manifest import Example, example_to_json

    out = Path(out_manifest)
    items, problems = script_info_items(script_info_path, audio_root, voice_types)
    lines = []
    for it in items:
        if not it.reference_reply:
            problems.append(f"{script_info_path}: case {it.case_id} ({it.voice_type}): no reference reply "
                            f"('{it.voice_type}_response' in {it.voice_type}_audio_info); our manifest needs reply_text")
            continue
        prompt = echomind_system_prompt(system_prompt, it.topic, it.spoken_info) \
            if system_prompt in PROMPT_MODES else system_prompt
        ex = Example(id=it.id, reply_text=it.reference_reply, user_audio=it.audio.resolve(), user_text=it.script,
                     system_prompt=prompt, reply_audio=it.reference_audio.resolve() if it.reference_audio else None,
                     labels=it.labels)
        lines.append(json.dumps(example_to_json(ex, out.parent), ensure_ascii=False))
    if not lines:
        raise EchoMindError(f"{script_info_path}: no usable case; {len(problems)} problem(s):\n" + "\n".join(problems))
    _report_skipped(problems, f"while writing {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def echomind_system_prompt(mode: str | None, topic: str | None, spoken_info: str | None) -> str | None:
    """EchoMind's generic system prompts: `no` → "", `basic`, `enhance` (by vocal-cue kind); None → None."""
    if mode is None:
        return None
    if mode not in PROMPT_MODES:
        raise EchoMindError(f"unknown EchoMind prompt mode {mode!r}; use {', '.join(PROMPT_MODES)}")
    if mode == "no":
        return ""
    task = "Your task is to provide a one-turn response based on the input audio"
    scene = f"The current topic/scenario is: {topic}.\n"
    if mode == "basic":
        return f"You are a helpful assistant.\n{scene}{task}."
    if spoken_info in SPEAKER_TRAITS:
        return (f"You are an assistant in a customer service setting.\n{scene}{task}, considering both the "
                "spoken content and any personal information present in the user's voice. The response should:\n"
                "- Include an appropriate form of address based on the personal information.\n"
                "- Be tailored to the content of the user's spoken text and their personal information.\n"
                "- Avoid any form of gender bias.")
    if str(spoken_info or "").startswith("sound of"):
        return f"You are a helpful assistant.\n{scene}{task}, considering both the spoken content and any background sounds present."
    return (f"You are a helpful assistant.\n{scene}{task}, considering both the spoken content and any voice "
            "characteristics present in the user's voice.")


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
    ) -> dict[str, str]:
        """EchoMind's call: reply to the wav at `audio`; write the spoken reply to `output_file` when
        `audio_output` is truthy. Returns {"response_audio_transcript": str, "response_text": str}.

        system_prompt: "" for none, None for the checkpoint's default. max_new_tokens: Thinker budget.
        """
        from ..seeding import derive_seed
        from ..token2wav import SAMPLE_RATE

        if not isinstance(audio, (str, Path)) or not Path(audio).is_file():
            raise AudioError(f"{audio}: EchoMind input audio not found; check the benchmark's root_dir / data_type "
                             "(inputs live in dataset/data_<type>/audio/)")
        if isinstance(system_prompt, (tuple, list)):
            system_prompt = "".join(system_prompt)
        saslm = self.saslm
        conv = saslm.conversation(audio=str(audio), text=user_instruction or None, system_prompt=system_prompt)
        try:
            reply_ids = saslm.model.generate_replies(**saslm.encode_prompts([conv]),
                                                     max_new_tokens=max_new_tokens or self.max_reply_tokens)
        except EmptyReplyError as exc:
            warnings.warn(f"{audio}: {exc}; returning an empty response", stacklevel=2)
            return {"response_audio_transcript": "", "response_text": ""}
        reply = saslm.processor.decode(reply_ids[0]).strip()
        if not audio_output:
            return {"response_audio_transcript": reply, "response_text": reply}
        seeds = None if self.seed is None else [derive_seed(self.seed, "talker", 0)]
        out = saslm.rollouts([conv], 1, self.sampling, reply_ids, self.speaker, seeds=seeds, decode_seed=self.seed,
                             mode=self.mode)
        wav = out.waveforms[0].float().cpu().numpy()
        from ..audio import write_wav

        write_wav(output_file, wav, SAMPLE_RATE)
        transcript = self._asr([wav], SAMPLE_RATE)[0].strip() if self._asr is not None else reply
        return {"response_audio_transcript": transcript, "response_text": reply}


# ---- running the benchmark's cases ------------------------------------------------------------
def run_echomind(
    model: EchoMindModel,
    script_info: str | Path,
    out_dir: str | Path,
    audio_root: str | Path | None = None,
    voice_types: Sequence[str] = VOICE_TYPES,
    prompt: str = "no",
    audio_output: bool = True,
    model_name: str = "sa-slm",
    progress: bool = True,
) -> list[dict]:
    """Every (case, voice type) through the adapter, as EchoMind's response script would.

    Writes out_dir/<id>.wav (audio_output; the id as a safe file name, see the module doc),
    out_dir/responses.jsonl (one line per item) and
    out_dir/output_responses.json (the script_info cases with EchoMind's `output_content` filled in,
    for its evaluation scripts). prompt: EchoMind mode `no` / `basic` / `enhance`, or a literal text.
    Returns the responses.jsonl rows. Skipped cases are listed in an EchoMindWarning.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    items, problems = script_info_items(script_info, audio_root, voice_types)
    if not items:
        raise EchoMindError(f"{script_info}: no case with an input wav; {len(problems)} problem(s):\n" + "\n".join(problems))
    _report_skipped(problems, f"of {script_info} (each line says why)")
    out.mkdir(parents=True, exist_ok=True)
    cases: dict[str, dict] = {}
    for case in copy.deepcopy(read_script_info(script_info)):
        cases.setdefault(str(case["case_id"]), case)  # a repeated case_id was skipped with the items
    stems = distinct_filenames(it.id for it in items)
    rows = []
    with open(out / "responses.jsonl", "w", encoding="utf-8") as f:
        for it in tqdm(items, desc="EchoMind", unit="item", disable=not progress):
            system = echomind_system_prompt(prompt, it.topic, it.spoken_info) if prompt in PROMPT_MODES else prompt
            wav_path = path_inside(out, stems[it.id], suffix=".wav")
            wav_path.unlink(missing_ok=True)  # no stale audio from an earlier run
            resp = model.generate_audio(str(it.audio), str(wav_path), system, audio_output=audio_output)
            written = audio_output and wav_path.is_file()
            row = {"id": it.id, "case_id": it.case_id, "voice_type": it.voice_type, "input_audio": str(it.audio),
                   "output_wav": wav_path.name if written else None, "system_prompt": system,
                   "topic": it.topic, "spoken_info": it.spoken_info, "script": it.script,
                   "reference_reply": it.reference_reply, **resp}
            rows.append(row)
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            case = cases[it.case_id]
            case["model"], case["ouput_prompt"] = model_name, prompt  # EchoMind's key spelling
            content = case.setdefault("output_content", {t: {} for t in VOICE_TYPES})
            content.setdefault(it.voice_type, {}).update(file=row["output_wav"] or "", **resp)
    (out / "output_responses.json").write_text(json.dumps(list(cases.values()), ensure_ascii=False, indent=4),
                                               encoding="utf-8")
    return rows


# ---- command line -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sa_slm.eval.echomind",
                                     description="EchoMind benchmark adapter for SA-SLM checkpoints")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p):
        p.add_argument("--script-info", required=True, help="EchoMind script_info JSON")
        p.add_argument("--audio-root", default=None, help="folder the input audio paths are relative to "
                       "(default: audio/ beside the script_info file)")
        p.add_argument("--voice-types", nargs="+", default=list(VOICE_TYPES), choices=VOICE_TYPES)

    r = sub.add_parser("run", help="answer every case and write DIR/<id>.wav + DIR/responses.jsonl")
    data_args(r)
    r.add_argument("--model", default="tiny", help="preset (tiny, random-3b, random-7b), local folder or hub id")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--device", default=None)
    r.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="Thinker/Talker dtype")
    r.add_argument("--speaker", default=None, help="Token2Wav speaker (default: the model's default)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--asr", default=None, help="transcribe the spoken replies: model, pocketsphinx, whisper:<path>, ...")
    r.add_argument("--prompt", default="no", help="EchoMind system prompt mode: no, basic, enhance (or a literal text)")
    r.add_argument("--no-audio", action="store_true", help="text replies only (EchoMind without --audio_output)")
    r.add_argument("--no-bridge", action="store_true", help="speak through the stock h + e path")
    r.add_argument("--greedy", action="store_true", help="greedy Talker decoding")
    r.add_argument("--max-reply-tokens", type=int, default=None)
    r.add_argument("--max-new-codes", type=int, default=None, help="Talker budget (50 codes per second)")

    m = sub.add_parser("to-manifest", help="convert script_info into our JSONL manifest")
    data_args(m)
    m.add_argument("--out", required=True, help="output manifest (.jsonl)")
    m.add_argument("--system-prompt", default=None, help="no, basic, enhance (EchoMind's) or a literal text; "
                   "default: none (the checkpoint's default prompt)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EchoMindWarning)
            if args.command == "to-manifest":
                path = script_info_to_manifest(args.script_info, args.audio_root, args.out, args.voice_types,
                                               args.system_prompt)
                n = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
                print(f"wrote {path}: {n} example(s)")
            else:
                read_script_info(args.script_info)  # a bad file fails before a (slow) model load
                from ..talker.sampling import SamplingConfig

                model = EchoMindModel(args.model, speaker=args.speaker, seed=args.seed, asr=args.asr,
                                      mode="add" if args.no_bridge else None, device=args.device, dtype=args.dtype,
                                      max_reply_tokens=args.max_reply_tokens,
                                      sampling=SamplingConfig(do_sample=not args.greedy,
                                                              max_new_codes=args.max_new_codes))
                rows = run_echomind(model, args.script_info, args.out, args.audio_root, args.voice_types,
                                    prompt=args.prompt, audio_output=not args.no_audio)
                print(f"wrote {len(rows)} response(s) to {Path(args.out) / 'responses.jsonl'}")
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
    except SASLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
