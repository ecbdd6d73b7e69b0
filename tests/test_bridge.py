"""Intent bridge: VIB + OU-prior KL, KL-weight schedule, zero-initialised AdaLN, modes, persistence."""

import math

import pytest
import torch

from sa_slm.bridge import IntentBridge, IntentBridgeConfig, kl_weight_at
from sa_slm.bridge.vib import masked_mean, token_kl
from sa_slm import SASLM
from sa_slm.talker.sampling import SamplingConfig


def test_ou_kl_matches_closed_form():
    alpha, sp = 0.95, 0.5
    mu = torch.tensor([[[0.3, -0.2], [0.1, 0.4], [-0.5, 0.0]]])  # (1, 3, 2)
    logvar = torch.tensor([[[-1.0, -0.5], [0.0, -2.0], [-0.3, -0.7]]])
    z = torch.tensor([[[0.25, -0.1], [0.2, 0.5], [-0.4, 0.1]]])
    got = token_kl(mu, logvar, z, "ou", alpha, sp)

    def kl1(m, lv, pm, pv):  # scalar Gaussians
        return 0.5 * (math.log(pv) - lv + (math.exp(lv) + (m - pm) ** 2) / pv - 1)

    want = []
    for t in range(3):
        pv = sp**2 / (1 - alpha**2) if t == 0 else sp**2
        total = 0.0
        for d in range(2):
            pm = 0.0 if t == 0 else alpha * float(z[0, t - 1, d])
            total += kl1(float(mu[0, t, d]), float(logvar[0, t, d]), pm, pv)
        want.append(total)
    torch.testing.assert_close(got[0], torch.tensor(want))
    iid = token_kl(mu, logvar, z, "iid", alpha, sp)
    want_iid = [sum(kl1(float(mu[0, t, d]), float(logvar[0, t, d]), 0.0, 1.0) for d in range(2)) for t in range(3)]
    torch.testing.assert_close(iid[0], torch.tensor(want_iid))


