"""Trainer checkpoints: which one is complete enough to resume from, and loading its weights into the
model under the names the model has now.

Why key names need mapping: `save_pretrained` (which the Trainer's checkpoints use) writes a model's
weights in their original hub layout, reverting the model's checkpoint conversion mapping
(`thinker.model.language_model.layers.N...` is saved as `thinker.model.layers.N...`), while the Trainer
resumes with a plain non-strict `load_state_dict` on the saved names; the renamed weights would
silently keep their initial values. `load_checkpoint_weights` maps every saved name back through the
model's own conversion and refuses a checkpoint that would leave a trainable parameter unloaded.
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn
from transformers import PreTrainedModel
from transformers.core_model_loading import revert_weight_conversion
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

from ..errors import SASLMError

log = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.json"
TORCH_ARCHIVES = ("*.pt", "*.pth", "*.bin")  # torch.save files: model/optimizer/scheduler/RNG, DeepSpeed shards


class CheckpointError(SASLMError):
    """A checkpoint that cannot be resumed from without losing trained weights."""


def checkpoint_problem(ckpt: Path) -> str | None:
    """Why `ckpt` cannot be resumed from (one short phrase), or None when it is complete.

    Complete means: trainer_state.json parses as JSON with an integer `global_step` (the Trainer writes
    it last); there is at least one weight file; every `*.safetensors` file opens (safetensors checks
    that its header's tensor offsets cover the file exactly, so a truncated file fails without reading
    every tensor) and every shard a safetensors index names exists; every torch archive (`*.pt`, `*.pth`,
    `*.bin`, here and in a DeepSpeed `global_step*` folder) is a whole zip file: its central directory,
    written last, reads and every member lies inside the file.
    """
    try:
        state = json.loads((ckpt / TRAINER_STATE).read_text(encoding="utf-8"))
        if not isinstance(state.get("global_step"), int):
            return f"{TRAINER_STATE} has no global_step"
    except FileNotFoundError:
        return f"no {TRAINER_STATE} (interrupted while saving)"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        return f"{TRAINER_STATE} does not parse ({exc})"

    safetensors = sorted(ckpt.glob("*.safetensors"))
    archives = sorted(p for pattern in TORCH_ARCHIVES for folder in [ckpt, *ckpt.glob("global_step*")]
                      for p in folder.glob(pattern))
    if not safetensors and not any(ckpt.glob("*.bin")) and not any(ckpt.glob("global_step*")):
        return "no weight files"
    index = ckpt / SAFE_WEIGHTS_INDEX_NAME
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            return f"{index.name} does not parse ({exc})"
        missing = sorted(s for s in shards if not (ckpt / s).is_file())
        if missing:
            return f"{index.name} names missing shard {missing[0]}"
    for path in safetensors:
        try:
            with safe_open(str(path), "pt") as f:
                f.keys()
        except (SafetensorError, OSError) as exc:
            return f"{path.relative_to(ckpt)} is torn ({exc})"
    for path in archives:
        problem = _torch_archive_problem(path)
        if problem:
            return f"{path.relative_to(ckpt)} is torn ({problem})"
    return None


def _torch_archive_problem(path: Path) -> str | None:
    """None when `path` is a whole zip archive (torch.save's format), else what is wrong with it."""
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.header_offset + info.compress_size > size:
                    return f"member {info.filename} runs past the end of the file"
    except (zipfile.BadZipFile, OSError) as exc:
        return str(exc)
    return None


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """Newest `checkpoint-N` under `output_dir` that passes `checkpoint_problem`; every newer one is
    skipped with a one-line warning naming it and why."""
    root = Path(output_dir)
    if not root.is_dir():
        return None
    candidates = sorted(
        (p for p in root.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    for ckpt in candidates:
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return str(ckpt)
        log.warning("skipping incomplete checkpoint %s: %s", ckpt, problem)
    return None


def checkpoint_key_map(model: nn.Module) -> dict[str, str]:
    """{name a weight is saved under by `save_pretrained` → its name in `model.state_dict()`}.

    The saved names come from the model's own checkpoint conversion (the one `save_pretrained` reverts),
    applied to the model as it is now, so Thinker layers, LoRA adapters, the Talker and the bridge are
    all covered. A name the model already has maps to itself, so checkpoints written with the model's
    own names load too.
    """
    state = model.state_dict()  # detached views: no copies
    owner = {id(tensor): name for name, tensor in state.items()}
    saved = revert_weight_conversion(model, dict(state)) if isinstance(model, PreTrainedModel) else state
    mapping = {name: name for name in state}
    for saved_name, tensor in saved.items():
        if id(tensor) in owner:  # a renaming; a converted (re-built) tensor keeps no name and fails below
            mapping.setdefault(saved_name, owner[id(tensor)])
    return mapping


def read_checkpoint_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint's safetensors weights (one file or an indexed set of shards), on CPU."""
    index = ckpt / SAFE_WEIGHTS_INDEX_NAME
    files = [ckpt / SAFE_WEIGHTS_NAME] if not index.is_file() else \
        [ckpt / s for s in sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))]
    weights: dict[str, torch.Tensor] = {}
    for f in files:
        weights.update(load_file(str(f), device="cpu"))
    return weights


def load_checkpoint_weights(model: nn.Module, ckpt: str | Path) -> None:
    """Load a checkpoint's safetensors weights into `model`, mapping saved names to the model's names.

    Raises CheckpointError when a trainable parameter (requires_grad) finds no weight: resuming would
    silently restart it from its initial value. Frozen weights it lacks, and names the model does not
    have, are reported in one warning (they keep their loaded-at-start values).
    """
    ckpt = Path(ckpt)
    mapping = checkpoint_key_map(model)
    weights = read_checkpoint_weights(ckpt)
    renamed = {mapping[name]: tensor for name, tensor in weights.items() if name in mapping}
    unexpected = sorted(name for name in weights if name not in mapping)
    result = model.load_state_dict(renamed, strict=False)

    # A tied parameter has several names: it is loaded when any of them was.
    params = dict(model.named_parameters(remove_duplicate=False))
    names_of: dict[int, list[str]] = {}
    for name, param in params.items():
        names_of.setdefault(id(param), []).append(name)
    lost = [names[0] for names in names_of.values()
            if params[names[0]].requires_grad and not any(n in renamed for n in names)]
    if lost:
        raise CheckpointError(
            f"{ckpt}: no saved weight for {len(lost)} trainable parameter(s) (first: {lost[0]}); the checkpoint "
            "was written by a different model or training setup: resume with the same config, or pick a new "
            "output_dir")
    frozen_missing = [n for n in result.missing_keys if n not in renamed]
    if frozen_missing or unexpected:
        log.warning("%s: %d frozen weight(s) not in the checkpoint (first: %s), %d saved weight(s) the model "
                    "does not have (first: %s)", ckpt, len(frozen_missing), frozen_missing[:1],
                    len(unexpected), unexpected[:1])
