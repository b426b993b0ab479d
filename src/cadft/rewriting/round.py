"""One rewriting round: draw, generate, screen, score, replace. No trainer and no files here.

Each selected demonstration first gets its replacement draw (`draw.py`): with
probability 1 - `replace_prob` it keeps its target (`lost_draw`) and nothing is
generated. Otherwise the generator gets the prompt alone (the paper's), or, with
`reference_in_prompt`, the prompt plus the original demonstration as a reference (see
`prompt.py`), and writes `num_candidates` answers. A candidate replaces the target only if

    (a) its reply is at most `settings.reply_char_limit` characters,
    (b) its training row (prompt + candidate + end of turn) fits `max_length` tokens
        whole, so that training never cuts it,
    (c) with a verifier, it agrees with the reference answer (without one its verdict
        is "unverified"), and
    (d) with the gain gate, its compatibility under the current policy, for the original
        prompt alone, beats the original demonstration's by at least `min_gain`:
        c(candidate) >= c(original) + min_gain.

(a) and (b) always hold; (c) and (d) are the project's gates, off in the paper's
procedure. The most compatible candidate that passes wins. A sample with no passing
candidate keeps its original target; each is reported with its rejection reason: the
furthest stage any of its candidates reached (`no_gain`, `verifier`, `too_long`,
`reply_too_large`, `generation_error`), or, for a sample never attempted,
`no_reference` (a verifier, and nothing to verify against) or `bad_prompt` (a prompt no
generation prompt can be built from, e.g. one that does not end with a user turn). A bad
sample is rejected; it never stops the round. Every replacement whose sample has a
reference answer is also checked against it (`answer_check`, math-verify by default),
gated or not, so that a round says how many of its new targets are right.

`RewriteRound` is that round as a config sets it (a `CADFTConfig`, or a mapping of its
fields): the selection, the items and `run_round` with the config's gates. Training
(`manager.Rewriter`) and `cadft rewrite` both run it; only the generator's model, the
scoring (a collective in training) and where the result goes differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..data.loading import final_answer
from .draw import replacement_draw
from .generators import Candidate, GenerationSettings, RewriteGenerator, make_generator
from .prompt import DEFAULT_REWRITE_TEMPLATE, check_template, prompt_alone, rewrite_messages
from .schedule import budget_count, select_highest_u, select_samples
from .tracker import CompatibilityTracker, raw_compatibility

__all__ = ["LOST_DRAW", "REJECTION_REASONS", "STORED_REPLY_CHARS", "UNVERIFIED", "RewriteItem", "RewriteRound",
           "RoundResult", "completion_text", "run_round"]

# Candidate stages, furthest first: an item without an accepted candidate is rejected
# for the furthest stage one of its candidates reached
_CANDIDATE_REASONS = ("no_gain", "verifier", "too_long", "reply_too_large", "generation_error")
REJECTION_REASONS = ("verifier", "no_gain", "generation_error", "no_reference", "too_long", "reply_too_large",
                     "bad_prompt")
LOST_DRAW = "lost_draw"  # the record's `rejection` of a sample kept by the replacement draw
UNVERIFIED = "unverified"  # the verdict of a candidate when no verifier runs

# Characters of an oversized reply kept in the provenance: enough to see what went wrong
STORED_REPLY_CHARS = 2000


@dataclass(frozen=True)
class RewriteItem:
    sample_id: int
    prompt: str | list  # the demonstration's prompt: a string or chat messages
    original: str  # the original completion text
    reference: str | None  # the answer the verifier checks against
    u_tracked: float | None = None  # the moving-average u that selected it (None: not tracked)


@dataclass
class RoundResult:
    records: list[dict]  # one provenance row per item, in the order of the items
    accepted: dict[int, str]  # sample id -> accepted rewrite text
    metrics: dict[str, float]


def completion_text(completion) -> str:
    """The text of a completion: a string, or the content of its last message."""
    return completion[-1]["content"] if isinstance(completion, list) else completion


class RewriteRound:
    """The rewriting round a config sets: which samples it takes, their items, and
    `run_round` with the config's gates and generation settings.

        round_ = RewriteRound(config)  # a CADFTConfig, or a mapping of its fields (`cadft rewrite`)
        selected = round_.select(tracker, rewritten=set(store.accepted), dataset_size=len(rows))
        items = [round_.item(rows[i], u_tracked=u[i]) for i in selected]
        result = round_.run(items, generator=round_.make_generator(model, tokenizer), score=score,
                            length=length, round_index=1, step=0)

    The gates are the resolved fields (`rewrite_preset` already filled in rewrite_verifier,
    rewrite_reference_in_prompt, rewrite_gain_gate, rewrite_replace_prob and
    rewrite_num_candidates); the draw is seeded by rewrite_seed, else seed; candidates are
    checked against max_length. A field a mapping lacks reads as None."""

    def __init__(self, config):
        from ..evaluation.verifiers import get_verifier  # its graders load with a round, not with this module

        get = config.get if isinstance(config, Mapping) else lambda name: getattr(config, name, None)
        self.template = get("rewrite_template") or DEFAULT_REWRITE_TEMPLATE
        check_template(self.template)
        # "none": no verification at all (the paper's procedure), every verdict "unverified"
        self.verifier_name = get("rewrite_verifier")
        self.verifier = None if self.verifier_name == "none" else get_verifier(self.verifier_name)
        self.settings = GenerationSettings(
            max_new_tokens=get("rewrite_max_new_tokens"), temperature=get("rewrite_temperature"),
            top_p=get("rewrite_top_p"), num_candidates=get("rewrite_num_candidates"),
            max_reply_chars=get("rewrite_max_reply_chars"),
        )
        self.reference_in_prompt = get("rewrite_reference_in_prompt")
        self.gain_gate, self.min_gain = get("rewrite_gain_gate"), get("rewrite_min_gain")
        self.replace_prob = get("rewrite_replace_prob")
        self.draw_seed = get("seed") if get("rewrite_seed") is None else get("rewrite_seed")
        self.max_length = get("max_length")
        self.answer_column = get("rewrite_answer_column")
        self.generator_spec = get("rewrite_generator")
        self.generator_kwargs = get("rewrite_generator_kwargs") or {}
        self.selection = get("rewrite_selection")
        self.budget = get("rewrite_budget")
        self.min_visits, self.persistence = get("rewrite_min_visits"), get("rewrite_persistence")
        self.flag_threshold = get("rewrite_flag_threshold")
        self.beta, self.normalizer = get("cadft_beta"), get("cadft_normalizer")  # `select_once`'s flagged weight

    def make_generator(self, model, tokenizer) -> RewriteGenerator:
        """The config's generator; 'policy' samples `model`."""
        return make_generator(self.generator_spec, policy_model=model, tokenizer=tokenizer, **self.generator_kwargs)

    def select(self, tracker: CompatibilityTracker, *, rewritten: set[int], dataset_size: int) -> list[int]:
        """Training's selection over the tracked visits: `rewrite_selection`, without the
        samples in `rewritten`."""
        budget = budget_count(self.budget, dataset_size)
        if self.selection == "flagged":
            return select_samples(tracker.persistent(self.persistence), rewritten=rewritten, budget=budget)
        return select_highest_u(tracker.moving_u(), min_visits=self.min_visits, rewritten=rewritten, budget=budget)

    def select_once(self, compat: Sequence[float]) -> tuple[list[int], list[float], str]:
        """The selection when each sample has one visit (`cadft rewrite`), given each row's
        compatibility: the selected row indices, each row's u = -log c, and how they were chosen.
        `flagged` takes those whose weight before clipping, c**beta / m, is below
        `rewrite_flag_threshold`, least compatible first, with m the rows' mean of c**beta (as the
        earlier estimator calibrates it) unless `cadft_normalizer` fixes it."""
        import torch

        from ..estimators import make_estimator

        compat = torch.tensor(list(compat))  # (N,)
        budget = budget_count(self.budget, len(compat))
        u = [raw_compatibility(c) for c in compat.tolist()]
        if self.selection == "top_u":
            selected = select_highest_u({i: (u[i], 1) for i in range(len(u))}, min_visits=1, rewritten=set(),
                                        budget=budget)
            return selected, u, f"the {len(selected)} with the highest u = -log c (budget)"
        earlier = make_estimator({"cadft_estimator": "ema", "cadft_beta": self.beta, "cadft_w_min": 0.0,
                                  "cadft_w_max": math.inf, "cadft_normalizer": self.normalizer})
        _, extras = earlier.weights(torch.tensor(u), torch.ones(len(u), dtype=torch.bool))
        raw, m = extras["raw_weight"], math.exp(extras["log_normalizer"])
        flagged = [i for i in torch.argsort(compat).tolist() if raw[i] < self.flag_threshold]
        selected = flagged[:budget]
        return selected, u, (f"m = {m:.4f}; {len(flagged)} below the flag threshold {self.flag_threshold}; "
                             f"{len(selected)} selected (budget)")

    def reference(self, row: Mapping) -> str | None:
        """What the verifier checks a candidate of `row` against: its `rewrite_answer_column`
        (None when empty), else the final answer of its original completion."""
        if self.answer_column:
            value = row[self.answer_column]
            return None if value is None or str(value).strip() == "" else str(value)
        return final_answer(completion_text(row["completion"]))

    def item(self, row: Mapping, *, u_tracked: float | None = None) -> RewriteItem:
        """The round's item for a dataset row (with its `sample_id`)."""
        return RewriteItem(row["sample_id"], row["prompt"], completion_text(row["completion"]), self.reference(row),
                           u_tracked=u_tracked)

    def run(self, items: Sequence[RewriteItem], *, generator: RewriteGenerator,
            score: Callable[[list[tuple]], list[float]], length: Callable[[object, str], int], round_index: int,
            step: int) -> RoundResult:
        """`run_round` over `items` with this config's gates; `score` and `length` as there."""
        return run_round(items, generator=generator, verifier=self.verifier, score=score, settings=self.settings,
                         min_gain=self.min_gain, round_index=round_index, step=step, template=self.template,
                         verifier_name=self.verifier_name, length=length, max_length=self.max_length,
                         needs_reference=self.verifier is not None, reference_in_prompt=self.reference_in_prompt,
                         gain_gate=self.gain_gate, replace_prob=self.replace_prob, draw_seed=self.draw_seed)


