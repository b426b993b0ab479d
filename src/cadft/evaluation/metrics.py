"""The numbers of an evaluation, as small pure functions (no torch, no math-verify).

For one benchmark of n problems, each answered k times, problem i having c_i correct
answers:

    avg@k  = mean_i c_i / k                                  (the papers' "avg@16")
    pass@j = mean_i 1 - C(k - c_i, j) / C(k, j),  j <= k     (Chen et al. 2021, unbiased)

and the suite average is the plain mean of the benchmarks' avg@k, each benchmark
weighing the same whatever its size (the papers' "Avg." column).

The 95% interval of avg@k is the Wilson score interval at p = avg@k with n = the number
of problems. For k = 1 that is the usual binomial interval. For k > 1 the per-problem
scores c_i / k lie in [0, 1], and the variance of any variable in [0, 1] with mean p is
at most p(1 - p): the binomial variance bounds theirs, so the interval is valid and
conservative (wider than it need be when the k samples of a problem often disagree),
and it does not collapse to a point at 0% or 100% as a normal interval would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["avg_at_k", "avg_at_k_interval", "pass_at_k", "pass_at_ks", "report_ks", "suite_average",
           "wilson_interval"]

Z95 = 1.959964


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% for the default z):

    (p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n),   p = successes / n

    `successes` may be fractional (a sum of per-problem scores in [0, 1]).
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need n > 0 and 0 <= successes <= n, got successes={successes}, n={n}")
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k),
    computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i) to avoid huge binomials."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def _check_counts(correct: Sequence[int], k: int) -> None:
    if not correct:
        raise ValueError("no problems")
    if k < 1:
        raise ValueError(f"need k >= 1 samples per problem, got {k}")
    bad = [c for c in correct if not 0 <= c <= k]
    if bad:
        raise ValueError(f"correct counts must lie in [0, {k}], got {bad[:5]}")


def avg_at_k(correct: Sequence[int], k: int) -> float:
    """Mean over problems of the share of their k answers that are correct."""
    _check_counts(correct, k)
    return sum(correct) / (k * len(correct))


def avg_at_k_interval(correct: Sequence[int], k: int, z: float = Z95) -> tuple[float, float]:
    """The 95% interval of `avg_at_k` (see the module docstring for why it is valid)."""
    _check_counts(correct, k)
    return wilson_interval(sum(c / k for c in correct), len(correct), z)


def report_ks(num_samples: int) -> list[int]:
    """The j of pass@j to report: 1, 2, 4, ... up to num_samples, and num_samples itself."""
    ks = [2**i for i in range(num_samples.bit_length()) if 2**i <= num_samples]
    return ks if ks[-1] == num_samples else ks + [num_samples]


def pass_at_ks(correct: Sequence[int], k: int) -> dict[str, float]:
    """{"j": pass@j averaged over problems} for each j of `report_ks(k)`."""
    _check_counts(correct, k)
    return {str(j): sum(pass_at_k(k, c, j) for c in correct) / len(correct) for j in report_ks(k)}


def suite_average(avg_by_benchmark: dict[str, float]) -> float:
    """The unweighted mean of the benchmarks' avg@k."""
    if not avg_by_benchmark:
        raise ValueError("no benchmarks")
    return sum(avg_by_benchmark.values()) / len(avg_by_benchmark)
