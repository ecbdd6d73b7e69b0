"""Stage 3: the loop optimises what it is told (controlled reward), failures drop only their clips,
and `make stage3` runs end to end with the self-critic and resumes."""

import json
import sys

import numpy as np
import pytest
import torch

from sa_slm import SASLM
from sa_slm.bridge import IntentBridgeConfig
from sa_slm.critic import RubricCritic
from sa_slm.data import ExampleDataset, PromptCollator, example_conversation, load_manifest
from sa_slm.paths import CORPUS_DIR
from sa_slm.recipes import stage3
from sa_slm.rewards import EmotionModelReward, RewardUtility, RubricReward, UtilityInput, Utilities, WERGate
from sa_slm.talker.sampling import SamplingConfig
from sa_slm.training.config import TrainSection
from sa_slm.training.trainer_utils import training_arguments
from sa_slm.uapo.consistency import logprob_agreement
from sa_slm.uapo.rollouts import collect
from sa_slm.uapo.trainer import UAPOTrainer, frozen_reference, sequence_logps

LOW = 4224  # the synthetic utility: the fraction of a rollout's codes below this id


def low_code_utility(batch: UtilityInput) -> Utilities:
    frac = lambda c: float((c < LOW).float().mean()) if c.numel() else 0.0  # noqa: E731
    B, K = len(batch.codes), len(batch.codes[0]) - 1
    policy = torch.tensor([[frac(c) for c in batch.codes[b][:K]] for b in range(B)])
    anchor = torch.tensor([frac(batch.codes[b][K]) for b in range(B)])
    return Utilities(policy, anchor, torch.ones(B, K, dtype=torch.bool), torch.ones(B, dtype=torch.bool))


def _collect(saslm, convs, replies, k, sampling, seed):
    return collect(saslm.model, saslm.processor, saslm.speakers, convs, replies, k, sampling, seed)


def _utility_input(rb) -> UtilityInput:
    return UtilityInput(rb.conversations, rb.reply_texts, [rb.clip_codes(b) for b in range(len(rb.conversations))],
                        rb.labels or [{} for _ in rb.conversations])


def _decoder(saslm):
    """Token2Wav with fixed noise, so the same codes always give the same clip."""
    return lambda codes: [w.numpy() for w in saslm.model.decode_codes(codes, [saslm.speakers[None]] * len(codes),
                                                                      [0] * len(codes))]


def uapo_trainer(saslm, examples, tmp_path, utility_fn, sampling, steps, lr=1e-3, model=None, reference=None):
    """A UAPO trainer on `model` (default: saslm.model), K = 4, constant learning rate."""
    model = model if model is not None else saslm.model
    args = training_arguments(TrainSection(learning_rate=lr, max_steps=steps, per_device_train_batch_size=4,
                                           lr_scheduler_type="constant", save_steps=1000, report_to=[]), tmp_path, 0)
    return UAPOTrainer(model=model, args=args, train_dataset=ExampleDataset(examples),
                       data_collator=PromptCollator(saslm.processor),
                       reference=reference if reference is not None else frozen_reference(saslm.model),
                       processor=saslm.processor, speakers=saslm.speakers, utility_fn=utility_fn, sampling=sampling,
                       num_samples=4, beta=1.0, params=[p for p in model.parameters() if p.requires_grad])



@pytest.mark.slow
def test_uapo_raises_a_controlled_utility(tmp_path):
    torch.manual_seed(0)
    saslm = SASLM.from_pretrained("tiny", device="cpu")
    examples = load_manifest(CORPUS_DIR / "manifest.jsonl")[:8]
    convs = [example_conversation(saslm.processor, ex) for ex in examples]
    sampling = SamplingConfig(max_new_codes=20)

    def measure():
        rb = _collect(saslm, convs, [ex.reply_text for ex in examples], 4, sampling, seed=12345)
        u = low_code_utility(_utility_input(rb))
        return float(u.policy.mean()), float(u.anchor.mean())

    policy_before, anchor_before = measure()
    saslm.model.set_trainable()
    uapo_trainer(saslm, examples, tmp_path, low_code_utility, sampling, steps=30).train()
    saslm.model.eval()
    policy_after, _ = measure()
    # Measured: 0.63 -> 0.95 (the untrained anchor reading: 0.55).
    assert policy_after > policy_before + 0.15
    assert policy_after > anchor_before + 0.2


