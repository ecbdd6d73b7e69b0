"""`clip_metrics`: every metric of a batch of clips in one call, one dict per clip."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from .acoustic import acoustic_metrics
from .emotion import EmoAlign
from .wer import Transcriber, transcribe_and_score

ClipMetrics = dict[str, float | str | bool | list[str] | None]
PER_WORD_KEYS = ("speaking_rate_wps", "wer")  # measures that divide by, or compare, the reply's words
TRUNCATED_REASON = ("audio cut by the code budget (the Talker never ended the reply), so it does not "
                    "hold all of the reply's words; left out of the per-word measures")


def clip_metrics(
    wavs: list[np.ndarray],
    sample_rate: int,
    texts: list[str],
    emotions: Sequence[str | None] | None = None,
    transcribe: Transcriber | None = None,
    emo: EmoAlign | None = None,
    progress: bool = False,
    truncated: Sequence[bool] | None = None,
) -> list[ClipMetrics]:
    """Acoustic measures of each clip (`ACOUSTIC_KEYS`), plus `transcript` and `wer` against `texts`
    when `transcribe` is given, plus `emo_align`, `emo_pred` and `emo_reason` (None without a usable
    `emo`). `texts` are what each clip should say; `emotions` the target emotion of each clip.

    A measure that fails on a clip leaves None for its keys and adds `"<measure>: <reason>"` to that
    clip's `errors`; the batch always completes. Clips that are not usable audio (empty, NaN) skip
    the recogniser and the classifier.

    truncated: per clip, True where the audio was cut by the code budget. Such a clip keeps
    `truncated: True` and its whole-clip measures but gets None for `PER_WORD_KEYS` (its words are
    not all in the audio), with the reason in `errors`, so no mean counts it. Every row carries
    `truncated` (False without the flags).
    """
    if len(texts) != len(wavs) or (emotions is not None and len(emotions) != len(wavs)) or \
            (truncated is not None and len(truncated) != len(wavs)):
        raise ValueError(f"{len(wavs)} clips need as many texts ({len(texts)}), emotions "
                         f"({'none' if emotions is None else len(emotions)}) and truncation flags "
                         f"({'none' if truncated is None else len(truncated)})")
    rows: list[ClipMetrics] = []
    for wav, text in tqdm(zip(wavs, texts), total=len(wavs), desc="acoustic metrics", disable=not progress):
        stats, errors = acoustic_metrics(wav, sample_rate, text)
        rows.append({**stats, "errors": errors})
    usable = [i for i, row in enumerate(rows) if row["duration_s"] is not None]
    if transcribe is not None:
        for row in rows:
            row.update(transcript=None, wer=None)
        scored = transcribe_and_score([wavs[i] for i in usable], sample_rate, [texts[i] for i in usable],
                                      transcribe, progress=progress)
        for i, result in zip(usable, scored):
            rows[i].update(transcript=result.transcript, wer=result.wer)
            if result.error:
                rows[i]["errors"].append(result.error)
    for row, cut in zip(rows, truncated if truncated is not None else [False] * len(rows)):
        row["truncated"] = bool(cut)
        for key in PER_WORD_KEYS:
            if cut and key in row:
                row[key] = None
                row["errors"].append(f"{key.removesuffix('_wps')}: {TRUNCATED_REASON}")
    for row in rows:
        row.update(emo_align=None, emo_pred=None, emo_reason=None if emo is None else emo.reason)
    if emo is not None and emo.available:
        targets = [emotions[i] for i in usable] if emotions is not None else None
        for i, score in zip(usable, emo([wavs[i] for i in usable], sample_rate, targets, progress=progress)):
            rows[i].update(emo_align=score.align, emo_pred=score.pred, emo_reason=score.reason)
            if score.pred is None and score.reason:
                rows[i]["errors"].append(f"emo_align: {score.reason}")
    return rows
