"""The contract every stage relies on: sampling, teacher forcing, batching and saving agree."""

import numpy as np
import torch

from sa_slm import SASLM
from sa_slm.talker.sampling import SamplingConfig

SAMPLING = SamplingConfig(do_sample=True, temperature=0.9, top_k=40, top_p=0.8, max_new_codes=24)


def _tf_rows(tiny, conversations, out):
    """Teacher-force every rollout against its own prompt and reply."""
    rows = out.codes.prompt_index.tolist()
    return tiny.teacher_forced(
        [conversations[i] for i in rows], [out.reply_ids[i] for i in rows],
        out.codes.codes, out.codes.num_steps, SAMPLING, speaker="Chelsie",
    )


def test_teacher_forced_logprobs_equal_sampled(tiny, conversations):
    # Force a short reply on prompt 1 so that the reply stream runs into text-eos / text-pad steps.
    replies = [torch.tensor(tiny.processor.encode_reply("Sure, here is a long and cheerful answer for you.")),
               torch.tensor(tiny.processor.encode_reply("Yes."))]
    out = tiny.rollouts(conversations, num_samples=3, sampling=SAMPLING, reply_ids=replies, seeds=[1, 2, 3],
                        decode=False, speaker="Chelsie")
    tf = _tf_rows(tiny, conversations, out)
    assert out.codes.logprobs.shape == tf.logprobs.shape
    assert (out.codes.logprobs[tf.mask] < 0).all()
    assert (tf.logprobs - out.codes.logprobs).abs().max() <= 1e-4
    # The same log-probs after the codes are shifted by one are wrong: the check can fail.
    shifted = out.codes.codes.roll(1, dims=1)
    wrong = tiny.teacher_forced(
        [conversations[i] for i in out.codes.prompt_index.tolist()], [replies[i] for i in out.codes.prompt_index.tolist()],
        shifted, out.codes.num_steps, SAMPLING, speaker="Chelsie",
    )
    assert (wrong.logprobs - out.codes.logprobs).abs().max() > 1e-2


def test_teacher_forced_logprobs_equal_greedy_with_eos(tiny, conversations):
    """Greedy log-probs agree too, and the argmax of the processed logits is the greedy code."""
    greedy = SamplingConfig(do_sample=False, max_new_codes=20)
    out = tiny.rollouts(conversations, num_samples=1, sampling=greedy, decode=False)
    tf = tiny.teacher_forced(conversations, out.reply_ids, out.codes.codes, out.codes.num_steps, greedy)
    assert (tf.logprobs - out.codes.logprobs).abs().max() <= 1e-4
    from sa_slm.talker.sampling import first_seen_index, policy_logits
    from sa_slm.talker.teacher_forcing import codec_ids

    always, suppress = codec_ids(tiny.model)
    first = first_seen_index(out.codes.codes, out.codes.num_steps, tf.logits.shape[-1], always)
    seen = first[:, None, :] < torch.arange(tf.logits.shape[1])[None, :, None]
    processed = policy_logits(tf.logits, seen, greedy, suppress)
    assert torch.equal(processed.argmax(-1)[tf.mask], out.codes.codes[tf.mask])


def test_batched_rollouts_match_one_by_one(tiny, conversations):
    greedy = SamplingConfig(do_sample=False, max_new_codes=16)
    batched = tiny.rollouts(conversations, num_samples=2, sampling=greedy, decode=False)
    for i, conv in enumerate(conversations):
        alone = tiny.rollouts([conv], num_samples=1, sampling=greedy, reply_ids=[batched.reply_ids[i]], decode=False)
        for k in range(2):
            assert torch.equal(batched.codes.codes[2 * i + k], alone.codes.codes[0])

    # Sampling: rollout k uses seed k wherever its prompt sits and however large the batch is.
    seeds = [11, 12, 13]
    replies = batched.reply_ids
    big = tiny.rollouts(conversations, num_samples=3, sampling=SAMPLING, reply_ids=replies, seeds=seeds, decode=False)
    swapped = tiny.rollouts(conversations[::-1], num_samples=3, sampling=SAMPLING, reply_ids=replies[::-1],
                            seeds=seeds, decode=False)
    single = tiny.rollouts([conversations[1]], num_samples=1, sampling=SAMPLING, reply_ids=[replies[1]],
                           seeds=[seeds[2]], decode=False)
    for k in range(3):
        assert torch.equal(big.codes.codes[k], swapped.codes.codes[3 + k])
        assert torch.equal(big.codes.codes[3 + k], swapped.codes.codes[k])
    assert torch.equal(big.codes.codes[5], single.codes.codes[0])
    # Different seeds give different samples (the sampler really samples).
    assert not torch.equal(big.codes.codes[3], big.codes.codes[4])


def test_save_load_round_trip(tiny, tone, tmp_path):
    wav, sr = tone
    before = tiny.generate(audio=wav, sampling_rate=sr, text="Again?", num_samples=2, seed=5, max_new_codes=12)
    tiny.save_pretrained(tmp_path / "model")
    loaded = SASLM.from_pretrained(tmp_path / "model", device="cpu")
    after = loaded.generate(audio=wav, sampling_rate=sr, text="Again?", num_samples=2, seed=5, max_new_codes=12)
    assert before.reply_text == after.reply_text
    for a, b in zip(before.codes, after.codes):
        assert torch.equal(a, b)
    for a, b in zip(before.waveforms, after.waveforms):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert loaded.speakers.names == tiny.speakers.names
    assert loaded.config == tiny.config
