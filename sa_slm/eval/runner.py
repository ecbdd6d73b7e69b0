"""`sa-slm eval`: run models over an evaluation manifest and measure how they speak.

Writes into `output_dir`:
    wavs/<model>/<item id>.wav   every generated reply (24 kHz); model names and item ids pass through
                                 `sa_slm.paths.distinct_filenames` (unsafe characters replaced, a hash
                                 added where a name changed, distinct even ignoring case), and every
                                 path is joined by `path_inside`, so nothing is written outside `output_dir`
    items.jsonl                  one row per (model, item): text, wav, metrics, `truncated` (the code
                                 budget cut the reply: no per-word metrics), or the error that stopped it
    summary.json, summary.md     per-model mean ± std of every metric, side by side
    report/index.html            tables, distributions, F0 contours, training curves, audio players

Bad lines of the manifest (missing audio, empty reference, a repeated id, ...) and items that fail
to generate become rows with an `error`; every other item is evaluated. On resume, a torn last line of
items.jsonl (a run killed while writing it) is dropped with a warning and its item evaluated again; a
bad line elsewhere is an error naming `items.jsonl:<line>`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..asr import check_asr_spec, load_asr
from ..audio import load_audio, write_wav
from ..config import ConfigError, dump_config, torch_dtype
from ..critic import RubricCritic, load_rubric
from ..data.collate import example_conversation
from ..data.manifest import BadLine, Example, read_manifest
from ..errors import SASLMError
from ..facade import SASLM, resolve_device
from ..metrics import EmoAlign, clip_metrics
from ..metrics.failures import failure
from ..paths import distinct_filenames, is_inside, path_inside, write_text_atomic
from ..processor import Conversation, OmniProcessor
from ..seeding import derive_seed, prompt_seeds
from ..token2wav import SAMPLE_RATE
from .config import EvalConfig, ModelEntry
from .report import write_report
from .summary import read_rows, summarise, summary_markdown

log = logging.getLogger(__name__)
LABEL_KEYS = ("transcript", "emo_pred", "emo_reason")  # text that clip_metrics returns beside the numbers


@dataclass
class EvalRun:
    run_dir: Path
    items: Path  # items.jsonl
    summary: dict
    report: Path


@dataclass
class Spoken:
    """One generated reply, or why it could not be generated."""

    example: Example
    conversation: Conversation | None = None
    text: str | None = None
    wav: np.ndarray | None = None  # 24 kHz
    error: str | None = None
    truncated: bool = False  # the code budget cut the reply (no EOS): the audio lacks its last words


def _speak(saslm: SASLM, entry: ModelEntry, cfg: EvalConfig, items: list[Spoken]) -> None:
    """Generate the replies of `items` in one batched call (fills text and wav in place).

    Each item's Talker seed comes from its id and its Token2Wav seed is shared, so its audio does not depend
    on the batch, and items do not share the Talker's random draws (which would end every item's reply at
    the same steps).
    """
    replies = None
    if cfg.reply == "given":
        replies = [torch.tensor(saslm.processor.encode_reply(s.example.reply_text)) for s in items]
    speakers = [s.example.speaker or entry.speaker for s in items]
    out = saslm.rollouts([s.conversation for s in items], 1, cfg.sampling, replies, speakers,
                         seeds=prompt_seeds(cfg.seed, [s.example.id for s in items], 1, "talker"), decode=False,
                         mode=entry.mode)
    wavs = saslm.model.decode_codes([out.codes.audio_codes(r) for r in range(len(items))],
                                    [saslm.speakers[name] for name in speakers],
                                    [derive_seed(cfg.seed, "token2wav", 0)] * len(items))
    for s, text, wav, ended in zip(items, out.reply_texts, wavs, out.codes.finished.tolist()):
        s.text, s.wav, s.truncated = text, wav.numpy(), not ended


def speak_items(saslm: SASLM, entry: ModelEntry, cfg: EvalConfig, examples: list[Example]) -> list[Spoken]:
    """Spoken replies of every example, `batch_size` prompts per call; a failing batch is retried item
    by item, so one bad item (unreadable audio, empty reply, unknown speaker) costs only itself."""
    spoken = [Spoken(ex) for ex in examples]
    for s in spoken:
        try:
            s.conversation = example_conversation(saslm.processor, s.example)
            saslm.speakers[s.example.speaker or entry.speaker]
            if cfg.reply == "given" and not saslm.processor.encode_reply(s.example.reply_text):
                raise ValueError("reply_text tokenises to nothing")
        except Exception as exc:  # noqa: BLE001 - recorded on the item's row
            s.error = failure("input", exc)
    ready = [s for s in spoken if s.error is None]
    batches = [ready[i: i + cfg.batch_size] for i in range(0, len(ready), cfg.batch_size)]
    for batch in tqdm(batches, desc=f"{entry.name}: speaking", unit="batch"):
        try:
            _speak(saslm, entry, cfg, batch)
        except Exception:  # noqa: BLE001 - isolate the item that failed
            for s in batch:
                try:
                    _speak(saslm, entry, cfg, [s])
                except Exception as exc:  # noqa: BLE001
                    s.error = failure("generation", exc)
    return spoken


def read_references(examples: list[Example], processor: OmniProcessor | None) -> list[Spoken]:
    """The manifest's own reply recordings as a column (`source: reference`): what the metrics say of
    the ground truth. `processor` builds the dialogue contexts the critic needs (None: no critic)."""
    spoken = []
    for ex in examples:
        s = Spoken(ex, text=ex.reply_text)
        try:
            if ex.reply_audio is None:
                raise ValueError(f"{ex.source}: no reply_audio to evaluate as the reference")
            s.wav = load_audio(ex.reply_audio, SAMPLE_RATE)
            s.conversation = example_conversation(processor, ex) if processor is not None else None
        except Exception as exc:  # noqa: BLE001 - recorded on the item's row
            s.error = failure("input", exc)
        spoken.append(s)
    return spoken


def critic_metrics(critic: RubricCritic, spoken: list[Spoken]) -> list[dict[str, float | str]]:
    """`critic_<dimension>` and `critic_utility` of each reply, scored under the same per-clip failure
    policy as stage 3's rubric rewards (`RubricCritic.score_clips`); a clip that fails gets `critic_error`."""
    out = []
    for s in tqdm(spoken, desc="critic", unit="clip"):
        try:
            scored = critic.score_clips(s.conversation, s.text, [s.wav], SAMPLE_RATE)
        except Exception as exc:  # noqa: BLE001 - e.g. the instance rubric could not be written
            out.append({"critic_error": failure("critic", exc)})
            continue
        clip = scored.results[0]
        if clip is None:
            log.warning("%s: critic failed: %s", s.example.id, scored.errors[0])
            out.append({"critic_error": scored.errors[0]})
            continue
        out.append({**{f"critic_{name}": value for name, value in clip.scores.items()}, "critic_utility": clip.utility})
    return out


