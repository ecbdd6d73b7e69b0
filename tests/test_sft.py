"""Stages 1–2: loss terms, masking, freezing, and end-to-end runs with kill-and-resume on the tiny model."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from interrupt import kill_after_checkpoint
from sa_slm import SASLM
from sa_slm.bridge import IntentBridgeConfig
from sa_slm.data import TeacherForcingCollator, load_manifest
from sa_slm.paths import CORPUS_DIR
from sa_slm.recipes import stage1
from sa_slm.sft.objective import reply_text_cross_entropy, sft_loss

MANIFEST = CORPUS_DIR / "manifest_codes.jsonl"


@pytest.fixture(scope="module")
def bridged():
    torch.manual_seed(0)
    return SASLM.from_pretrained("tiny", device="cpu", bridge=IntentBridgeConfig(mode="vib_adaln", latent_dim=8, vib_hidden=16))


@pytest.fixture(scope="module")
def batch(bridged):
    return TeacherForcingCollator.for_model(bridged.model, bridged.processor, bridged.speakers)(load_manifest(MANIFEST)[:3])


def _objective(saslm, batch):
    out = saslm.model(**batch, with_logprobs=False, with_text_logits=True, sample_latent=False)
    return sft_loss(out, batch, kl_weight=0.3, text_loss_weight=1.0, eos_id=saslm.model.reply_eos_id)


def test_padding_does_not_change_any_loss(bridged, batch):
    torch.manual_seed(1)
    a = _objective(bridged, batch)
    noisy = dict(batch)
    noisy["codes"] = batch["codes"].clone()
    noisy["reply_ids"] = batch["reply_ids"].clone()
    for b in range(3):  # garbage after each row's end
        noisy["codes"][b, int(batch["code_lengths"][b]):] = 7
        noisy["reply_ids"][b, int(batch["reply_lengths"][b]):] = 42
    b_ = _objective(bridged, noisy)
    torch.testing.assert_close(a.loss, b_.loss)
    for key in ("codec_loss", "kl", "text_loss"):
        torch.testing.assert_close(a.terms[key], b_.terms[key])


def test_reply_text_loss_equals_thinker_causal_lm_loss(bridged, batch):
    """Our reply-text CE on row 0 == transformers' causal-LM loss with labels on reply + EOS only."""
    one = {k: v[:1] for k, v in batch.items() if torch.is_tensor(v) and k not in ("input_features", "feature_attention_mask")}
    one["input_features"], one["feature_attention_mask"] = batch["input_features"][:1], batch["feature_attention_mask"][:1]
    out = bridged.model(**one, with_logprobs=False, with_text_logits=True)
    eos = bridged.processor.tokenizer.eos_token_id
    assert eos == bridged.model.reply_eos_id
    ours = reply_text_cross_entropy(out.reply_text_logits, out.reply_text_mask, one["reply_ids"], one["reply_lengths"], eos)
    prompt = one["input_ids"][0][one["attention_mask"][0].bool()]
    reply = one["reply_ids"][0, : int(one["reply_lengths"][0])]
    ids = torch.cat([prompt, reply, torch.tensor([eos])])[None]
    labels = ids.clone()
    labels[:, : len(prompt)] = -100
    ref = bridged.model.thinker(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels,
                                input_features=one["input_features"], feature_attention_mask=one["feature_attention_mask"])
    torch.testing.assert_close(ours, ref.loss, atol=1e-4, rtol=1e-4)


def test_freezing_per_stage(bridged):
    model = bridged.model
    groups = model.set_trainable(thinker_last_layers=0)
    assert not groups["llm"] and not any(p.requires_grad for p in model.thinker.parameters())
    assert all(p.requires_grad for p in model.talker.parameters()) and all(p.requires_grad for p in model.intent_bridge.parameters())
    assert not any(p.requires_grad for p in model.token2wav.parameters())
    groups = model.set_trainable(thinker_last_layers=1)
    last = model.thinker.model.language_model.layers[-1]
    assert {id(p) for p in groups["llm"]} == {id(p) for p in last.parameters()}
    assert not any(p.requires_grad for p in model.thinker.model.language_model.layers[0].parameters())
    model.set_trainable()  # leave the shared fixture as stage 1 would


