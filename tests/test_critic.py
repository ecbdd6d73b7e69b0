"""Rubric critic: schema errors, the answer-token expectation, batching, the score API and CLI."""

import json

import numpy as np
import pytest
import torch
import yaml

from sa_slm.critic import RubricCritic, RubricError, expected_scores, load_rubric
from sa_slm.paths import RUBRIC_DIR
from sa_slm.demo import DEMO_QUESTION


def test_expectation_renormalises_over_the_answer_tokens():
    logits = torch.full((2, 10), -1e4)
    logits[0, [3, 5, 7]] = torch.tensor([0.0, 0.0, 0.0])  # uniform over the answers
    logits[1, [3, 5, 7]] = torch.log(torch.tensor([0.1, 0.2, 0.7]))
    logits[1, 0] = 50.0  # a huge non-answer token must not matter
    got = expected_scores(logits, [3, 5, 7], [0.0, 0.5, 1.0])
    torch.testing.assert_close(got, torch.tensor([0.5, 0.1 * 0 + 0.2 * 0.5 + 0.7 * 1.0]))


def _write(tmp_path, mutate):
    raw = yaml.safe_load((RUBRIC_DIR / "expressive.yaml").read_text())
    mutate(raw)
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("question"), "missing 'question'"),
    (lambda r: r["scale"][1].update(value=1.5), r"'scale\[1\].value' is 1.5; values must lie in \[0, 1\]"),
    (lambda r: r["scale"][1].update(answer="0"), "distinct answers"),
    (lambda r: r["dimensions"][0].pop("description"), r"missing 'dimensions\[0\].description'"),
    (lambda r: r.update(question="Rate {speaker_mood}"), r"unknown placeholder\(s\) \['speaker_mood'\]"),
])
def test_broken_rubrics_get_clear_errors(tmp_path, mutate, message):
    with pytest.raises(RubricError, match=message) as err:
        load_rubric(_write(tmp_path, mutate))
    assert "custom.yaml" in str(err.value)


def test_multi_token_answers_are_rejected(tiny, tmp_path):
    path = _write(tmp_path, lambda r: r["scale"][2].update(answer=" excellent performance"))
    with pytest.raises(RubricError, match="must be single tokens"):
        RubricCritic(tiny.model, tiny.processor, load_rubric(path))
    with pytest.raises(RubricError, match="built-in rubrics: expressive"):
        load_rubric("no_such_rubric")


def test_scores_are_batched_bounded_and_match_one_by_one(tiny):
    rng = np.random.default_rng(0)
    waves = [0.1 * rng.standard_normal(24_000 * (1 + k)).astype(np.float32) for k in range(3)]
    critic = RubricCritic(tiny.model, tiny.processor)
    context = tiny.conversation(audio=DEMO_QUESTION)
    batched = critic.score(context, "Congratulations!", waves, batch_size=16)
    assert batched.scores.shape == (3, 3) and batched.dimensions == ["emotion", "prosody", "naturalness"]
    assert ((batched.scores >= 0) & (batched.scores <= 1)).all()
    torch.testing.assert_close(batched.utility, batched.scores.mean(-1))
    for k, wave in enumerate(waves):
        alone = critic.score(context, "Congratulations!", [wave], instance_rubric=batched.instance_rubric, batch_size=2)
        torch.testing.assert_close(alone.scores[0], batched.scores[k], atol=1e-5, rtol=1e-5)
    # Sharing each clip's prefix (context + audio) across its dimensions via the KV cache changes nothing.
    full = critic.score(context, "Congratulations!", waves, instance_rubric=batched.instance_rubric, share_prefix=False)
    torch.testing.assert_close(full.scores, batched.scores, atol=1e-5, rtol=1e-5)
    # The audio matters: different clips get different scores.
    assert not torch.equal(batched.scores[0], batched.scores[2])


def test_cli_score_json(tmp_path, capsys):
    from sa_slm.cli import main

    reply = tmp_path / "reply.wav"
    import soundfile as sf

    sf.write(reply, 0.1 * np.random.default_rng(1).standard_normal(16_000), 16_000)
    assert main(["score", "--model", "tiny", "--device", "cpu", "--audio", str(reply), "--text", "Well done!",
                 "--context", str(DEMO_QUESTION), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["scores"]) == {"emotion", "prosody", "naturalness"} and 0 <= out["utility"] <= 1
    assert main(["score", "--model", "tiny", "--audio", str(reply), "--text", "x"]) == 2
    assert main(["score", "--model", "tiny", "--audio", str(tmp_path / "missing.wav"), "--text", "x",
                 "--context-text", "hi"]) == 2
    assert "missing.wav: audio file not found" in capsys.readouterr().err
