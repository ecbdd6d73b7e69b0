"""UAPO loss on hand-made log-probs: sign, anchor as reference point, empty sets, weighting."""

import math

import torch

from sa_slm.uapo import uapo_loss


def _loss(logp, utility, anchor_logp=0.0, anchor_u=0.5, beta=1.0, **kw):
    logp = torch.tensor([logp], dtype=torch.float64, requires_grad=True)
    out = uapo_loss(logp, torch.zeros_like(logp), torch.tensor([utility], dtype=torch.float64),
                    torch.tensor([anchor_logp], dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
                    torch.tensor([anchor_u], dtype=torch.float64), beta=beta, **kw)
    return out, logp


def test_hand_computed_value():
    out, _ = _loss([1.0, -2.0, 0.3], [0.9, 0.1, 0.5], anchor_logp=0.5, beta=0.5)
    # W = {0}: -log sigmoid(0.5 * (1.0 - 0.5)); L = {1}: -log sigmoid(0.5 * (0.5 + 2.0)); tie {2} ignored
    want = -math.log(1 / (1 + math.exp(-0.25))) - math.log(1 / (1 + math.exp(-1.25)))
    assert abs(float(out.loss.detach()) - want) < 1e-9
    assert out.preferred.tolist() == [1] and out.rejected.tolist() == [1]


def test_sign_pushes_preferred_up_and_rejected_down():
    out, logp = _loss([0.0, 0.0], [0.9, 0.1])
    out.loss.backward()
    assert logp.grad[0, 0] < 0  # raising the preferred rollout's log-prob lowers the loss
    assert logp.grad[0, 1] > 0  # raising the rejected rollout's log-prob raises it


def test_anchor_is_the_reference_point():
    a, _ = _loss([0.2, -0.4], [0.8, 0.2], anchor_logp=0.1)
    shifted, _ = _loss([1.2, 0.6], [0.8, 0.2], anchor_logp=1.1)  # every reward + 1, anchor too
    assert torch.allclose(a.loss, shifted.loss)
    # Moving only the anchor's reward up makes beating it harder.
    harder, _ = _loss([0.2, -0.4], [0.8, 0.2], anchor_logp=0.6)
    assert float(harder.loss.detach()) > float(a.loss.detach())


def test_empty_sets():
    only_winners, _ = _loss([0.3, 0.1], [0.9, 0.8])
    want = (-torch.nn.functional.logsigmoid(torch.tensor([0.3, 0.1], dtype=torch.float64))).mean()
    assert torch.allclose(only_winners.loss, want) and only_winners.rejected.item() == 0
    nothing, logp = _loss([0.3, 0.1], [0.5, 0.5])  # all tie with the anchor
    assert float(nothing.loss.detach()) == 0.0 and nothing.preferred.item() == 0 and nothing.rejected.item() == 0
    nothing.loss.backward()
    assert torch.all(logp.grad == 0)


def test_margin_weighting_and_invalid_rollouts():
    plain, _ = _loss([0.0, 1.0], [0.6, 0.9])
    weighted, _ = _loss([0.0, 1.0], [0.6, 0.9], margin_weighting=True)
    l0, l1 = -math.log(0.5), -math.log(1 / (1 + math.exp(-1.0)))
    assert abs(float(plain.loss.detach()) - (l0 + l1) / 2) < 1e-9
    assert abs(float(weighted.loss.detach()) - (0.1 * l0 + 0.4 * l1) / 0.5) < 1e-9  # weights |u - u_a|
    dropped, _ = _loss([0.0, 1.0], [0.6, 0.9], valid=torch.tensor([[True, False]]))
    assert abs(float(dropped.loss.detach()) - l0) < 1e-9 and dropped.preferred.item() == 1


def test_batched_prompts_average_over_active_ones():
    logp = torch.tensor([[0.5, -0.5], [0.0, 0.0]])
    out = uapo_loss(logp, torch.zeros_like(logp), torch.tensor([[0.9, 0.1], [0.5, 0.5]]), torch.zeros(2),
                    torch.zeros(2), torch.tensor([0.5, 0.5]), beta=1.0)
    single = uapo_loss(logp[:1], torch.zeros(1, 2), torch.tensor([[0.9, 0.1]]), torch.zeros(1), torch.zeros(1),
                       torch.tensor([0.5]), beta=1.0)
    assert torch.allclose(out.loss, single.loss)  # the all-tie prompt does not dilute the mean
