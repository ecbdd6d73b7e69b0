"""One seed-derivation rule for every random stream the toolkit draws (Talker samples, Token2Wav noise,
rollouts per training step), so that a stream depends only on its base seed and its own keys."""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(base: int, *keys: int | str) -> int:
    """A 62-bit seed for the stream named by `keys` under `base` (e.g. `derive_seed(seed, "talker", k)`).

    Built with NumPy's SeedSequence (well-mixed, no arithmetic collisions such as seed*1000+k would
    have); strings enter through their CRC-32, so the result is the same in every process and run.
    """
    entropy = [int(base) & 0xFFFFFFFFFFFFFFFF]
    for key in keys:
        entropy.append(zlib.crc32(key.encode("utf-8")) if isinstance(key, str) else int(key) & 0xFFFFFFFFFFFFFFFF)
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 30) ^ int(state[1])


def prompt_seeds(base: int, prompts: list[int | str], num_samples: int, *keys: int | str) -> list[list[int]]:
    """One list of `num_samples` sampling seeds per prompt, `derive_seed(base, *keys, prompt, k)`: the Talker
    seeds of `sample_codes` that keep prompts independent (a prompt key is its id, or its index in a batch
    that is fixed by the data order)."""
    return [[derive_seed(base, *keys, prompt, k) for k in range(num_samples)] for prompt in prompts]
