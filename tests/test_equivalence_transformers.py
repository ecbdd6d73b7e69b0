"""Our pipeline against transformers' Qwen2_5OmniForConditionalGeneration.generate (greedy, padded batch).

transformers 5.x drops an all-ones attention mask, so an unpadded batch gets no codec pad/bos in the
Talker prefix; we always add them (the upstream code's evident intent) and compare on padded batches.
"""

import copy

import pytest
import torch

from sa_slm.pipeline import speaker_bos
from sa_slm.talker import rollout
from sa_slm.talker.sampling import SamplingConfig

MAX_REPLY, MAX_CODES = 10, 30
SHARPNESS = 200.0  # codec-head scale: the tiny Talker's logits span ~±0.5, near flat over 8448 codes


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


def _stopping_replies(tiny, model, batch):
    """Greedy replies that both end with a stop token, at different lengths, and those stop tokens.

    The stop tokens are picked from a first greedy pass: transformers drops the last token of a reply
    cut by max_new_tokens; we speak it.
    """
    probe = model.generate_replies(**batch, max_new_tokens=MAX_REPLY)
    thinker_eos = [tiny.processor.tokenizer.eos_token_id, int(probe[0][3]), int(probe[1][6])]
    replies = model.generate_replies(**batch, max_new_tokens=MAX_REPLY, eos_token_id=thinker_eos)
    assert len({len(r) for r in replies}) == 2 and max(len(r) for r in replies) < MAX_REPLY
    return replies, thinker_eos


def test_greedy_pipeline_matches_transformers(tiny, conversations):
    batch = tiny.encode_prompts(conversations)
    assert (batch["attention_mask"] == 0).any(), "the comparison needs a padded batch"
    replies, thinker_eos = _stopping_replies(tiny, tiny.model, batch)

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


class _TalkerDone(Exception):
    """Raised by the Talker spy once transformers' codes and scores are captured (skips Token2Wav)."""


def _transformers_talker_scores(model, batch, thinker_eos, talker_eos, steps):
    """transformers' greedy Talker on `model`: (raw logits, processed scores), each (B, steps, V)."""
    captured = {}
    talker_generate = model.talker.generate

    def spy(*args, **kwargs):
        out = talker_generate(*args, **kwargs, output_scores=True, output_logits=True, return_dict_in_generate=True)
        captured.update(logits=torch.stack(out.logits, 1), scores=torch.stack(out.scores, 1))
        raise _TalkerDone

    model.talker.generate = spy
    try:
        with pytest.raises(_TalkerDone):
            model.generate(**batch, speaker="Chelsie", thinker_max_new_tokens=MAX_REPLY, thinker_do_sample=False,
                           thinker_eos_token_id=thinker_eos, talker_do_sample=False, talker_max_new_tokens=steps,
                           talker_eos_token_id=talker_eos)
    finally:
        del model.talker.generate
    return captured["logits"], captured["scores"]


@pytest.fixture(scope="module")
def sharp_model(tiny):
    """A copy of the tiny model whose Talker logits are sharp (codec head scaled up)."""
    model = copy.deepcopy(tiny.model)
    with torch.no_grad():
        model.talker.codec_head.weight.mul_(SHARPNESS)
    return model


def test_talker_logits_match_transformers_scores_step_by_step_with_user_audio(tiny, sharp_model, conversations,
                                                                              monkeypatch):
    """Per-step raw logits and processed logits (repetition penalty, codec-bos at -inf: what the Talker
    samples from) of our greedy pipeline equal transformers' `output_logits` / `output_scores`, on a
    prompt with user audio, whose placeholders' input embeddings the Talker prefix must zero."""
    model = sharp_model
    batch = tiny.encode_prompts(conversations)
    audio_token = model.config.thinker_config.audio_token_index
    assert (batch["input_ids"][0] == audio_token).sum() > 0 and batch["input_features"] is not None
    replies, thinker_eos = _stopping_replies(tiny, model, batch)
    conditioning = model.condition(model.thinker_states(**batch, reply_ids=replies),
                                   speaker_bos(tiny.speakers, "Chelsie", 2))

    ours_raw, ours_processed = [], []
    plain_policy_logits = rollout.policy_logits

    def recording_policy_logits(logits, *args):
        processed = plain_policy_logits(logits, *args)
        ours_raw.append(logits.float().clone())
        ours_processed.append(processed.clone())
        return processed

    monkeypatch.setattr(rollout, "policy_logits", recording_policy_logits)
    talker = model.talker
    talker_eos = [talker.codec_pad_token, talker.codec_eos_token]
    greedy = SamplingConfig(do_sample=False, max_new_codes=MAX_CODES)
    ours = model.sample_codes(conditioning, greedy, eos_ids=talker_eos)
    ours_raw, ours_processed = torch.stack(ours_raw, 1), torch.stack(ours_processed, 1)  # (B, steps, V)
    their_raw, their_processed = _transformers_talker_scores(model, batch, thinker_eos, talker_eos, MAX_CODES)

    # The comparison means something: sharp distributions, over several steps of both rows.
    probs = ours_processed.softmax(-1).max(-1).values
    assert float(probs.mean()) > 0.5 and int(ours.num_steps.min()) >= 5
    assert torch.isinf(ours_processed[..., talker.codec_bos_token]).all()
    for r in range(2):
        n = int(ours.num_steps[r])
        torch.testing.assert_close(ours_raw[r, :n], their_raw[r, :n], rtol=0, atol=1e-4,
                                   msg=lambda m: f"row {r} raw Talker logits differ: {m}")
        torch.testing.assert_close(ours_processed[r, :n], their_processed[r, :n], rtol=0, atol=1e-4,
                                   msg=lambda m: f"row {r} processed Talker logits differ: {m}")
