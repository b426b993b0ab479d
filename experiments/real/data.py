"""Heterogeneous GSM8K demonstrations for the real-model experiment, built without any model.

Every GSM8K training problem whose reference solution has 1 to 3 calculator steps
(`<<48/2=24>>` notes) is turned into one demonstration of one *kind*:

    gold       the reference solution with the calculator notes stripped (the clean target)
    mild       the reference solution with the notes kept ("48/2 = <<48/2=24>>24"): the
               same reasoning in a slightly foreign notation
    strong     equations only, result first: "#### 72" and then one line per step,
               "24 = 48/2": the content of the solution in a format far from any chat model's
    truncated  the first line of the gold solution, then the final answer
    wording    a seeded word-level substitution of the gold solution (a fixed table of
               alternatives for common words); every number is kept, in order
    wrong      the gold style, but the final answer shifted, or one intermediate result
               perturbed and carried forward through the later steps

Rows are conversational prompt-completion pairs (the prompt asks for GSM8K's `####`
convention, as `cadft eval` does) with `kind`, `answer` (the true final answer, also for
wrong rows: the verifier of rewriting checks against it) and `source_line` (the 1-based
line of the GSM8K file). Everything is seeded: the same seed gives the same files.

    python -m experiments.real.data --out /tmp/real-data            # reads ../shared/data/gsm8k
    python -m experiments.real.data --gsm8k /path/to/gsm8k --out DIR --seed 1
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import random
import os
import re
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # the old command, python experiments/real/data.py: as a module
    os.execv(sys.executable, [sys.executable, "-m", "experiments.real.data", *sys.argv[1:]])

from cadft.data.problems import math_problem  # noqa: E402
from cadft.evaluation.evaluate import math_prompt  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

__all__ = [
    "KINDS",
    "DEFAULT_GSM8K",
    "Step",
    "steps",
    "final_answer",
    "gold",
    "mild",
    "strong",
    "truncated",
    "wording",
    "wrong",
    "make_kind",
    "read_gsm8k",
    "eligible",
    "demonstration",
    "build_splits",
    "mixture_kinds",
]

KINDS = ("gold", "mild", "strong", "truncated", "wording", "wrong")
DEFAULT_GSM8K = REPO.parent / "shared" / "data" / "gsm8k"
MAX_STEPS = 3

_NOTE = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
# A number as GSM8K writes it: optional sign, digits with thousands separators, decimals
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w])|(?<![\w.])\.\d+")
_WORD = re.compile(r"[A-Za-z]+")


# --------------------------------------------------------------------------- parsing


class Step:
    """One calculator note: its expression and result as written, and where it is."""

    def __init__(self, line: int, start: int, end: int, expr: str, result: str):
        self.line, self.start, self.end, self.expr, self.result = line, start, end, expr, result

    def __repr__(self) -> str:
        return f"Step({self.expr}={self.result})"


def steps(solution: str) -> list[Step]:
    """The calculator notes of a GSM8K solution, in order."""
    found = []
    for i, line in enumerate(solution.split("\n")):
        for m in _NOTE.finditer(line):
            found.append(Step(i, m.start(), m.end(), m.group(1), m.group(2)))
    return found


def final_answer(solution: str) -> str:
    """The text after the last `####`, stripped."""
    if "####" not in solution:
        raise ValueError("a GSM8K solution ends with '#### <answer>'")
    return solution.rsplit("####", 1)[1].strip()


def _body_lines(solution: str) -> list[str]:
    """The solution's lines before the `####` line."""
    return solution.rsplit("####", 1)[0].rstrip("\n").split("\n")


def _strip_notes(text: str) -> str:
    return _NOTE.sub("", text)


def numbers(text: str) -> list[str]:
    """Every number written in `text`, in order (used by the tests and by `wording`)."""
    return _NUMBER.findall(text)


# --------------------------------------------------------------------------- the kinds


def gold(solution: str) -> str:
    """The reference solution without its calculator notes."""
    return _strip_notes(solution)


def mild(solution: str) -> str:
    """The reference solution as GSM8K ships it, notes included."""
    return solution


def strong(solution: str) -> str:
    """Equations only, result first: the final answer, then `result = expression` per step."""
    lines = [f"#### {final_answer(solution)}"]
    lines += [f"{s.result} = {s.expr}" for s in steps(solution)]
    return "\n".join(lines)


def truncated(solution: str) -> str:
    """The first line of the gold solution, then the final answer: the reasoning cut short."""
    first = gold(solution).split("\n", 1)[0]
    return f"{first}\n#### {final_answer(solution)}"


