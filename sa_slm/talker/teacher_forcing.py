"""Teacher-forced Talker forward: per-code logits and policy log-probs in one pass."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence
from transformers import Qwen2_5OmniForConditionalGeneration

from .layout import TalkerPrefix, stream_at, text_positions
from .sampling import SamplingConfig, first_seen_index, policy_logits


@dataclass
class TeacherForced:
    logits: torch.Tensor  # (B, N_max, V) raw codec logits; position k predicts c_k
    logprobs: torch.Tensor | None  # (B, N_max) policy log-prob of each given code (0 at padding)
    mask: torch.Tensor  # (B, N_max) True at real codes


def codec_ids(model: Qwen2_5OmniForConditionalGeneration) -> tuple[list[int], list[int]]:
    """(ids counted as already generated for the repetition penalty, ids never sampled)."""
    t = model.talker
    return [t.codec_mask_token, t.codec_pad_token, t.codec_bos_token], [t.codec_bos_token]


def teacher_forced(
    model: Qwen2_5OmniForConditionalGeneration,
    prefix: TalkerPrefix,
    codes: torch.Tensor,
    lengths: torch.Tensor,
    sampling: SamplingConfig,
    with_logprobs: bool = True,
) -> TeacherForced:
    """Score codes (B, N_max) with `lengths` (B,) valid steps each (include the EOS step to score it).

    with_logprobs=False skips the policy log-probs (SFT needs only the raw logits); `logprobs` is None.
    """
    talker = model.talker
    device = prefix.stream.device
    codes, lengths = codes.to(device), lengths.to(device)
    embed_codec = talker.get_input_embeddings()
    rows = []
    for b, row in enumerate(prefix.rows):
        n = int(lengths[b])
        k = torch.arange(1, max(n, 1), device=device)[None]  # reply-stream steps 1..n-1
        steps = embed_codec(codes[b, : max(n - 1, 0)]).to(row.dtype) + stream_at(prefix.stream[b : b + 1], k)[0]
        rows.append(torch.cat([row, steps]))
    inputs = pad_sequence(rows, batch_first=True)
    attention_mask = pad_sequence([torch.ones(len(r), dtype=torch.long, device=device) for r in rows], batch_first=True)
    out = talker(
        inputs_embeds=inputs, attention_mask=attention_mask, position_ids=text_positions(attention_mask), use_cache=False
    )
    n_max = codes.shape[1]
    start = torch.tensor([len(r) - 1 for r in prefix.rows], device=device)  # position L_b + 1
    mask = torch.arange(n_max, device=device)[None] < lengths[:, None]
    idx = torch.where(mask, start[:, None] + torch.arange(n_max, device=device)[None], 0)
    logits = torch.gather(out.logits, 1, idx[..., None].expand(-1, -1, out.logits.shape[-1]))
    if not with_logprobs:
        return TeacherForced(logits=logits, logprobs=None, mask=mask)

    always_seen, suppress = codec_ids(model)
    first = first_seen_index(codes, lengths, logits.shape[-1], always_seen)  # (B, V)
    seen = first[:, None, :] < torch.arange(n_max, device=device)[None, :, None]  # (B, N, V)
    logp = torch.log_softmax(policy_logits(logits, seen, sampling, suppress), dim=-1)
    chosen = torch.gather(logp, -1, codes.clamp_min(0)[..., None]).squeeze(-1)
    return TeacherForced(logits=logits, logprobs=torch.where(mask, chosen, 0.0), mask=mask)
