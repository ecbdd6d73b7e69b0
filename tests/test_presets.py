"""Presets: the shipped 3B/7B configs have the released shapes; the tiny one builds a working model."""

import pytest
import torch
from transformers import Qwen2_5OmniForConditionalGeneration

from sa_slm.presets import preset_config
from sa_slm.token2wav import SAMPLE_RATE, codes_per_second

# Parameter counts of the released checkpoints' architecture (meta device, transformers 5.23).
RELEASED = {
    "random-3b": {"talker": 384_604_928, "token2wav": 333_607_760 + 115_443_504, "total": 5_537_120_640},
    "random-7b": {"talker": 1_351_360_256, "token2wav": 333_607_760 + 115_443_504, "total": 10_732_225_408},
}


@pytest.mark.parametrize("preset", sorted(RELEASED))
def test_released_shapes(preset):
    with torch.device("meta"):
        model = Qwen2_5OmniForConditionalGeneration(preset_config(preset))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.talker) == RELEASED[preset]["talker"]
    assert count(model.token2wav) == RELEASED[preset]["token2wav"]
    assert count(model) == RELEASED[preset]["total"]


def test_code_rate_follows_token2wav(tiny):
    assert SAMPLE_RATE == 24_000
    assert codes_per_second(tiny.model) == 50.0  # hop 240 at 24 kHz = 100 mel frames/s, DiT repeats 2


def test_tiny_is_small_and_finite(tiny):
    n = sum(p.numel() for p in tiny.model.parameters())
    assert n < 15_000_000
    assert all(torch.isfinite(p).all() for p in tiny.model.parameters())
