"""Thinker states and the Talker input layout of Qwen2.5-Omni, reproduced exactly.

Talker row for one prompt (length L, including audio placeholders), reply tokens g_0..g_{n-1} and
codes c_0..c_{N-1} (the last one usually codec EOS), total length L+1+N:

    t < L      : H_t + E_t               (E zeroed at audio/image/video placeholders, H kept)
    t = L      : E(speaker bos) + C(codec pad)
    t = L+1    : R_0 + C(codec bos)
    t = L+1+k  : C(c_{k-1}) + S_k        for k >= 1
    logits at L+1+k predict c_k

with `R_j` the conditioned reply part of g_j (formed by the intent bridge, `bridge/bridge.py`) and the reply stream
`S_k = R_k` (k < n), `E(tts_text_end)` (k == n), `E(tts_text_pad)` (k > n). H is the Thinker's
last-layer post-norm state, E its input embedding table, C the Talker's codec embedding table.
Positions are explicit 3-row M-RoPE ids running 0.. over each row's real tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence
from transformers import Qwen2_5OmniForConditionalGeneration

from ..errors import EmptyReplyError


@dataclass
class ThinkerStates:
    """One Thinker pass over `prompt + reply` rows (right-padded; row b is L_b + n_b tokens)."""

    hidden: torch.Tensor  # (B, S, D) last-layer post-norm hidden states
    embeds: torch.Tensor  # (B, S, D) input embeddings, zeroed at multimodal placeholders
    prompt_lengths: torch.Tensor  # (B,) L_b
    reply_lengths: torch.Tensor  # (B,) n_b
    audio_states: torch.Tensor  # (B, S, D) audio-tower outputs at user-audio positions, else 0
    audio_mask: torch.Tensor  # (B, S) True at user-audio placeholders (may be all False)

    def prompt_part(self, b: int, extra: torch.Tensor | None = None) -> torch.Tensor:
        """(L_b, D) H + E over the prompt of row b (+ `extra[b]`, e.g. acoustic context)."""
        L = int(self.prompt_lengths[b])
        part = self.hidden[b, :L] + self.embeds[b, :L]
        return part if extra is None else part + extra[b, :L]

    def reply_slices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, n_max, D) hidden and embeds of the reply tokens (zero-padded), and (B, n_max) mask."""
        n_max = int(self.reply_lengths.max())
        idx = self.prompt_lengths[:, None] + torch.arange(n_max, device=self.hidden.device)[None]
        mask = torch.arange(n_max, device=self.hidden.device)[None] < self.reply_lengths[:, None]
        idx = torch.where(mask, idx, 0)
        gather = lambda x: torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[-1])) * mask[..., None]  # noqa: E731
        return gather(self.hidden), gather(self.embeds), mask


def text_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """(3, B, S) M-RoPE position ids for text/audio rows: 0.. over real tokens, 1 at padding."""
    pos = attention_mask.long().cumsum(-1) - 1
    pos = pos.masked_fill(attention_mask == 0, 1)
    return pos.unsqueeze(0).expand(3, -1, -1)


