"""Teacher-forcing batches from manifest examples: prompt tensors, reply tokens, codes, speakers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn.utils.rnn import pad_sequence

from ..errors import AudioError, EmptyReplyError, SpeakerError
from ..processor import Conversation, Turn
from .manifest import Example

if TYPE_CHECKING:
    from ..model import SASLM


class TeacherForcingCollator:
    """Examples (with `reply_codes`) → a dict of tensors for `SASLM.teacher_forced_batch`.

    Keys: input_ids, attention_mask (left-padded prompts), input_features, feature_attention_mask
    (when any example has user audio), reply_ids (B, n_max) + reply_lengths, codes (B, N_max, the
    codec EOS appended) + code_lengths, speaker_bos (B,).
    """

    def __init__(self, saslm: "SASLM", require_codes: bool = True) -> None:
        self.saslm = saslm
        self.require_codes = require_codes

    def conversation(self, ex: Example) -> Conversation:
        try:
            wav = None if ex.user_audio is None else self.saslm.processor.load_audio(ex.user_audio)
        except AudioError as exc:
            raise AudioError(f"{ex.source}: {exc}") from exc
        turns = [Turn(r, t) for r, t in ex.history] + [Turn("user", ex.user_text or "", wav)]
        return Conversation(turns, ex.system_prompt)

    def speaker_bos(self, ex: Example) -> int:
        try:
            return self.saslm.speakers[ex.speaker].bos_token
        except SpeakerError as exc:
            raise SpeakerError(f"{ex.source}: {exc}") from exc

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        saslm = self.saslm
        batch = dict(saslm.processor([self.conversation(ex) for ex in examples]))
        replies = []
        for ex in examples:
            ids = saslm.processor.encode_reply(ex.reply_text)
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
            eos = saslm.model.talker.codec_eos_token
            codes = [torch.tensor(ex.reply_codes + [eos]) for ex in examples]
            batch["codes"] = pad_sequence(codes, batch_first=True, padding_value=saslm.model.talker.codec_pad_token)
            batch["code_lengths"] = torch.tensor([len(c) for c in codes])
        return batch
