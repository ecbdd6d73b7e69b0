"""Every term of the UAPO, SFT/bridge, sampling and critic objectives pinned against an independent
computation: each test fails when its term is dropped, flipped, mis-masked or mis-conditioned
(the reference term of the implicit reward, the policy/reference order at the trainer's call site,
the sampled latent of the OU prior, the reparameterisation's standard deviation, the temperature and
codec-bos suppression of the policy log-prob, the KL-weight schedule as the trainer steps it, the
reply-text CE mask, the stage-3 anchor's conditioning, the text mode's deafness to the acoustic
context and the critic's answer values)."""

import contextlib
import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pad_sequence

from sa_slm.bridge import IntentBridge, IntentBridgeConfig
from sa_slm.bridge.vib import reparameterise
from sa_slm.critic import RubricCritic, load_rubric
from sa_slm.critic.rubric import ScalePoint
from sa_slm.data import ExampleDataset, PromptCollator, load_manifest
from sa_slm.facade import SASLM
from sa_slm.paths import CORPUS_DIR
from sa_slm.pipeline import speaker_bos
from sa_slm.processor import READ_ALOUD, Conversation, Turn
from sa_slm.rewards import Utilities
from sa_slm.sft.objective import reply_text_cross_entropy
from sa_slm.sft.trainer import SFTTrainer
from sa_slm.talker.sampling import SamplingConfig
from sa_slm.training.config import TrainSection
from sa_slm.training.trainer_utils import training_arguments
from sa_slm.uapo import uapo_loss
from sa_slm.uapo import trainer as uapo_trainer_module
from sa_slm.uapo.rollouts import collect
from sa_slm.uapo.trainer import UAPOTrainer, frozen_reference


def _logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


# --- UAPO ---------------------------------------------------------------------------------------

def test_uapo_reward_is_policy_minus_reference_log_prob():
    """r(y) = log pi(y|x) - log pi_ref(y|x), for the rollouts and the anchor, with distinct non-zero
    reference log-probs (dropping or adding the reference term changes every margin)."""
    f64 = dict(dtype=torch.float64)
    out = uapo_loss(torch.tensor([[1.0, -2.0]], **f64), torch.tensor([[0.4, -0.5]], **f64),
                    torch.tensor([[0.9, 0.1]], **f64), torch.tensor([0.5], **f64), torch.tensor([-0.3], **f64),
                    torch.tensor([0.5], **f64), beta=0.5)
    r0, r1, ra = 1.0 - 0.4, -2.0 + 0.5, 0.5 + 0.3  # 0.6, -1.5, 0.8
    want = -_logsigmoid(0.5 * (r0 - ra)) - _logsigmoid(0.5 * (ra - r1))  # W = {0}, L = {1}
    assert float(out.loss) == pytest.approx(want, abs=1e-12)
    torch.testing.assert_close(out.reward_margin, torch.tensor([[r0 - ra, r1 - ra]], **f64))


class FixedUtility:
    """Rollout 0 beats the anchor, rollout 1 loses to it, whatever the codes."""

    def __call__(self, batch):
        B = len(batch.codes)
        return Utilities(torch.tensor([[0.9, 0.1]] * B), torch.full((B,), 0.5), torch.ones(B, 2, dtype=torch.bool),
                         torch.ones(B, dtype=torch.bool))


