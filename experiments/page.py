"""Writing a study's page: Markdown tables, the number and interval formats, figures beside
the page, and the page itself.

    table(["arm", "ID acc"], [["SFT", fmt(ci)]])   # '| arm | ID acc |\\n|---|---|\\n| SFT | 0.420 [0.39, 0.45] |'
    ci({"mean": 0.42, "lo": 0.39, "hi": 0.45})     # '0.420 [0.390, 0.450]'
    save(fig, figures_dir("docs/real-model.md"), "part_a.png")
    write("docs/results.md", sections)             # the non-empty sections, one after another
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["table", "fmt", "num", "ci", "pyplot", "save", "figures_dir", "write"]


# --------------------------------------------------------------------------- text


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(ci: dict | None, digits: int = 3) -> str:
    """A `stats.mean_ci` dict: 'mean [lo, hi]', 'mean (n=1)' without an interval, 'n/a' when empty."""
    if ci is None or ci["n"] == 0 or not math.isfinite(ci["mean"]):
        return "n/a"
    mean = f"{ci['mean']:.{digits}f}"
    if not math.isfinite(ci["lo"]):
        return f"{mean} (n={ci['n']})"
    return f"{mean} [{ci['lo']:.{digits}f}, {ci['hi']:.{digits}f}]"


def num(x, digits=3) -> str:
    """A number with `digits` decimals, scientific when tiny or huge; 'n/a' for None, nan, inf."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if x != 0 and (abs(x) < 10 ** -digits or abs(x) >= 10**5):
        return f"{x:.{max(1, digits - 1)}e}"
    return f"{x:.{digits}f}"


def ci(entry: dict, digits=3) -> str:
    """'mean [lo, hi]' from a mean_ci dict or a {value, lo, hi} dict, each number by `num`."""
    value = entry.get("mean", entry.get("value"))
    lo = entry.get("lo")
    if lo is None or not math.isfinite(lo):
        return num(value, digits)
    return f"{num(value, digits)} [{num(lo, digits)}, {num(entry['hi'], digits)}]"


# --------------------------------------------------------------------------- figures


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, folder, name: str, *, title: str | None = None, dpi: int = 90) -> str:
    """Lay out, optionally title, write `folder/name` as PNG and close the figure; the path."""
    if title is not None:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = os.path.join(folder, name)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def figures_dir(page) -> Path:
    """The folder of a page's figures: beside it, named as the page (docs/real-model/)."""
    page = Path(page)
    folder = page.parent / page.stem
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --------------------------------------------------------------------------- the page


def write(page, sections: list[str]) -> Path:
    """Write the non-empty `sections` to `page`, one per line (parents created)."""
    page = Path(page)
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(s for s in sections if s))
    return page
