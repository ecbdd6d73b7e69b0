"""Batches from manifest examples: dialogue contexts, teacher-forcing tensors, stage-3 prompts.

With `drop_failures=True` (the training recipes), an item that fails while its batch is built (its
audio deleted or corrupted after the data audit, an unknown speaker, a reply with no tokens: any
`SASLMError` of that one item) is dropped from the batch with a logged warning naming its `file:line`
and the reason; the rest of the batch is built as if it had never been there. A batch whose every item
fails is replaced by the last batch this collator built, so every rank still takes its step (a rank that
skipped would leave the others waiting in the collective calls of DDP/ZeRO); with no earlier batch the
error stops the run. Without it (the default: callers that need one output per example, such as the
probe) the first failure is raised.
"""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

import torch
from torch.nn.utils.rnn import pad_sequence

from ..errors import AudioError, EmptyReplyError, SASLMError, SpeakerError
from ..processor import Conversation, OmniProcessor
from ..speakers import SpeakerBank
from .manifest import Example

logger = logging.getLogger(__name__)
T = TypeVar("T")


def example_conversation(processor: OmniProcessor, ex: Example) -> Conversation:
    """The dialogue context of an example (history + the user turn, its audio loaded at 16 kHz)."""
    try:
        wav = None if ex.user_audio is None else processor.load_audio(ex.user_audio)
    except AudioError as exc:
        raise AudioError(f"{ex.source}: {exc}") from exc
    return Conversation.user(ex.user_text, wav, ex.history, ex.system_prompt)


class _DropFailures:
    """Per-item preparation with failing items dropped (logged), and the last good batch kept for a batch
    whose every item fails (see the module docstring)."""

    drop_failures: bool = False
    _last: dict | None = None

    def _prepare(self, examples: list[Example], prepare: Callable[[Example], T]) -> list[tuple[Example, T]]:
        kept, reasons = [], []
        for ex in examples:
            try:
                kept.append((ex, prepare(ex)))
            except SASLMError as exc:
                if not self.drop_failures:
                    raise
                reason = " ".join(str(exc).split())
                reasons.append(reason if reason.startswith(ex.source) else f"{ex.source}: {reason}")
                logger.warning("dropped item %r from its batch: %s", ex.id, reasons[-1])
        if not kept:
            if self._last is None:
                raise SASLMError(f"every item of the first batch failed ({'; '.join(reasons)}); "
                                 "run the data audit again (a file changed after it)")
            logger.warning("every item of a batch failed (%s); training on the previous batch again",
                           ", ".join(ex.source for ex in examples))
        return kept

    def _remember(self, batch: dict) -> dict:
        self._last = batch
        return batch

    def _repeat_last(self) -> dict:
        return dict(self._last)


class TeacherForcingCollator(_DropFailures):
    """Examples (with `reply_codes`) → the keyword arguments of `SASLMOmniModel.forward`.

    Keys: input_ids, attention_mask (left-padded prompts), input_features, feature_attention_mask
    (when any example has user audio), reply_ids (B, n_max) + reply_lengths, codes (B, N_max, the
    codec EOS appended, padded with the codec pad) + code_lengths, speaker_bos (B,).
    """

    def __init__(self, processor: OmniProcessor, speakers: SpeakerBank, codec_eos_id: int, codec_pad_id: int,
                 require_codes: bool = True, drop_failures: bool = False) -> None:
        self.processor, self.speakers = processor, speakers
        self.codec_eos_id, self.codec_pad_id = codec_eos_id, codec_pad_id
        self.require_codes, self.drop_failures = require_codes, drop_failures

    @classmethod
    def for_model(cls, model, processor: OmniProcessor, speakers: SpeakerBank, require_codes: bool = True,
                  drop_failures: bool = False) -> "TeacherForcingCollator":
        """With the codec EOS and pad ids of `model`'s Talker."""
        return cls(processor, speakers, model.talker.codec_eos_token, model.talker.codec_pad_token, require_codes,
                   drop_failures)

    def conversation(self, ex: Example) -> Conversation:
        return example_conversation(self.processor, ex)

    def speaker_bos(self, ex: Example) -> int:
        try:
            return self.speakers[ex.speaker].bos_token
        except SpeakerError as exc:
            raise SpeakerError(f"{ex.source}: {exc}") from exc

    def _item(self, ex: Example) -> tuple[Conversation, torch.Tensor, int]:
        """The dialogue context (audio loaded), reply ids (n,) and speaker BOS of one example."""
        conversation = self.conversation(ex)
        ids = self.processor.encode_reply(ex.reply_text)
        if not ids:
            raise EmptyReplyError(f"{ex.source}: reply_text tokenises to nothing")
        return conversation, torch.tensor(ids), self.speaker_bos(ex)

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        kept = self._prepare(examples, self._item)
        if not kept:
            return self._repeat_last()
        examples = [ex for ex, _ in kept]
        batch = dict(self.processor([conv for _, (conv, _, _) in kept]))
        replies = [ids for _, (_, ids, _) in kept]
        batch["reply_ids"] = pad_sequence(replies, batch_first=True, padding_value=0)
        batch["reply_lengths"] = torch.tensor([len(r) for r in replies])
        batch["speaker_bos"] = torch.tensor([bos for _, (_, _, bos) in kept])
        if self.require_codes or all(ex.reply_codes for ex in examples):
            missing = [ex.source for ex in examples if not ex.reply_codes]
            if missing:
                raise ValueError(f"{', '.join(missing)}: no 'reply_codes'; run `sa-slm tokenize` on the manifest first")
            codes = [torch.tensor(ex.reply_codes + [self.codec_eos_id]) for ex in examples]
            batch["codes"] = pad_sequence(codes, batch_first=True, padding_value=self.codec_pad_id)
            batch["code_lengths"] = torch.tensor([len(c) for c in codes])
        return self._remember(batch)


class PromptCollator(_DropFailures):
    """Stage-3 prompts: the examples and their dialogue contexts (audio loaded in the data loader)."""

    def __init__(self, processor: OmniProcessor, drop_failures: bool = False) -> None:
        self.processor, self.drop_failures = processor, drop_failures

    def __call__(self, examples: list[Example]) -> dict:
        kept = self._prepare(examples, lambda ex: example_conversation(self.processor, ex))
        if not kept:
            return self._repeat_last()
        return self._remember({"examples": [ex for ex, _ in kept], "conversations": [conv for _, conv in kept]})