def run_round(
    items: Sequence[RewriteItem],
    *,
    generator: RewriteGenerator,
    verifier: Callable[[str, str], object] | None,
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
    reference_in_prompt: bool = True,
    gain_gate: bool = True,
    replace_prob: float = 1.0,
    draw_seed: int = 0,
    answer_check: Callable[[str, str], object] | None = None,
) -> RoundResult:
    """Run one round over `items`. `score` maps (prompt, completion text) pairs to their
    compatibilities under the current policy; `length(prompt, text)` is the token length
    of that training row, untruncated, checked against `max_length` (None: no check).
    `verifier` None: no verification. With `needs_reference=False` items without a
    reference are attempted too. The defaults are the project's gates with every
    selected sample drawn for replacement; the paper's procedure is `verifier=None,
    needs_reference=False, reference_in_prompt=False, gain_gate=False, replace_prob=0.5`.
    `answer_check(text, reference)` (default: math-verify) measures whether each
    replacement's final answer is right; it gates nothing."""
    draws = {k: replacement_draw(seed=draw_seed, round_index=round_index, sample_id=item.sample_id, prob=replace_prob)
             for k, item in enumerate(items)}
    conversations, skipped = {}, {}  # item index -> generation prompt / (reason, detail)
    for k, item in enumerate(items):
        if not draws[k]["replace"]:
            skipped[k] = (LOST_DRAW, None)
        elif needs_reference and item.reference is None:
            skipped[k] = ("no_reference", None)
        else:
            try:
                conversations[k] = (rewrite_messages(item.prompt, item.original, template) if reference_in_prompt
                                    else prompt_alone(item.prompt))
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
        _gate(rows[k][j], compat, original_compat[k], min_gain if gain_gate else None)

    check = answer_check or _math_check()
    records, accepted, gains, correct = [], {}, [], []
    counts = {reason: 0 for reason in (*REJECTION_REASONS, LOST_DRAW)}
    for k, item in enumerate(items):
        if k in skipped:
            reason, detail = skipped[k]
            counts[reason] += 1
            records.append(_record(item, [], None, None, reason, detail, round_index, step, generator, verifier_name,
                                   draws[k], None))
            continue
        best = None
        for row in rows[k]:
            if row["reason"] == "accepted" and (best is None or row["compat"] > best[1]):
                best = (row["text"], row["compat"])
        reason, right = None, None
        if best is not None:
            accepted[item.sample_id] = best[0]
            gains.append(best[1] - original_compat[k])
            if item.reference is not None:
                right = bool(check(best[0], item.reference).ok)
                correct.append(right)
        else:
            reason = _item_reason(rows[k])
            counts[reason] += 1
        records.append(_record(item, rows[k], original_compat[k], best, reason, None, round_index, step, generator,
                               verifier_name, draws[k], right))

    replaced = [r for r in records if r["accepted"]]
    metrics = {
        "rewrite/round": float(round_index),
        "rewrite/selected": float(len(items)),
        "rewrite/attempted": float(len(attempted)),
        "rewrite/generated": float(sum(c.text is not None for k in attempted for c in candidates[k])),
        "rewrite/accepted": float(len(accepted)),
        "rewrite/replaced": float(len(accepted)),
        "rewrite/kept": float(counts[LOST_DRAW]),
        **{_metric(reason): float(counts[reason]) for reason in REJECTION_REASONS},
        "rewrite/mean_gain": sum(gains) / len(gains) if gains else 0.0,
        **_mean("rewrite/mean_u_selected", [item.u_tracked for item in items if item.u_tracked is not None]),
        **_mean("rewrite/mean_u_before", [r["u_before"] for r in replaced]),
        **_mean("rewrite/mean_u_after", [r["u_after"] for r in replaced]),
        "rewrite/replaced_with_reference": float(len(correct)),
        **_mean("rewrite/replaced_correct", [float(right) for right in correct]),
    }
    return RoundResult(records=records, accepted=accepted, metrics=metrics)


