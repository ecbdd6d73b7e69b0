"""Batched Talker sampling with a KV cache: K rollouts per prompt in one decoding loop."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, Qwen2_5OmniForConditionalGeneration

from ..padding import left_pad
from .layout import TalkerPrefix, stream_at, text_positions
from .sampling import RowSampler, SamplingConfig, policy_logits, truncate
from .teacher_forcing import codec_ids


@dataclass
class CodeRollouts:
    """R = B*K code sequences; row r belongs to prompt `prompt_index[r]`."""

    codes: torch.Tensor  # (R, T) generated ids incl. the terminating id, padded with codec pad
    num_steps: torch.Tensor  # (R,) generated steps incl. the terminating id
    lengths: torch.Tensor  # (R,) audio codes (terminating id excluded)
    finished: torch.Tensor  # (R,) False where the Talker budget cut the row
    logprobs: torch.Tensor  # (R, T) policy log-probs recorded while sampling (0 at padding)
    prompt_index: torch.Tensor  # (R,)

    def audio_codes(self, r: int) -> torch.Tensor:
        return self.codes[r, : int(self.lengths[r])]


def _row_seeds(seeds: list[int] | list[list[int]], prompts: int, samples: int) -> list[int]:
    """Seeds of the B * K rows (prompt-major): from one list of K per prompt, or K shared by all prompts."""
    per_prompt = bool(seeds) and isinstance(seeds[0], (list, tuple))
    table = seeds if per_prompt else [seeds] * prompts
    if len(table) != prompts or any(len(row) != samples for row in table):
        shape = f"{len(table)} prompts" if per_prompt else f"{len(seeds)} seeds"
        raise ValueError(f"seeds: {shape} for {prompts} prompts x {samples} samples; give one list of {samples} "
                         f"per prompt, or {samples} shared by all")
    return [int(row[k]) for row in table for k in range(samples)]


@torch.no_grad()
def sample_codes(
    model: Qwen2_5OmniForConditionalGeneration,
    prefix: TalkerPrefix,
    sampling: SamplingConfig,
    num_samples: int = 1,
    seeds: list[int] | list[list[int]] | None = None,
    eos_ids: list[int] | None = None,
    progress: bool = False,
) -> CodeRollouts:
    """Sample `num_samples` code sequences per prefix row.

    seeds: one list of K per prompt (`seeding.prompt_seeds`), or one per sample index k shared by all
    prompts. Either way a rollout depends only on its prompt, its k and its seed, never on the batch. Shared
    seeds give every prompt's rollout k the same random numbers, so the prompts' rollouts are correlated
    (inverse-CDF sampling ends them all at the steps whose draw lands in the end-of-speech mass): use them
    only where prompts are not compared with each other. Drawn from torch's global RNG when not given.
    """
    talker = model.talker
    device = prefix.stream.device
    B, K = len(prefix.rows), num_samples
    budget = sampling.budget
    eos_ids = eos_ids or [talker.codec_pad_token, talker.codec_eos_token]
    if sampling.do_sample and seeds is None:
        seeds = torch.randint(0, 2**62, (B, K)).tolist()
    sampler = RowSampler(_row_seeds(seeds, B, K)) if sampling.do_sample else None

    inputs, mask = left_pad(prefix.rows)
    inputs, mask = inputs.repeat_interleave(K, 0), mask.repeat_interleave(K, 0)
    stream = prefix.stream.repeat_interleave(K, 0)
    R, V = inputs.shape[0], talker.config.vocab_size
    always_seen, suppress = codec_ids(model)
    seen = torch.zeros(R, V, dtype=torch.bool, device=device)
    seen[:, always_seen] = True
    eos = torch.tensor(eos_ids, device=device)
    embed_codec = talker.get_input_embeddings()

    cache = DynamicCache(config=talker.config)
    out = talker(inputs_embeds=inputs, attention_mask=mask, position_ids=text_positions(mask),
                 cache=cache, use_cache=True)
    next_pos = mask.sum(-1)  # (R,)
    finished = torch.zeros(R, dtype=torch.bool, device=device)
    codes, logprobs, num_steps = [], [], torch.zeros(R, dtype=torch.long, device=device)
    bar = tqdm(total=budget, desc="Talker codes", unit="step", disable=not progress, leave=False)
    for k in range(budget):
        bar.update()
        logits = policy_logits(out.logits[:, -1], seen, sampling, suppress)
        if sampler is None:
            code = logits.argmax(-1)
        else:
            code = sampler(truncate(logits, sampling))
        code = torch.where(finished, talker.codec_pad_token, code)
        logp = torch.log_softmax(logits, -1).gather(-1, code[:, None]).squeeze(-1)
        codes.append(code)
        logprobs.append(torch.where(finished, 0.0, logp))
        num_steps += (~finished).long()
        seen[torch.arange(R, device=device), code] = True
        finished |= torch.isin(code, eos)
        if bool(finished.all()) or k + 1 == budget:
            break
        step = (embed_codec(code).to(inputs.dtype) + stream_at(stream, k + 1))[:, None]
        mask = torch.cat([mask, mask.new_ones(R, 1)], dim=1)
        out = talker(inputs_embeds=step, attention_mask=mask, position_ids=(next_pos + k).view(1, R, 1).expand(3, -1, -1),
                     cache=cache, use_cache=True)

    bar.close()
    codes_t, logprobs_t = torch.stack(codes, 1), torch.stack(logprobs, 1)
    ended_with_eos = torch.isin(codes_t.gather(1, (num_steps - 1).clamp_min(0)[:, None]).squeeze(1), eos)
    return CodeRollouts(
        codes=codes_t,
        num_steps=num_steps,
        lengths=num_steps - ended_with_eos.long(),
        finished=ended_with_eos,
        logprobs=logprobs_t,
        prompt_index=torch.arange(B, device=device).repeat_interleave(K),
    )
