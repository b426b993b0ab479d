"""Small statistics for the pages: mean with a t-based 95% CI, paired differences, spikes, quantiles.

    mean_ci([0.41, 0.44, 0.39, 0.45, 0.42])  # {"mean": 0.422, "lo": ..., "hi": ..., "sd": ..., "n": 5}
    paired_ci(cadft, dft)                    # the same, for the per-seed differences cadft - dft
"""

from __future__ import annotations

import math

__all__ = ["mean_ci", "paired_ci", "spikes", "quantile"]

# Two-sided 95% Student-t quantiles t_{0.975, df} (scipy is not a dependency)
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


def _t975(df: int) -> float:
    if df >= 30:
        return 1.96 if df > 120 else 2.042
    return _T975.get(df) or _T975[max(k for k in _T975 if k <= df)]


def mean_ci(values) -> dict:
    """Mean, 95% CI (t, n-1 degrees of freedom), sample sd and n of the finite values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "sd": math.nan, "n": 0}
    mean = sum(xs) / n
    if n == 1:
        return {"mean": mean, "lo": math.nan, "hi": math.nan, "sd": math.nan, "n": 1}
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = _t975(n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "sd": sd, "n": n}


def paired_ci(a: dict, b: dict) -> dict:
    """`mean_ci` of a[seed] - b[seed] over the seeds both have (dicts seed -> value)."""
    seeds = sorted(set(a) & set(b))
    return mean_ci([a[s] - b[s] for s in seeds])


def spikes(series: list[float], *, window: int = 10, factor: float = 2.0) -> int:
    """Steps t >= window whose value exceeds `factor` times the median of the previous `window`."""
    count = 0
    for t in range(window, len(series)):
        prev = sorted(series[t - window : t])
        median = 0.5 * (prev[(window - 1) // 2] + prev[window // 2])
        if series[t] > factor * median:
            count += 1
    return count


def quantile(xs, q: float) -> float:
    """Linear-interpolation quantile of the values `xs` (numpy's default)."""
    xs = sorted(float(x) for x in xs)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