def _bad_line_row(model: str, bad: BadLine) -> dict:
    return {"model": model, "id": bad.id, "wav": None, "text": None, "emotion": None,
            "error": f"{bad.where}: " + "; ".join(bad.problems), "metrics": {}}


def evaluate_model(spoken: list[Spoken], entry: ModelEntry, cfg: EvalConfig, run_dir: Path, transcribe,
                   critic: RubricCritic | None, emo: EmoAlign, wav_names: tuple[str, dict[str, str]]) -> list[dict]:
    """Rows of one column: write the wavs, measure every clip, record every failure.

    wav_names: (this model's folder name, item id -> file stem), from `distinct_filenames`.
    """
    folder, stems = wav_names
    done = [s for s in spoken if s.error is None]
    emotions = [s.example.labels.get(cfg.emotion_key) for s in done]
    measured = clip_metrics([s.wav for s in done], SAMPLE_RATE, [s.text for s in done],
                            [e if isinstance(e, str) else None for e in emotions], transcribe, emo, progress=True,
                            truncated=[s.truncated for s in done])
    judged = critic_metrics(critic, done) if critic is not None else [{} for _ in done]
    results = iter(zip(measured, judged))  # in the order of `done`
    rows = []
    for s in spoken:
        row = {"model": entry.name, "id": s.example.id, "wav": None, "text": s.text,
               "reference": s.example.reply_text, "emotion": s.example.labels.get(cfg.emotion_key),
               "error": s.error, "metrics": {}}
        if s.error is None:
            metrics, judged_row = next(results)
            errors = list(metrics.pop("errors", []))
            row["truncated"] = metrics.pop("truncated")
            if "critic_error" in judged_row:
                errors.append(judged_row.pop("critic_error"))
            labels = {k: v for k, v in metrics.items() if k in LABEL_KEYS}  # per-item text, not metrics
            metrics = {k: v for k, v in metrics.items() if k not in LABEL_KEYS}
            row["metrics"] = {**metrics, **{k: v for k, v in labels.items() if v is not None}, **judged_row}
            row["metric_errors"] = errors
            wav_path = write_wav(path_inside(run_dir, "wavs", folder, stems[s.example.id], suffix=".wav"),
                                 s.wav, SAMPLE_RATE)
            row["wav"] = str(wav_path.relative_to(run_dir))
        rows.append(row)
    return rows


