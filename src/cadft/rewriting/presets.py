"""The two rewriting configurations, as presets of the per-gate fields.

    resolve_gates("paper", verifier=None, reference_in_prompt=None, gain_gate=True,
                  replace_prob=None, num_candidates=None)
    # -> {"verifier": "none", "reference_in_prompt": False, "gain_gate": True,
    #     "replace_prob": 0.5, "num_candidates": 1}

- `paper`: the paper's procedure. One sample of the policy for the prompt alone replaces
  the target with probability 0.5; no verifier, no compatibility-gain gate. Risk: a
  self-generated wrong answer becomes a training target.
- `verified`: the project's gates. The generator sees the original as a reference, a
  `math` verifier checks the final answer against the reference, a candidate must be more
  compatible than the original, and every candidate that passes replaces its target.
  Risk: fewer rewrites (on SmolLM2-135M none was ever accepted).

Each gate is its own field; a preset only fills the fields left unset (None). The
schedule and the selection are the same for both (see `schedule.py`).
"""

from __future__ import annotations

__all__ = ["GATE_FIELDS", "PRESETS", "resolve_gates"]

PRESETS: dict[str, dict] = {
    "paper": {"reference_in_prompt": False, "verifier": "none", "gain_gate": False, "replace_prob": 0.5,
              "num_candidates": 1},
    "verified": {"reference_in_prompt": True, "verifier": "math", "gain_gate": True, "replace_prob": 1.0,
                 "num_candidates": 2},
}
GATE_FIELDS = tuple(PRESETS["paper"])


def resolve_gates(preset: str, **given) -> dict:
    """The gate settings: each value in `given` that is not None, else the preset's."""
    if preset not in PRESETS:
        raise ValueError(f"rewrite_preset={preset!r} is not valid; choose one of {', '.join(PRESETS)}")
    unknown = set(given) - set(GATE_FIELDS)
    if unknown:
        raise TypeError(f"unknown gate fields {sorted(unknown)}; the gates are {', '.join(GATE_FIELDS)}")
    return {name: given.get(name) if given.get(name) is not None else PRESETS[preset][name] for name in GATE_FIELDS}