class FlakyCritic(RubricCritic):
    """Fails whenever it scores several clips at once (an OOM-like batch failure) and scores NaN for
    one chosen clip: what goes wrong depends on the clips, not on how many calls came before."""

    def __init__(self, saslm, bad_clip: np.ndarray):
        super().__init__(saslm.model, saslm.processor)
        self.bad_clip = bad_clip

    def score(self, context, reply_text, waveforms, **kw):
        if len(waveforms) > 1:
            raise RuntimeError("CUDA out of memory (injected)")
        out = super().score(context, reply_text, waveforms, **kw)
        if np.array_equal(np.asarray(waveforms[0]), self.bad_clip):
            out.scores[:] = float("nan")
            out.utility[:] = float("nan")
        return out


@pytest.fixture(scope="module")
def three_rollouts(tiny):
    """One prompt, 3 rollouts and the anchor, and their decoded clips (K + 1 = 4)."""
    rb = _collect(tiny, [tiny.conversation(text="Hi!")], ["Hello there."], 3, SamplingConfig(max_new_codes=8), seed=0)
    return rb, _decoder(tiny)(rb.clip_codes(0))


def test_a_failing_critic_drops_only_the_failing_rollout(tiny, three_rollouts, caplog):
    rb, wavs = three_rollouts
    critic = FlakyCritic(tiny, bad_clip=wavs[1])
    utility = RewardUtility(_decoder(tiny), [RubricReward("critic", 1.0, critic)])
    with caplog.at_level("WARNING"):
        u = utility(_utility_input(rb))
    assert u.valid.tolist() == [[True, False, True]] and bool(u.anchor_valid[0])
    assert any("injected" in f for f in u.failures) and any("non-finite" in f for f in u.failures)
    assert "dropped: prompt 0: clip 1: non-finite critic score" in caplog.text


def test_a_failing_recogniser_drops_only_the_clip_it_fails_on(tiny, three_rollouts):
    """The WER gate follows the same per-clip policy: a failed batch is retried clip by clip."""
    rb, wavs = three_rollouts

    def asr(clips, sr):  # fails on any batch, and on clip 2 alone
        if len(clips) > 1 or np.array_equal(clips[0], wavs[2]):
            raise RuntimeError("ASR backend crashed (injected)")
        return ["hello there"]

    plain = RewardUtility(_decoder(tiny), [RubricReward("critic", 1.0, RubricCritic(tiny.model, tiny.processor))])
    gated = RewardUtility(_decoder(tiny), plain.rewards, WERGate(asr, threshold=0.2))
    u, ref = gated(_utility_input(rb)), plain(_utility_input(rb))
    assert u.valid.tolist() == [[True, True, False]] and bool(u.anchor_valid[0])
    assert any("clip 2: asr: RuntimeError: ASR backend crashed (injected)" in f for f in u.failures)
    torch.testing.assert_close(u.policy[0, :2], ref.policy[0, :2])  # WER 0 <= 0.2: the gate keeps the utility
    assert u.stats["wer"] == 0.0


