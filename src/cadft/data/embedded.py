"""A seeded generator of arithmetic word-problem demonstrations of mixed quality.

Each problem is a two-step story ("has a, buys b, gives away c"). Its demonstration is
one of three kinds, recorded in the `kind` column; the true answer is in `answer`:

- `plain`:   a concise, correct solution in the plain style an instruct model writes;
- `foreign`: a correct solution in a foreign or convoluted style (register-machine
             pseudo-code, French, or a roundabout narration);
- `wrong`:   the plain style with an arithmetic slip, so the final answer is wrong.

The kinds are never used for training. They let the demo and the docs show which
demonstrations the compatibility signal down-weights.

    >>> ds = mixed_quality_demos(8, seed=0)
    >>> sorted(ds.column_names)
    ['answer', 'completion', 'kind', 'prompt']
"""

from __future__ import annotations

import random

from datasets import Dataset

__all__ = ["DEMO_KINDS", "mixed_quality_demos"]

DEMO_KINDS = ("plain", "foreign", "wrong")

_NAMES = ["Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kira", "Liam"]
_ITEMS = ["apples", "stickers", "marbles", "books", "pencils", "coins", "shells", "stamps", "cookies", "cards"]
_GAIN = ["buys", "finds", "is given", "wins"]
_LOSS = ["gives away", "loses", "eats" , "sells"]


def _problem(rng: random.Random) -> dict:
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    a, b = rng.randint(5, 60), rng.randint(2, 40)
    c = rng.randint(1, a + b - 1)
    gain, loss = rng.choice(_GAIN), rng.choice(_LOSS)
    question = f"{name} has {a} {item}. {name} {gain} {b} more and then {loss} {c}. How many {item} does {name} have now?"
    return {"name": name, "item": item, "a": a, "b": b, "c": c, "question": question}


def _plain(p: dict, slip: int = 0) -> str:
    mid = p["a"] + p["b"] + slip
    end = mid - p["c"]
    return (
        f"{p['name']} starts with {p['a']} {p['item']}. "
        f"After getting {p['b']} more: {p['a']} + {p['b']} = {mid}. "
        f"After losing {p['c']}: {mid} - {p['c']} = {end}.\n"
        f"The answer is {end}."
    )


def _foreign(p: dict, rng: random.Random) -> str:
    a, b, c = p["a"], p["b"], p["c"]
    mid, end = a + b, a + b - c
    style = rng.randrange(3)
    if style == 0:
        return f"LOAD R1 <- {a}\nADD R1, {b}   ; R1 = {mid}\nSUB R1, {c}   ; R1 = {end}\nHALT => R1 = {end}"
    if style == 1:
        return (
            f"On part de {a} {p['item']}. On en ajoute {b}, ce qui fait {mid}. "
            f"On en retire {c}, il en reste {end}.\nRéponse : {end}"
        )
    return (
        f"Well, considering the matter from its very beginning, one notes that before anything at all "
        f"happened there were precisely {a} {p['item']}; subsequently, and not without consequence, "
        f"the arrival of {b} further ones raised the tally (by addition, naturally) to {mid}; whereupon "
        f"the departure of {c} of them reduced it, by subtraction, to what remains: {end}.\nThus: {end}"
    )


def mixed_quality_demos(
    n: int = 160, *, seed: int = 0, frac_foreign: float = 0.25, frac_wrong: float = 0.25
) -> Dataset:
    """`n` conversational prompt-completion demonstrations with `kind` and `answer` columns.

    Exactly round(n * frac_foreign) are foreign and round(n * frac_wrong) wrong, in a
    seeded random order; the rest are plain.
    """
    if not (0 <= frac_foreign and 0 <= frac_wrong and frac_foreign + frac_wrong <= 1):
        raise ValueError(f"need fractions >= 0 that sum to <= 1, got {frac_foreign=} {frac_wrong=}")
    rng = random.Random(seed)
    n_foreign, n_wrong = round(n * frac_foreign), round(n * frac_wrong)
    kinds = ["foreign"] * n_foreign + ["wrong"] * n_wrong + ["plain"] * (n - n_foreign - n_wrong)
    rng.shuffle(kinds)
    rows = []
    for kind in kinds:
        p = _problem(rng)
        if kind == "plain":
            text = _plain(p)
        elif kind == "foreign":
            text = _foreign(p, rng)
        else:
            text = _plain(p, slip=rng.choice([-3, -2, -1, 1, 2, 3, 10]))
        rows.append(
            {
                "prompt": [{"role": "user", "content": p["question"]}],
                "completion": [{"role": "assistant", "content": text}],
                "kind": kind,
                "answer": str(p["a"] + p["b"] - p["c"]),
            }
        )
    return Dataset.from_list(rows)