def test_uapo_trainer_passes_the_policy_and_the_frozen_reference_in_that_order(tiny, tmp_path, monkeypatch):
    """The trainer's loss on a policy that differs from its reference equals the hand-computed UAPO
    loss of log-probs scored independently (fresh Thinker passes through the facade) under each model."""
    reference = frozen_reference(tiny.model)
    policy = copy.deepcopy(tiny.model)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        head = policy.talker.codec_head.weight
        head.add_(2.0 * head.std() * torch.randn(head.shape, generator=gen))
    examples = load_manifest(CORPUS_DIR / "manifest.jsonl")[:1]
    sampling = SamplingConfig(max_new_codes=8)
    args = training_arguments(TrainSection(max_steps=1, per_device_train_batch_size=1, report_to=[]), tmp_path, 0)
    trainer = UAPOTrainer(model=policy, args=args, train_dataset=ExampleDataset(examples),
                          data_collator=PromptCollator(tiny.processor), reference=reference, processor=tiny.processor,
                          speakers=tiny.speakers, utility_fn=FixedUtility(), sampling=sampling, num_samples=2, beta=1.0)
    batches = []

    def recording_collect(*args, **kwargs):  # the trainer's own rollouts, kept for the independent scoring
        batches.append(collect(*args, **kwargs))
        return batches[-1]

    monkeypatch.setattr(uapo_trainer_module, "collect", recording_collect)
    loss = trainer.compute_loss(policy, PromptCollator(tiny.processor)(examples))
    rb = batches[0]

    rows = [0, 0, 0]  # rollout 0, rollout 1, the anchor: all scored given the dialogue context
    codes = torch.nn.utils.rnn.pad_sequence([*rb.policy.codes, *rb.anchor.codes], batch_first=True,
                                            padding_value=tiny.model.talker.codec_pad_token)
    lengths = torch.cat([rb.policy.num_steps, rb.anchor.num_steps])

    def summed(model):
        saslm = SASLM(model, tiny.processor, tiny.speakers, tiny.config)  # both already in eval mode
        with torch.no_grad():
            out = saslm.teacher_forced([rb.conversations[i] for i in rows], [rb.reply_ids[i] for i in rows], codes,
                                       lengths, sampling)
        return out.logprobs.double().sum(-1).tolist()

    (p0, p1, pa), (q0, q1, qa) = summed(policy), summed(reference)
    r0, r1, ra = p0 - q0, p1 - q1, pa - qa
    assert abs(r0 - r1) > 0.1  # swapping policy and reference would move the loss by beta * (r0 - r1)
    want = -_logsigmoid(r0 - ra) - _logsigmoid(ra - r1)
    assert float(loss.detach()) == pytest.approx(want, abs=2e-3)


# --- intent bridge --------------------------------------------------------------------------------

def _bridge(**kw) -> IntentBridge:
    torch.manual_seed(0)
    bridge = IntentBridge(IntentBridgeConfig(mode="vib_adaln", latent_dim=3, vib_hidden=8, **kw), hidden_size=4)
    with torch.no_grad():  # a posterior that is neither N(0, 1) nor tiny
        bridge.vib.net[-1].bias.copy_(torch.tensor([0.3, -0.6, 0.9, -1.1, 0.7, 0.4]))
    return bridge


def test_reparameterisation_scales_the_noise_by_the_standard_deviation():
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[-1.2, 0.8, 2.0]])
    torch.manual_seed(7)
    z = reparameterise(mu, logvar)
    torch.manual_seed(7)
    eps = torch.randn(1, 3).tolist()[0]
    want = [m + e * math.exp(0.5 * lv) for m, e, lv in zip(mu[0].tolist(), eps, logvar[0].tolist())]
    torch.testing.assert_close(z, torch.tensor([want]))
    # The bridge samples z this way in training (and uses mu otherwise).
    bridge = _bridge()
    hidden = torch.randn(1, 4, 4)
    torch.manual_seed(11)
    out = bridge(hidden, torch.randn(1, 4, 4), sample=True)
    torch.manual_seed(11)
    torch.randn(1, 4, 4)  # the embeds drawn above
    eps = torch.randn(1, 4, 3)
    torch.testing.assert_close(out.z, out.mu + eps * (0.5 * out.logvar).exp())
    assert out.logvar.abs().min() > 0.1
    torch.testing.assert_close(bridge(hidden, torch.zeros(1, 4, 4)).z, out.mu)


