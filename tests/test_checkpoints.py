"""Checkpoints and run safety: every trainable part reloads on resume, torn checkpoints are skipped,
the run's mean loss survives a resume, one run per output folder."""

import json
import logging
import os
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import TrainerCallback, TrainingArguments

from sa_slm import SASLM
from sa_slm.bridge import IntentBridgeConfig
from sa_slm.errors import SASLMError
from sa_slm.sft.lora import add_thinker_lora
from sa_slm.training.checkpoints import last_complete_checkpoint
from sa_slm.training.run_lock import run_lock
from sa_slm.training.trainer_utils import LoggedTermsTrainer


# ---- key names on resume (finding 2) ------------------------------------------------------------
def _policy():
    """The tiny policy with a bridge that has weights, LoRA on the Thinker and stage 2's trainable parts."""
    torch.manual_seed(0)
    model = SASLM.from_pretrained("tiny", device="cpu",
                                  bridge=IntentBridgeConfig(mode="vib_adaln", latent_dim=8, vib_hidden=16)).model
    add_thinker_lora(model, r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    model.set_trainable(talker=True, bridge=True, thinker_last_layers=1)
    return model


def _trainer(model, tmp_path):
    return LoggedTermsTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path / "run"), use_cpu=True,
                                                                  report_to=[]))


PARTS = {"last Thinker layer": "thinker.model.language_model.layers.1.", "LoRA": "lora_", "Talker": "talker.",
         "bridge": "intent_bridge."}


def test_resume_loads_every_trainable_part(tmp_path):
    trained = _policy()
    n_layers = len(trained.thinker.model.language_model.layers)
    assert n_layers == 2  # PARTS names layer 1 as the last one
    torch.manual_seed(1)
    with torch.no_grad():
        for p in trained.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
    ckpt = tmp_path / "checkpoint-4"
    _trainer(trained, tmp_path).save_model(str(ckpt))  # what the Trainer writes into a checkpoint

    fresh = _policy()
    _trainer(fresh, tmp_path)._load_from_checkpoint(str(ckpt))
    want = dict(trained.named_parameters())
    for part, key in PARTS.items():
        params = [(n, p) for n, p in fresh.named_parameters() if key in n and p.requires_grad]
        assert params, part
        for name, p in params:
            assert torch.equal(p, want[name]), f"{part}: {name} not restored"


