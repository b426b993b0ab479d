"""The ablation's fractional design and the pre-registered decision rule (experiments/design.py)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from design import REFERENCE, Variant, ablation_design, decide, mean_ranks  # noqa: E402

sys.path.pop(0)


def test_design_covers_every_alpha_beta_pair_and_both_levels_per_alpha():
    design = ablation_design()
    assert len(design) == len(set(design)) == 9 and REFERENCE in design
    assert {(v.token_power, v.beta) for v in design} == set(itertools.product((0.0, 0.5, 1.0), (0.5, 1.0, 2.0)))
    for alpha in (0.0, 0.5, 1.0):
        rows = [v for v in design if v.token_power == alpha]
        assert {v.normalization for v in rows} == {"ema", "batch"} and {v.w_max for v in rows} == {1.0, 3.0}


def test_mean_ranks_share_ties_and_use_only_complete_cells():
    a, b, c = Variant("ema", 1.0, 1.0, 3.0), Variant("batch", 0.0, 1.0, 1.0), Variant("ema", 0.0, 0.5, 3.0)
    acc = {(a, "m", 0): 0.5, (b, "m", 0): 0.5, (c, "m", 0): 0.7, (a, "m", 1): 0.1, (b, "m", 1): 0.2,
           (c, "m", 1): 0.3, (a, "x", 0): 0.9}  # cell (x, 0) lacks b and c: ignored
    assert mean_ranks(acc) == {a: (2.5 + 3) / 2, b: (2.5 + 2) / 2, c: 1.0}


def test_decide_picks_the_best_rank_and_breaks_near_ties_toward_the_reference():
    far, ref = Variant("batch", 0.0, 2.0, 1.0), REFERENCE
    clear = {(far, "m", s): 0.9 for s in range(4)} | {(ref, "m", s): 0.1 for s in range(4)}
    assert decide(clear, [far, ref])["chosen"] == far
    # far wins 3 of 4 cells (mean rank 1.25 vs 1.75): within the 0.5 margin, so the reference wins
    near = {(far, "m", s): 0.9 if s < 3 else 0.1 for s in range(4)} | {(ref, "m", s): 0.5 for s in range(4)}
    result = decide(near, [far, ref])
    assert set(result["tied"]) == {far, ref} and result["chosen"] == ref