def test_the_bridge_kl_conditions_the_ou_prior_on_the_sampled_previous_latent():
    alpha, sp = 0.9, 0.5
    bridge = _bridge(alpha=alpha, sigma_p=sp)
    torch.manual_seed(5)
    out = bridge(torch.randn(1, 3, 4), torch.randn(1, 3, 4), sample=True)
    assert (out.z - out.mu).abs().min() > 1e-3
    mu, lv, z = out.mu[0].tolist(), out.logvar[0].tolist(), out.z[0].tolist()
    want = []
    for t in range(3):
        pv = sp**2 / (1 - alpha**2) if t == 0 else sp**2
        want.append(sum(0.5 * (math.log(pv) - lv[t][d] + (math.exp(lv[t][d]) + (mu[t][d] - (
            0.0 if t == 0 else alpha * z[t - 1][d])) ** 2) / pv - 1) for d in range(3)))
    torch.testing.assert_close(bridge.token_kl(out)[0], torch.tensor(want))
    # Averaged over the real reply tokens only.
    mask = torch.tensor([[True, True, False]])
    assert float(bridge.kl(out, mask).detach()) == pytest.approx((want[0] + want[1]) / 2, rel=1e-5)


# --- the policy log-prob: temperature and codec-bos suppression ------------------------------------

@contextlib.contextmanager
def sharp_logits_favouring_bos(saslm: SASLM, scale: float = 8.0, bos_boost: float = 40.0):
    """Make the tiny Talker's raw codec logits sharp and put codec-bos far above every other code, so
    that the temperature and the suppression of codec-bos each move the policy log-probs a lot."""
    bos = saslm.model.talker.codec_bos_token

    def hook(module, inputs, output):
        output = output * scale
        output[..., bos] += bos_boost
        return output

    handle = saslm.model.talker.codec_head.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _independent_policy_logprobs(raw: torch.Tensor, codes: torch.Tensor, lengths: torch.Tensor, talker,
                                 cfg: SamplingConfig) -> torch.Tensor:
    """log_softmax((repetition-penalised raw logits, codec-bos at -inf) / T) of each given code, step by step."""
    out = torch.zeros(codes.shape, dtype=torch.float64)
    always = {talker.codec_mask_token, talker.codec_pad_token, talker.codec_bos_token}
    for b in range(codes.shape[0]):
        for k in range(int(lengths[b])):
            x = raw[b, k].double().clone()
            seen = sorted(always | set(codes[b, :k].tolist()))
            x[seen] = torch.where(x[seen] < 0, x[seen] * cfg.repetition_penalty, x[seen] / cfg.repetition_penalty)
            x[talker.codec_bos_token] = float("-inf")
            out[b, k] = torch.log_softmax(x / cfg.temperature, -1)[codes[b, k]]
    return out


def test_policy_logprobs_divide_by_the_temperature_and_never_give_codec_bos_mass(tiny):
    convs = [tiny.conversation(text="How was it?"), tiny.conversation(text="Hi!")]
    replies = [torch.tensor(tiny.processor.encode_reply(t)) for t in ("It was lovely.", "Hello.")]
    cfg = SamplingConfig(temperature=0.6, repetition_penalty=1.3, top_k=0, top_p=1.0, max_new_codes=10)
    talker = tiny.model.talker
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 8192, (2, 7), generator=gen)
    codes[0, 4] = codes[0, 1]  # a repeated code: penalised from its second use on
    codes[1, 5:] = talker.codec_pad_token
    lengths = torch.tensor([7, 5])
    with sharp_logits_favouring_bos(tiny), torch.no_grad():
        tf = tiny.teacher_forced(convs, replies, codes, lengths, cfg)
        want = _independent_policy_logprobs(tf.logits, codes, lengths, talker, cfg)
        torch.testing.assert_close(tf.logprobs.double(), want, atol=1e-4, rtol=0)
        assert (want[tf.mask].exp() < 0.5).all()  # sharp logits: the temperature matters
        # The sampler draws from the same policy: codec-bos is never drawn, though the raw logits favour it.
        out = tiny.rollouts(convs, num_samples=2, sampling=cfg, seeds=[1, 2], decode=False)
    assert not (out.codes.codes == talker.codec_bos_token).any()
    assert int(out.codes.num_steps.sum()) > 4


# --- KL-weight schedule as the SFT trainer steps it ---------------------------------------------------

