"""Stage-0 objective terms, each against a hand computation: the straight-through quantiser's forward
value and gradient, and the flow-matching loss's interpolation, velocity target and code path.

Convention (Qwen2.5-Omni's Token2Wav DiT, transformers' `Qwen2_5OmniToken2WavDiTModel.sample`): the
ODE starts from Gaussian noise at t = 0 and integrates dx/dt = DiT(x, t) with RK4 up to t = 1, where
x is the mel. So the DiT predicts the velocity x1 - x0 of the path x_t = (1 - t) x0 + t x1.
"""

import copy

import pytest
import torch
from torch import nn
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import RungeKutta4ODESolver

from sa_slm.codec.flow_matching import flow_matching_loss, straight_through

V, EMB, MEL, T, REPEATS = 6, 5, 4, 3, 2  # codebook, code-embedding width, mel bins, codes, mel frames per code


def _softmax_vjp(logits: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
    """Hand-computed d(sum(upstream * softmax(logits)))/dlogits = p * (g - <p, g>), row by row."""
    p = logits.softmax(-1)
    return p * (upstream - (p * upstream).sum(-1, keepdim=True))


def test_straight_through_forward_is_the_argmax_and_backward_the_softmax_jacobian():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 4, V, generator=gen).requires_grad_()
    upstream = torch.randn(3, 4, V, generator=gen)
    st = straight_through(logits)
    torch.testing.assert_close(st.detach(), nn.functional.one_hot(logits.argmax(-1), V).float(), rtol=0, atol=1e-6)
    (grad,) = torch.autograd.grad((st * upstream).sum(), logits)
    torch.testing.assert_close(grad, _softmax_vjp(logits.detach(), upstream), rtol=1e-5, atol=1e-6)
    # Descending the gradient of a loss that rewards one code raises that code's probability.
    (toward_0,) = torch.autograd.grad(-straight_through(logits)[..., 0].sum(), logits)
    assert (toward_0[..., 0] < 0).all()


class _CodeEmbedding(nn.Module):
    """The DiT's code table interface (`codec_embed`, `repeats`) that `flow_matching_loss` hooks."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.repeats = REPEATS
        self.codec_embed = nn.Embedding.from_pretrained(table, freeze=True)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return torch.repeat_interleave(self.codec_embed(code), REPEATS, dim=1)


class _OracleDiT(nn.Module):
    """A velocity field that knows the target mel x1: v(x_t, t) = (x1 - x_t) / (1 - t) + e W.

    For x_t on the path (1 - t) x0 + t x1 the first term is exactly x1 - x0, so with W = 0 the loss is
    zero iff the loss interpolates and targets in the DiT's convention. e: (1, T * REPEATS, EMB) the
    code embeddings the DiT is given (what `flow_matching_loss` feeds through the straight-through path).
    """

    def __init__(self, x1: torch.Tensor, table: torch.Tensor, w: torch.Tensor) -> None:
        super().__init__()
        self.x1, self.w = x1, w
        self.text_embed = _CodeEmbedding(table)
        self.seen: dict[str, torch.Tensor] = {}

    def forward(self, hidden_states, condition_vector, speaker_embedding, quantized_code, time_step, apply_cfg):
        assert not apply_cfg
        e = self.text_embed(quantized_code)
        self.seen.update(x_t=hidden_states.detach(), t=time_step.detach(), e=e.detach(), ref=condition_vector)
        return (self.x1 - hidden_states) / (1 - time_step) + e @ self.w


@pytest.fixture()
def clip():
    gen = torch.Generator().manual_seed(2)
    return {"logits": torch.randn(T, V, generator=gen), "mel": torch.randn(T * REPEATS, MEL, generator=gen),
            "table": torch.randn(V, EMB, generator=gen), "w": torch.randn(EMB, MEL, generator=gen),
            "cond": torch.randn(1, 3, generator=gen), "ref_mel": torch.randn(1, 7, MEL, generator=gen)}


def test_the_dits_ode_carries_noise_at_t0_to_the_mel_at_t1_along_the_velocity_x1_minus_x0(clip):
    """The sampler this loss trains for: transformers' RK4 over t = 0 → 1 (with its sway warp)."""
    gen = torch.Generator().manual_seed(3)
    x1 = clip["mel"][None]
    x0 = torch.randn(x1.shape, generator=gen)
    t = torch.linspace(0, 1, 10)
    t = t - (torch.cos(torch.pi / 2 * t) - 1 + t)  # sway_coefficient = -1, as `sample` defaults
    path = RungeKutta4ODESolver(function=lambda t, x: x1 - x0, initial_value=x0).integrate(t)
    torch.testing.assert_close(path[-1], x1)
    torch.testing.assert_close(path[4], (1 - t[4]) * x0 + t[4] * x1)