@pytest.mark.slow
def test_stage3_end_to_end_with_self_critic_and_resume(tmp_path):
    out = tmp_path / "stage3"
    args = ["--config", "configs/stage3_tiny.yaml", f"output_dir={out}", "train.max_steps=2", "train.save_steps=1",
            "sampling.max_new_codes=12", "num_samples=2"]
    assert stage3.main(args) == 0
    log = json.loads((out / "checkpoints" / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    first = log[0]
    for key in ("uapo_loss", "utility_policy", "utility_anchor", "win_rate", "n_preferred", "n_rejected", "kl_ref",
                "critic_emotion", "critic_prosody", "critic_naturalness"):
        assert key in first, key
    assert 0 <= first["utility_policy"] <= 1
    listening = sorted((out / "checkpoints" / "rollout_audio" / "step0000000").glob("*.wav"))
    assert [p.name.split("_")[0] for p in listening] == ["anchor", "rollout0", "rollout1"]
    # Resume: two more steps continue from checkpoint 2.
    assert stage3.main(args[:-4] + ["train.max_steps=3", "train.save_steps=1", "sampling.max_new_codes=12",
                                    "num_samples=2"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3
    model = SASLM.from_pretrained(out / "model", device="cpu")
    assert model.bridge.cfg.mode == "vib_adaln"
    assert np.isfinite(model.generate(text="Hi", max_new_codes=4, seed=0).waveform).all()


@pytest.mark.slow
def test_stage3_sigkill_and_restart_reproduces_the_run(tmp_path):
    import subprocess

    from interrupt import kill_after_checkpoint

    common = ["--config", "configs/stage3_tiny.yaml", "train.max_steps=4", "train.save_steps=1",
              "sampling.max_new_codes=10", "num_samples=2", "audio_every=0"]
    straight = tmp_path / "straight"
    assert stage3.main([*common[:2], f"output_dir={straight}", *common[2:]]) == 0
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "sa_slm.recipes.stage3", *common[:2], f"output_dir={killed}", *common[2:]]
    kill_after_checkpoint(cmd, killed, 2)
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    log = lambda out: json.loads((out / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())["log_history"]  # noqa: E731
    a, b = log(straight), log(killed)
    assert [e.get("step") for e in a] == [e.get("step") for e in b]
    for ea, eb in zip(a, b):
        for key in ("uapo_loss", "utility_policy", "utility_anchor", "kl_ref"):
            if key in ea:
                assert ea[key] == pytest.approx(eb[key], rel=1e-5, abs=1e-7), (ea.get("step"), key)


def test_teacher_forced_pass_on_recorded_states_matches_sampling_and_a_fresh_thinker_pass():
    """The UAPO update scores rollouts and anchors on the Thinker states recorded while sampling (the
    Thinker is frozen); that must equal the sampler's own log-probs and a pass that reruns the Thinker."""
    bridge = IntentBridgeConfig(mode="vib_adaln", latent_dim=8, vib_hidden=32, acoustic_context="audio_tower")
    saslm = SASLM.from_pretrained("tiny", device="cpu", bridge=bridge)
    torch.manual_seed(0)
    for p in saslm.model.intent_bridge.parameters():  # non-zero bridge, acoustic context included
        p.data.normal_(0, 0.05)
    convs = [saslm.conversation(audio=CORPUS_DIR / "wavs/q00.wav"), saslm.conversation(text="Hi, how are you?")]
    sampling = SamplingConfig(max_new_codes=10)
    rb = _collect(saslm, convs, ["It was quiet.", "Fine, thank you very much."], 3, sampling, seed=1)
    logp, n_codes = sequence_logps(saslm.model, rb, sampling)
    R = len(rb.policy.prompt_index)
    torch.testing.assert_close(logp[:R], rb.policy.logprobs.sum(-1), atol=1e-4, rtol=0)
    assert n_codes.tolist() == torch.cat([rb.policy.num_steps, rb.anchor.num_steps]).tolist()
    # Rollouts and anchors given their dialogue context, with the Thinker run again (what doctor checks).
    agreement = logprob_agreement(saslm.model, saslm.processor, rb, sampling)
    assert agreement.num_codes == int(n_codes.sum())
    assert agreement.sampled_vs_recorded <= 1e-4 and agreement.fresh_vs_recorded <= 1e-4
    torch.testing.assert_close(logp, agreement.fresh.sum(-1), atol=1e-4, rtol=0)
    # The same rows through the facade's own teacher-forced pass.
    rows = rb.policy.prompt_index.tolist() + [0, 1]
    codes = torch.nn.utils.rnn.pad_sequence([*rb.policy.codes, *rb.anchor.codes], batch_first=True,
                                            padding_value=saslm.model.talker.codec_pad_token)
    fresh = saslm.teacher_forced([convs[i] for i in rows], [rb.reply_ids[i] for i in rows], codes,
                                 torch.cat([rb.policy.num_steps, rb.anchor.num_steps]), sampling)
    torch.testing.assert_close(agreement.fresh, fresh.logprobs, atol=1e-5, rtol=0)
    # The anchor was sampled without context: under the context its log-probs differ from the recorded ones.
    assert (logp[R:] - rb.anchor.logprobs.sum(-1)).abs().max() > 0.1
    rb.policy.codes = rb.policy.codes.roll(1, dims=1)  # control: other codes, other log-probs
    assert (sequence_logps(saslm.model, rb, sampling)[0][:R] - logp[:R]).abs().max() > 0.1


@pytest.mark.slow
def test_stage3_under_deepspeed_zero3_two_processes_and_resume(tmp_path):
    """Two ranks, one with a spoken context and one text-only: rollouts, critic and decoding stop at
    different steps per rank, and only one rank runs the audio tower."""
    import os
    import subprocess

    lines = [json.loads(line) for line in (CORPUS_DIR / "manifest.jsonl").read_text().splitlines()[:2]]
    lines[0]["user_audio"] = str(CORPUS_DIR / lines[0]["user_audio"])
    del lines[1]["user_audio"]
    for line in lines:
        del line["reply_audio"]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "s3z3"
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "stages/stage3.py", "--config",
           "configs/stage3_tiny.yaml", f"output_dir={out}", f"prompts_manifest={prompts}", "train.save_steps=1",
           "train.per_device_train_batch_size=1", "sampling.max_new_codes=10", "num_samples=2", "audio_every=1",
           "train.deepspeed=configs/deepspeed/zero3.json"]
    for steps in (1, 2):  # the second run resumes from checkpoint 1
        proc = subprocess.run([*cmd, f"train.max_steps={steps}"], env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "checkpoints" / "checkpoint-2" / "global_step2").is_dir()
    log = json.loads((out / "checkpoints" / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    assert [e["step"] for e in log if "uapo_loss" in e] == [1, 2]  # step 1 from the first run, step 2 resumed
    assert sorted(p.name for p in (out / "checkpoints" / "rollout_audio").iterdir()) == ["step0000000", "step0000001"]
    model = SASLM.from_pretrained(out / "model", device="cpu")  # gathered 16-bit weights reload
    assert model.bridge.cfg.mode == "vib_adaln"
    assert np.isfinite(model.generate(text="Hi", max_new_codes=4, seed=0).waveform).all()


class Classifier:  # funasr's emotion2vec output format, P(happy) set per clip (in clip order)
    def __init__(self, p_happy):
        self.p = iter(p_happy)

    def generate(self, input, granularity, extract_embedding):
        p = next(self.p)
        if p is None:
            raise RuntimeError("classifier crashed (injected)")
        return [{"labels": ["开心/happy", "难过/sad"], "scores": [p, 1 - p]}]


def test_an_external_emotion_model_mixes_into_the_utility_and_its_failures_drop_clips(tiny, three_rollouts):
    from sa_slm.metrics import EmoAlign

    rb, _ = three_rollouts
    critic = RubricReward("critic", 1.0, RubricCritic(tiny.model, tiny.processor))
    inp = _utility_input(rb)
    inp.labels = [{"emotion": "happy"}]
    plain = RewardUtility(_decoder(tiny), [critic])(inp)
    emotion = EmotionModelReward("emotion", 1.0, emotion=EmoAlign(model=Classifier([0.9, None, 0.1, 0.6])))
    mixed = RewardUtility(_decoder(tiny), [critic, emotion])(inp)  # 3 rollouts, then the anchor
    assert mixed.valid.tolist() == [[True, False, True]] and bool(mixed.anchor_valid[0])  # crashed clip dropped
    assert any("clip 1: emotion model failed" in f and "injected" in f for f in mixed.failures)
    expected = 0.5 * plain.policy[0] + 0.5 * torch.tensor([0.9, 0.0, 0.1])  # equal weights: the mean
    torch.testing.assert_close(mixed.policy[0, [0, 2]], expected[[0, 2]])
    torch.testing.assert_close(mixed.anchor[0], 0.5 * plain.anchor[0] + 0.3)
    assert mixed.stats["reward_emotion"] == pytest.approx((0.9 + 0.1 + 0.6) / 3)


def test_a_target_the_emotion_model_has_no_class_for_leaves_the_prompt_unmixed(tiny, three_rollouts):
    from sa_slm.metrics import EmoAlign

    rb, _ = three_rollouts
    critic = RubricReward("critic", 1.0, RubricCritic(tiny.model, tiny.processor))
    inp = _utility_input(rb)
    inp.labels = [{"emotion": "calm"}]  # no emotion2vec class
    plain = RewardUtility(_decoder(tiny), [critic])(inp)
    emotion = EmotionModelReward("emotion", 1.0, emotion=EmoAlign(model=Classifier([0.9] * 4)))
    unmixed = RewardUtility(_decoder(tiny), [critic, emotion])(inp)
    torch.testing.assert_close(unmixed.policy, plain.policy)
    assert any("no emotion reward" in f and "'calm'" in f for f in unmixed.failures)
    with pytest.raises(ValueError, match="needs an external emotion model"):
        EmotionModelReward("emotion", 0.5, emotion=EmoAlign(None))