def test_the_sft_trainer_kl_weight_is_zero_through_warmup_and_reaches_its_maximum_on_the_last_step(tmp_path):
    """Inside `compute_loss` the Trainer's `global_step` runs 0 .. max_steps - 1: the last step trains with
    the full KL weight, the warm-up steps with none."""
    args = training_arguments(TrainSection(max_steps=11, per_device_train_batch_size=1, report_to=[]), tmp_path, 0)
    model = torch.nn.Linear(2, 2)
    trainer = SFTTrainer(model=model, args=args, param_groups={"speech": list(model.parameters()), "llm": []},
                         llm_learning_rate=1e-4, kl_weight_max=0.3, kl_weight_warmup=0.2)
    trainer.state.max_steps = 11
    weights = []
    for step in range(11):
        trainer.state.global_step = step
        weights.append(trainer.kl_weight())
    assert weights[:3] == [0.0, 0.0, 0.0]  # steps 0..2: warm-up (0.2 of the 10 step intervals), step 2 at its end
    assert weights[3] > 0.0
    assert weights[-1] == pytest.approx(0.3, abs=1e-12)
    assert all(b >= a for a, b in zip(weights, weights[1:]))


# --- the reply-text CE as the model masks it ----------------------------------------------------------

def test_the_reply_text_loss_covers_each_reply_and_its_eos_and_no_padding(tiny):
    """Batched, the Thinker's reply-text CE is the token-weighted mean of each row's CE over its reply
    tokens and the EOS, scored alone (no padding anywhere): padded positions are out of the mask."""
    convs = [tiny.conversation(text="Say something."), tiny.conversation(text="And you?")]
    replies = [torch.tensor(tiny.processor.encode_reply(t))
               for t in ("Yes.", "I would love to tell you a very long story about the sea and the wind.")]
    eos = tiny.model.reply_eos_id

    def forward(rows):
        reply = [replies[i] for i in rows]
        with torch.no_grad():
            out = tiny.model(**tiny.encode_prompts([convs[i] for i in rows]),
                             reply_ids=pad_sequence(reply, batch_first=True),
                             reply_lengths=torch.tensor([len(r) for r in reply]),
                             codes=torch.zeros(len(rows), 1, dtype=torch.long),
                             code_lengths=torch.ones(len(rows), dtype=torch.long),
                             speaker_bos=torch.tensor(speaker_bos(tiny.speakers, None, len(rows))),
                             with_logprobs=False, with_text_logits=True)
        return out, reply

    out, reply = forward([0, 1])
    n = [len(r) for r in reply]
    assert n[1] > n[0] + 5
    j = torch.arange(max(n) + 1)[None]
    assert torch.equal(out.reply_text_mask, j <= torch.tensor(n)[:, None])  # reply tokens + EOS, nothing after
    got = reply_text_cross_entropy(out.reply_text_logits, out.reply_text_mask, pad_sequence(reply, batch_first=True),
                                   torch.tensor(n), eos)
    total = 0.0
    for b in range(2):
        alone, _ = forward([b])
        targets = torch.cat([replies[b], torch.tensor([eos])])
        total += float(torch.nn.functional.cross_entropy(alone.reply_text_logits[0].float(), targets, reduction="sum"))
    assert float(got) == pytest.approx(total / (n[0] + 1 + n[1] + 1), rel=1e-4)


# --- the stage-3 anchor ---------------------------------------------------------------------------

def test_the_anchor_is_sampled_from_the_read_aloud_prompt_in_text_mode(tiny, tone):
    """The anchor's recorded log-probs equal a fresh teacher-forced pass of its codes after the plain
    read-aloud prompt in mode `text` (e only), and differ from the dialogue context and from mode `add`."""
    wav, sr = tone
    convs = [tiny.conversation(audio=wav, sampling_rate=sr, text="Did you hear that?")]
    sampling = SamplingConfig(max_new_codes=10)
    rb = collect(tiny.model, tiny.processor, tiny.speakers, convs, ["Yes, it was very loud."], 1, sampling, seed=3)
    anchor, steps = rb.anchor.codes, rb.anchor.num_steps
    read_aloud = [Conversation.user(READ_ALOUD)]

    def fresh(conversations, mode):
        with torch.no_grad():
            return tiny.teacher_forced(conversations, rb.reply_ids, anchor, steps, sampling, mode=mode).logprobs

    torch.testing.assert_close(fresh(read_aloud, "text"), rb.anchor.logprobs, atol=1e-4, rtol=0)
    assert (fresh(read_aloud, "add") - rb.anchor.logprobs).abs().sum() > 1e-2
    assert (fresh(convs, "text") - rb.anchor.logprobs).abs().sum() > 1e-2


