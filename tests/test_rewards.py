"""Stage-3 rewards: weights mean what they say, rewards that do not apply drop out of the mean, bad
values drop only their clip, and a user reward given by import path in a config is called and weighted."""

import json
import sys

import numpy as np
import pytest
import torch

from sa_slm.config import ConfigError, load_config
from sa_slm.critic import RubricCritic, load_rubric
from sa_slm.processor import Conversation, Turn
from sa_slm.rewards import (FunctionReward, Reward, RewardNotApplicable, RewardResult, RewardUtility, UtilityInput,
                            build_rewards, check_rewards)
from sa_slm.talker.sampling import SamplingConfig
from sa_slm.uapo.config import UAPOConfig
from sa_slm.uapo.rollouts import collect

K = 3  # rollouts per prompt; every prompt has K + 1 clips (the anchor last)


class Fixed(Reward):
    """A reward with given per-clip values (None: cannot score that clip)."""

    def __init__(self, name, weight, values, applies=True):
        super().__init__(name, weight)
        self.values, self.applies = values, applies

    def score(self, inp):
        if not self.applies:
            raise RewardNotApplicable("no label")
        return RewardResult(list(self.values))


def utility_of(rewards, n_prompts=1):
    """Utilities of one prompt's K + 1 clips under `rewards` (decoding is not needed: clips are stand-ins)."""
    clips = [np.zeros(240, dtype=np.float32) for _ in range(K + 1)]
    util = RewardUtility(lambda codes: clips, rewards)
    batch = UtilityInput([Conversation([Turn("user", "hi")])] * n_prompts, ["hello"] * n_prompts,
                         [[torch.zeros(1, dtype=torch.long)] * (K + 1)] * n_prompts, [{}] * n_prompts)
    return util(batch)


A = [0.2, 0.4, 0.6, 0.8]
B = [1.0, 0.0, 0.5, 0.25]


def test_the_utility_is_the_weighted_mean_of_the_rewards():
    u = utility_of([Fixed("a", 1.0, A), Fixed("b", 3.0, B)])
    want = [(1 * a + 3 * b) / 4 for a, b in zip(A, B)]
    torch.testing.assert_close(u.policy[0], torch.tensor(want[:K]))
    torch.testing.assert_close(u.anchor[0], torch.tensor(want[K]))
    assert u.stats["reward_a"] == pytest.approx(np.mean(A)) and u.stats["reward_b"] == pytest.approx(np.mean(B))


def test_the_order_and_the_scale_of_the_weights_do_not_matter():
    first = utility_of([Fixed("a", 1.0, A), Fixed("b", 3.0, B)])
    swapped = utility_of([Fixed("b", 3.0, B), Fixed("a", 1.0, A)])
    scaled = utility_of([Fixed("a", 0.5, A), Fixed("b", 1.5, B)])
    torch.testing.assert_close(first.policy, swapped.policy)
    torch.testing.assert_close(first.policy, scaled.policy)
    torch.testing.assert_close(utility_of([Fixed("a", 1.0, A), Fixed("b", 0.0, B)]).policy[0], torch.tensor(A[:K]))


def test_a_reward_that_does_not_apply_leaves_the_mean_of_the_others():
    u = utility_of([Fixed("a", 1.0, A), Fixed("b", 3.0, B, applies=False)])
    torch.testing.assert_close(u.policy[0], torch.tensor(A[:K]))
    assert u.valid.all() and any("no b reward (no label)" in f for f in u.failures)


def test_a_clip_a_reward_cannot_score_or_scores_out_of_range_is_dropped_alone():
    u = utility_of([Fixed("a", 1.0, [0.2, None, 0.6, 0.8]), Fixed("b", 1.0, [0.5, 0.5, 1.7, 0.5])])
    assert u.valid.tolist() == [[True, False, False]] and bool(u.anchor_valid[0])
    assert u.policy[0, 0] == pytest.approx(0.35)
    assert any("clip 2: reward 'b' returned 1.7, outside [0, 1]" in f for f in u.failures)