def test_flow_matching_loss_is_zero_for_the_true_velocity_field(clip):
    """Pins the interpolation x_t = (1 - t) x0 + t x1 and the target x1 - x0 (either one flipped or
    reversed gives a positive loss), whatever order the loss draws x0 and t in."""
    dit = _OracleDiT(clip["mel"][None], clip["table"], torch.zeros(EMB, MEL))
    for seed in range(3):
        loss = flow_matching_loss(dit, clip["logits"], clip["mel"], clip["cond"], clip["ref_mel"],
                                  generator=torch.Generator().manual_seed(seed))
        t = float(dit.seen["t"])
        assert 0 < t < 1
        assert float(loss) == pytest.approx(0.0, abs=1e-8), f"t={t}"
    # The DiT hears the speaker's reference mel (not the clip's own: its global summary would carry the
    # clip's style around the codes) and the argmax codes' table rows.
    torch.testing.assert_close(dit.seen["ref"], clip["ref_mel"])
    codes = clip["logits"].argmax(-1)
    want_e = torch.repeat_interleave(clip["table"][codes], REPEATS, dim=0)[None]
    torch.testing.assert_close(dit.seen["e"], want_e, rtol=0, atol=1e-6)


def test_flow_matching_gradient_reaches_the_logits_as_hand_computed(clip):
    """loss = mean((e W)^2) for the oracle field, e the code embeddings repeated per mel frame: its
    gradient to the tokenizer logits is the softmax Jacobian applied to dloss/d(one-hot), by hand."""
    dit = _OracleDiT(clip["mel"][None], clip["table"], clip["w"])
    logits = clip["logits"].clone().requires_grad_()
    loss = flow_matching_loss(dit, logits, clip["mel"], clip["cond"], clip["ref_mel"],
                              generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad(loss, logits)

    codes = clip["logits"].argmax(-1)
    residual = clip["table"][codes] @ clip["w"]  # (T, MEL): e W on each of a code's REPEATS frames
    n = T * REPEATS * MEL
    torch.testing.assert_close(loss.detach(), (residual**2).sum() * REPEATS / n)
    d_embed = 2 * REPEATS * residual @ clip["w"].T / n  # (T, EMB): summed over the code's frames
    d_onehot = d_embed @ clip["table"].T  # (T, V)
    torch.testing.assert_close(grad, _softmax_vjp(clip["logits"], d_onehot), rtol=1e-5, atol=1e-7)


def test_flow_matching_loss_on_the_tiny_dit_equals_a_hand_computation(tiny):
    """The real frozen DiT: replaying the loss's seeded draws (x0, then t), the loss is the MSE of the
    DiT's prediction at x_t = (1 - t) x0 + t x1, fed the argmax codes directly, against x1 - x0."""
    dit = tiny.model.token2wav.code2wav_dit_model
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(10, dit.text_embed.codec_embed.num_embeddings - 1, generator=gen)
    mel = torch.randn(10 * dit.repeats, dit.mel_dim, generator=gen)
    cond, ref_mel = tiny.speakers["Chelsie"].cond, tiny.speakers["Chelsie"].ref_mel
    with torch.no_grad():
        loss = flow_matching_loss(dit, logits, mel, cond, ref_mel, generator=torch.Generator().manual_seed(5))
        replay = torch.Generator().manual_seed(5)
        x1 = mel[None]
        x0 = torch.randn(x1.shape, generator=replay)
        t = torch.rand(1, generator=replay)
        pred = dit(hidden_states=(1 - t) * x0 + t * x1, condition_vector=ref_mel,
                   speaker_embedding=cond.unsqueeze(1).repeat(1, x1.shape[1], 1),
                   quantized_code=logits.argmax(-1)[None], time_step=t, apply_cfg=False)
    torch.testing.assert_close(loss, ((pred - (x1 - x0)) ** 2).mean(), rtol=1e-5, atol=1e-6)
    assert float(loss) > 0.1  # a random DiT is far from the true velocity: the comparison is not 0 == 0


@pytest.mark.parametrize("code_weight", [1.0, 0.4])
def test_stage0_loss_is_ce_plus_weighted_mean_flow_matching_over_the_real_clips(tiny, tmp_path, code_weight):
    """The trainer's total: code_loss_weight × code CE over the paired rows + weight × the mean of per-clip
    flow-matching losses over the real-speech rows, each clip cut to its own codes and their mel frames."""
    from transformers import TrainingArguments

    from sa_slm.codec import SpeechTokenizer, SpeechTokenizerConfig
    from sa_slm.codec.data import collate_pairs
    from sa_slm.codec.objectives import code_cross_entropy
    from sa_slm.codec.trainer import FlowMatchingObjective, SpeechTokenizerTrainer

    torch.manual_seed(0)
    cfg = SpeechTokenizerConfig.for_omni(tiny.model.config, hidden_size=32, num_layers=1, num_heads=2)
    model = SpeechTokenizer(cfg).train()
    dit = copy.deepcopy(tiny.model.token2wav.code2wav_dit_model)  # the objective freezes it: not the shared one
    speaker = tiny.speakers["Chelsie"]
    objective = FlowMatchingObjective(dit, speaker.cond, speaker.ref_mel, weight=0.3)
    trainer = SpeechTokenizerTrainer(model=model, flow_matching=objective, code_loss_weight=code_weight,
                                     args=TrainingArguments(output_dir=str(tmp_path / "run"), report_to=[]))
    gen = torch.Generator().manual_seed(6)
    batch = collate_pairs([
        {"audio": 0.1 * torch.randn(10 * 480, generator=gen), "codes": torch.randint(0, 8000, (10,), generator=gen)},
        {"real_audio": 0.1 * torch.randn(15 * 480 + 100, generator=gen)},  # 15 codes
        {"real_audio": 0.1 * torch.randn(5 * 480, generator=gen)},  # 5 codes, padded to 15 in the batch
    ])
    torch.manual_seed(7)
    loss = trainer.compute_loss(model, batch)

    with torch.no_grad():
        out = model(batch["audio"], batch["audio_lengths"])
        ce, _ = code_cross_entropy(out["logits"], out["code_mask"], batch["codes"], batch["code_lengths"])
        torch.manual_seed(7)  # the flow-matching noise and times, drawn clip by clip in batch order
        per_clip = [flow_matching_loss(dit, out["logits"][b, :n], out["mel"][b, : 2 * n], objective.cond,
                                       objective.ref_mel)
                    for b, n in ((1, 15), (2, 5))]
    assert float(per_clip[0]) != pytest.approx(float(per_clip[1]), rel=1e-3)
    torch.testing.assert_close(loss.detach(), code_weight * ce + 0.3 * (per_clip[0] + per_clip[1]) / 2, rtol=1e-5,
                               atol=1e-6)
