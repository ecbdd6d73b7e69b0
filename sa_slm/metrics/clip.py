"""`clip_metrics`: every metric of a batch of clips in one call, one dict per clip."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from .acoustic import acoustic_metrics
from .emotion import EmoAlign
from .wer import Transcriber, transcribe_and_score

ClipMetrics = dict[str, float | str | list[str] | None]


def clip_metrics(
    wavs: list[np.ndarray],
    sample_rate: int,
    texts: list[str],
    emotions: Sequence[str | None] | None = None,
    transcribe: Transcriber | None = None,
    emo: EmoAlign | None = None,
    progress: bool = False,
) -> list[ClipMetrics]:
    """Acoustic measures of each clip (`ACOUSTIC_KEYS`), plus `transcript` and `wer` against `texts`
    when `transcribe` is given, plus `emo_align`, `emo_pred` and `emo_reason` (None without a usable
    `emo`). `texts` are what each clip should say; `emotions` the target emotion of each clip.

    A measure that fails on a clip leaves None for its keys and adds `"<measure>: <reason>"` to that
    clip's `errors`; the batch always completes. Clips that are not usable audio (empty, NaN) skip
    the recogniser and the classifier.
    """
    if len(texts) != len(wavs) or (emotions is not None and len(emotions) != len(wavs)):
        raise ValueError(f"{len(wavs)} clips need as many texts ({len(texts)}) and emotions "
                         f"({'none' if emotions is None else len(emotions)})")
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
    for row in rows:
        row.update(emo_align=None, emo_pred=None, emo_reason=None if emo is None else emo.reason)
    if emo is not None and emo.available:
        targets = [emotions[i] for i in usable] if emotions is not None else None
        for i, score in zip(usable, emo([wavs[i] for i in usable], sample_rate, targets, progress=progress)):
            rows[i].update(emo_align=score.align, emo_pred=score.pred, emo_reason=score.reason)
            if score.pred is None and score.reason:
                rows[i]["errors"].append(f"emo_align: {score.reason}")
    return rows
