"""Number formatting shared by the page's sections (page.py, page_variance.py)."""

from __future__ import annotations

import math


def num(x, digits=3) -> str:
    """A number with `digits` decimals, scientific when tiny or huge; 'n/a' for None, nan, inf."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if x != 0 and (abs(x) < 10 ** -digits or abs(x) >= 10**5):
        return f"{x:.{max(1, digits - 1)}e}"
    return f"{x:.{digits}f}"


def ci(entry: dict, digits=3) -> str:
    """'mean [lo, hi]' from a mean_ci dict or a {value, lo, hi} dict."""
    value = entry.get("mean", entry.get("value"))
    lo = entry.get("lo")
    if lo is None or not math.isfinite(lo):
        return num(value, digits)
    return f"{num(value, digits)} [{num(lo, digits)}, {num(entry['hi'], digits)}]"
