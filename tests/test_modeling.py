"""The policy model: conditioning is formed in one place (the bridge, with the stock and anchor paths as
modes), and forward reports what the objectives need without computing any loss."""

import pytest
import torch

from sa_slm import SASLM
from sa_slm.bridge import IntentBridge, IntentBridgeConfig
from sa_slm.bridge.vib import token_kl
from sa_slm.config import ConfigError
from sa_slm.data import TeacherForcingCollator, load_manifest
from sa_slm.modeling import SASLMOutput
from sa_slm.paths import CORPUS_DIR
from sa_slm.pipeline import encode_prompts, speaker_bos
from sa_slm.talker.layout import talker_prefix


@pytest.fixture(scope="module")
def bridged():
    """vib_adaln with the acoustic context, every bridge weight non-zero (as after training)."""
    torch.manual_seed(0)
    saslm = SASLM.from_pretrained("tiny", device="cpu", bridge=IntentBridgeConfig(
        mode="vib_adaln", latent_dim=8, vib_hidden=16, acoustic_context="audio_tower"))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in saslm.bridge.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return saslm


@pytest.fixture(scope="module")
def states(bridged):
    convs = [bridged.conversation(audio=CORPUS_DIR / "wavs/q00.wav", text="How was it?"),
             bridged.conversation(text="Hello!")]
    replies = [torch.tensor(bridged.processor.encode_reply(t)) for t in ("It was quiet, really.", "Hi.")]
    batch = encode_prompts(bridged.processor, bridged.model, convs)
    return bridged.model.thinker_states(**batch, reply_ids=replies)


def _same_prefix(a, b):
    assert len(a.rows) == len(b.rows)
    for x, y in zip(a.rows, b.rows):
        torch.testing.assert_close(x, y)
    torch.testing.assert_close(a.stream, b.stream)


@pytest.mark.parametrize("mode", ["text", "add"])
def test_the_anchor_and_stock_paths_are_parameter_free_modes_without_acoustic_context(bridged, states, mode):
    model = bridged.model
    bos = speaker_bos(bridged.speakers, None, 2)
    hidden, embeds, mask = states.reply_slices()
    part = embeds if mode == "text" else hidden + embeds
    expected = talker_prefix(model, states, part * mask[..., None], bos, None)  # built by hand, no acoustic term
    _same_prefix(model.condition(states, bos, mode=mode).prefix, expected)
    # The configured bridge is a different conditioning (AdaLN of z, plus the user audio's acoustic context).
    configured = model.condition(states, bos).prefix
    assert not torch.allclose(configured.rows[0], expected.rows[0])
    acoustic = model.intent_bridge.acoustic(states.audio_states, states.audio_mask)
    assert acoustic[0].abs().sum() > 0 and acoustic[1].abs().sum() == 0  # only the spoken prompt has audio


def test_a_mode_needing_weights_the_bridge_lacks_is_refused():
    bridge = IntentBridge(IntentBridgeConfig(mode="add"), hidden_size=6)
    with pytest.raises(ValueError, match="needs weights this bridge \\(add\\) does not have"):
        bridge(torch.randn(1, 2, 6), torch.randn(1, 2, 6), mode="vib_adaln")


def test_forward_reports_the_bridge_terms_and_computes_no_loss(bridged):
    batch = TeacherForcingCollator.for_model(bridged.model, bridged.processor, bridged.speakers)(
        load_manifest(CORPUS_DIR / "manifest_codes.jsonl")[:3])
    out = bridged.model(**batch, sample_latent=False)
    assert isinstance(out, SASLMOutput) and "loss" not in out.keys()
    torch.testing.assert_close(out.intent_z, out.intent_mu)  # no sampling: z is the posterior mean
    cfg = bridged.bridge.cfg
    torch.testing.assert_close(out.intent_kl, token_kl(out.intent_mu, out.intent_logvar, out.intent_z, cfg.prior,
                                                       cfg.alpha, cfg.sigma_p))
    assert out.reply_mask.sum(-1).tolist() == batch["reply_lengths"].tolist()
    assert out.mask.sum(-1).tolist() == batch["code_lengths"].tolist()
    torch.manual_seed(3)
    sampled = bridged.model(**batch, sample_latent=True)
    assert not torch.allclose(sampled.intent_z, sampled.intent_mu)  # training draws z
    torch.testing.assert_close(sampled.intent_mu, out.intent_mu)


def test_rows_select_one_prompt_per_code_row(bridged, states):
    """`rows` gives several code rows one prompt each: the same log-probs as repeating the prompt."""
    codes = torch.randint(0, 8000, (3, 6))
    lengths = torch.tensor([6, 4, 5])
    bos = torch.tensor(speaker_bos(bridged.speakers, None, 2))
    rows = torch.tensor([1, 0, 1])
    selected = bridged.model(thinker_states=states, speaker_bos=bos, rows=rows, codes=codes, code_lengths=lengths)
    for r, prompt in enumerate(rows.tolist()):
        alone = bridged.model(thinker_states=states, speaker_bos=bos, rows=torch.tensor([prompt]), codes=codes[r:r + 1],
                              code_lengths=lengths[r:r + 1])
        torch.testing.assert_close(selected.logprobs[r], alone.logprobs[0], atol=1e-5, rtol=0)
    other = bridged.model(thinker_states=states, speaker_bos=bos, rows=1 - rows, codes=codes, code_lengths=lengths)
    assert (other.logprobs - selected.logprobs).abs().max() > 1e-3  # the prompt matters: the check can fail


def test_bridge_config_values_are_checked():
    with pytest.raises(ConfigError, match="latent_dim must be a positive integer"):
        IntentBridgeConfig(mode="vib_adaln", latent_dim=0)
    with pytest.raises(ConfigError, match="0 <= alpha < 1"):
        IntentBridgeConfig(alpha=1.0)


def test_prompts_with_their_own_seeds_do_not_share_the_talkers_draws(tiny):
    """Two identical prompts: with seeds shared by all prompts they get the same random numbers and so the
    same codes; with one seed list per prompt (`prompt_seeds`) they differ, and a prompt's rollout is the
    one it gets alone (no dependence on the batch)."""
    from sa_slm.pipeline import speak
    from sa_slm.processor import Conversation
    from sa_slm.seeding import derive_seed, prompt_seeds
    from sa_slm.talker.sampling import SamplingConfig

    convs = [Conversation.user("How was your day?")] * 2
    replies = [torch.tensor(tiny.processor.encode_reply("It was fine, thanks."))] * 2
    sampling = tiny.sampling(SamplingConfig(max_new_codes=12))

    def codes(conversations, seeds):
        out = speak(tiny.model, tiny.processor, tiny.speakers, conversations, sampling, 2, replies[:len(conversations)],
                    seeds=seeds).codes
        return [out.audio_codes(r).tolist() for r in range(len(conversations) * 2)]

    shared = codes(convs, [derive_seed(3, "k", k) for k in range(2)])
    assert shared[:2] == shared[2:]
    own = prompt_seeds(3, ["a", "b"], 2, "talker")
    independent = codes(convs, own)
    assert independent[0] != independent[2] and independent[1] != independent[3]
    assert codes(convs[1:], own[1:]) == independent[2:]
    with pytest.raises(ValueError, match="one list of 2 per prompt"):
        codes(convs, own[:1])
