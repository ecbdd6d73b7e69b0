import numpy as np
import pytest
import torch

from sa_slm import SASLM


@pytest.fixture(scope="session")
def tiny() -> SASLM:
    torch.manual_seed(0)
    return SASLM.from_pretrained("tiny", device="cpu")


@pytest.fixture(scope="session")
def tone() -> tuple[np.ndarray, int]:
    """1.5 s stereo 44.1 kHz test tone (exercises resampling and down-mixing)."""
    sr = 44_100
    t = np.arange(int(sr * 1.5)) / sr
    left = 0.3 * np.sin(2 * np.pi * 220 * t)
    right = 0.2 * np.sin(2 * np.pi * 330 * t)
    return np.stack([left, right], axis=1).astype(np.float32), sr


@pytest.fixture()
def conversations(tiny, tone):
    """Two prompts of different lengths, one with audio."""
    wav, sr = tone
    return [
        tiny.conversation(audio=wav, sampling_rate=sr, text="How does this sound?"),
        tiny.conversation(text="Tell me something cheerful, please."),
    ]


def pytest_terminal_summary(terminalreporter):
    """The fault-injection summary line (faults tried, tracebacks, good items lost), when faults ran."""
    from faults import TALLY, summary_line

    if TALLY["tried"]:
        terminalreporter.write_line(summary_line())