def test_resume_refuses_a_checkpoint_without_a_trainable_weight(tmp_path):
    model = _policy()
    ckpt = tmp_path / "checkpoint-4"
    _trainer(model, tmp_path).save_model(str(ckpt))
    weights = load_file(ckpt / "model.safetensors")
    dropped = [k for k in weights if ".layers.1.mlp.up_proj" in k and k.startswith("thinker.")]
    assert dropped
    save_file({k: v for k, v in weights.items() if k not in dropped}, ckpt / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(SASLMError, match=r"checkpoint-4: no saved weight for 1 trainable parameter.*up_proj"):
        _trainer(_policy(), tmp_path)._load_from_checkpoint(str(ckpt))


# ---- torn checkpoints (finding 3) ---------------------------------------------------------------
def _checkpoint(root, step: int, deepspeed: bool = False):
    ckpt = root / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    save_file({"w": torch.arange(1000.0)}, ckpt / "model.safetensors")
    torch.save({"state": torch.arange(1000.0)}, ckpt / "optimizer.pt")
    if deepspeed:
        (ckpt / "global_step4").mkdir()
        torch.save({"module": torch.arange(1000.0)}, ckpt / "global_step4" / "mp_rank_00_model_states.pt")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return ckpt


def _truncate(path, keep: int = 300):
    with open(path, "r+b") as f:
        f.truncate(keep)


@pytest.mark.parametrize("tear, reason", [
    (lambda c: _truncate(c / "model.safetensors"), r"model\.safetensors is torn"),
    (lambda c: _truncate(c / "optimizer.pt"), r"optimizer\.pt is torn"),
    (lambda c: _truncate(c / "global_step4" / "mp_rank_00_model_states.pt", 2000), r"global_step4/mp_rank_00_model_states\.pt is torn"),
    (lambda c: (c / "trainer_state.json").write_text('{"global_st'), r"trainer_state\.json does not parse"),
    (lambda c: (c / "trainer_state.json").unlink(), r"no trainer_state\.json"),
], ids=["weights", "optimizer", "deepspeed-shard", "state-json", "no-state"])
def test_torn_newest_checkpoint_is_skipped_with_one_warning(tmp_path, caplog, tear, reason):
    older = _checkpoint(tmp_path, 2, deepspeed=True)
    newest = _checkpoint(tmp_path, 4, deepspeed=True)
    assert last_complete_checkpoint(tmp_path) == str(newest)
    tear(newest)
    with caplog.at_level(logging.WARNING):
        assert last_complete_checkpoint(tmp_path) == str(older)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert str(newest) in warnings[0]
    assert __import__("re").search(reason, warnings[0]), warnings[0]


# ---- run-level train_loss (finding 5) -----------------------------------------------------------
class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Linear(4, 1)

    def forward(self, x, y):
        return {"loss": ((self.w(x).squeeze(-1) - y) ** 2).mean()}


class _StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.global_step >= self.step


def _toy_run(out, resume=None, stop_at=None, logging_steps=4):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    data = [{"x": torch.randn(4, generator=g), "y": torch.randn((), generator=g)} for _ in range(24)]
    args = TrainingArguments(output_dir=str(out), use_cpu=True, report_to=[], max_steps=6, save_steps=3,
                             logging_steps=logging_steps, per_device_train_batch_size=2, learning_rate=0.05, seed=0,
                             lr_scheduler_type="constant", disable_tqdm=True)
    trainer = LoggedTermsTrainer(model=_Toy(), args=args, train_dataset=data,
                                 callbacks=[_StopAt(stop_at)] if stop_at else None)
    return trainer.train(resume_from_checkpoint=resume)


def test_train_loss_covers_the_whole_run_across_a_resume(tmp_path):
    straight = _toy_run(tmp_path / "a")
    _toy_run(tmp_path / "b", stop_at=3)  # "killed" after checkpoint 3 (steps 4–6 never ran)
    resumed = _toy_run(tmp_path / "b", resume=True)
    assert resumed.global_step == straight.global_step == 6
    # Reference: the mean of the six per-step losses, logged one by one in a third, identical run.
    per_step = _toy_run(tmp_path / "c", logging_steps=1)
    losses = [e["loss"] for e in json.loads((tmp_path / "c" / "checkpoint-6" / "trainer_state.json").read_text())
              ["log_history"] if "loss" in e]
    assert len(losses) == 6 and per_step.training_loss == pytest.approx(sum(losses) / 6, rel=1e-6)
    assert straight.training_loss == pytest.approx(sum(losses) / 6, rel=1e-6)
    assert resumed.training_loss == pytest.approx(straight.training_loss, rel=1e-6)
    assert resumed.metrics["train_loss"] == resumed.training_loss


# ---- one run per output folder (finding 6) ------------------------------------------------------
HOLDER = """
import fcntl, os, socket, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\\n".encode(), 0)
print("held", flush=True)
sys.stdin.read()
"""


def test_a_live_run_holding_the_folder_refuses_a_second(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / ".lock")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SASLMError, match=rf"another run \(pid {holder.pid} on {socket.gethostname()}\) is "
                                             rf"writing to {tmp_path}; wait for it or pick another output_dir"):
            with run_lock(tmp_path):
                pass
    finally:
        holder.communicate("")
    with run_lock(tmp_path):  # free again once the holder is gone
        pass


def test_a_stale_lock_of_a_dead_run_is_taken_over(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(f"{dead.pid} {socket.gethostname()}\n")
    with caplog.at_level(logging.WARNING), run_lock(tmp_path):
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()} {socket.gethostname()}\n"
    assert f"taking over the stale lock {tmp_path / '.lock'} of pid {dead.pid}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING), run_lock(tmp_path):  # a clean end leaves nothing stale
        pass
    assert caplog.text == ""


def test_other_ranks_of_a_launch_share_the_lock(tmp_path, monkeypatch):
    with run_lock(tmp_path):
        monkeypatch.setenv("RANK", "1")
        with run_lock(tmp_path):  # rank 1 of the same launch goes on
            pass
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(SASLMError, match="another run"):  # a second launch's rank 0 is refused
            with run_lock(tmp_path):
                pass
