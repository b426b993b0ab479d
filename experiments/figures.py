"""Figure helpers shared by the testbed's plots (plots.py) and the real model's page
(real/page.py, real/page_variance.py): a headless pyplot and one way to save a figure."""

from __future__ import annotations

import os

__all__ = ["pyplot", "save"]


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
