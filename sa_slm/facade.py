"""SASLM: the user-facing facade: load, save, generate, score, decode.

It bundles the policy (`SASLMOmniModel`), the processor and the speaker bank with the generation
budgets saved beside a checkpoint, and strings the policy's steps together for one call. It is for
users, the CLI, the demo and evaluation; library components take the narrow parts they need.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from .audio import AudioInput
from .bridge import IntentBridgeConfig
from .errors import EmptyReplyError, SASLMError
from .modeling import SASLMOutput, SASLMOmniModel
from .pipeline import encode_prompts, model_device, per_prompt, speak, speaker_bos
from .config import check_range
from .presets import PRESETS, RELEASED_SPEAKER_BOS, build_random_model, model_config, quiet_config_check
from .processor import Conversation, OmniProcessor, preset_feature_extractor
from .seeding import derive_seed
from .speakers import SPEAKER_FILE, SpeakerBank
from .talker.rollout import CodeRollouts
from .talker.sampling import SamplingConfig
from .token2wav import SAMPLE_RATE
from .tokenizer import build_omni_tokenizer

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .critic import CriticScores, Rubric

SASLM_CONFIG_FILE = "sa_slm_config.json"


@dataclass
class SASLMConfig:
    """Generation budgets saved next to the base model files (bridge settings live in config.json)."""

    max_reply_tokens: int = 256  # Thinker reply budget
    max_new_codes: int = 4096  # Talker budget (codes, 50 per second on the released models)

    @classmethod
    def from_json(cls, path: Path) -> "SASLMConfig":
        raw = json.loads(path.read_text(encoding="utf-8"))
        if "max_codes" in raw:  # the name this budget had before it was unified
            raw["max_new_codes"] = raw.pop("max_codes")
        return cls(**raw)


def resolve_device(device: str | torch.device | None, what: str = "device") -> torch.device:
    """`device` as a torch.device (None: cuda if visible, else cpu), checked to exist on this machine.

    what: how the caller names the setting in errors (`--device` on the command line).
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise SASLMError(f"{what} {device!r}: not a device; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise SASLMError(f"{what} {device}: no CUDA device is visible (torch.cuda.is_available() is False); "
                             f"use {what} cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise SASLMError(f"{what} {device}: only {torch.cuda.device_count()} CUDA device(s) are visible "
                             f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
    return resolved


@dataclass
class SpeechRollouts:
    """Replies and K spoken rollouts per prompt."""

    reply_ids: list[torch.Tensor]  # per prompt (n_b,) reply tokens, EOS excluded
    reply_texts: list[str]
    codes: CodeRollouts
    waveforms: list[torch.Tensor] = field(default_factory=list)  # per rollout (samples,), 24 kHz
    sample_rate: int = SAMPLE_RATE
    intents: list[torch.Tensor] | None = None  # per prompt (n_b, latent_dim) intent trajectory (vib_adaln)


@dataclass
class GenerationResult:
    """What `SASLM.generate` returns for one prompt."""

    reply_text: str
    waveforms: list[np.ndarray]  # num_samples waveforms at `sample_rate`
    codes: list[torch.Tensor]  # num_samples code sequences (EOS excluded)
    sample_rate: int = SAMPLE_RATE
    intent: torch.Tensor | None = None  # (reply tokens, latent_dim) intent trajectory in mode vib_adaln

    @property
    def waveform(self) -> np.ndarray:
        return self.waveforms[0]


class SASLM:
    """A Qwen2.5-Omni model with the SA-SLM Talker pipeline, its processor and its speakers."""

    def __init__(self, model: SASLMOmniModel, processor: OmniProcessor, speakers: SpeakerBank,
                 config: SASLMConfig | None = None) -> None:
        self.model = model.eval()
        self.processor = processor
        self.speakers = speakers
        self.config = config or SASLMConfig()

    @property
    def bridge(self):
        return self.model.intent_bridge

    # ---- loading and saving ------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        seed: int = 0,
        bridge: IntentBridgeConfig | None = None,
        **hub_kwargs,
    ) -> "SASLM":
        """Load a preset (`tiny`, `random-3b`, `random-7b`: random weights), a local folder or a hub id.

        bridge: intent-bridge settings to use instead of the saved ones (a stock checkpoint has none:
        mode `add`); new bridge weights start at their (zero) initialisation.
        """
        device = resolve_device(device)
        if str(name_or_path) in PRESETS:
            return cls.random(str(name_or_path), device=device, dtype=dtype or torch.float32, seed=seed, bridge=bridge)
        path = str(name_or_path)
        model_config(path, **hub_kwargs)  # a missing, empty or foreign folder: one clear error, no weights read
        with quiet_config_check():
            model = SASLMOmniModel.from_pretrained(path, dtype=dtype or "auto", device_map={"": device}, **hub_kwargs)
        if bridge is not None and bridge != model.intent_bridge.cfg:
            saved = model.intent_bridge.cfg
            new = model.replace_bridge(bridge, seed)
            log.info("%s: bridge %s replaced by %s; new weights at their initialisation: %s", path, saved, bridge,
                     ", ".join(new) or "none")
        model.token2wav.float()
        processor = OmniProcessor.from_pretrained(path, **hub_kwargs)
        speakers = SpeakerBank.from_speaker_map(model.speaker_map)
        local = Path(path) / SASLM_CONFIG_FILE
        return cls(model, processor, speakers, SASLMConfig.from_json(local) if local.is_file() else SASLMConfig())

    @classmethod
    def random(cls, preset: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
               seed: int = 0, bridge: IntentBridgeConfig | None = None) -> "SASLM":
        """Random weights of a preset's shape, a real Qwen2 tokenizer and random speakers."""
        model = build_random_model(preset, device=device, dtype=dtype, seed=seed, bridge=bridge)
        processor = OmniProcessor(build_omni_tokenizer(), preset_feature_extractor())
        dit = model.config.token2wav_config.dit_config
        speakers = SpeakerBank.random(RELEASED_SPEAKER_BOS, dit.enc_emb_dim, dit.mel_dim, seed=seed)
        model.speaker_map = {n: s.as_dict() for n, s in speakers.speakers.items()}
        tiny = preset == "tiny"
        config = SASLMConfig(max_reply_tokens=16 if tiny else 256, max_new_codes=100 if tiny else 4096)
        return cls(model, processor, speakers, config)

    def save_pretrained(self, path: str | Path) -> Path:
        """Hugging Face layout: base model files + spk_dict.pt + processor files + our config."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)
        return self.save_assets(path)

    def save_assets(self, path: str | Path) -> Path:
        """Everything but the weights (for trainers that save the weights themselves, e.g. under ZeRO-3)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.processor.save_pretrained(path)
        self.speakers.save(path / SPEAKER_FILE)
        (path / SASLM_CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2))
        return path

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    # ---- inputs ------------------------------------------------------------------------------
    def conversation(
        self,
        audio: AudioInput | None = None,
        text: str | None = None,
        sampling_rate: int | None = None,
        history: Sequence[tuple[str, str]] = (),
        system_prompt: str | None = None,
    ) -> Conversation:
        """A user turn (audio path/array at any rate, mono or stereo, and/or text) after optional history."""
        if audio is None and not text:
            raise ValueError("give user audio, user text, or both")
        wav = None if audio is None else self.processor.load_audio(audio, sampling_rate)
        return Conversation.user(text, wav, history, system_prompt)

    def encode_prompts(self, conversations: list[Conversation]) -> dict:
        return encode_prompts(self.processor, self.model, conversations)

    def sampling(self, sampling: SamplingConfig | None = None) -> SamplingConfig:
        """`sampling` (default: SamplingConfig()) with this model's Talker budget where it has none."""
        return (sampling or SamplingConfig()).with_budget(self.config.max_new_codes)

    # ---- the pipeline ------------------------------------------------------------------------
    @torch.no_grad()
    def rollouts(
        self,
        conversations: list[Conversation],
        num_samples: int = 1,
        sampling: SamplingConfig | None = None,
        reply_ids: list[torch.Tensor] | None = None,
        speaker: str | Sequence[str | None] | None = None,
        seeds: list[int] | list[list[int]] | None = None,
        decode: bool = True,
        decode_seed: int | None = None,
        progress: bool = False,
        mode: str | None = None,
    ) -> SpeechRollouts:
        """One Thinker pass per prompt, K Talker samples per prompt in one batch, Token2Wav per sample.

        reply_ids: given replies (teacher-forced text) instead of Thinker-generated ones.
        seeds: K per prompt (`seeding.prompt_seeds`: prompts independent), or K shared by all prompts
        (their rollouts then share random numbers and are correlated); decode_seed: Token2Wav noise of rollout r from
        `derive_seed(decode_seed, "token2wav", r)`. mode: None (the bridge), `add` (stock) or `text`.
        """
        spoken = speak(self.model, self.processor, self.speakers, conversations, self.sampling(sampling), num_samples,
                       reply_ids, speaker, seeds, mode, self.config.max_reply_tokens, progress)
        codes = spoken.codes
        z = spoken.conditioning.bridge.z
        intents = None if z is None else [zb[:n].float().cpu() for zb, n in zip(z, spoken.states.reply_lengths)]
        out = SpeechRollouts(spoken.reply_ids, [self.processor.decode(r) for r in spoken.reply_ids], codes,
                             intents=intents)
        if decode:
            names = per_prompt(speaker, len(conversations))
            rows = range(codes.codes.shape[0])
            out.waveforms = self.model.decode_codes(
                [codes.audio_codes(r) for r in rows],
                [self.speakers[names[int(codes.prompt_index[r])]] for r in rows],
                [None if decode_seed is None else derive_seed(decode_seed, "token2wav", r) for r in rows],
            )
        return out

    def teacher_forced(
        self,
        conversations: list[Conversation],
        reply_ids: list[torch.Tensor],
        codes: torch.Tensor,
        lengths: torch.Tensor,
        sampling: SamplingConfig | None = None,
        speaker: str | Sequence[str | None] | None = None,
        mode: str | None = None,
    ) -> SASLMOutput:
        """Per-code logits and policy log-probs of given code sequences in one Thinker + one Talker pass."""
        batch = self.encode_prompts(conversations)
        return self.model(**batch, reply_ids=pad_sequence(reply_ids, batch_first=True).to(self.device),
                          reply_lengths=torch.tensor([len(r) for r in reply_ids]), codes=codes, code_lengths=lengths,
                          speaker_bos=torch.tensor(speaker_bos(self.speakers, speaker, len(reply_ids))),
                          sampling=self.sampling(sampling), mode=mode)

    def score(
        self,
        reply_audio: AudioInput | Sequence[AudioInput],
        reply_text: str,
        context_audio: AudioInput | None = None,
        context_text: str | None = None,
        sampling_rate: int | None = None,
        rubric: "str | Rubric" = "expressive",
        critic: "SASLM | None" = None,
    ) -> "CriticScores":
        """Rubric scores of one or more spoken replies to a dialogue context (user audio and/or text).

        The critic is this model (self-critic) unless another SA-SLM is given. Returns per-dimension
        scores in [0, 1], the overall utility and the model-written instance rubric.
        """
        from .critic import RubricCritic

        judge = critic or self
        clips = list(reply_audio) if isinstance(reply_audio, (list, tuple)) else [reply_audio]
        wavs = [judge.processor.load_audio(c, sampling_rate) for c in clips]  # 16 kHz, errors name the file
        context = judge.conversation(context_audio, context_text)
        return RubricCritic(judge.model, judge.processor, rubric).score(context, reply_text, wavs,
                                                                        sample_rate=judge.processor.sampling_rate)

    def decode(self, codes: torch.Tensor, speaker: str | None = None, seed: int | None = None) -> torch.Tensor:
        """Audio codes → 24 kHz waveform with a chosen speaker."""
        return self.model.decode_codes([codes], [self.speakers[speaker]], [seed])[0]

    # ---- the one-call API --------------------------------------------------------------------
    def generate(
        self,
        audio: AudioInput | None = None,
        text: str | None = None,
        sampling_rate: int | None = None,
        history: Sequence[tuple[str, str]] = (),
        system_prompt: str | None = None,
        speaker: str | None = None,
        num_samples: int = 1,
        sampling: SamplingConfig | None = None,
        reply_text: str | None = None,
        seed: int | None = None,
        progress: bool = False,
        mode: str | None = None,
        **sampling_knobs,
    ) -> GenerationResult:
        """Answer user audio and/or text with reply text and `num_samples` spoken versions of it.

        sampling: the Talker's sampling (default SamplingConfig(); its knobs may also be given by name:
        temperature=0.7, max_new_codes=200, ...). reply_text: speak this text instead of letting the
        Thinker answer (TTS-style use). seed: makes the Talker samples and Token2Wav noise
        reproducible. mode: `add` speaks through the stock `h + e` path (A/B listening against the bridge).
        """
        self.speakers[speaker]  # fail fast on an unknown speaker, before any compute
        check_range("num_samples", num_samples, 1)
        if sampling_knobs:
            unknown = set(sampling_knobs) - set(SamplingConfig.__dataclass_fields__)
            if unknown:
                raise TypeError(f"generate() got unknown arguments {sorted(unknown)}")
            sampling = SamplingConfig(**{**asdict(sampling or SamplingConfig()), **sampling_knobs})
        conv = self.conversation(audio, text, sampling_rate, history, system_prompt)
        reply_ids = None
        if reply_text is not None:
            ids = self.processor.encode_reply(reply_text)
            if not ids:
                raise EmptyReplyError("reply_text is empty; give the text to speak")
            reply_ids = [torch.tensor(ids)]
        seeds = None if seed is None else [derive_seed(seed, "talker", k) for k in range(num_samples)]
        out = self.rollouts([conv], num_samples, sampling, reply_ids, speaker, seeds=seeds, decode_seed=seed,
                            progress=progress, mode=mode)
        codes = [out.codes.audio_codes(r).cpu() for r in range(num_samples)]
        intent = out.intents[0] if out.intents else None
        return GenerationResult(out.reply_texts[0], [w.numpy() for w in out.waveforms], codes, intent=intent)