def _mean(key: str, values: list[float]) -> dict[str, float]:
    """{key: the mean of values}, or nothing when there are none (no made-up zero)."""
    return {key: math.fsum(values) / len(values)} if values else {}


def _math_check():
    from ..evaluation.verifiers import get_verifier  # math-verify, only once a round has a replacement to check

    return get_verifier("math")


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
        if self.verifier is None:
            return _row(cand.text, UNVERIFIED, None)
        verdict = self.verifier(cand.text, item.reference)
        if not verdict.ok:
            return _row(cand.text, False, f"verifier: {verdict.reason}")
        return _row(cand.text, True, None)


def _row(text, verdict, reason) -> dict:
    return {"text": text, "verdict": verdict, "reason": reason, "compat": None}


def _gate(row: dict, compat: float, original_compat: float, min_gain: float | None) -> None:
    """Fill in a scored candidate's compatibility and whether it clears the gain margin
    (`min_gain` None: no gain gate, it passes)."""
    row["compat"] = compat
    if min_gain is not None and compat < original_compat + min_gain:
        row["reason"] = f"no_gain: {compat:.4f} < {original_compat:.4f} + {min_gain}"
    else:
        row["reason"] = "accepted"


def _item_reason(rows: list[dict]) -> str:
    reasons = {row["reason"].split(":")[0] for row in rows}
    return next((reason for reason in _CANDIDATE_REASONS if reason in reasons), "generation_error")


def _u(compat: float | None) -> float | None:
    return None if compat is None else raw_compatibility(compat)


def _record(item, rows, compat_before, best, reason, detail, round_index, step, generator, verifier_name, draw,
            answer_correct):
    return {
        "sample_id": item.sample_id,
        "round": round_index,
        "step": step,
        "original": item.original,
        "reference": item.reference,
        "rewrite": best[0] if best else None,
        "u_tracked": item.u_tracked,
        "compat_before": compat_before,
        "u_before": _u(compat_before),
        "compat_after": best[1] if best else None,
        "u_after": _u(best[1]) if best else None,
        "accepted": best is not None,
        "rejection": reason,
        "rejection_detail": detail,  # why a sample was not attempted (bad_prompt), else None
        "draw": draw,  # the replacement draw: {"prob", "value", "replace"}
        "answer_correct": answer_correct,  # a replacement's final answer against the reference (None: unchecked)
        "num_candidates": len(rows),
        "candidates": rows,
        "generator": generator.name,
        "verifier": verifier_name,
    }
