"""One rewriting round: generate, screen, verify, score, accept. No trainer and no files here.

For each selected demonstration the generator sees the prompt plus the original
demonstration as a reference (see `prompt.py`) and writes `num_candidates` answers. A
candidate is accepted only if

    (a) its reply is at most `settings.reply_char_limit` characters,
    (b) its training row (prompt + candidate + end of turn) fits `max_length` tokens
        whole, so that training never cuts it,
    (c) the verifier agrees with the reference answer, and
    (d) its compatibility under the current policy, for the original prompt alone,
        beats the original demonstration's by at least `min_gain`:
        c(candidate) >= c(original) + min_gain.

The best accepted candidate (highest compatibility) wins. A sample with no accepted
candidate keeps its original target; each is reported with its rejection reason: the
furthest stage any of its candidates reached (`no_gain`, `verifier`, `too_long`,
`reply_too_large`, `generation_error`), or, for a sample never attempted,
`no_reference` (nothing to verify against) or `bad_prompt` (a prompt no rewrite prompt
can be built from, e.g. one that does not end with a user turn). A bad sample is
rejected; it never stops the round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .generators import Candidate, GenerationSettings, RewriteGenerator
from .prompt import DEFAULT_REWRITE_TEMPLATE, rewrite_messages

__all__ = ["REJECTION_REASONS", "STORED_REPLY_CHARS", "RewriteItem", "RoundResult", "run_round"]

# Candidate stages, furthest first: an item without an accepted candidate is rejected
# for the furthest stage one of its candidates reached
_CANDIDATE_REASONS = ("no_gain", "verifier", "too_long", "reply_too_large", "generation_error")
REJECTION_REASONS = ("verifier", "no_gain", "generation_error", "no_reference", "too_long", "reply_too_large",
                     "bad_prompt")

# Characters of an oversized reply kept in the provenance: enough to see what went wrong
STORED_REPLY_CHARS = 2000


@dataclass(frozen=True)
class RewriteItem:
    sample_id: int
    prompt: str | list  # the demonstration's prompt: a string or chat messages
    original: str  # the original completion text
    reference: str | None  # the answer the verifier checks against


@dataclass
class RoundResult:
    records: list[dict]  # one provenance row per item, in the order of the items
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
    length: Callable[[object, str], int] | None = None,
    max_length: int | None = None,
    needs_reference: bool = True,
) -> RoundResult:
    """Run one round over `items`. `score` maps (prompt, completion text) pairs to their
    compatibilities under the current policy; `length(prompt, text)` is the token length
    of that training row, untruncated, checked against `max_length` (None: no check).
    With `needs_reference=False` (the `none` verifier) items without a reference are
    attempted too, and the compatibility gain alone gates."""
    conversations, skipped = {}, {}  # item index -> rewrite prompt / (reason, detail)
    for k, item in enumerate(items):
        if needs_reference and item.reference is None:
            skipped[k] = ("no_reference", None)
            continue
        try:
            conversations[k] = rewrite_messages(item.prompt, item.original, template)
        except (TypeError, ValueError) as error:  # e.g. a prompt that does not end with a user turn
            skipped[k] = ("bad_prompt", str(error))
    attempted = list(conversations)
    generated = generator.generate([conversations[k] for k in attempted], settings) if attempted else []
    candidates = dict(zip(attempted, generated))

    # Screen every candidate (size, length, verifier); score the originals and the survivors together
    screen = _Screen(verifier, length, max_length, settings.reply_char_limit)
    rows = {k: [screen(cand, items[k]) for cand in candidates[k]] for k in attempted}
    to_score = [(items[k].prompt, items[k].original) for k in attempted]
    slots = [(k, j) for k in attempted for j, row in enumerate(rows[k]) if row["reason"] is None]
    to_score += [(items[k].prompt, candidates[k][j].text) for k, j in slots]
    scores = score(to_score) if to_score else []
    original_compat = dict(zip(attempted, scores))
    for (k, j), compat in zip(slots, scores[len(attempted) :]):
        _gate(rows[k][j], compat, original_compat[k], min_gain)

    records, accepted, gains = [], {}, []
    counts = {reason: 0 for reason in REJECTION_REASONS}
    for k, item in enumerate(items):
        if k in skipped:
            reason, detail = skipped[k]
            counts[reason] += 1
            records.append(_record(item, [], None, None, reason, detail, round_index, step, generator, verifier_name))
            continue
        best = None
        for row in rows[k]:
            if row["reason"] == "accepted" and (best is None or row["compat"] > best[1]):
                best = (row["text"], row["compat"])
        reason = None
        if best is not None:
            accepted[item.sample_id] = best[0]
            gains.append(best[1] - original_compat[k])
        else:
            reason = _item_reason(rows[k])
            counts[reason] += 1
        records.append(
            _record(item, rows[k], original_compat[k], best, reason, None, round_index, step, generator, verifier_name)
        )

    metrics = {
        "rewrite/round": float(round_index),
        "rewrite/selected": float(len(items)),
        "rewrite/attempted": float(len(attempted)),
        "rewrite/accepted": float(len(accepted)),
        **{_metric(reason): float(count) for reason, count in counts.items()},
        "rewrite/mean_gain": sum(gains) / len(gains) if gains else 0.0,
    }
    return RoundResult(records=records, accepted=accepted, metrics=metrics)


def _metric(reason: str) -> str:
    return "rewrite/rejected_error" if reason == "generation_error" else f"rewrite/rejected_{reason}"


class _Screen:
    """The checks before scoring, cheapest first: reply size, training length, verifier.
    Returns a candidate's provenance row; `reason` None means it goes on to scoring."""

    def __init__(self, verifier, length, max_length: int | None, reply_char_limit: int):
        self.verifier = verifier
        self.length = length
        self.max_length = max_length
        self.reply_char_limit = reply_char_limit

    def __call__(self, cand: Candidate, item: RewriteItem) -> dict:
        if cand.text is None:
            return _row(None, None, f"generation_error: {cand.error}")
        size = len(cand.text)
        if size > self.reply_char_limit:
            # Never verified, tokenized or stored whole: a runaway reply can be megabytes
            kept = cand.text[:STORED_REPLY_CHARS] + f"... [cut: {size} characters in all]"
            return _row(kept, None, f"reply_too_large: {size} characters > {self.reply_char_limit}")
        if self.max_length is not None and self.length is not None:
            tokens = self.length(item.prompt, cand.text)
            if tokens > self.max_length:
                reason = f"too_long: {tokens} tokens with the prompt > max_length {self.max_length}"
                return _row(cand.text, None, reason)
        verdict = self.verifier(cand.text, item.reference)
        if not verdict.ok:
            return _row(cand.text, False, f"verifier: {verdict.reason}")
        return _row(cand.text, True, None)


def _row(text, verdict, reason) -> dict:
    return {"text": text, "verdict": verdict, "reason": reason, "compat": None}


def _gate(row: dict, compat: float, original_compat: float, min_gain: float) -> None:
    """Fill in a scored candidate's compatibility and whether it clears the gain margin."""
    row["compat"] = compat
    if compat < original_compat + min_gain:
        row["reason"] = f"no_gain: {compat:.4f} < {original_compat:.4f} + {min_gain}"
    else:
        row["reason"] = "accepted"


def _item_reason(rows: list[dict]) -> str:
    reasons = {row["reason"].split(":")[0] for row in rows}
    return next((reason for reason in _CANDIDATE_REASONS if reason in reasons), "generation_error")


def _record(item, rows, compat_before, best, reason, detail, round_index, step, generator, verifier_name):
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
        "rejection": reason,
        "rejection_detail": detail,  # why a sample was not attempted (bad_prompt), else None
        "num_candidates": len(rows),
        "candidates": rows,
        "generator": generator.name,
        "verifier": verifier_name,
    }