def test_a_user_function_is_called_under_the_per_clip_failure_policy():
    calls = []

    def fn(wavs, sample_rate, *, reply_text, labels, scale):
        calls.append(len(wavs))
        if len(wavs) > 1:
            raise MemoryError("too many clips at once (injected)")
        return [scale * len(wavs[0]) / 1000]

    u = utility_of([FunctionReward("mine", 1.0, fn, {"scale": 2.0})])
    assert calls == [K + 1] + [1] * (K + 1)  # the batch failed, then each clip alone
    torch.testing.assert_close(u.policy[0], torch.full((K,), 0.48))  # 2 * 240 / 1000
    assert any("batched reward 'mine' pass failed" in f and "injected" in f for f in u.failures)


def test_a_user_function_with_a_codes_parameter_gets_each_clips_own_codes_through_retries():
    """The codes reach the function in clip order, stay with their clip when a failed batch is retried clip by
    clip, and a function without the parameter never gets them."""
    clips = [np.zeros(240, dtype=np.float32) for _ in range(K + 1)]
    codes = [torch.tensor([7] * (k + 1)) for k in range(K)] + [torch.tensor([3, 3])]  # lengths 1, 2, 3; anchor 2
    seen = []

    def by_codes(wavs, sample_rate, *, reply_text, labels, codes):
        seen.append([list(c) for c in codes])
        if len(wavs) > 1:
            raise MemoryError("injected")
        return [len(codes[0]) / 10]

    util = RewardUtility(lambda c: clips, [FunctionReward("len", 1.0, by_codes)])
    u = util(UtilityInput([Conversation([Turn("user", "hi")])], ["hello"], [codes], [{}]))
    torch.testing.assert_close(u.policy[0], torch.tensor([0.1, 0.2, 0.3]))
    assert float(u.anchor[0]) == pytest.approx(0.2)
    assert seen[0] == [c.tolist() for c in codes] and seen[1:] == [[c.tolist()] for c in codes]

    def plain(wavs, sample_rate, *, reply_text, labels, **kwargs):
        assert "codes" not in kwargs
        return [0.5] * len(wavs)

    assert not FunctionReward("plain", 1.0, plain).wants_codes
    assert bool(utility_of([FunctionReward("plain", 1.0, plain)]).valid.all())


def test_a_codes_reward_does_not_apply_to_clips_that_came_without_codes():
    from sa_slm.rewards import RewardInput

    reward = FunctionReward("len", 1.0, lambda wavs, sample_rate, *, reply_text, labels, codes: [0.5] * len(wavs))
    with pytest.raises(RewardNotApplicable, match="without them"):
        reward(RewardInput(Conversation([Turn("user", "hi")]), "hello", [np.zeros(10)], 24_000))


USER_MODULE = '''
import json
import pathlib

LOG = pathlib.Path(__file__).with_name("calls.jsonl")


def loudness_share(wavs, sample_rate, *, reply_text, labels, offset=0.0):
    """Clip k's share of the prompt's total |amplitude|, plus an offset: a known value per clip."""
    totals = [float(abs(w).sum()) for w in wavs]
    with LOG.open("a") as f:
        f.write(json.dumps({"clips": len(wavs), "sample_rate": sample_rate, "reply_text": reply_text,
                            "labels": labels, "offset": offset}) + "\\n")
    return [offset + t / sum(totals) / 2 for t in totals]
'''