def thinker_states(
    model: Qwen2_5OmniForConditionalGeneration,
    prompt_ids: list[torch.Tensor],
    reply_ids: list[torch.Tensor],
    input_features: torch.Tensor | None = None,
    feature_attention_mask: torch.Tensor | None = None,
) -> ThinkerStates:
    """One Thinker forward over right-padded `prompt + reply` rows."""
    for b, r in enumerate(reply_ids):
        if r.numel() == 0:
            raise EmptyReplyError(f"reply {b} has no tokens: there is nothing to speak; give a non-empty reply text")
    thinker = model.thinker
    cfg = model.config.thinker_config
    device = thinker.get_input_embeddings().weight.device
    rows = [torch.cat([p.to(device), r.to(device)]) for p, r in zip(prompt_ids, reply_ids)]
    input_ids = pad_sequence(rows, batch_first=True, padding_value=cfg.pad_token_id or 0)
    attention_mask = pad_sequence([torch.ones_like(r) for r in rows], batch_first=True, padding_value=0)
    token_embeds = thinker.get_input_embeddings()(input_ids)
    audio_mask = input_ids == cfg.audio_token_index
    inputs_embeds = token_embeds
    if input_features is not None:  # the audio tower's states go where the <|AUDIO|> placeholders are
        tower = thinker.model.get_audio_features(
            input_features.to(device, thinker.dtype), feature_attention_mask.to(device), return_dict=True
        ).last_hidden_state.to(token_embeds.dtype)
        inputs_embeds = token_embeds.masked_scatter(audio_mask[..., None].expand_as(token_embeds), tower)
    # All zeros for text-only batches, so the acoustic context runs on every batch (under ZeRO-3 every
    # rank must call the same modules).
    audio_states = inputs_embeds * audio_mask[..., None].to(token_embeds.dtype)
    out = thinker.model(
        inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=text_positions(attention_mask),
        use_cache=False,
    )
    hidden = out.last_hidden_state
    placeholders = torch.isin(
        input_ids, torch.tensor([cfg.audio_token_index, cfg.image_token_index, cfg.video_token_index], device=device)
    )
    return ThinkerStates(
        hidden=hidden,
        embeds=token_embeds * (~placeholders)[..., None].to(hidden.dtype),
        prompt_lengths=torch.tensor([len(p) for p in prompt_ids], device=device),
        reply_lengths=torch.tensor([len(r) for r in reply_ids], device=device),
        audio_states=audio_states,
        audio_mask=audio_mask,
    )


@dataclass
class TalkerPrefix:
    """Per-row Talker prefixes (L_b + 2 positions each) and reply streams, before padding."""

    rows: list[torch.Tensor]  # each (L_b + 2, D)
    stream: torch.Tensor  # (B, n_max + 2, D): S_k for k = 0..n_max+1 (index >= n_b + 1 is text-pad)


def talker_prefix(
    model: Qwen2_5OmniForConditionalGeneration,
    states: ThinkerStates,
    reply_part: torch.Tensor,
    speaker_bos: list[int],
    prompt_extra: torch.Tensor | None = None,
) -> TalkerPrefix:
    """Assemble prefixes and reply streams. reply_part: (B, n_max, D) from the intent bridge;
    prompt_extra: (B, S, D) added to the prompt part (acoustic context), or None (stock)."""
    talker, embed_text = model.talker, model.thinker.get_input_embeddings()
    embed_codec = talker.get_input_embeddings()
    device = reply_part.device
    ids = lambda *xs: torch.tensor(xs, dtype=torch.long, device=device)  # noqa: E731
    codec_pad, codec_bos = embed_codec(ids(talker.codec_pad_token, talker.codec_bos_token)).to(reply_part.dtype)
    text_eos, text_pad = embed_text(ids(talker.text_eos_token, talker.text_pad_token)).to(reply_part.dtype)
    spk = embed_text(torch.tensor(speaker_bos, dtype=torch.long, device=device)).to(reply_part.dtype)

    rows = [
        torch.cat([states.prompt_part(b, prompt_extra).to(reply_part.dtype), (spk[b] + codec_pad)[None],
                   (reply_part[b, 0] + codec_bos)[None]])
        for b in range(reply_part.shape[0])
    ]
    n_max = reply_part.shape[1]
    k = torch.arange(n_max + 2, device=device)[None, :, None]
    n = states.reply_lengths[:, None, None]
    padded = torch.cat([reply_part, reply_part.new_zeros(reply_part.shape[0], 2, reply_part.shape[2])], dim=1)
    stream = torch.where(k < n, padded, torch.where(k == n, text_eos, text_pad))
    return TalkerPrefix(rows=rows, stream=stream)


def stream_at(stream: torch.Tensor, k: torch.Tensor | int) -> torch.Tensor:
    """S_k for every row; k beyond the stream keeps returning text-pad."""
    if isinstance(k, int):
        return stream[:, min(k, stream.shape[1] - 1)]
    return torch.gather(stream, 1, k.clamp_max(stream.shape[1] - 1)[..., None].expand(-1, -1, stream.shape[-1]))
