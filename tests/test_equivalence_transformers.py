"""Our pipeline against transformers' Qwen2_5OmniForConditionalGeneration.generate (greedy, padded batch).

transformers 5.x drops an all-ones attention mask, so an unpadded batch gets no codec pad/bos in the
Talker prefix; we always add them (the upstream code's evident intent) and compare on padded batches.
"""

import torch

from sa_slm.pipeline import speaker_bos
from sa_slm.talker.sampling import SamplingConfig

MAX_REPLY, MAX_CODES = 10, 30


def _transformers_greedy(tiny, batch, thinker_eos, talker_eos):
    captured = {}
    talker_generate = tiny.model.talker.generate

    def spy(*args, **kwargs):
        captured["codes"] = talker_generate(*args, **kwargs)
        return captured["codes"]

    tiny.model.talker.generate = spy
    try:
        torch.manual_seed(123)
        seqs, wavs = tiny.model.generate(
            **batch, speaker="Chelsie", thinker_max_new_tokens=MAX_REPLY, thinker_do_sample=False,
            thinker_eos_token_id=thinker_eos, talker_do_sample=False, talker_max_new_tokens=MAX_CODES,
            talker_eos_token_id=talker_eos,
        )
    finally:
        del tiny.model.talker.generate
    prefix_len = batch["input_ids"].shape[1] + 2
    return seqs, captured["codes"][:, prefix_len:], wavs


def test_greedy_pipeline_matches_transformers(tiny, conversations):
    batch = tiny.encode_prompts(conversations)
    assert (batch["attention_mask"] == 0).any(), "the comparison needs a padded batch"

    # Pick stop tokens from a first greedy pass so that both replies end with a stop token (transformers
    # drops the last token of a reply cut by max_new_tokens; we speak it) at different lengths.
    probe = tiny.model.generate_replies(**batch, max_new_tokens=MAX_REPLY)
    thinker_eos = [tiny.processor.tokenizer.eos_token_id, int(probe[0][3]), int(probe[1][6])]
    replies = tiny.model.generate_replies(**batch, max_new_tokens=MAX_REPLY, eos_token_id=thinker_eos)
    assert len({len(r) for r in replies}) == 2 and max(len(r) for r in replies) < MAX_REPLY

    conditioning = tiny.model.condition(tiny.model.thinker_states(**batch, reply_ids=replies),
                                        speaker_bos(tiny.speakers, "Chelsie", 2))
    greedy = SamplingConfig(do_sample=False, max_new_codes=MAX_CODES)
    probe_codes = tiny.model.sample_codes(conditioning, greedy)
    stop_code = int(probe_codes.codes[1, 12])
    talker_eos = [tiny.model.talker.codec_pad_token, tiny.model.talker.codec_eos_token, stop_code]
    ours = tiny.model.sample_codes(conditioning, greedy, eos_ids=talker_eos)

    seqs, their_codes, their_wavs = _transformers_greedy(tiny, batch, thinker_eos, talker_eos)

    # (a) text
    their_replies = [row[batch["input_ids"].shape[1]:] for row in seqs]
    for ours_r, theirs_r in zip(replies, their_replies):
        assert torch.equal(ours_r, theirs_r[: len(ours_r)].cpu())
    # (a) codes, row by row up to each row's own end
    assert len(set(ours.num_steps.tolist())) == 2, "code sequences of different lengths expected"
    for r in range(2):
        n = int(ours.num_steps[r])
        assert torch.equal(ours.codes[r, :n], their_codes[r, :n]), f"row {r} codes differ"
    # (a) waveforms: transformers decodes row by row from the global RNG stream seeded with 123
    torch.manual_seed(123)
    for r in range(2):
        wav = tiny.model.decode_codes([ours.audio_codes(r)], [tiny.speakers["Chelsie"]])[0]
        assert wav.shape == their_wavs[r].shape
        torch.testing.assert_close(wav, their_wavs[r].cpu(), rtol=0, atol=1e-5)
