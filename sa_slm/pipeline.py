"""Dialogue prompts in, code rollouts out: the glue between the processor, the speaker bank and the policy.

Used by everything that speaks (the facade, stage-3 rollouts, stage-0 bootstrapping), so the chain
prompt → reply → Thinker states → conditioning → K code samples exists once:

    batch = encode_prompts(processor, model, conversations)
    replies = model.generate_replies(**batch)            (unless given)
    states = model.thinker_states(**batch, reply_ids=replies)
    conditioning = model.condition(states, speaker_bos, mode)
    codes = model.sample_codes(conditioning, sampling, K, seeds)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .errors import InputTooLongError
from .modeling import Conditioning, SASLMOmniModel
from .processor import Conversation, OmniProcessor
from .speakers import SpeakerBank
from .talker.layout import ThinkerStates
from .talker.rollout import CodeRollouts
from .talker.sampling import SamplingConfig

PROMPT_KEYS = ("input_ids", "attention_mask", "input_features", "feature_attention_mask")


def model_device(model: SASLMOmniModel) -> torch.device:
    return model.thinker.get_input_embeddings().weight.device


def encode_prompts(processor: OmniProcessor, model: SASLMOmniModel, conversations: list[Conversation]) -> dict:
    """Left-padded prompt tensors on the model's device; a prompt longer than the Thinker takes is an error."""
    batch = processor(conversations)
    limit = model.max_prompt_tokens
    if batch["input_ids"].shape[1] > limit:
        raise InputTooLongError(f"prompt of {batch['input_ids'].shape[1]} tokens exceeds the model's {limit}")
    device = model_device(model)
    return {k: v.to(device) for k, v in batch.items()}


def prompt_inputs(batch: dict) -> dict:
    """The keys of a collated batch that describe the prompt (what `generate_replies` takes)."""
    return {k: batch[k] for k in PROMPT_KEYS if k in batch}


def per_prompt(speaker: str | Sequence[str | None] | None, n: int) -> list[str | None]:
    """One speaker name (or None: the default) for every prompt, or the given list."""
    return [speaker] * n if speaker is None or isinstance(speaker, str) else list(speaker)


def speaker_bos(speakers: SpeakerBank, speaker: str | Sequence[str | None] | None, n: int) -> list[int]:
    """Talker text-bos id per row for one speaker name (or None: default) or one name per row."""
    return [speakers[name].bos_token for name in per_prompt(speaker, n)]


@dataclass
class Spoken:
    """Replies and K code rollouts per prompt, with what produced them (for scoring them later)."""

    reply_ids: list[torch.Tensor]  # per prompt (n_b,) reply tokens, EOS excluded
    states: ThinkerStates  # the Thinker's states of prompt + reply (no grad)
    conditioning: Conditioning
    speaker_bos: list[int]  # per prompt
    codes: CodeRollouts  # B*K rows, row r belongs to prompt r // K


@torch.no_grad()
def speak(
    model: SASLMOmniModel,
    processor: OmniProcessor,
    speakers: SpeakerBank,
    conversations: list[Conversation],
    sampling: SamplingConfig,
    num_samples: int = 1,
    reply_ids: list[torch.Tensor | None] | None = None,
    speaker: str | Sequence[str | None] | None = None,
    seeds: list[int] | list[list[int]] | None = None,
    mode: str | None = None,
    max_reply_tokens: int = 256,
    progress: bool = False,
) -> Spoken:
    """One Thinker pass per prompt batch and K Talker samples per prompt in one decoding loop.

    reply_ids: given replies (None entries, or None for all, are written by the Thinker, greedily).
    seeds: K per prompt (`seeding.prompt_seeds`), or K shared by all prompts (see `talker/rollout.py`).
    """
    batch = encode_prompts(processor, model, conversations)
    replies = list(reply_ids) if reply_ids is not None else [None] * len(conversations)
    if any(r is None for r in replies):
        generated = model.generate_replies(**batch, max_new_tokens=max_reply_tokens)
        replies = [r if r is not None else g for r, g in zip(replies, generated)]
    bos = speaker_bos(speakers, speaker, len(replies))
    states = model.thinker_states(**batch, reply_ids=replies)
    conditioning = model.condition(states, bos, mode)
    codes = model.sample_codes(conditioning, sampling, num_samples, seeds, progress=progress)
    return Spoken(replies, states, conditioning, bos, codes)
