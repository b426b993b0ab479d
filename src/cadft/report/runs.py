"""Reading training run directories for the report.

A run directory is a training `output_dir`: its `trainer_state.json` (or, when that is
missing, the newest `checkpoint-*/trainer_state.json`) and, when present, `cadft_run.json`
(metadata), `sample_scores.jsonl` (per-sample compatibility and weight at the start and end
of training), `rewrites.jsonl` (rewrite attempts) and `suite_summary.json` (the benchmark
results `cadft eval --benchmark ... --output_dir <run dir>` writes). A folder with only a
`suite_summary.json` (an evaluation's output_dir) is a run without training curves.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["REWRITE_KEYS", "SUITE_FILE", "ReportError", "Run", "gain", "load_run", "rewrite_rounds", "to_float"]

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
RUN_FILE = "cadft_run.json"
SAMPLES_FILE = "sample_scores.jsonl"
REWRITES_FILE = "rewrites.jsonl"
SUITE_FILE = "suite_summary.json"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")

# Logged per rewriting round (rewrite/<key>)
REWRITE_KEYS = (
    "selected", "attempted", "accepted", "rejected_verifier", "rejected_no_gain", "rejected_error", "mean_gain"
)


class ReportError(ValueError):
    """A run directory that cannot be reported on; the message names the path."""


def to_float(value) -> float | None:
    """`value` as a finite float, or None (missing, non-numeric, NaN or inf)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


@dataclass
class Run:
    """Everything the report shows about one run directory."""

    path: Path
    label: str
    state_file: Path  # the trainer_state.json that was read
    state: dict
    meta: dict = field(default_factory=dict)  # cadft_run.json
    samples: list[dict] = field(default_factory=list)  # sample_scores.jsonl rows
    rewrites: list[dict] = field(default_factory=list)  # rewrites.jsonl rows
    suite: dict | None = None  # suite_summary.json

    @property
    def log_history(self) -> list[dict]:
        return self.state.get("log_history") or []

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(steps, values) of every finite logged value of `key`, in step order."""
        points = [(to_float(e.get("step")), to_float(e.get(key))) for e in self.log_history]
        points = sorted((s, v) for s, v in points if s is not None and v is not None)
        return [s for s, _ in points], [v for _, v in points]

    def last(self, key: str) -> float | None:
        """The last finite logged value of `key`, or None."""
        values = [v for v in (to_float(e.get(key)) for e in self.log_history) if v is not None]
        return values[-1] if values else None


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == last:  # a run killed mid-write leaves a cut last line; report the rest
                logger.warning("%s:%d: skipping the truncated last line (%s)", path, i + 1, e.msg)
                continue
            raise ReportError(f"{path}:{i + 1}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise ReportError(f"{path}:{i + 1}: expected a JSON object per line, got {type(row).__name__}")
        rows.append(row)
    return rows


def _find_state(path: Path) -> Path:
    top = path / STATE_FILE
    if top.is_file():
        return top
    if (path / SUITE_FILE).is_file():
        return path / SUITE_FILE  # an evaluation only: no training state
    checkpoints = [
        (int(m.group(1)), p)
        for p in path.iterdir()
        if (m := _CHECKPOINT.fullmatch(p.name)) and (p / STATE_FILE).is_file()
    ]
    if not checkpoints:
        raise ReportError(
            f"{path}: no {STATE_FILE} in the run directory or in any checkpoint-*/ folder, and no {SUITE_FILE} "
            "(a run directory is the output_dir of a training run or of `cadft eval --benchmark`)"
        )
    return max(checkpoints, key=lambda c: c[0])[1] / STATE_FILE


def load_run(path: str | Path) -> Run:
    """Read the run directory `path`; raises `ReportError` naming the path when it cannot."""
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: run directory not found")
    if not path.is_dir():
        raise ReportError(f"{path}: not a directory (give a training output_dir)")
    state_file = _find_state(path)
    state = {"log_history": []} if state_file.name == SUITE_FILE else _read_json(state_file)
    if not isinstance(state, dict) or not isinstance(state.get("log_history", []), list):
        raise ReportError(f"{state_file}: not a trainer state (expected an object with a log_history list)")
    meta = _read_json(path / RUN_FILE) if (path / RUN_FILE).is_file() else {}
    if not isinstance(meta, dict):
        raise ReportError(f"{path / RUN_FILE}: expected a JSON object, got {type(meta).__name__}")
    name = path.resolve().name
    label = f"{meta['loss_type']} ({name})" if meta.get("loss_type") else name
    samples, rewrites = _read_jsonl(path / SAMPLES_FILE), _read_jsonl(path / REWRITES_FILE)
    suite = _read_json(path / SUITE_FILE) if (path / SUITE_FILE).is_file() else None
    if suite is not None and not isinstance(suite.get("benchmarks") if isinstance(suite, dict) else None, dict):
        raise ReportError(f"{path / SUITE_FILE}: not a cadft eval --benchmark summary (no 'benchmarks' object)")
    return Run(path, label, state_file, state, meta, samples, rewrites, suite)


def gain(rewrite: dict) -> float | None:
    """compat_after - compat_before of one rewrites.jsonl row, or None."""
    before, after = to_float(rewrite.get("compat_before")), to_float(rewrite.get("compat_after"))
    return None if before is None or after is None else after - before


def rewrite_rounds(run: Run) -> list[dict]:
    """One dict per rewriting round: `round`, `step` and the REWRITE_KEYS counts.

    From the `rewrite/*` metrics in the log history; when the run logged none, derived
    from `rewrites.jsonl` (attempted, accepted, `not_accepted` and mean_gain only).
    Missing values are None.
    """
    logged = [e for e in run.log_history if any(k.startswith("rewrite/") for k in e)]
    if logged:
        logged.sort(key=lambda e: to_float(e.get("step")) or 0)
        return [
            {"round": i + 1, "step": e.get("step"), **{k: to_float(e.get(f"rewrite/{k}")) for k in REWRITE_KEYS}}
            for i, e in enumerate(logged)
        ]
    by_round = defaultdict(list)
    for row in run.rewrites:
        by_round[row.get("round")].append(row)
    rounds = []
    for number in sorted(by_round, key=lambda r: (to_float(r) is None, to_float(r) or 0.0, str(r))):
        rows = by_round[number]
        accepted = [r for r in rows if r.get("accepted") is True]
        gains = [g for g in map(gain, accepted) if g is not None]
        rounds.append(
            {
                "round": number,
                "step": rows[0].get("step"),
                **dict.fromkeys(REWRITE_KEYS),
                "attempted": len(rows),
                "accepted": len(accepted),
                "not_accepted": len(rows) - len(accepted),
                "mean_gain": sum(gains) / len(gains) if gains else None,
            }
        )
    return rounds