# Alternatives for common words of GSM8K solutions. Only words, never number words
# ("half", "twice") or digits, so the numbers of a solution stay exactly as they are.
_ALTERNATIVES = {
    "the": ["this", "that"], "a": ["one", "some"], "is": ["equals", "comes to"], "are": ["come to", "amount to"],
    "was": ["came to", "amounted to"], "were": ["came to", "amounted to"], "has": ["holds", "owns"],
    "have": ["hold", "own"], "had": ["held", "owned"], "total": ["sum", "overall amount"],
    "so": ["hence", "thus"], "then": ["after that", "next"], "therefore": ["hence", "consequently"],
    "and": ["plus", "as well as"], "of": ["from", "among"], "in": ["within", "inside"], "for": ["toward", "on"],
    "each": ["every", "per"], "every": ["each", "any"], "she": ["the girl", "this person"],
    "he": ["the boy", "this person"], "they": ["the group", "these people"], "her": ["the girl's", "their"],
    "his": ["the boy's", "their"], "their": ["the group's", "its"], "it": ["this", "that"],
    "will": ["shall", "is going to"], "needs": ["requires", "wants"], "need": ["require", "want"],
    "buys": ["purchases", "acquires"], "bought": ["purchased", "acquired"], "sold": ["traded", "vended"],
    "sells": ["trades", "vends"], "pays": ["spends", "hands over"], "paid": ["spent", "handed over"],
    "costs": ["is priced at", "runs"], "cost": ["price", "charge"], "spent": ["used up", "paid out"],
    "earns": ["makes", "gets paid"], "earned": ["made", "got paid"], "makes": ["produces", "creates"],
    "made": ["produced", "created"], "gets": ["receives", "obtains"], "got": ["received", "obtained"],
    "gives": ["hands", "passes"], "gave": ["handed", "passed"], "left": ["remaining", "over"],
    "more": ["additional", "extra"], "less": ["fewer", "smaller"], "than": ["compared to", "versus"],
    "there": ["here", "in all there"], "this": ["that", "the"], "that": ["which", "this"],
    "which": ["that", "what"], "many": ["numerous", "lots of"], "much": ["plenty", "a lot"],
    "all": ["every one", "altogether"], "altogether": ["in all", "combined"], "per": ["each", "for every"],
    "minutes": ["mins", "minute units"], "hours": ["hrs", "hour units"], "days": ["day units", "dailies"],
    "dollars": ["bucks", "USD"], "people": ["persons", "folks"], "now": ["currently", "at present"],
    "after": ["following", "once past"], "before": ["prior to", "ahead of"], "with": ["along with", "having"],
    "to": ["toward", "into"], "on": ["upon", "over"], "at": ["by", "near"], "if": ["when", "provided"],
    "also": ["too", "as well"], "can": ["is able to", "may"], "amount": ["quantity", "sum"],
    "number": ["count", "tally"], "price": ["cost", "rate"], "money": ["cash", "funds"],
}


def _cased(word: str, replacement: str) -> str:
    if word.isupper() and len(word) > 1:
        return replacement.upper()
    return replacement[0].upper() + replacement[1:] if word[0].isupper() else replacement


def wording(solution: str, rng: random.Random) -> str:
    """Gold solution with every word of the alternatives table replaced by a seeded choice
    among its alternatives; digits and everything else are left as they are."""

    def swap(m: re.Match) -> str:
        word = m.group(0)
        options = _ALTERNATIVES.get(word.lower())
        return _cased(word, rng.choice(options)) if options else word

    text = gold(solution)
    body, answer = text.rsplit("####", 1)
    return _WORD.sub(swap, body) + "####" + answer


# A small safe evaluator for the notes' arithmetic: numbers, + - * / ** and parentheses
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}


def _evaluate(expr: str) -> float:
    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.operand))
        raise ValueError(f"not plain arithmetic: {expr!r}")

    return float(walk(ast.parse(expr.replace(",", ""), mode="eval")))


