"""Every term of the stage-0/1/2 objectives against hand-computed values: the terms, their masks,
their denominators and the weights that combine them."""

import math

import pytest
import torch

from sa_slm.codec.objectives import code_cross_entropy
from sa_slm.modeling import SASLMOutput
from sa_slm.sft.objective import codec_cross_entropy, reply_text_cross_entropy, sft_loss


def _ce(logits_row, target):
    """-log softmax(logits)[target], by hand."""
    return -(logits_row[target] - math.log(sum(math.exp(v) for v in logits_row)))


def test_codec_cross_entropy_is_the_mean_over_real_steps_only():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [9.0, 9.0, 9.0]],
                           [[0.0, 0.0, 3.0], [5.0, 5.0, 5.0], [5.0, 5.0, 5.0]]])
    codes = torch.tensor([[0, 2, 1], [2, 0, 0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    ce, accuracy = codec_cross_entropy(logits, codes, mask)
    want = (_ce([2, 0, 0], 0) + _ce([0, 1, 0], 2) + _ce([0, 0, 3], 2)) / 3  # 3 real steps, not 6
    assert float(ce) == pytest.approx(want, rel=1e-6)
    assert float(accuracy) == pytest.approx(2 / 3)  # step (0, 1) predicts 1, not 2


def test_reply_text_cross_entropy_targets_the_reply_then_the_eos():
    V, eos = 5, 4
    logits = torch.log_softmax(torch.arange(2 * 3 * V, dtype=torch.float).reshape(2, 3, V).sin(), -1)
    reply_ids = torch.tensor([[1, 2], [3, 0]])  # row 1 has one token (the 0 is padding)
    lengths = torch.tensor([2, 1])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    got = reply_text_cross_entropy(logits, mask, reply_ids, lengths, eos)
    targets = [(0, 0, 1), (0, 1, 2), (0, 2, eos), (1, 0, 3), (1, 1, eos)]
    want = sum(_ce(logits[b, j].tolist(), t) for b, j, t in targets) / len(targets)
    assert float(got) == pytest.approx(want, rel=1e-6)


def _output(kl_per_token, reply_mask, text_logits=None, text_mask=None):
    logits = torch.zeros(1, 2, 4)
    logits[0, 0, 1] = 2.0
    return SASLMOutput(logits=logits, mask=torch.tensor([[True, True]]), reply_mask=reply_mask,
                       intent_kl=kl_per_token, reply_text_logits=text_logits, reply_text_mask=text_mask)


def test_the_sft_loss_weights_each_term_and_averages_the_kl_over_real_reply_tokens():
    reply_mask = torch.tensor([[True, True, False]])
    kl = torch.tensor([[0.3, 0.5, 100.0]])  # the padded token's KL must not count
    text_logits = torch.zeros(1, 3, 6)
    batch = {"codes": torch.tensor([[1, 3]]), "reply_ids": torch.tensor([[2, 5]]), "reply_lengths": torch.tensor([2])}
    out = _output(kl, reply_mask, text_logits, torch.tensor([[True, True, True]]))
    result = sft_loss(out, batch, kl_weight=0.25, text_loss_weight=2.0, eos_id=4)
    codec = (_ce([0, 2, 0, 0], 1) + _ce([0, 0, 0, 0], 3)) / 2
    text = math.log(6)  # uniform logits over 6 tokens, 3 targets
    assert float(result.terms["codec_loss"]) == pytest.approx(codec, rel=1e-6)
    assert float(result.terms["kl"]) == pytest.approx(0.4, rel=1e-6)
    assert float(result.terms["text_loss"]) == pytest.approx(text, rel=1e-6)
    assert float(result.loss) == pytest.approx(codec + 0.25 * 0.4 + 2.0 * text, rel=1e-6)
    without_text = sft_loss(out, batch, kl_weight=0.25)
    assert "text_loss" not in without_text.terms
    assert float(without_text.loss) == pytest.approx(codec + 0.25 * 0.4, rel=1e-6)


def test_modes_without_a_latent_have_no_kl_term():
    out = _output(None, torch.tensor([[True]]))
    result = sft_loss(out, {"codes": torch.tensor([[1, 3]])}, kl_weight=0.5)
    assert float(result.terms["kl"]) == 0.0 and float(result.loss) == pytest.approx(float(result.terms["codec_loss"]))


def test_the_text_loss_refuses_to_run_without_text_logits():
    out = _output(None, torch.tensor([[True]]))
    with pytest.raises(ValueError, match="with_text_logits=True"):
        sft_loss(out, {"codes": torch.tensor([[1, 3]])}, kl_weight=0.0, text_loss_weight=1.0, eos_id=4)


def test_tokenizer_cross_entropy_counts_positions_real_on_both_sides():
    logits = torch.zeros(2, 3, 4)
    logits[0, 0, 2] = 3.0
    code_mask = torch.tensor([[True, True, True], [True, False, False]])  # row 1: audio for one code only
    codes = torch.tensor([[2, 1, 0, 0], [3, 3, 3, 3]])
    lengths = torch.tensor([2, 4])  # row 0: two target codes
    ce, accuracy = code_cross_entropy(logits, code_mask, codes, lengths)
    want = (_ce([0, 0, 3, 0], 2) + _ce([0, 0, 0, 0], 1) + _ce([0, 0, 0, 0], 3)) / 3
    assert float(ce) == pytest.approx(want, rel=1e-6)
    assert float(accuracy) == pytest.approx(1 / 3)  # only (0, 0) is right; ties go to code 0
