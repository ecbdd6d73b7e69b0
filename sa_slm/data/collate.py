"""Batches from manifest examples: dialogue contexts, teacher-forcing tensors, stage-3 prompts."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

from ..errors import AudioError, EmptyReplyError, SpeakerError
from ..processor import Conversation, OmniProcessor
from ..speakers import SpeakerBank
from .manifest import Example


def example_conversation(processor: OmniProcessor, ex: Example) -> Conversation:
    """The dialogue context of an example (history + the user turn, its audio loaded at 16 kHz)."""
    try:
        wav = None if ex.user_audio is None else processor.load_audio(ex.user_audio)
    except AudioError as exc:
        raise AudioError(f"{ex.source}: {exc}") from exc
    return Conversation.user(ex.user_text, wav, ex.history, ex.system_prompt)


class TeacherForcingCollator:
    """Examples (with `reply_codes`) → the keyword arguments of `SASLMOmniModel.forward`.

    Keys: input_ids, attention_mask (left-padded prompts), input_features, feature_attention_mask
    (when any example has user audio), reply_ids (B, n_max) + reply_lengths, codes (B, N_max, the
    codec EOS appended, padded with the codec pad) + code_lengths, speaker_bos (B,).
    """

    def __init__(self, processor: OmniProcessor, speakers: SpeakerBank, codec_eos_id: int, codec_pad_id: int,
                 require_codes: bool = True) -> None:
        self.processor, self.speakers = processor, speakers
        self.codec_eos_id, self.codec_pad_id = codec_eos_id, codec_pad_id
        self.require_codes = require_codes

    @classmethod
    def for_model(cls, model, processor: OmniProcessor, speakers: SpeakerBank,
                  require_codes: bool = True) -> "TeacherForcingCollator":
        """With the codec EOS and pad ids of `model`'s Talker."""
        return cls(processor, speakers, model.talker.codec_eos_token, model.talker.codec_pad_token, require_codes)

    def conversation(self, ex: Example) -> Conversation:
        return example_conversation(self.processor, ex)

    def speaker_bos(self, ex: Example) -> int:
        try:
            return self.speakers[ex.speaker].bos_token
        except SpeakerError as exc:
            raise SpeakerError(f"{ex.source}: {exc}") from exc

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        batch = dict(self.processor([self.conversation(ex) for ex in examples]))
        replies = []
        for ex in examples:
            ids = self.processor.encode_reply(ex.reply_text)
            if not ids:
                raise EmptyReplyError(f"{ex.source}: reply_text tokenises to nothing")
            replies.append(torch.tensor(ids))
        batch["reply_ids"] = pad_sequence(replies, batch_first=True, padding_value=0)
        batch["reply_lengths"] = torch.tensor([len(r) for r in replies])
        batch["speaker_bos"] = torch.tensor([self.speaker_bos(ex) for ex in examples])
        if self.require_codes or all(ex.reply_codes for ex in examples):
            missing = [ex.source for ex in examples if not ex.reply_codes]
            if missing:
                raise ValueError(f"{', '.join(missing)}: no 'reply_codes'; run `sa-slm tokenize` on the manifest first")
            codes = [torch.tensor(ex.reply_codes + [self.codec_eos_id]) for ex in examples]
            batch["codes"] = pad_sequence(codes, batch_first=True, padding_value=self.codec_pad_id)
            batch["code_lengths"] = torch.tensor([len(c) for c in codes])
        return batch


class PromptCollator:
    """Stage-3 prompts: the examples and their dialogue contexts (audio loaded in the data loader)."""

    def __init__(self, processor: OmniProcessor) -> None:
        self.processor = processor

    def __call__(self, examples: list[Example]) -> dict:
        return {"examples": examples, "conversations": [example_conversation(self.processor, ex) for ex in examples]}