def test_text_mode_never_hears_the_acoustic_context(tiny, tone):
    """Mode `text` (the anchor's, and the context-free reading's) is e alone: a bridge with a trained
    acoustic-context projection changes nothing there, while the configured mode does hear it."""
    model = copy.deepcopy(tiny.model)
    torch.manual_seed(0)
    model.intent_bridge = IntentBridge(IntentBridgeConfig(mode="vib_adaln", latent_dim=4, vib_hidden=8,
                                                          acoustic_context="audio_tower"),
                                       model.config.thinker_config.text_config.hidden_size)
    saslm = SASLM(model, tiny.processor, tiny.speakers, tiny.config)
    wav, sr = tone
    convs = [saslm.conversation(audio=wav, sampling_rate=sr, text="Listen to me.")]
    replies = [torch.tensor(saslm.processor.encode_reply("I hear you."))]
    codes = torch.randint(0, 8192, (1, 6), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([6])

    def logprobs(mode):
        with torch.no_grad():
            return saslm.teacher_forced(convs, replies, codes, lengths, mode=mode).logprobs

    silent_text, silent_bridge = logprobs("text"), logprobs(None)
    with torch.no_grad():
        saslm.bridge.acoustic_proj.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(logprobs("text"), silent_text, atol=1e-6, rtol=0)
    assert (logprobs(None) - silent_bridge).abs().sum() > 1e-2


# --- the critic's answer values -------------------------------------------------------------------

def test_critic_scores_are_answer_probabilities_times_the_rubric_values(tiny):
    rubric = load_rubric("expressive")
    critic = RubricCritic(tiny.model, tiny.processor, rubric)
    wave = 0.1 * np.random.default_rng(0).standard_normal(24_000).astype(np.float32)
    context = tiny.conversation(text="I won the race today!")
    got = critic.score(context, "Well done!", [wave], instance_rubric="Joyful and bright.")
    # The answer distribution, independently: the Thinker's next-token logits at each question's end,
    # each answer tokenised here, softmax over the answers only.
    audio = tiny.processor.load_audio(wave, sampling_rate=24_000)
    rows = [Conversation(list(context.turns) + [Turn("user", rubric.question.format(
        reply_text="Well done!", instance_rubric="Joyful and bright.", dimension=d.name, description=d.description),
        audio)], rubric.system_prompt) for d in rubric.dimensions]
    logits = critic._answer_logits(rows)
    ids = [tiny.processor.tokenizer(p.answer, add_special_tokens=False)["input_ids"][0] for p in rubric.scale]
    p = torch.softmax(logits[:, ids].double(), -1)  # (D, 3)
    values = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)  # expressive.yaml: "0", "1", "2"
    torch.testing.assert_close(got.scores[0].double(), p @ values, atol=1e-5, rtol=0)
    # Swapping the values of answers "0" and "2" moves each score by (p0 - p2) * (1.0 - 0.0).
    swapped = dataclasses.replace(rubric, scale=(ScalePoint("0", 1.0), rubric.scale[1], ScalePoint("2", 0.0)))
    moved = RubricCritic(tiny.model, tiny.processor, swapped).score(context, "Well done!", [wave],
                                                                    instance_rubric="Joyful and bright.")
    delta = (p[:, 2] - p[:, 0]) * 1.0
    torch.testing.assert_close((got.scores[0] - moved.scores[0]).double(), delta, atol=1e-5, rtol=0)
    assert delta.abs().max() > 1e-3
