"""Stage 3: the loop optimises what it is told (controlled reward), critic failures drop rollouts,
and `make stage3` runs end to end with the self-critic and resumes."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sa_slm import SASLM
from sa_slm.bridge import IntentBridgeConfig
from sa_slm.critic import RubricCritic
from sa_slm.data import ExampleDataset, load_manifest
from sa_slm.data.collate import TeacherForcingCollator
from sa_slm.paths import CORPUS_DIR
from sa_slm.sft.params import configure_trainable
from sa_slm.talker.sampling import SamplingConfig
from sa_slm.training.config import TrainSection
from sa_slm.training.trainer_utils import training_arguments
from sa_slm.uapo.rollouts import collect
from sa_slm.uapo.trainer import UAPOTrainer, collate_prompts, frozen_reference, sequence_logps
from sa_slm.uapo.utility import CriticUtility, Utilities

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stages"))
import stage3  # noqa: E402

LOW = 4224  # the synthetic utility: the fraction of a rollout's codes below this id


def low_code_utility(saslm, rb):
    frac = lambda c: float((c < LOW).float().mean()) if c.numel() else 0.0  # noqa: E731
    B, K = len(rb.conversations), rb.num_samples
    policy = torch.tensor([[frac(rb.policy.audio_codes(b * K + k)) for k in range(K)] for b in range(B)])
    anchor = torch.tensor([frac(rb.anchor.audio_codes(b)) for b in range(B)])
    return Utilities(policy, anchor, torch.ones(B, K, dtype=torch.bool), torch.ones(B, dtype=torch.bool))




@pytest.mark.slow
def test_uapo_raises_a_controlled_utility(tmp_path):
    torch.manual_seed(0)
    saslm = SASLM.from_pretrained("tiny", device="cpu")
    examples = load_manifest(CORPUS_DIR / "manifest.jsonl")[:8]
    convs = [TeacherForcingCollator(saslm, require_codes=False).conversation(ex) for ex in examples]
    sampling = SamplingConfig(max_new_tokens=20)

    def measure():
        rb = collect(saslm, convs, [ex.reply_text for ex in examples], 4, sampling, seed=12345)
        u = low_code_utility(saslm, rb)
        return float(u.policy.mean()), float(u.anchor.mean())

    policy_before, anchor_before = measure()
    groups = configure_trainable(saslm.model)
    args = training_arguments(TrainSection(learning_rate=1e-3, max_steps=30, per_device_train_batch_size=4,
                                           lr_scheduler_type="constant", save_steps=1000, report_to=[]), tmp_path, 0)
    UAPOTrainer(model=saslm.model, args=args, train_dataset=ExampleDataset(examples), data_collator=collate_prompts,
                saslm=saslm, reference=frozen_reference(saslm), utility_fn=low_code_utility, sampling=sampling,
                num_rollouts=4, beta=1.0, params=groups["speech"], lr=1e-3).train()
    saslm.model.eval()
    policy_after, _ = measure()
    # Measured: 0.63 -> 0.95 (the untrained anchor reading: 0.55).
    assert policy_after > policy_before + 0.15
    assert policy_after > anchor_before + 0.2


def test_a_failing_critic_drops_only_the_failing_rollout(tiny, caplog):
    critic = RubricCritic(tiny)
    real_score = critic.score
    calls = {"n": 0}

    def flaky(context, reply_text, wavs, **kw):
        calls["n"] += 1
        if len(wavs) > 1:
            raise RuntimeError("CUDA out of memory (injected)")
        out = real_score(context, reply_text, wavs, **kw)
        if calls["n"] == 3:  # the second clip's score comes back NaN
            out.scores[:] = float("nan")
            out.utility[:] = float("nan")
        return out

    critic.score = flaky
    transcripts = iter([RuntimeError("ASR backend crashed (injected)")])

    def asr(wavs, sr):
        item = next(transcripts, None)
        if isinstance(item, Exception):
            raise item
        return ["hello"] * len(wavs)

    utility = CriticUtility(critic, wer_threshold=None, transcribe=asr)
    convs = [tiny.conversation(text="Hi!")]
    rb = collect(tiny, convs, ["Hello there."], 3, SamplingConfig(max_new_tokens=8), seed=0)
    with caplog.at_level("WARNING"):
        u = utility(tiny, rb)
    assert u.valid.tolist() == [[True, False, True]] and bool(u.anchor_valid[0])
    assert any("injected" in f for f in u.failures) and any("non-finite" in f for f in u.failures)
    assert "dropped: prompt 0: clip 1: non-finite critic score" in caplog.text
    # The ASR gate: an exception drops that prompt's clips instead of crashing.
    gated = CriticUtility(RubricCritic(tiny), wer_threshold=0.2, transcribe=asr)
    u2 = gated(tiny, rb)
    assert not u2.valid.any() and any("ASR failed" in f for f in u2.failures)


@pytest.mark.slow
def test_stage3_end_to_end_with_self_critic_and_resume(tmp_path):
    out = tmp_path / "stage3"
    args = ["--config", "configs/stage3_tiny.yaml", f"output_dir={out}", "train.max_steps=2", "train.save_steps=1",
            "max_codes=12", "num_rollouts=2"]
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
    assert stage3.main(args[:-4] + ["train.max_steps=3", "train.save_steps=1", "max_codes=12", "num_rollouts=2"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3
    model = SASLM.from_pretrained(out / "model", device="cpu")
    assert model.bridge.cfg.mode == "vib_adaln"
    assert np.isfinite(model.generate(text="Hi", max_new_codes=4, seed=0).waveform).all()


@pytest.mark.slow
def test_stage3_sigkill_and_restart_reproduces_the_run(tmp_path):
    import subprocess

    from interrupt import kill_after_checkpoint

    common = ["--config", "configs/stage3_tiny.yaml", "train.max_steps=4", "train.save_steps=1", "max_codes=10",
              "num_rollouts=2", "audio_every=0"]
    straight = tmp_path / "straight"
    assert stage3.main([*common[:2], f"output_dir={straight}", *common[2:]]) == 0
    killed = tmp_path / "killed"
    cmd = [sys.executable, "stages/stage3.py", *common[:2], f"output_dir={killed}", *common[2:]]
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
    sampling = SamplingConfig(max_new_tokens=10)
    rb = collect(saslm, convs, ["It was quiet.", "Fine, thank you very much."], 3, sampling, seed=1)
    logp, n_codes = sequence_logps(saslm.model, rb, sampling)
    R = len(rb.policy.prompt_index)
    torch.testing.assert_close(logp[:R], rb.policy.logprobs.sum(-1), atol=1e-4, rtol=0)
    assert n_codes.tolist() == torch.cat([rb.policy.num_steps, rb.anchor.num_steps]).tolist()
    # Rollouts and anchors given their dialogue context, with the Thinker run again.
    rows = rb.policy.prompt_index.tolist() + [0, 1]
    codes = torch.nn.utils.rnn.pad_sequence([*rb.policy.codes, *rb.anchor.codes], batch_first=True,
                                            padding_value=saslm.model.talker.codec_pad_token)
    fresh = saslm.teacher_forced([convs[i] for i in rows], [rb.reply_ids[i] for i in rows], codes,
                                 torch.cat([rb.policy.num_steps, rb.anchor.num_steps]), sampling)
    torch.testing.assert_close(logp, fresh.logprobs.sum(-1), atol=1e-4, rtol=0)
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
           "train.per_device_train_batch_size=1", "max_codes=10", "num_rollouts=2", "audio_every=1",
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


def test_an_external_emotion_model_mixes_into_the_utility_and_its_failures_drop_clips(tiny):
    from sa_slm.errors import SASLMError
    from sa_slm.metrics import EmoAlign

    class Classifier:  # funasr's emotion2vec output format, with P(happy) set per call (clip order)
        def __init__(self, p_happy):
            self.p = iter(p_happy)

        def generate(self, input, granularity, extract_embedding):
            p = next(self.p)
            if p is None:
                raise RuntimeError("classifier crashed (injected)")
            return [{"labels": ["开心/happy", "难过/sad"], "scores": [p, 1 - p]}]

    critic = RubricCritic(tiny)
    rb = collect(tiny, [tiny.conversation(text="Hi!")], ["Hello there."], 3, SamplingConfig(max_new_tokens=8), seed=0)
    rb.emotions = ["happy"]
    plain = CriticUtility(critic, wer_threshold=None)(tiny, rb)
    emo = EmoAlign(model=Classifier([0.9, None, 0.1, 0.6]))  # 3 rollouts, then the anchor
    mixed = CriticUtility(critic, wer_threshold=None, emotion=emo, emotion_weight=0.5)(tiny, rb)
    assert mixed.valid.tolist() == [[True, False, True]] and bool(mixed.anchor_valid[0])  # crashed clip dropped
    assert any("clip 1: emotion model failed" in f and "injected" in f for f in mixed.failures)
    expected = 0.5 * plain.policy[0] + 0.5 * torch.tensor([0.9, 0.0, 0.1])
    torch.testing.assert_close(mixed.policy[0, [0, 2]], expected[[0, 2]])
    torch.testing.assert_close(mixed.anchor[0], 0.5 * plain.anchor[0] + 0.3)
    assert mixed.stats["emotion_reward"] == pytest.approx((0.9 + 0.1 + 0.6) / 3)
    rb.emotions = ["calm"]  # no emotion2vec class: the prompt keeps the plain utility, with the reason logged
    emo = EmoAlign(model=Classifier([0.9] * 4))
    unmixed = CriticUtility(critic, wer_threshold=None, emotion=emo, emotion_weight=0.5)(tiny, rb)
    torch.testing.assert_close(unmixed.policy, plain.policy)
    assert any("no emotion reward" in f and "'calm'" in f for f in unmixed.failures)
    with pytest.raises(SASLMError, match="needs an external emotion model"):
        CriticUtility(critic, wer_threshold=None, emotion=EmoAlign(None), emotion_weight=0.5)