def _fmt(value: float) -> str:
    """A number as GSM8K writes results: an integer without decimals, else up to 2 decimals."""
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _as_float(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _shift(value: float, rng: random.Random) -> float:
    """value plus a seeded non-zero integer, kept positive when value is."""
    delta = rng.choice([1, 2, 3, 4, 5])
    return value + delta if value - delta <= 0 or rng.random() < 0.5 else value - delta


def _replace_number(segment: str, old: str, new: str) -> str:
    """Replace the number tokens equal to `old` in `segment` by `new`."""
    old_value = _as_float(old)
    return _NUMBER.sub(lambda m: new if _as_float(m.group(0)) == old_value else m.group(0), segment)


def _carry(solution: str, rng: random.Random) -> str | None:
    """Perturb one intermediate result and recompute every later note from it; None when
    no later step uses it, or the final answer would not change."""
    found = steps(solution)
    if len(found) < 2:
        return None
    k = rng.randrange(len(found) - 1)
    values = {}  # old result text -> new value, for every result that changed
    new_steps = []
    for j, step in enumerate(found):
        expr, upstream = step.expr, dict(values)
        if j == k:
            new_result = _shift(_as_float(step.result), rng)
        else:
            for old, value in values.items():
                expr = _replace_number(expr, old, _fmt(value))
            try:
                new_result = _evaluate(expr) if expr != step.expr else _as_float(step.result)
            except (ValueError, ZeroDivisionError, SyntaxError, OverflowError):
                return None
        if new_result is None:
            return None
        unchanged = abs(new_result - _as_float(step.result)) < 1e-9
        if not unchanged:
            values[step.result] = new_result
        new_steps.append((expr, step.result if unchanged else _fmt(new_result), upstream))
    last_old, last_new = found[-1].result, new_steps[-1][1]
    if _as_float(last_old) != _as_float(final_answer(solution)) or _as_float(last_new) == _as_float(last_old):
        return None  # the last note is not the final answer, or the change did not reach it
    return _rebuild(solution, found, new_steps, last_new)


def _rebuild(solution, found, new_steps, answer) -> str:
    """The solution with each note's result replaced, the visible operands that changed in
    earlier steps updated, the notes stripped, and `answer` after `####`."""
    lines = _body_lines(solution)
    by_line: dict[int, list[int]] = {}
    for j, step in enumerate(found):
        by_line.setdefault(step.line, []).append(j)
    for i, indices in by_line.items():
        line, out, cursor = lines[i], [], 0
        for j in indices:
            step, (_, result, upstream) = found[j], new_steps[j]
            shown = line[cursor : step.start]  # the visible expression before the note
            for old, value in upstream.items():  # operands that changed in earlier steps
                shown = _replace_number(shown, old, _fmt(value))
            out.append(shown)
            after = line[step.end :]
            m = re.match(r"\$?\s*" + re.escape(step.result), after)
            out.append(after[: m.end()].replace(step.result, result) if m else "")
            cursor = step.end + (m.end() if m else 0)
        out.append(line[cursor:])
        lines[i] = "".join(out)
    return gold("\n".join(lines)) + f"\n#### {answer}"


def wrong(solution: str, rng: random.Random) -> tuple[str, str]:
    """(gold-style solution with a wrong final answer, how it was made: 'carried' or 'final')."""
    if rng.random() < 0.5:
        carried = _carry(solution, rng)
        if carried is not None:
            return carried, "carried"
    answer = final_answer(solution)
    value = _as_float(answer)
    new = _fmt(_shift(value, rng)) if value is not None else answer + "1"
    lines = gold(solution).rsplit("####", 1)[0].rstrip("\n").split("\n")
    # The last step shows the final answer as its result: shift it there too, so the
    # solution reads as a consistent wrong answer in the native style
    lines[-1] = _replace_number(lines[-1], answer, new) if value is not None else lines[-1]
    return "\n".join(lines) + f"\n#### {new}", "final"


def make_kind(kind: str, solution: str, rng: random.Random) -> str:
    """The completion text of `kind` for one GSM8K solution."""
    if kind == "gold":
        return gold(solution)
    if kind == "mild":
        return mild(solution)
    if kind == "strong":
        return strong(solution)
    if kind == "truncated":
        return truncated(solution)
    if kind == "wording":
        return wording(solution, rng)
    if kind == "wrong":
        return wrong(solution, rng)[0]
    raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")


# --------------------------------------------------------------------------- files and splits


def read_gsm8k(path) -> list[dict]:
    """Rows of a GSM8K jsonl file with their 1-based `source_line`; a bad row raises one
    line naming the file, the line and the field."""
    rows = []
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
            for field in ("question", "answer"):
                if not isinstance(row.get(field), str):
                    raise ValueError(f"{path}:{number}: field '{field}' missing or not a string")
            if "####" not in row["answer"]:
                raise ValueError(f"{path}:{number}: field 'answer' has no '#### <final answer>' line")
            rows.append({"question": row["question"], "answer": row["answer"], "source_line": number})
    return rows


def eligible(row: dict, max_steps: int = MAX_STEPS) -> bool:
    """A problem with 1..max_steps calculator notes (one or more, so `mild` differs from gold)."""
    return 1 <= len(steps(row["answer"])) <= max_steps


def demonstration(row: dict, kind: str, rng: random.Random) -> dict:
    """One conversational prompt-completion row of `kind` for a GSM8K row."""
    problem = math_problem(row, row.get("source_line", 0))
    return {
        "prompt": [{"role": "user", "content": math_prompt(problem)}],
        "completion": [{"role": "assistant", "content": make_kind(kind, row["answer"], rng)}],
        "kind": kind,
        "answer": problem.reference,
        "question": row["question"],
        "source_line": row.get("source_line", 0),
    }


def mixture_kinds(n: int, gold_fraction: float, rng: random.Random) -> list[str]:
    """n kinds: round(gold_fraction * n) gold, the rest spread evenly over the other kinds, shuffled."""
    num_gold = round(gold_fraction * n)
    others = [k for k in KINDS if k != "gold"]
    kinds = ["gold"] * num_gold + [others[i % len(others)] for i in range(n - num_gold)]
    rng.shuffle(kinds)
    return kinds


def build_splits(
    train_rows: list[dict],
    *,
    seed: int = 0,
    per_kind: int = 40,
    pool: int = 96,
    reference: int = 64,
    train: int = 256,
    validation: int = 64,
    gold_fraction: float = 0.5,
) -> dict[str, list[dict]]:
    """Disjoint problem sets from the eligible training rows, each made into demonstrations:

    - `kinds`: the same `per_kind` problems in every kind (the compatibility table: the
      kinds differ only in how the solution is written);
    - `pool`: a mixture (gold_fraction gold, the rest spread over the other kinds) for the
      gradient study (Part A), and `reference`: clean gold rows held out from it;
    - `train_mixed` / `train_clean`: the heterogeneous and the all-gold training sets of
      Part B (the same problems), and `validation`: gold rows for the learning-rate search.
    """
    rng = random.Random(seed)
    rows = [r for r in train_rows if eligible(r)]
    rng.shuffle(rows)
    sizes = {"kinds": per_kind, "pool": pool, "reference": reference, "train": train, "validation": validation}
    need = sum(sizes.values())
    if len(rows) < need:
        raise ValueError(f"need {need} eligible GSM8K problems (1..{MAX_STEPS} steps), found {len(rows)}")
    chunks, start = {}, 0
    for name, size in sizes.items():
        chunks[name], start = rows[start : start + size], start + size

    def make(problems, kinds):
        return [demonstration(r, k, random.Random(f"{seed}:{r['source_line']}:{k}")) for r, k in zip(problems, kinds)]

    out = {"kinds": [d for k in KINDS for d in make(chunks["kinds"], [k] * per_kind)]}
    out["pool"] = make(chunks["pool"], mixture_kinds(pool, gold_fraction, random.Random(f"{seed}:pool")))
    out["reference"] = make(chunks["reference"], ["gold"] * reference)
    out["train_mixed"] = make(chunks["train"], mixture_kinds(train, gold_fraction, random.Random(f"{seed}:train")))
    out["train_clean"] = make(chunks["train"], ["gold"] * train)
    out["validation"] = make(chunks["validation"], ["gold"] * validation)
    return out


def test_demonstrations(test_rows: list[dict], n: int, *, seed: int = 0) -> list[dict]:
    """n clean (gold) demonstrations of held-out test problems, seeded; all eligible first."""
    rng = random.Random(f"{seed}:test")
    rows = list(test_rows)
    rng.shuffle(rows)
    rows.sort(key=lambda r: not eligible(r))  # stable: eligible rows first, in shuffled order
    return [demonstration(r, "gold", rng) for r in rows[:n]]


test_demonstrations.__test__ = False  # not a pytest test, despite its name


def write_jsonl(rows: list[dict], path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gsm8k", default=str(DEFAULT_GSM8K), help="folder with train.jsonl and test.jsonl")
    parser.add_argument("--out", required=True, help="folder for the jsonl files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--test", type=int, default=128, help="held-out clean test solutions")
    args = parser.parse_args(argv)
    splits = build_splits(read_gsm8k(Path(args.gsm8k) / "train.jsonl"), seed=args.seed, per_kind=args.per_kind)
    splits["test"] = test_demonstrations(read_gsm8k(Path(args.gsm8k) / "test.jsonl"), args.test, seed=args.seed)
    for name, rows in splits.items():
        write_jsonl(rows, Path(args.out) / f"{name}.jsonl")
    counts = {name: len(rows) for name, rows in splits.items()}
    print(json.dumps(counts))
    return counts


if __name__ == "__main__":
    main()
