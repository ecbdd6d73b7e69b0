"""Speech recognisers for the WER gate and the evaluation metrics, behind one call signature:
`transcribe(wavs: list[np.ndarray], sample_rate: int) -> list[str]`.

- `model`: the SA-SLM policy itself transcribes (proxy-free default of the WER gate);
- `pocketsphinx`: an offline English recogniser whose model ships inside the PyPI package;
- `whisper`: transformers' Whisper from a local path or hub id (`whisper:openai/whisper-small`);
- `funasr`: Paraformer/SenseVoice through the optional `funasr` extra (`funasr:paraformer-en`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .audio import resample
from .errors import SASLMError
from .metrics.wer import Transcriber
from .pipeline import encode_prompts
from .processor import Conversation, OmniProcessor

if TYPE_CHECKING:
    from .modeling import SASLMOmniModel

TRANSCRIBE_PROMPT = "Transcribe the speech exactly, with no other words."
BACKENDS = ("model", "pocketsphinx", "whisper:<path or id>", "funasr:<model>")


class ModelASR:
    """The policy transcribes audio itself (proxy-free default for the WER gate)."""

    def __init__(self, model: "SASLMOmniModel", processor: OmniProcessor, max_new_tokens: int = 64) -> None:
        self.model, self.processor, self.max_new_tokens = model, processor, max_new_tokens

    @torch.no_grad()
    def __call__(self, wavs: list[np.ndarray], sample_rate: int) -> list[str]:
        p = self.processor
        convs = [Conversation.user(TRANSCRIBE_PROMPT, p.load_audio(w, sampling_rate=sample_rate)) for w in wavs]
        batch = encode_prompts(p, self.model, convs)
        ids = self.model.generate_replies(**batch, max_new_tokens=self.max_new_tokens, allow_empty=True)
        return [p.decode(i).strip() for i in ids]


class PocketSphinxASR:
    """CMU PocketSphinx with its bundled US-English model (16 kHz, fully offline).

    Each clip is decoded from the same starting state: the decoder's feature front end (its
    noise-floor tracker and cepstral-mean estimate adapt to what it has heard) is rebuilt before every
    clip, so a transcript never depends on which clips were decoded before it. Rebuilding costs
    ~0.2 ms; a new decoder per clip would reload the acoustic and language models (~0.7 s).
    """

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise SASLMError("the pocketsphinx ASR backend needs `pip install pocketsphinx`") from exc
        self.decoder = Decoder(samprate=16_000, loglevel="FATAL")

    def __call__(self, wavs: list[np.ndarray], sample_rate: int) -> list[str]:
        texts = []
        for wav in wavs:
            pcm = (np.clip(resample(np.asarray(wav, dtype=np.float32), sample_rate, 16_000), -1, 1) * 32767)
            if pcm.size == 0:  # nothing to hear (an empty rollout); the decoder fails on empty input
                texts.append("")
                continue
            self.decoder.reinit_feat()  # forget the previous clips' noise floor and cepstral mean
            self.decoder.start_utt()
            try:
                self.decoder.process_raw(pcm.astype(np.int16).tobytes(), full_utt=True)
            finally:  # an utterance left open makes every later start_utt fail
                self.decoder.end_utt()
            hyp = self.decoder.hyp()
            texts.append(hyp.hypstr if hyp is not None else "")
        return texts


class WhisperASR:
    """transformers' Whisper (any local folder or hub id)."""

    def __init__(self, name_or_path: str, device: str | None = None) -> None:
        from transformers import pipeline

        self.pipe = pipeline("automatic-speech-recognition", model=name_or_path, device=device)

    def __call__(self, wavs: list[np.ndarray], sample_rate: int) -> list[str]:
        target = self.pipe.feature_extractor.sampling_rate
        inputs = [{"raw": resample(np.asarray(w, dtype=np.float32), sample_rate, target), "sampling_rate": target}
                  for w in wavs]
        return [out["text"].strip() for out in self.pipe(inputs)]


class FunASR:
    """Paraformer / SenseVoice through funasr (optional extra; its weights come from a model hub)."""

    def __init__(self, model: str) -> None:
        try:
            from funasr import AutoModel
        except ImportError as exc:
            raise SASLMError("the funasr ASR backend needs the optional extra: pip install 'sa-slm[funasr]'") from exc
        self.model = AutoModel(model=model)

    def __call__(self, wavs: list[np.ndarray], sample_rate: int) -> list[str]:
        return [self.model.generate(input=resample(np.asarray(w, dtype=np.float32), sample_rate, 16_000))[0]["text"]
                for w in wavs]


def check_asr_spec(spec: str) -> None:
    """Raise SASLMError for a spec `load_asr` would not know (checked before any model loads)."""
    kind, _, arg = spec.partition(":")
    if kind in ("model", "pocketsphinx") and not arg or kind in ("whisper", "funasr") and arg:
        return
    raise SASLMError(f"unknown ASR backend {spec!r}; use one of {', '.join(BACKENDS)}")


def load_asr(spec: str, model: "SASLMOmniModel | None" = None, processor: OmniProcessor | None = None) -> Transcriber:
    """`model` (needs the policy and its processor) | `pocketsphinx` | `whisper:<path or id>` | `funasr:<model>`."""
    check_asr_spec(spec)
    kind, _, arg = spec.partition(":")
    if kind == "model":
        if model is None or processor is None:
            raise SASLMError("the `model` ASR backend needs the SA-SLM model (and processor) that should transcribe")
        return ModelASR(model, processor)
    if kind == "pocketsphinx":
        return PocketSphinxASR()
    if kind == "whisper":
        return WhisperASR(arg)
    return FunASR(arg)
