"""One rewriting round: generate, verify, score, accept. No trainer and no files here.

For each selected demonstration the generator sees the prompt plus the original
demonstration as a reference (see `prompt.py`) and writes `num_candidates` answers. A
candidate is accepted only if

    (a) the verifier agrees with the reference answer, and
    (b) its compatibility under the current policy, for the original prompt alone,
        beats the original demonstration's by at least `min_gain`:
        c(candidate) >= c(original) + min_gain.

The best accepted candidate (highest compatibility) wins. A sample with no accepted
candidate keeps its original target; each is reported with its rejection reason:
`verifier`, `no_gain` or `generation_error` (or `no_reference` when no answer to verify
against exists).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .generators import Candidate, GenerationSettings, RewriteGenerator
from .prompt import DEFAULT_REWRITE_TEMPLATE, rewrite_messages

__all__ = ["RewriteItem", "RoundResult", "REJECTION_REASONS", "run_round"]

REJECTION_REASONS = ("verifier", "no_gain", "generation_error", "no_reference")


@dataclass(frozen=True)
class RewriteItem:
    sample_id: int
    prompt: str | list  # the demonstration's prompt: a string or chat messages
    original: str  # the original completion text
    reference: str | None  # the answer the verifier checks against


@dataclass
class RoundResult:
    records: list[dict]  # one provenance row per item
    accepted: dict[int, str]  # sample id -> accepted rewrite text
    metrics: dict[str, float]


def run_round(
    items: Sequence[RewriteItem],
    *,
    generator: RewriteGenerator,
    verifier: Callable[[str, str], object],
    score: Callable[[list[tuple]], list[float]],
    settings: GenerationSettings,
    min_gain: float,
    round_index: int,
    step: int,
    template: str = DEFAULT_REWRITE_TEMPLATE,
    verifier_name: str = "",
) -> RoundResult:
    """Run one round over `items`. `score` maps (prompt, completion text) pairs to their
    compatibilities under the current policy."""
    usable = [item for item in items if item.reference is not None]
    conversations = [rewrite_messages(item.prompt, item.original, template) for item in usable]
    candidates = generator.generate(conversations, settings) if usable else []

    # Verify every candidate that has text; score the originals and the verified ones together
    verdicts: dict[tuple[int, int], object] = {}
    to_score: list[tuple] = [(item.prompt, item.original) for item in usable]
    slots: list[tuple[int, int]] = []
    for i, (item, cands) in enumerate(zip(usable, candidates)):
        for j, cand in enumerate(cands):
            if cand.text is None:
                continue
            verdicts[i, j] = verdict = verifier(cand.text, item.reference)
            if verdict.ok:
                to_score.append((item.prompt, cand.text))
                slots.append((i, j))
    scores = score(to_score) if to_score else []
    original_compat = scores[: len(usable)]
    candidate_compat = dict(zip(slots, scores[len(usable) :]))

    records, accepted = [], {}
    counts = {reason: 0 for reason in REJECTION_REASONS}
    gains = []
    for item in items:
        if item.reference is None:
            counts["no_reference"] += 1
            records.append(_record(item, [], None, None, None, "no_reference", round_index, step, generator, verifier_name))
    for i, (item, cands) in enumerate(zip(usable, candidates)):
        rows, best = [], None
        for j, cand in enumerate(cands):
            rows.append(_candidate_row(cand, verdicts.get((i, j)), candidate_compat.get((i, j)), original_compat[i], min_gain))
            c = candidate_compat.get((i, j))
            if c is not None and c >= original_compat[i] + min_gain and (best is None or c > best[1]):
                best = (cand.text, c)
        if best is not None:
            accepted[item.sample_id] = best[0]
            gains.append(best[1] - original_compat[i])
            reason = None
        else:
            reason = _item_reason(rows)
            counts[reason] += 1
        records.append(
            _record(item, rows, original_compat[i], best, reason, None, round_index, step, generator, verifier_name)
        )

    metrics = {
        "rewrite/round": float(round_index),
        "rewrite/selected": float(len(items)),
        "rewrite/attempted": float(len(usable)),
        "rewrite/accepted": float(len(accepted)),
        "rewrite/rejected_verifier": float(counts["verifier"]),
        "rewrite/rejected_no_gain": float(counts["no_gain"]),
        "rewrite/rejected_error": float(counts["generation_error"]),
        "rewrite/rejected_no_reference": float(counts["no_reference"]),
        "rewrite/mean_gain": sum(gains) / len(gains) if gains else 0.0,
    }
    return RoundResult(records=records, accepted=accepted, metrics=metrics)


def _candidate_row(cand: Candidate, verdict, compat, original_compat, min_gain) -> dict:
    if cand.text is None:
        return {"text": None, "verdict": None, "reason": f"generation_error: {cand.error}", "compat": None}
    if not verdict.ok:
        return {"text": cand.text, "verdict": False, "reason": f"verifier: {verdict.reason}", "compat": None}
    if compat < original_compat + min_gain:
        reason = f"no_gain: {compat:.4f} < {original_compat:.4f} + {min_gain}"
        return {"text": cand.text, "verdict": True, "reason": reason, "compat": compat}
    return {"text": cand.text, "verdict": True, "reason": "accepted", "compat": compat}


def _item_reason(rows: list[dict]) -> str:
    reasons = [row["reason"].split(":")[0] for row in rows]
    for reason in ("no_gain", "verifier"):
        if reason in reasons:
            return reason
    return "generation_error"


def _record(item, rows, compat_before, best, reason, forced_reason, round_index, step, generator, verifier_name):
    return {
        "sample_id": item.sample_id,
        "round": round_index,
        "step": step,
        "original": item.original,
        "reference": item.reference,
        "rewrite": best[0] if best else None,
        "compat_before": compat_before,
        "compat_after": best[1] if best else None,
        "accepted": best is not None,
        "rejection": forced_reason or reason,
        "num_candidates": len(rows),
        "candidates": rows,
        "generator": generator.name,
        "verifier": verifier_name,
    }