CONFIG = """
prompts_manifest: ${resource:tiny_corpus/manifest.jsonl}
rewards:
  - {name: critic, function: rubric, weight: 1.0}
  - {name: mine, function: "user_rewards_for_test:loudness_share", weight: 3.0, args: {offset: 0.1}}
wer_gate: {threshold: null}
"""


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    (tmp_path / "user_rewards_for_test.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "user_rewards_for_test", raising=False)  # this test's copy, not an earlier one
    config = tmp_path / "stage3.yaml"
    config.write_text(CONFIG)
    return tmp_path, config


def test_a_user_reward_named_in_a_stage3_config_is_called_and_weighted(tiny, user_module):
    folder, config = user_module
    cfg = load_config(UAPOConfig, config)
    check_rewards(cfg.rewards, load_rubric(cfg.rubric))
    critic = RubricCritic(tiny.model, tiny.processor)
    rewards = build_rewards(cfg.rewards, critic)
    decode = lambda codes: [w.numpy() for w in tiny.model.decode_codes(codes, [tiny.speakers[None]] * len(codes),  # noqa: E731
                                                                       [0] * len(codes))]
    rb = collect(tiny.model, tiny.processor, tiny.speakers, [tiny.conversation(text="Hi!")], ["Hello there."], K,
                 SamplingConfig(max_new_codes=8), seed=0)
    batch = UtilityInput(rb.conversations, rb.reply_texts, [rb.clip_codes(0)], [{"emotion": "happy"}])
    u = RewardUtility(decode, rewards)(batch)

    wavs = decode(rb.clip_codes(0))
    totals = [float(np.abs(w).sum()) for w in wavs]
    mine = [0.1 + t / sum(totals) / 2 for t in totals]
    rubric = critic.score_clips(rb.conversations[0], rb.reply_texts[0], wavs)
    want = [(1.0 * c.utility + 3.0 * m) / 4.0 for c, m in zip(rubric.results, mine)]
    torch.testing.assert_close(u.policy[0], torch.tensor(want[:K]), atol=1e-5, rtol=0)
    torch.testing.assert_close(u.anchor[0], torch.tensor(want[K]), atol=1e-5, rtol=0)
    call = json.loads((folder / "calls.jsonl").read_text().splitlines()[0])
    assert call == {"clips": K + 1, "sample_rate": 24_000, "reply_text": "Hello there.", "labels": {"emotion": "happy"},
                    "offset": 0.1}


def test_a_reward_that_cannot_be_imported_is_a_config_error_naming_it(tmp_path):
    config = tmp_path / "stage3.yaml"
    config.write_text(CONFIG.replace("user_rewards_for_test:loudness_share", "no_such_module:fn"))
    cfg = load_config(UAPOConfig, config)
    with pytest.raises(ConfigError, match=r"rewards\[mine\].function: .*cannot import 'no_such_module'"):
        check_rewards(cfg.rewards, load_rubric(cfg.rubric))


@pytest.mark.parametrize("body, message", [
    ("rewards: [{name: a, function: rubric}, {name: a, function: f0_variance}]", "names must be unique"),
    ("rewards: [{name: a, function: rubric, weight: -1}]", r"rewards\[a\].weight: -1.0 must be >= 0.0"),
    ("rewards: [{name: a, function: rubric, weight: 0}]", "sum to more than 0"),
    ("rewards: [{name: a, function: loudness}]", "neither a built-in reward"),
    ("rewards: [{name: a, function: rubric, args: {dimensions: [timbre]}}]", r"\['timbre'\] not in rubric"),
    ("rewards: [{name: a, function: f0_variance, args: {scael: 2}}]", "scael"),
    ("rewards: [{name: a, function: emotion_model, args: {model_dir: /nowhere}}]", "is not a folder"),
])
def test_reward_lists_are_checked_before_any_model_loads(tmp_path, body, message):
    config = tmp_path / "stage3.yaml"
    config.write_text("prompts_manifest: x.jsonl\n" + body + "\n")
    with pytest.raises(ConfigError, match=message):
        cfg = load_config(UAPOConfig, config)
        check_rewards(cfg.rewards, load_rubric(cfg.rubric))


@pytest.mark.slow
def test_stage3_recipe_runs_a_user_reward_from_its_config(user_module):
    from sa_slm.recipes import stage3

    folder, config = user_module
    out = folder / "run"
    assert stage3.main(["--config", str(config), f"output_dir={out}", "model=tiny", "num_samples=2",
                        "sampling.max_new_codes=8", "train.max_steps=1", "train.per_device_train_batch_size=1",
                        "train.logging_steps=1", "train.report_to=[]", "audio_every=0"]) == 0
    log = json.loads((out / "checkpoints" / "checkpoint-1" / "trainer_state.json").read_text())["log_history"]
    assert 0.1 <= log[0]["reward_mine"] <= 0.6 and "reward_critic" in log[0]
    assert json.loads((folder / "calls.jsonl").read_text().splitlines()[0])["clips"] == 3  # 2 rollouts + anchor
