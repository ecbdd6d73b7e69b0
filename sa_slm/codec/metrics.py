"""Speech-tokenizer quality: held-out code accuracy, round-trip mel distance and code stability."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jiwer
import torch
from tqdm.auto import tqdm

from ..audio import load_audio
from ..data.manifest import Example
from ..metrics.wer import Transcriber, normalise_text
from ..seeding import derive_seed
from ..speakers import Speaker
from .data import CodePairDataset, collate_pairs
from .encoder import LogMel, SpeechTokenizer

if TYPE_CHECKING:
    from ..modeling import SASLMOmniModel


@dataclass
class AccuracyReport:
    accuracy: float  # fraction of held-out codes predicted exactly
    chance: float  # accuracy of always answering the most frequent training code
    codes: int


@torch.no_grad()
def code_accuracy(tokenizer: SpeechTokenizer, heldout: CodePairDataset, train_codes: list[list[int]],
                  batch_size: int = 8, progress: bool = True) -> AccuracyReport:
    tokenizer.eval()
    majority = Counter(c for seq in train_codes for c in seq).most_common(1)[0][0]
    hits = total = majority_hits = 0
    for start in tqdm(range(0, len(heldout), batch_size), desc="held-out accuracy", disable=not progress):
        batch = collate_pairs([heldout[i] for i in range(start, min(start + batch_size, len(heldout)))])
        if not len(batch["audio"]):  # every clip of this batch failed to load (logged by the dataset)
            continue
        batch = {k: v.to(tokenizer.device) for k, v in batch.items() if k != "is_real"}
        pred = tokenizer(batch["audio"], batch["audio_lengths"])["logits"].argmax(-1)
        steps = min(pred.shape[1], batch["codes"].shape[1])
        mask = torch.arange(steps, device=pred.device)[None] < batch["code_lengths"][:, None]
        mask &= torch.arange(steps, device=pred.device)[None] < tokenizer.num_codes(batch["audio_lengths"])[:, None]
        target = batch["codes"][:, :steps]
        hits += int(((pred[:, :steps] == target) & mask).sum())
        majority_hits += int(((target == majority) & mask).sum())
        total += int(mask.sum())
    return AccuracyReport(hits / max(total, 1), majority_hits / max(total, 1), total)


@dataclass
class RoundTripReport:
    mel_l1: float  # mean |log-mel(x) - log-mel(decode(encode(x)))| over frames and bins
    code_agreement: float  # fraction of encode(decode(encode(x))) equal to encode(x)
    clips: int
    wer: float | None = None  # WER of the resynthesised audio against `texts`, when an ASR is given


@torch.no_grad()
def round_trip(tokenizer: SpeechTokenizer, model: "SASLMOmniModel", speaker: Speaker, wavs: list[torch.Tensor],
               seed: int = 0, progress: bool = True, transcribe: Transcriber | None = None,
               texts: list[str] | None = None) -> RoundTripReport:
    """x → codes → Token2Wav audio (`model`'s decoder, `speaker`) → codes again, at the tokenizer's
    sample rate (24 kHz); clips of any length (`encode_long`). With a recogniser and `texts`, the round
    trip's corpus WER (normalised text)."""
    tokenizer.eval()
    mel = LogMel(tokenizer.config).to(tokenizer.device)
    l1, agree, n_codes, refs, hyps = [], 0, 0, [], []
    for i, wav in enumerate(tqdm(wavs, desc="round trip", disable=not progress)):
        wav = wav.to(tokenizer.device)[None]
        codes = tokenizer.encode_long([wav[0]])[0]
        if codes.numel() == 0:
            continue
        resynth = model.decode_codes([codes], [speaker], [derive_seed(seed, "round trip", i)])[0]
        resynth = resynth.to(tokenizer.device)[None]
        again = tokenizer.encode_long([resynth[0]])[0]
        n = min(len(codes), len(again))
        agree += int((codes[:n] == again[:n]).sum())
        n_codes += len(codes)
        a, b = mel(wav), mel(resynth)
        frames = min(a.shape[1], b.shape[1])
        l1.append(float((a[:, :frames] - b[:, :frames]).abs().mean()))
        if transcribe is not None and texts is not None:
            refs.append(normalise_text(texts[i]))
            hyps.append(normalise_text(transcribe([resynth[0].cpu().numpy()], tokenizer.config.sample_rate)[0]))
    wer = jiwer.wer(refs, hyps) if refs else None
    return RoundTripReport(sum(l1) / max(len(l1), 1), agree / max(n_codes, 1), len(l1), wer)


def evaluate_tokenizer(tokenizer: SpeechTokenizer, model: "SASLMOmniModel", speaker: Speaker,
                       train: list[Example], heldout: list[Example], real: list[Example], clips: int,
                       seed: int = 0) -> dict[str, float | int | None]:
    """Stage 0's report: held-out code accuracy (against the majority-code baseline), the round trip of
    held-out bootstrapped clips, and the round trip of real speech (`real`, may be empty)."""
    metrics: dict[str, float | int | None] = {}
    rate = tokenizer.config.sample_rate

    def clips_of(examples: list[Example]) -> list[torch.Tensor]:
        return [torch.from_numpy(load_audio(ex.reply_audio, rate)) for ex in examples]

    if heldout:
        acc = code_accuracy(tokenizer, CodePairDataset(heldout, tokenizer.config, seed), [ex.reply_codes for ex in train])
        metrics.update(heldout_code_accuracy=acc.accuracy, chance_accuracy=acc.chance, heldout_codes=acc.codes)
    own = round_trip(tokenizer, model, speaker, clips_of(heldout[:clips]), seed=seed)
    metrics.update(self_round_trip_code_agreement=own.code_agreement, self_round_trip_mel_l1=own.mel_l1)
    real = [ex for ex in real if ex.reply_audio][:clips]
    if real:
        rt = round_trip(tokenizer, model, speaker, clips_of(real), seed=seed)
        metrics.update(real_round_trip_mel_l1=rt.mel_l1, real_round_trip_code_agreement=rt.code_agreement,
                       real_round_trip_clips=rt.clips, real_round_trip_wer=rt.wer)  # None without an ASR
    return metrics
