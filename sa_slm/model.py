"""SASLM: one object that loads Qwen2.5-Omni, generates replies and speech, and scores code sequences.

The pipeline is Thinker (reply text) → one Thinker forward over prompt + reply → Talker (codes,
through `talker/`) → Token2Wav (24 kHz audio). The same Talker layout serves generation, batched
rollouts and teacher forcing, so the three agree exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from transformers import Qwen2_5OmniConfig, WhisperFeatureExtractor

from .audio import AudioInput
from .errors import EmptyReplyError, InputTooLongError
from .presets import PRESETS, RELEASED_SPEAKER_BOS, build_random_model, quiet_config_check
from .processor import Conversation, OmniProcessor, Turn
from .speakers import SPEAKER_FILE, SpeakerBank
from .bridge import BridgeOutput, IntentBridgeConfig
from .modeling import SASLMOmniModel, with_bridge
from .talker.forward import TeacherForcedBatch, batch_thinker_states, bridged_prefix, teacher_forced_batch
from .talker.layout import TalkerPrefix, ThinkerStates
from .talker.rollout import CodeRollouts, sample_codes
from .talker.sampling import SamplingConfig
from .talker.teacher_forcing import TeacherForced
from .token2wav import SAMPLE_RATE, decode_codes, decode_codes_batch
from .tokenizer import build_omni_tokenizer

if TYPE_CHECKING:
    from .critic import CriticScores

SASLM_CONFIG_FILE = "sa_slm_config.json"


@dataclass
class SASLMConfig:
    """Generation budgets saved next to the base model files (bridge settings live in config.json)."""

    max_reply_tokens: int = 256  # Thinker reply budget for generate()
    max_codes: int = 4096  # Talker budget (codes, 50 per second on the released models)


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
    """A Qwen2.5-Omni model with the SA-SLM Talker pipeline."""

    def __init__(
        self,
        model: SASLMOmniModel,
        processor: OmniProcessor,
        speakers: SpeakerBank,
        config: SASLMConfig | None = None,
    ) -> None:
        self.model = model.eval()
        self.processor = processor
        self.speakers = speakers
        self.config = config or SASLMConfig()
        self.bridge = model.intent_bridge

    # ---- loading and saving ------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = "tiny",
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        seed: int = 0,
        bridge: IntentBridgeConfig | None = None,
        **hub_kwargs,
    ) -> "SASLM":
        """Load a preset (`tiny`, `random-3b`, `random-7b`), a local folder or a hub id.

        bridge: intent-bridge settings to use instead of the saved ones (a stock checkpoint has none:
        mode `add`); new bridge weights start at their (zero) initialisation.
        """
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if str(name_or_path) in PRESETS:
            return cls.random(str(name_or_path), device=device, dtype=dtype or torch.float32, seed=seed, bridge=bridge)
        path = str(name_or_path)
        with quiet_config_check():
            config = None
            if bridge is not None:
                config = with_bridge(Qwen2_5OmniConfig.from_pretrained(path, **hub_kwargs), bridge)
            model = SASLMOmniModel.from_pretrained(
                path, config=config, dtype=dtype or "auto", device_map={"": device}, **hub_kwargs
            )
        model.token2wav.float()
        processor = OmniProcessor.from_pretrained(path, **hub_kwargs)
        speakers = SpeakerBank.from_speaker_map(model.speaker_map)
        config = SASLMConfig()
        local = Path(path) / SASLM_CONFIG_FILE
        if local.is_file():
            config = SASLMConfig(**json.loads(local.read_text()))
        return cls(model, processor, speakers, config)

    @classmethod
    def random(cls, preset: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
               seed: int = 0, bridge: IntentBridgeConfig | None = None) -> "SASLM":
        """Random weights of a preset's shape, a real Qwen2 tokenizer and random speakers."""
        model = build_random_model(preset, device=device, dtype=dtype, seed=seed, bridge=bridge)
        processor = OmniProcessor(build_omni_tokenizer(), WhisperFeatureExtractor(feature_size=128))
        dit = model.config.token2wav_config.dit_config
        speakers = SpeakerBank.random(RELEASED_SPEAKER_BOS, dit.enc_emb_dim, dit.mel_dim, seed=seed)
        model.speaker_map = {n: s.as_dict() for n, s in speakers.speakers.items()}
        tiny = preset == "tiny"
        config = SASLMConfig(max_reply_tokens=16 if tiny else 256, max_codes=100 if tiny else 4096)
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
        return self.model.thinker.get_input_embeddings().weight.device

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
        turns = [Turn(role, t) for role, t in history] + [Turn("user", text or "", wav)]
        return Conversation(turns, system_prompt)

    def encode_prompts(self, conversations: list[Conversation]) -> dict:
        batch = self.processor(conversations)
        limit = self.model.config.thinker_config.text_config.max_position_embeddings
        if batch["input_ids"].shape[1] > limit:
            raise InputTooLongError(f"prompt of {batch['input_ids'].shape[1]} tokens exceeds the model's {limit}")
        return {k: v.to(self.device) for k, v in batch.items()}

    # ---- the pipeline, step by step ----------------------------------------------------------
    @torch.no_grad()
    def generate_replies(self, batch: dict, max_new_tokens: int | None = None, do_sample: bool = False,
                         eos_token_id: int | list[int] | None = None, allow_empty: bool = False,
                         **gen_kwargs) -> list[torch.Tensor]:
        """Thinker replies (token ids, EOS excluded) for an encoded prompt batch.

        An empty reply raises EmptyReplyError (there would be nothing to speak) unless allow_empty.
        """
        thinker = self.model.thinker
        eos = eos_token_id or thinker.generation_config.eos_token_id or self.processor.tokenizer.eos_token_id
        eos = torch.tensor(eos if isinstance(eos, list) else [eos])
        seqs = thinker.generate(
            **batch, max_new_tokens=max_new_tokens or self.config.max_reply_tokens, do_sample=do_sample,
            eos_token_id=eos.tolist(), pad_token_id=self.processor.tokenizer.pad_token_id, **gen_kwargs,
        )[:, batch["input_ids"].shape[1]:].cpu()
        replies = []
        for b, row in enumerate(seqs):
            stop = torch.isin(row, eos).nonzero()
            reply = row[: int(stop[0])] if len(stop) else row
            if reply.numel() == 0 and not allow_empty:
                raise EmptyReplyError(f"prompt {b}: the model replied with end-of-text at once; nothing to speak")
            replies.append(reply)
        return replies

    def thinker_states(self, batch: dict, reply_ids: list[torch.Tensor], with_text_logits: bool = False) -> ThinkerStates:
        return batch_thinker_states(self.model, batch, reply_ids, with_text_logits)

    def speaker_bos(self, speaker: str | Sequence[str] | None, n: int) -> list[int]:
        """Talker text-bos id per row for one speaker name (or None: default) or one name per row."""
        return [self.speakers[name].bos_token for name in _per_prompt(speaker, n)]

    def talker_prefix(self, states: ThinkerStates, speaker_bos: list[int], use_bridge: bool = True,
                      sample_latent: bool = False) -> tuple[TalkerPrefix, BridgeOutput]:
        return bridged_prefix(self.model, states, speaker_bos, use_bridge, sample_latent)

    @torch.no_grad()
    def rollouts(
        self,
        conversations: list[Conversation],
        num_samples: int = 1,
        sampling: SamplingConfig | None = None,
        reply_ids: list[torch.Tensor] | None = None,
        speaker: str | Sequence[str] | None = None,
        seeds: list[int] | None = None,
        decode: bool = True,
        decode_seed: int | None = None,
        progress: bool = False,
        use_bridge: bool = True,
    ) -> SpeechRollouts:
        """One Thinker pass per prompt, K Talker samples per prompt in one batch, Token2Wav per sample.

        reply_ids: given replies (teacher-forced text) instead of Thinker-generated ones.
        seeds: one per sample index k; decode_seed: Token2Wav noise seed (per rollout: seed + r).
        """
        sampling = sampling or SamplingConfig(max_new_tokens=self.config.max_codes)
        batch = self.encode_prompts(conversations)
        reply_ids = reply_ids if reply_ids is not None else self.generate_replies(batch)
        states = self.thinker_states(batch, reply_ids)
        prefix, bridged = self.talker_prefix(states, self.speaker_bos(speaker, len(reply_ids)), use_bridge)
        codes = sample_codes(self.model, prefix, sampling, num_samples, seeds, progress=progress)
        intents = None if bridged.z is None else [z[:n].float().cpu() for z, n in zip(bridged.z, states.reply_lengths)]
        out = SpeechRollouts(reply_ids, [self.processor.decode(r) for r in reply_ids], codes, intents=intents)
        if decode:
            names = _per_prompt(speaker, len(conversations))
            rows = range(codes.codes.shape[0])
            out.waveforms = decode_codes_batch(
                self.model,
                [codes.audio_codes(r) for r in rows],
                [self.speakers[names[int(codes.prompt_index[r])]] for r in rows],
                [None if decode_seed is None else decode_seed + r for r in rows],
            )
        return out

    def teacher_forced(
        self,
        conversations: list[Conversation],
        reply_ids: list[torch.Tensor],
        codes: torch.Tensor,
        lengths: torch.Tensor,
        sampling: SamplingConfig | None = None,
        speaker: str | Sequence[str] | None = None,
    ) -> TeacherForced:
        """Per-code logits and policy log-probs of given code sequences in one Thinker + one Talker pass."""
        batch = self.encode_prompts(conversations)
        batch.update(
            reply_ids=pad_sequence(reply_ids, batch_first=True), reply_lengths=torch.tensor([len(r) for r in reply_ids]),
            codes=codes, code_lengths=lengths, speaker_bos=torch.tensor(self.speaker_bos(speaker, len(reply_ids))),
        )
        return self.teacher_forced_batch(batch, sampling).talker

    def teacher_forced_batch(self, batch: dict, sampling: SamplingConfig | None = None, with_text_logits: bool = False,
                             use_bridge: bool = True, sample_latent: bool = False) -> TeacherForcedBatch:
        """Teacher forcing on a collated batch (see data.collate.TeacherForcingCollator)."""
        return teacher_forced_batch(self.model, batch, sampling, with_text_logits, use_bridge, sample_latent)

    def score(
        self,
        reply_audio: AudioInput | Sequence[AudioInput],
        reply_text: str,
        context_audio: AudioInput | None = None,
        context_text: str | None = None,
        sampling_rate: int | None = None,
        rubric: str = "expressive",
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
        return RubricCritic(judge, rubric).score(context, reply_text, wavs, sample_rate=judge.processor.sampling_rate)

    def decode(self, codes: torch.Tensor, speaker: str | None = None, seed: int | None = None) -> torch.Tensor:
        """Audio codes → 24 kHz waveform with a chosen speaker."""
        return decode_codes(self.model, codes, self.speakers[speaker], seed=seed)

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
        do_sample: bool = True,
        temperature: float = 0.9,
        top_k: int = 40,
        top_p: float = 0.8,
        repetition_penalty: float = 1.05,
        max_new_codes: int | None = None,
        reply_text: str | None = None,
        seed: int | None = None,
        progress: bool = False,
        use_bridge: bool = True,
    ) -> GenerationResult:
        """Answer user audio and/or text with reply text and `num_samples` spoken versions of it.

        reply_text: speak this text instead of letting the Thinker answer (TTS-style use).
        seed: makes the Talker samples and Token2Wav noise reproducible.
        use_bridge: False speaks through the stock `h + e` path (A/B listening against the bridge).
        """
        self.speakers[speaker]  # fail fast on an unknown speaker, before any compute
        conv = self.conversation(audio, text, sampling_rate, history, system_prompt)
        sampling = SamplingConfig(do_sample, temperature, top_k, top_p, repetition_penalty,
                                  max_new_codes or self.config.max_codes)
        reply_ids = None
        if reply_text is not None:
            ids = self.processor.encode_reply(reply_text)
            if not ids:
                raise EmptyReplyError("reply_text is empty; give the text to speak")
            reply_ids = [torch.tensor(ids)]
        seeds = None if seed is None else [seed + k for k in range(num_samples)]
        out = self.rollouts([conv], num_samples, sampling, reply_ids, speaker, seeds=seeds, decode_seed=seed,
                            progress=progress, use_bridge=use_bridge)
        codes = [out.codes.audio_codes(r).cpu() for r in range(num_samples)]
        intent = out.intents[0] if out.intents else None
        return GenerationResult(out.reply_texts[0], [w.numpy() for w in out.waveforms], codes, intent=intent)


def _per_prompt(speaker: str | Sequence[str] | None, n: int) -> list[str | None]:
    return [speaker] * n if speaker is None or isinstance(speaker, str) else list(speaker)