def test_kl_ignores_masked_positions():
    bridge = IntentBridge(IntentBridgeConfig(mode="vib_adaln", latent_dim=4, vib_hidden=8), hidden_size=6)
    hidden, embeds = torch.randn(2, 5, 6), torch.randn(2, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out = bridge(hidden, embeds)
    changed = hidden.clone()
    changed[0, 3:] = 100.0  # garbage at padded positions
    out2 = bridge(changed, embeds)
    torch.testing.assert_close(bridge.kl(out, mask), bridge.kl(out2, mask))
    assert masked_mean(torch.ones(2, 5), torch.zeros(2, 5, dtype=torch.bool)) == 0


@pytest.mark.parametrize("fraction, expected", [(0.0, 0.0), (0.10, 0.0), (0.55, 0.25), (1.0, 0.5)])
def test_kl_weight_schedule(fraction, expected):
    assert kl_weight_at(int(fraction * 1000), 1000, maximum=0.5) == pytest.approx(expected, abs=1e-9)


def test_kl_weight_ramps_monotonically():
    values = [kl_weight_at(s, 200) for s in range(201)]
    assert all(b2 >= b1 for b1, b2 in zip(values, values[1:])) and values[19] == 0 and values[-1] == 0.5


@pytest.mark.parametrize("mode", ["adaln_h", "vib_adaln"])
def test_zero_initialised_adaln_passes_layernorm_of_e(mode):
    bridge = IntentBridge(IntentBridgeConfig(mode=mode, latent_dim=4, vib_hidden=8), hidden_size=6)
    hidden, embeds = torch.randn(2, 3, 6), torch.randn(2, 3, 6)
    out = bridge(hidden, embeds, sample=True)
    torch.testing.assert_close(out.reply_part, torch.nn.functional.layer_norm(embeds, (6,)))


def test_modes_text_and_add():
    hidden, embeds = torch.randn(1, 2, 6), torch.randn(1, 2, 6)
    torch.testing.assert_close(IntentBridge(IntentBridgeConfig(mode="add"), 6)(hidden, embeds).reply_part, hidden + embeds)
    torch.testing.assert_close(IntentBridge(IntentBridgeConfig(mode="text"), 6)(hidden, embeds).reply_part, embeds)
    with pytest.raises(ValueError, match="unknown intent-bridge mode 'film'"):
        IntentBridgeConfig(mode="film")


def _perturb(model: SASLM, seed: int = 0) -> None:
    """Give the zero-initialised bridge parameters non-zero values, as training would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.bridge.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("mode", ["text", "add", "adaln_h", "vib_adaln"])
def test_teacher_forcing_equals_sampling_in_every_mode(mode, tone):
    bridge = IntentBridgeConfig(mode=mode, latent_dim=8, vib_hidden=16, acoustic_context="audio_tower")
    model = SASLM.from_pretrained("tiny", device="cpu", bridge=bridge)
    _perturb(model)
    wav, sr = tone
    convs = [model.conversation(audio=wav, sampling_rate=sr, text="Tell me."), model.conversation(text="Hi!")]
    sampling = SamplingConfig(max_new_codes=12)
    out = model.rollouts(convs, num_samples=2, sampling=sampling, seeds=[4, 5], decode=False)
    rows = out.codes.prompt_index.tolist()
    tf = model.teacher_forced([convs[i] for i in rows], [out.reply_ids[i] for i in rows], out.codes.codes,
                              out.codes.num_steps, sampling)
    assert (tf.logprobs - out.codes.logprobs).abs().max() <= 1e-4
    if mode == "vib_adaln":
        assert [z.shape for z in out.intents] == [(len(r), 8) for r in out.reply_ids]
    else:
        assert out.intents is None
    # The bridge changes what the Talker hears: without it, the same codes score differently.
    off = model.rollouts(convs, num_samples=2, sampling=sampling, seeds=[4, 5], decode=False, mode="add")
    if mode != "add":
        assert not torch.allclose(off.codes.logprobs, out.codes.logprobs)


def test_bridge_weights_and_settings_survive_save_and_load(tmp_path, tone):
    bridge = IntentBridgeConfig(mode="vib_adaln", latent_dim=8, vib_hidden=16, acoustic_context="audio_tower")
    model = SASLM.from_pretrained("tiny", device="cpu", bridge=bridge)
    _perturb(model, seed=1)
    wav, sr = tone
    before = model.generate(audio=wav, sampling_rate=sr, num_samples=1, seed=2, max_new_codes=8)
    model.save_pretrained(tmp_path / "m")
    loaded = SASLM.from_pretrained(tmp_path / "m", device="cpu")
    assert loaded.bridge.cfg == bridge
    for (n1, p1), (n2, p2) in zip(model.bridge.named_parameters(), loaded.bridge.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)
    after = loaded.generate(audio=wav, sampling_rate=sr, num_samples=1, seed=2, max_new_codes=8)
    assert torch.equal(before.codes[0], after.codes[0])
    torch.testing.assert_close(before.intent, after.intent)


def test_stock_checkpoint_gets_a_zero_initialised_bridge(tmp_path):
    stock = SASLM.from_pretrained("tiny", device="cpu")  # mode "add": no bridge weights saved
    stock.save_pretrained(tmp_path / "stock")
    upgraded = SASLM.from_pretrained(tmp_path / "stock", device="cpu",
                                     bridge=IntentBridgeConfig(mode="vib_adaln", acoustic_context="audio_tower"))
    assert upgraded.bridge.adaln.gamma.weight.abs().sum() == 0 and upgraded.bridge.adaln.delta.bias.abs().sum() == 0
    assert upgraded.bridge.acoustic_proj.weight.abs().sum() == 0
    assert upgraded.bridge.vib.net[0].weight.abs().sum() > 0


def test_loading_a_saved_bridge_with_other_settings_keeps_the_matching_weights_and_starts_the_rest(tmp_path):
    """Another ablation's stage 1 from a saved model: a mode change (vib_adaln -> adaln_h) used to fail on the
    AdaLN's shapes. Same-shaped weights are kept, the others start at their initialisation, and the new
    settings are what the model saves."""
    full = IntentBridgeConfig(mode="vib_adaln", latent_dim=8, vib_hidden=16, acoustic_context="audio_tower")
    model = SASLM.from_pretrained("tiny", device="cpu", bridge=full)
    _perturb(model, seed=3)
    model.save_pretrained(tmp_path / "m")
    saved = {n: p.detach().clone() for n, p in model.bridge.named_parameters()}

    other = IntentBridgeConfig(mode="adaln_h", acoustic_context="audio_tower")
    swapped = SASLM.from_pretrained(tmp_path / "m", device="cpu", bridge=other, seed=5)
    assert swapped.bridge.cfg == other and swapped.model.config.sa_slm["mode"] == "adaln_h"
    assert not hasattr(swapped.bridge, "vib")
    assert swapped.bridge.adaln.gamma.weight.shape == (32, 32)  # conditioned on h, not on an 8-d z
    assert swapped.bridge.adaln.gamma.weight.abs().sum() == 0 and swapped.bridge.adaln.delta.weight.abs().sum() == 0
    torch.testing.assert_close(swapped.bridge.acoustic_proj.weight, saved["acoustic_proj.weight"], rtol=0, atol=0)
    swapped.save_pretrained(tmp_path / "m2")
    assert SASLM.from_pretrained(tmp_path / "m2", device="cpu").bridge.cfg == other

    iid = IntentBridgeConfig(**{**full.__dict__, "prior": "iid"})  # no shape changes: every weight kept
    kept = SASLM.from_pretrained(tmp_path / "m", device="cpu", bridge=iid)
    assert kept.bridge.cfg.prior == "iid"
    for name, p in kept.bridge.named_parameters():
        torch.testing.assert_close(p, saved[name], rtol=0, atol=0)
