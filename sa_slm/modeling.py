"""The SA-SLM policy: Qwen2.5-Omni with the intent bridge inside, owning the Talker pipeline.

`SASLMOmniModel` is what the Trainer wraps and DeepSpeed partitions. It holds every trainable part
(Thinker, Talker, intent bridge) in one `PreTrainedModel` and exposes the pipeline as typed,
loss-free steps, each the only implementation of its step:

    generate_replies   prompt batch → Thinker reply tokens
    thinker_states     one Thinker pass over prompt + reply → `ThinkerStates`
    condition          Thinker states → Talker prefixes + reply streams (`Conditioning`), through the
                       intent bridge; `mode` selects the stock `add` path or the anchor's `text` path
    sample_codes       K code rollouts per prefix (batched, KV-cached, one RNG stream per rollout)
    forward            teacher forcing of given codes → `SASLMOutput` (logits, policy log-probs,
                       masks, bridge terms); computes no loss — objectives live with their trainers
    decode_codes       codes → 24 kHz audio through Token2Wav

Loading a stock checkpoint adds the bridge with its zero-initialised AdaLN/acoustic projections (the
bridge then passes LayerNorm(e_t), or h_t + e_t in mode `add`); `save_pretrained` writes the bridge
weights next to the base model's and its settings into `config.json` under `sa_slm`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration
from transformers.utils import ModelOutput

from .bridge import PARAMETER_FREE_MODES, BridgeOutput, IntentBridge, IntentBridgeConfig
from .errors import EmptyReplyError
from .padding import strip_padding
from .speakers import Speaker
from .talker.layout import TalkerPrefix, ThinkerStates, talker_prefix, thinker_states
from .talker.rollout import CodeRollouts, sample_codes
from .talker.sampling import SamplingConfig
from .talker.teacher_forcing import teacher_forced
from .token2wav import decode_codes_batch


def bridge_config(config: Qwen2_5OmniConfig) -> IntentBridgeConfig:
    return IntentBridgeConfig(**(getattr(config, "sa_slm", None) or {}))


def with_bridge(config: Qwen2_5OmniConfig, bridge: IntentBridgeConfig) -> Qwen2_5OmniConfig:
    """Record the bridge settings in the model config (they are saved with it)."""
    config.sa_slm = asdict(bridge)
    return config


@dataclass
class Conditioning:
    """What the Talker reads before and alongside the codes, for B rows."""

    prefix: TalkerPrefix  # per-row prefixes (L_b + 2, D) and reply streams (B, n_max + 2, D)
    bridge: BridgeOutput  # reply part (B, n_max, D) and, in mode vib_adaln, z / mu / logvar (B, n_max, d)
    reply_mask: torch.Tensor  # (B, n_max) True at real reply tokens

    def select(self, rows: torch.Tensor) -> "Conditioning":
        """The rows `rows` (R,) of this batch, e.g. one prompt's conditioning per rollout of it."""
        pick = lambda x: None if x is None else x[rows]  # noqa: E731
        b = self.bridge
        return Conditioning(
            TalkerPrefix([self.prefix.rows[i] for i in rows.tolist()], self.prefix.stream[rows]),
            BridgeOutput(b.reply_part[rows], pick(b.z), pick(b.mu), pick(b.logvar)),
            self.reply_mask[rows],
        )


@dataclass
class SASLMOutput(ModelOutput):
    """Teacher forcing of R code sequences (R = B, or the rows selected by `rows`).

    logits: (R, N, V) raw codec logits, position k predicts c_k
    logprobs: (R, N) policy log-prob of each given code, 0 at padding (see talker/sampling.py)
    mask: (R, N) True at real code steps
    reply_mask: (R, n) True at real reply tokens
    intent_z, intent_mu, intent_logvar: (R, n, d) intent latents and posterior (mode vib_adaln)
    intent_kl: (R, n) per-token KL of the posterior to the bridge's prior (mode vib_adaln)
    reply_text_logits: (R, n + 1, V_text) Thinker logits that predict g_0 .. g_{n-1}, then the EOS
    reply_text_mask: (R, n + 1) True at those n_r + 1 positions
    """

    logits: torch.Tensor | None = None
    logprobs: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    reply_mask: torch.Tensor | None = None
    intent_z: torch.Tensor | None = None
    intent_mu: torch.Tensor | None = None
    intent_logvar: torch.Tensor | None = None
    intent_kl: torch.Tensor | None = None
    reply_text_logits: torch.Tensor | None = None
    reply_text_mask: torch.Tensor | None = None


