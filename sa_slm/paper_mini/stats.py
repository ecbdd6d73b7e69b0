"""Intervals and paired tests for the paper-mini tables (scipy.stats underneath).

Every number of the report is a mean with a 95 % interval: over seeds when there are at least two
(Student t on the per-seed means), else over the held-out items of the one seed (Wilson interval of
a proportion). Two settings are compared on the same items and seeds: a paired t-test over the
per-seed differences, and an exact McNemar test over the pooled per-item outcomes (the discordant
pairs under a binomial(1/2)), which still says something with a single seed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


@dataclass
class Estimate:
    mean: float
    low: float
    high: float
    n: int  # seeds (over="seeds") or items (over="items")
    over: str  # what the interval is over: seeds | items
    per_seed: list[float]

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def text(self, scale: float = 100.0, digits: int = 1) -> str:
        """`41.2 [35.0, 47.4]` (in percent for proportions by default)."""
        f = lambda v: f"{v * scale:.{digits}f}"  # noqa: E731
        return f"{f(self.mean)} [{f(self.low)}, {f(self.high)}]"

    def to_dict(self) -> dict:
        return asdict(self)


def wilson(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    result = stats.binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return float(result.low), float(result.high)


def estimate(per_seed_items: list[list[float]], level: float = LEVEL, binary: bool | None = None) -> Estimate:
    """Mean of per-seed means with a t interval over seeds; one seed: the item mean with a Wilson interval
    for 0/1 outcomes or a t interval over items for values. binary: whether the items are 0/1 outcomes
    (None: whether every item is 0 or 1; a graded value such as a margin says False, since it can be all 0)."""
    means = [float(np.mean(items)) for items in per_seed_items if len(items)]
    if not means:
        raise ValueError("no items to estimate from")
    if len(means) >= 2:
        return _t_estimate(means, "seeds", means, level)
    items = np.asarray(per_seed_items[0], dtype=float)
    if np.isin(items, (0.0, 1.0)).all() if binary is None else binary:
        low, high = wilson(int(items.sum()), len(items), level)
        return Estimate(float(items.mean()), low, high, len(items), "items", means)
    return _t_estimate(items, "items", means, level)


def _t_estimate(values, over: str, per_seed: list[float], level: float = LEVEL) -> Estimate:
    """Mean of `values` with a Student t interval (unbounded for a single value)."""
    values = np.asarray(values, dtype=float)
    m = float(values.mean())
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("inf")
    half = float(stats.t.ppf(0.5 + level / 2, max(len(values) - 1, 1))) * se
    return Estimate(m, m - half, m + half, len(values), over, per_seed)


@dataclass
class Paired:
    difference: Estimate  # b - a, interval as in `estimate`
    t_p: float | None  # paired t-test over per-seed means (None with one seed)
    mcnemar_p: float | None  # exact McNemar over pooled 0/1 items (None when items are not 0/1)
    b_better: int  # items where b is right and a wrong
    a_better: int

    def to_dict(self) -> dict:
        return {**asdict(self), "difference": self.difference.to_dict()}


def paired(a: list[list[float]], b: list[list[float]], binary: bool | None = None) -> Paired:
    """Compare setting b with setting a on the same seeds (outer lists) and items (inner lists, same order).
    binary: whether the items are 0/1 outcomes (McNemar); None: whether every item is 0 or 1."""
    if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b)):
        raise ValueError("paired comparison needs the same seeds and items on both sides")
    diffs = [[float(y) - float(x) for x, y in zip(xa, xb)] for xa, xb in zip(a, b)]
    seed_a, seed_b = [float(np.mean(x)) for x in a], [float(np.mean(x)) for x in b]
    t_p = None
    if len(a) >= 2:
        d = np.subtract(seed_b, seed_a)
        if np.ptp(d) == 0:  # no spread: the t statistic is 0/0 or ±inf
            t_p = 1.0 if d[0] == 0 else 0.0
        else:
            t_p = float(stats.ttest_rel(seed_b, seed_a).pvalue)
    pooled_a = np.concatenate([np.asarray(x, dtype=float) for x in a])
    pooled_b = np.concatenate([np.asarray(x, dtype=float) for x in b])
    if binary is None:
        binary = bool(np.isin(pooled_a, (0.0, 1.0)).all() and np.isin(pooled_b, (0.0, 1.0)).all())
    b_better = int(((pooled_b == 1) & (pooled_a == 0)).sum()) if binary else 0
    a_better = int(((pooled_a == 1) & (pooled_b == 0)).sum()) if binary else 0
    mcnemar = None
    if binary:
        n = b_better + a_better
        mcnemar = 1.0 if n == 0 else float(stats.binomtest(b_better, n, 0.5).pvalue)
    means = [float(np.mean(d)) for d in diffs]
    difference = (_t_estimate(means, "seeds", means) if len(means) >= 2 else
                  _t_estimate(diffs[0], "items", means))  # mean difference, t interval
    return Paired(difference, t_p, mcnemar, b_better, a_better)
