"""Model configs shipped in configs/models and random-weight builders (no download, ever)."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path

import torch
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration
from transformers.utils import logging as hf_logging

from .bridge import IntentBridgeConfig
from .errors import SASLMError
from .modeling import SASLMOmniModel, with_bridge
from .paths import MODEL_CONFIG_DIR

#: preset name → file in configs/models. `tiny` runs on CPU; `random-*` have the released shapes.
PRESETS = {"tiny": "tiny.json", "random-3b": "3b.json", "random-7b": "7b.json"}
#: speakers of the released checkpoints (Talker text-bos ids); random models get random cond/ref_mel.
RELEASED_SPEAKER_BOS = {"Chelsie": 151872, "Ethan": 151870}


def preset_config(name: str) -> Qwen2_5OmniConfig:
    """Qwen2.5-Omni config of a preset (the Talker's TTS ids are Thinker ids; the config check warns, harmlessly)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    raw = json.loads((MODEL_CONFIG_DIR / PRESETS[name]).read_text())
    with quiet_config_check():
        return Qwen2_5OmniConfig(**raw)


def model_config(name_or_path: str | Path, what: str = "model", **hub_kwargs) -> Qwen2_5OmniConfig:
    """The Qwen2.5-Omni config of a preset, local folder or hub id, without loading any weights (for
    validating inputs, e.g. codes against the codec vocabulary, before the model loads).

    A missing folder, a file, an empty folder or one without config.json is a SASLMError naming `what`
    (the config key or CLI flag) and the path; a name that is no folder is tried as a hub id.
    """
    name = str(name_or_path)
    if name in PRESETS:
        return preset_config(name)
    path = Path(name).expanduser()
    choices = f"give a folder written by save_pretrained or a stage, a hub id, or a preset ({', '.join(PRESETS)})"
    if path.is_file():
        raise SASLMError(f"{what} {name}: a file, not a model folder; {choices}")
    if path.is_dir() and not (path / "config.json").is_file():
        kind = "the folder is empty, not a model folder" if not any(path.iterdir()) else "not a model folder (no config.json)"
        raise SASLMError(f"{what} {name}: {kind}; {choices}")
    if not path.exists():
        try:
            validate_repo_id(name)
        except HFValidationError:
            raise SASLMError(f"{what} {name}: model folder not found; check the path, or {choices}") from None
    try:
        with quiet_config_check():
            return Qwen2_5OmniConfig.from_pretrained(name, **hub_kwargs)
    except (OSError, ValueError) as exc:
        raise SASLMError(f"{what} {name}: no Qwen2.5-Omni config found ({' '.join(str(exc).split())}); "
                         f"{choices}") from exc


@contextmanager
def quiet_config_check():
    """Silence transformers' config warnings that the Talker's TTS ids exceed the codec vocabulary.

    They are Thinker ids by design (the released configs carry them too), so the warning is noise.
    """
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def build_random_model(
    name: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0,
    bridge: IntentBridgeConfig | None = None,
) -> SASLMOmniModel:
    """Random weights of a preset's shape, allocated and initialised directly on `device` in `dtype`.

    (Materialising from the meta device leaves parameters that `_init_weights` does not cover, such as
    BigVGAN's snake alpha/beta, uninitialised, so the model is constructed on the device instead.)
    """
    config = with_bridge(preset_config(name), bridge or IntentBridgeConfig())
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = SASLMOmniModel(config)
    finally:
        torch.set_default_dtype(previous)
    if name == "tiny":
        make_decoder_code_dominant(model)
    model.token2wav.float()  # Token2Wav runs in fp32
    return model.eval()


@torch.no_grad()
def make_decoder_code_dominant(model: Qwen2_5OmniForConditionalGeneration, code_std: float = 3.0,
                               velocity_gain: float = 30.0) -> None:
    """Rescale a random Token2Wav so that its audio depends on the codes more than on the ODE noise.

    At the default init (std 0.02) a random DiT's output is almost pure initial noise: swapping every
    code changes the mel by ~0.1 % of what a new noise draw does, so no speech tokenizer could learn
    codes from such audio. A larger code-embedding table and a larger velocity head make the code
    dominate (measured on `tiny`: log-mel change of 0.35 for new codes vs 0.26 for new noise), and the
    tiny BigVGAN's `initializer_range` (0.12 in configs/models/tiny.json) gives ~0.07 RMS audio.
    Only the tiny preset uses this; the architecture and every code path are unchanged.
    """
    dit = model.token2wav.code2wav_dit_model
    dit.text_embed.codec_embed.weight.normal_(0.0, code_std)
    dit.proj_out.weight.mul_(velocity_gain)
    dit.proj_out.bias.mul_(velocity_gain)