class SASLMOmniModel(Qwen2_5OmniForConditionalGeneration):
    # Objectives average over their own batch; the Trainer must scale them for gradient accumulation.
    accepts_loss_kwargs = False

    def __init__(self, config: Qwen2_5OmniConfig) -> None:
        super().__init__(config)
        self.intent_bridge = IntentBridge(bridge_config(config), config.thinker_config.text_config.hidden_size)

    def _init_weights(self, module: nn.Module) -> None:
        if getattr(module, "zero_init", False):  # AdaLN gamma/delta, acoustic projection
            for param in module.parameters(recurse=True):
                nn.init.zeros_(param)
            return
        super()._init_weights(module)

    def replace_bridge(self, cfg: IntentBridgeConfig, seed: int = 0) -> list[str]:
        """Use a bridge with other settings (e.g. stage 1 of another ablation from a saved model). Weights of
        the current bridge with the same name and shape are kept; the others start at their initialisation
        (zero for AdaLN and the acoustic projection, a seeded normal for the VIB MLP). Returns the names of
        the new weights."""
        old = self.intent_bridge
        anchor = self.thinker.get_input_embeddings().weight
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            new = IntentBridge(cfg, self.config.thinker_config.text_config.hidden_size)
            new.apply(self._init_weights)
        current = new.state_dict()
        kept = {k: v for k, v in old.state_dict().items() if k in current and current[k].shape == v.shape}
        new.load_state_dict(kept, strict=False)
        self.intent_bridge = new.to(device=anchor.device, dtype=anchor.dtype)
        with_bridge(self.config, cfg)
        return sorted(set(current) - set(kept))

    # ---- facts -------------------------------------------------------------------------------
    @property
    def max_prompt_tokens(self) -> int:
        return self.config.thinker_config.text_config.max_position_embeddings

    @property
    def reply_eos_id(self) -> int:
        """The token that ends a Thinker reply (the stage-2 text CE's last target)."""
        cfg = self.config.thinker_config
        return int(cfg.text_config.eos_token_id or cfg.eos_token_id)

    @property
    def text_eos_ids(self) -> list[int]:
        """Token ids that end a Thinker reply."""
        eos = self.thinker.generation_config.eos_token_id or self.config.thinker_config.text_config.eos_token_id
        return list(eos) if isinstance(eos, (list, tuple)) else [int(eos)]

    def set_trainable(self, talker: bool = True, bridge: bool = True,
                      thinker_last_layers: int = 0) -> dict[str, list[nn.Parameter]]:
        """Freeze everything, then unfreeze the chosen parts. Returns {"speech": [...], "llm": [...]}.

        speech: the Talker and the intent bridge; llm: the last `thinker_last_layers` Thinker decoder
        layers (stage 2) and any LoRA adapters injected into the Thinker. Token2Wav, the audio tower and
        the rest of the Thinker stay frozen.
        """
        self.requires_grad_(False)
        groups: dict[str, list[nn.Parameter]] = {"speech": [], "llm": []}
        if talker:
            groups["speech"] += list(self.talker.parameters())
        if bridge:
            groups["speech"] += list(self.intent_bridge.parameters())
        if thinker_last_layers > 0:
            layers = self.thinker.model.language_model.layers
            for layer in layers[len(layers) - thinker_last_layers:]:
                groups["llm"] += list(layer.parameters())
        groups["llm"] += [p for n, p in self.thinker.named_parameters() if "lora_" in n]
        for params in groups.values():
            for p in params:
                p.requires_grad_(True)
        return groups

    # ---- the pipeline, step by step ----------------------------------------------------------
    @torch.no_grad()
    def generate_replies(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         input_features: torch.Tensor | None = None,
                         feature_attention_mask: torch.Tensor | None = None, *, max_new_tokens: int,
                         eos_token_id: list[int] | None = None, pad_token_id: int | None = None,
                         do_sample: bool = False, allow_empty: bool = False, **gen_kwargs) -> list[torch.Tensor]:
        """Thinker replies (token ids, EOS excluded) for a left-padded prompt batch.

        An empty reply raises EmptyReplyError (there would be nothing to speak) unless allow_empty.
        """
        eos = torch.tensor(eos_token_id or self.text_eos_ids)
        pad = pad_token_id if pad_token_id is not None else self.config.thinker_config.text_config.pad_token_id
        features = {} if input_features is None else {"input_features": input_features,
                                                       "feature_attention_mask": feature_attention_mask}
        seqs = self.thinker.generate(
            input_ids=input_ids, attention_mask=attention_mask, **features, max_new_tokens=max_new_tokens,
            do_sample=do_sample, eos_token_id=eos.tolist(), pad_token_id=pad, **gen_kwargs,
        )[:, input_ids.shape[1]:].cpu()
        replies = []
        for b, row in enumerate(seqs):
            stop = torch.isin(row, eos).nonzero()
            reply = row[: int(stop[0])] if len(stop) else row
            if reply.numel() == 0 and not allow_empty:
                raise EmptyReplyError(f"prompt {b}: the model replied with end-of-text at once; nothing to speak")
            replies.append(reply)
        return replies

    def thinker_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, reply_ids: list[torch.Tensor],
                       input_features: torch.Tensor | None = None,
                       feature_attention_mask: torch.Tensor | None = None) -> ThinkerStates:
        """One Thinker forward over each (padded) prompt followed by its reply."""
        return thinker_states(self, strip_padding(input_ids, attention_mask), reply_ids, input_features,
                              feature_attention_mask)

    def condition(self, states: ThinkerStates, speaker_bos: list[int] | torch.Tensor, mode: str | None = None,
                  sample_latent: bool = False) -> Conditioning:
        """Talker prefixes + reply streams; every reply part is formed by the intent bridge.

        mode: None uses the bridge as configured (with its acoustic context); `add` (stock Qwen, h + e)
        or `text` (e only: the context-free stage-3 anchor) speak through that parameter-free path with
        no acoustic context. sample_latent: draw z with the reparameterisation trick (training).
        """
        hidden, embeds, mask = states.reply_slices()
        bridge = self.intent_bridge
        bridged = bridge(hidden, embeds, sample=sample_latent, mode=mode)
        stock = mode in PARAMETER_FREE_MODES  # the parameter-free paths never hear the acoustic context
        extra = None if stock else bridge.acoustic(states.audio_states, states.audio_mask)
        reply_part = bridged.reply_part * mask[..., None].to(bridged.reply_part.dtype)
        bos = speaker_bos.tolist() if torch.is_tensor(speaker_bos) else list(speaker_bos)
        prefix = talker_prefix(self, states, reply_part, bos, extra)
        return Conditioning(prefix, replace(bridged, reply_part=reply_part), mask)

    @torch.no_grad()
    def sample_codes(self, conditioning: Conditioning, sampling: SamplingConfig, num_samples: int = 1,
                     seeds: list[int] | list[list[int]] | None = None, eos_ids: list[int] | None = None,
                     progress: bool = False) -> CodeRollouts:
        """`num_samples` code sequences per row; seeds: K per row, or K shared by all rows (talker/rollout.py)."""
        return sample_codes(self, conditioning.prefix, sampling, num_samples, seeds, eos_ids, progress)

    @torch.no_grad()
    def decode_codes(self, codes: list[torch.Tensor], speakers: list[Speaker],
                     seeds: list[int | None] | None = None) -> list[torch.Tensor]:
        """Audio codes (EOS excluded) → (samples,) float32 CPU waveforms at 24 kHz, batched by length."""
        return decode_codes_batch(self, codes, speakers, seeds)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        reply_ids: torch.Tensor | None = None,
        reply_lengths: torch.Tensor | None = None,
        codes: torch.Tensor | None = None,
        code_lengths: torch.Tensor | None = None,
        speaker_bos: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        feature_attention_mask: torch.Tensor | None = None,
        thinker_states: ThinkerStates | None = None,
        rows: torch.Tensor | None = None,
        sampling: SamplingConfig | None = None,
        with_logprobs: bool = True,
        with_text_logits: bool = False,
        sample_latent: bool = False,
        mode: str | None = None,
    ) -> SASLMOutput:
        """Teacher forcing of `codes` (B, N) with `code_lengths` (B,) steps each (the EOS step included
        to score it), in one Thinker pass and one Talker pass. Computes no loss.

        The prompt batch comes as the keys of `data.collate.TeacherForcingCollator` (input_ids,
        attention_mask, reply_ids, reply_lengths, speaker_bos, audio features), or as Thinker states
        recorded earlier (`thinker_states`, e.g. while sampling; the Thinker then does not run).
        rows: (R,) the prompt row of each code row, when several code rows share one prompt (rollouts).
        sampling: the policy whose log-probs are returned (default SamplingConfig()); with_logprobs=False
        skips them (SFT needs only the logits). with_text_logits: add the Thinker's reply-token logits.
        """
        if thinker_states is None:
            replies = [r[:n] for r, n in zip(reply_ids, reply_lengths.tolist())]
            thinker_states = self.thinker_states(input_ids, attention_mask, replies, input_features,
                                                 feature_attention_mask)
        conditioning = self.condition(thinker_states, speaker_bos, mode, sample_latent)
        if rows is not None:
            conditioning = conditioning.select(rows)
        talker = teacher_forced(self, conditioning.prefix, codes, code_lengths, sampling or SamplingConfig(),
                                with_logprobs)
        b = conditioning.bridge
        out = SASLMOutput(logits=talker.logits, logprobs=talker.logprobs, mask=talker.mask,
                          reply_mask=conditioning.reply_mask, intent_z=b.z, intent_mu=b.mu, intent_logvar=b.logvar,
                          intent_kl=self.intent_bridge.token_kl(b))
        if with_text_logits:
            out.reply_text_logits, out.reply_text_mask = self._reply_text_logits(thinker_states, rows)
        return out

    def _reply_text_logits(self, states: ThinkerStates, rows: torch.Tensor | None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n_max + 1, V) logits of the states that predict each reply token and then the EOS: the
        state at prompt position L - 1 + j predicts g_j (j < n), at L - 1 + n the EOS."""
        n = states.reply_lengths
        j = torch.arange(int(n.max()) + 1, device=n.device)[None]
        mask = j <= n[:, None]
        positions = torch.where(mask, states.prompt_lengths[:, None] - 1 + j, 0)
        hidden = torch.gather(states.hidden, 1, positions[..., None].expand(-1, -1, states.hidden.shape[-1]))
        logits = self.thinker.lm_head(hidden)
        if rows is not None:
            logits, mask = logits[rows], mask[rows]
        return logits, mask