def _check(cfg: EvalConfig) -> None:
    """What the schema cannot say, checked before any model loads."""
    try:
        if cfg.asr:
            check_asr_spec(cfg.asr)
        if cfg.critic is not None:
            load_rubric(cfg.rubric)
    except SASLMError as exc:
        raise ConfigError(str(exc)) from exc
    resolve_device(cfg.device, "device")  # the device exists on this machine (cuda visible, index in range)


def run_eval(cfg: EvalConfig, loaded: dict[str, SASLM] | None = None) -> EvalRun:
    """Evaluate every model of `cfg` (or the already-loaded `loaded[name]`) and write the report."""
    _check(cfg)
    run_dir = Path(cfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / "config.yaml")
    examples, bad = read_manifest(cfg.manifest)
    if cfg.max_items is not None:
        examples = examples[: cfg.max_items]
    for b in bad:
        log.warning("skipped %s (%s): %s", b.id, b.where, "; ".join(b.problems))
    items_path = run_dir / "items.jsonl"
    previous = read_rows(items_path, drop_torn_tail=True) if cfg.resume and items_path.is_file() else []
    finished = {(r["model"], r["id"]) for r in previous if not r.get("error") and isinstance(r.get("wav"), str)
                and is_inside(run_dir, Path(r["wav"])) and (run_dir / r["wav"]).is_file()}
    folders = distinct_filenames(m.name for m in cfg.models)
    stems = distinct_filenames(ex.id for ex in examples)  # ids are unique: read_manifest reports repeats
    rows = [r for r in previous if (r["model"], r["id"]) in finished]
    emo = EmoAlign(cfg.emotion_model)
    dtype = torch_dtype(cfg.dtype)
    judge = None
    if cfg.critic not in (None, "self"):
        judge = SASLM.from_pretrained(cfg.critic, device=cfg.device, dtype=dtype)
    for entry in cfg.models:
        todo = [ex for ex in examples if (entry.name, ex.id) not in finished]
        rows += [_bad_line_row(entry.name, b) for b in bad]
        if not todo:
            continue
        if entry.source == "reference":  # judged by the critic checkpoint only: there is no "self"
            critic = RubricCritic(judge.model, judge.processor, cfg.rubric) if judge is not None else None
            transcribe = None
            if cfg.asr and (cfg.asr != "model" or judge):
                transcribe = load_asr(cfg.asr, *((judge.model, judge.processor) if judge else ()))
            spoken = read_references(todo, judge.processor if judge else None)
        else:
            saslm = (loaded or {}).get(entry.name) or SASLM.from_pretrained(
                entry.path, device=cfg.device, dtype=dtype, seed=cfg.seed, bridge=entry.bridge)
            critic_model = saslm if cfg.critic == "self" else judge
            critic = RubricCritic(critic_model.model, critic_model.processor, cfg.rubric) if critic_model else None
            listener = critic_model or saslm
            transcribe = load_asr(cfg.asr, listener.model, listener.processor) if cfg.asr else None
            spoken = speak_items(saslm, entry, cfg, todo)
        rows += evaluate_model(spoken, entry, cfg, run_dir, transcribe, critic, emo, (folders[entry.name], stems))
        _write_rows(items_path, rows)  # after each model: a crash later keeps what is done
    _write_rows(items_path, rows)
    models = [m.name for m in cfg.models]
    unavailable = {} if emo.available else {"emo_align": emo.reason}
    if not cfg.asr:
        unavailable["wer"] = "no ASR backend configured (asr: null)"
    summary = summarise(rows, models, unavailable)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (run_dir / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    logs = {stage: Path(folder) for stage, folder in cfg.training_logs.items()}
    report = write_report(run_dir, rows, summary, logs, cfg.f0_items)
    return EvalRun(run_dir, items_path, summary, report)


def _write_rows(path: Path, rows: list[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