def _log(out: Path, step: int) -> list[dict]:
    return json.loads((out / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").read_text())["log_history"]


STAGE1_ARGS = ["train.max_steps=16", "train.save_steps=4", "train.logging_steps=4", "train.save_total_limit=10"]


@pytest.fixture(scope="module")
def stage1_run(tmp_path_factory):
    """One uninterrupted stage-1 run on the tiny corpus, shared by the tests below."""
    out = tmp_path_factory.mktemp("stage1") / "straight"
    assert stage1.main(["--config", "configs/stage1_tiny.yaml", f"output_dir={out}", *STAGE1_ARGS]) == 0
    return out


@pytest.mark.slow
def test_stage1_codec_loss_falls_while_the_kl_weight_ramps(stage1_run):
    log = _log(stage1_run, 16)
    codec = [e["codec_loss"] for e in log if "codec_loss" in e]
    assert codec[-1] < codec[0] - 0.5  # the codec loss falls
    assert [e["kl_weight"] for e in log if "kl_weight" in e][-1] > 0.4  # the KL weight ramped up to near its max


@pytest.mark.slow
def test_stage1_sigkill_and_restart_reproduces_the_run(stage1_run, tmp_path):
    # Kill a second, identical run with SIGKILL once checkpoint 8 is complete; restart; compare.
    s1k = tmp_path / "stage1_killed"
    cmd = [sys.executable, "-m", "sa_slm.recipes.stage1", "--config", "configs/stage1_tiny.yaml", f"output_dir={s1k}",
           *STAGE1_ARGS]
    kill_after_checkpoint(cmd, s1k, 8)
    assert not (s1k / "metrics.json").exists()
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert json.loads((s1k / "metrics.json").read_text())["steps"] == 16
    log, resumed = _log(stage1_run, 16), _log(s1k, 16)
    assert [e["step"] for e in resumed] == [e["step"] for e in log]
    for a, b in zip(log, resumed):  # same losses after the resume as without the kill
        if "codec_loss" in a:
            assert a["codec_loss"] == pytest.approx(b["codec_loss"], rel=1e-5)
    # The run's mean loss covers all 16 steps, not only the 8 after the resume.
    straight_loss = json.loads((stage1_run / "metrics.json").read_text())["train_loss"]
    assert json.loads((s1k / "metrics.json").read_text())["train_loss"] == pytest.approx(straight_loss, rel=1e-5)


@pytest.mark.slow
def test_stage2_continues_from_stage1_with_the_thinker_and_text_loss(stage1_run, tmp_path):
    s2 = tmp_path / "stage2"
    assert stage1.main(["--config", "configs/stage2_tiny.yaml", f"model={stage1_run / 'model'}", f"output_dir={s2}",
                        "train.max_steps=12", "train.save_steps=12", "train.logging_steps=4"]) == 0
    codec = [e["codec_loss"] for e in _log(stage1_run, 16) if "codec_loss" in e]
    log2 = _log(s2, 12)
    codec2 = [e["codec_loss"] for e in log2 if "codec_loss" in e]
    assert codec2[0] < codec[0]  # stage 2 starts from the stage-1 weights
    assert all("text_loss" in e for e in log2 if "loss" in e)
    assert json.loads((s2 / "metrics.json").read_text())["trainable_llm_params"] > 0
    model = SASLM.from_pretrained(s2 / "model", device="cpu")
    assert model.bridge.cfg.mode == "vib_adaln"  # `bridge: null` kept the stage-1 bridge
    result = model.generate(text="Hi", max_new_codes=6, seed=0)
    assert result.intent is not None and result.intent.shape[1] == 16


def test_probe_reads_emotion_from_h_and_z_not_e(capsys):
    from sa_slm.cli import main

    code = main(["probe", "--model", "tiny", "--device", "cpu", "--manifest",
                 str(CORPUS_DIR / "manifest_user_emotion.jsonl"), "--group-by", "sentence"])
    assert code == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    pct = lambda key: float(lines[key].split()[-1].rstrip("%")) / 100  # noqa: E731
    # The reply text is the same for every emotion, so e_t carries nothing: exactly chance (1 of 5).
    assert pct("e_t") == pytest.approx(0.2) and pct("chance") == pytest.approx(0.2)
    # The emotion reaches the Thinker through the user's audio, so h_t beats chance.
    assert pct("h_t") > 0.3
    assert "n/a" in lines["z_t"]  # the default tiny bridge (mode add) has no latent


@pytest.mark.slow
def test_stage1_under_deepspeed_zero3_two_processes(tmp_path):
    out = tmp_path / "s1z3"
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "stages/stage1.py", "--config",
           "configs/stage1_tiny.yaml", f"output_dir={out}", "train.max_steps=4", "train.save_steps=2",
           "train.per_device_train_batch_size=2", "train.deepspeed=configs/deepspeed/zero3.json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "checkpoints" / "checkpoint-4" / "global_step4").is_dir()
    model = SASLM.from_pretrained(out / "model", device="cpu")  # gathered 16-bit weights reload
    assert model.bridge.cfg.mode == "vib_adaln" and model.bridge.adaln.gamma.weight.abs().sum() > 0


@pytest.mark.slow
def test_stage1_thinker_lora_is_trained_and_merged(tmp_path):
    out = tmp_path / "lora"
    assert stage1.main(["--config", "configs/stage1_tiny.yaml", f"output_dir={out}", "lora.enabled=true",
                        "train.max_steps=4", "train.save_steps=4"]) == 0
    assert json.loads((out / "metrics.json").read_text())["trainable_llm_params"] > 0
    base = SASLM.from_pretrained("tiny", device="cpu").model.thinker.model.language_model.layers[0].self_attn
    tuned = SASLM.from_pretrained(out / "model", device="cpu").model.thinker.model.language_model.layers[0].self_attn
    assert not torch.equal(base.q_proj.weight, tuned.q_proj.weight)  # adapter merged into the weight
    assert not torch.equal(base.v_proj.weight, tuned.v_proj.weight)
    assert torch.equal(base.k_proj.weight, tuned.k_proj.weight)  # not a LoRA target, frozen
    assert type(tuned.q_proj) is torch.nn.Linear  # a plain layer again


STAGE2_ARGS = ["model=tiny", "bridge.mode=vib_adaln", "bridge.latent_dim=16", "bridge.vib_hidden=64",
               "train.max_steps=8", "train.save_steps=4", "train.logging_steps=1", "train.save_total_limit=10"]


def _last_thinker_layer(folder: Path) -> dict[str, torch.Tensor]:
    """The last (second) Thinker decoder layer of a saved model or checkpoint folder, by parameter name."""
    from safetensors.torch import load_file

    layer = re.compile(r"^thinker\.model\.(?:language_model\.)?layers\.1\.(.+)$")
    return {m.group(1): t for k, t in load_file(folder / "model.safetensors").items() if (m := layer.match(k))}


@pytest.mark.slow
def test_stage2_sigkill_and_restart_reproduces_the_run(tmp_path):
    """Stage 2 trains the last Thinker layer: a kill -9 after checkpoint 4 of 8 and a restart give the
    uninterrupted run's per-step losses and final Thinker-layer weights."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert stage1.main(["--config", "configs/stage2_tiny.yaml", f"output_dir={straight}", *STAGE2_ARGS]) == 0
    cmd = [sys.executable, "-m", "sa_slm.recipes.stage1", "--config", "configs/stage2_tiny.yaml",
           f"output_dir={killed}", *STAGE2_ARGS]
    kill_after_checkpoint(cmd, killed, 4)
    assert not (killed / "metrics.json").exists()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "missing keys" not in proc.stderr.lower()

    losses = [[(e["step"], e["loss"], e["text_loss"]) for e in _log(out, 8) if "loss" in e] for out in (straight, killed)]
    assert len(losses[0]) == 8 and [s for s, *_ in losses[0]] == [s for s, *_ in losses[1]]
    for (_, loss_a, text_a), (_, loss_b, text_b) in zip(*losses):
        assert loss_b == pytest.approx(loss_a, abs=1e-6) and text_b == pytest.approx(text_a, abs=1e-6)
    final, resumed = _last_thinker_layer(straight / "model"), _last_thinker_layer(killed / "model")
    halfway = _last_thinker_layer(straight / "checkpoints" / "checkpoint-4")
    assert final and final.keys() == resumed.keys()
    assert any(not torch.allclose(final[k], halfway[k], atol=1e-5) for k in final)  # trained after the kill point
    for name in final:
        assert torch.allclose(resumed[name], final[name], rtol=0, atol=1e-6), name
    a, b = (json.loads((out / "metrics.json").read_text()) for out in (straight, killed))
    assert b["steps"] == 8 and b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
