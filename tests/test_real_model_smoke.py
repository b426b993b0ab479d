"""python -m experiments.real --smoke end to end, as CI runs it: a real subprocess on a tiny
random model (no download) over the real GSM8K files. Checks that every part runs, every
number it writes is finite and the page and its figures are written -- not what the
numbers say (a random model's are meaningless) -- and that Part B on two worker processes
(`--jobs 2`) gives the results of one."""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = ["-m", "experiments.real"]  # run from the repository root


def finite(value, skip=()) -> bool:
    """Every float in `value` is finite, except under the dict keys in `skip`."""
    if isinstance(value, dict):
        return all(finite(v, skip) for k, v in value.items() if k not in skip)
    if isinstance(value, list):
        return all(finite(v, skip) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def same_as_one_job(pooled: dict, sequential: dict) -> None:
    """The same (data, method) runs in the same order, the same chosen rates, and every
    search run's validation NLL and every seed's NLLs equal to float rounding."""
    close = functools.partial(math.isclose, rel_tol=1e-5)
    assert {n: list(m) for n, m in pooled.items()} == {n: list(m) for n, m in sequential.items()}
    for name, methods in sequential.items():
        for method, run in methods.items():
            other = pooled[name][method]
            assert other["lr"] == run["lr"] and list(other["seeds"]) == list(run["seeds"]), (name, method)
            assert all(close(a["validation_nll"], b["validation_nll"]) for a, b in zip(other["search"], run["search"]))
            for seed, result in run["seeds"].items():
                for metric in ("test_nll", "answer_nll", "general_nll"):
                    assert close(other["seeds"][seed][metric], result[metric]), (name, method, seed, metric)


def test_smoke_runs_every_part_with_finite_numbers_and_writes_the_page(tmp_path, shared_data):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, *RUN, "--smoke", "--out", str(out), "--gsm8k",
                           str(shared_data / "gsm8k"), "--clean_methods", "DFT,CADFT"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    results = {part: json.loads((out / f"{part}.json").read_text()) for part in ("kinds", "a", "b")}
    b_sizes = results["b"]["sizes"]
    # At the floor (a random model: accuracy 0 at the base) accuracy is not measured after training
    assert b_sizes["accuracy_after"] == (results["b"]["base"]["accuracy"] > 0)
    for part, result in results.items():
        # Part A: the z bins' outer edges are +-inf, and a kind with one row in the smoke pool has no interval
        skip = ("accuracy",) if part == "b" and not b_sizes["accuracy_after"] else ("lo_z", "hi_z", "by_kind")
        assert finite(result, skip), part
    if not b_sizes["accuracy_after"]:
        assert results["b"]["base"]["accuracy"] == 0.0
        runs = results["b"]["runs"]["mixed"].values()
        assert all(math.isnan(s["accuracy"]) for run in runs for s in run["seeds"].values())
    assert set(results["kinds"]["table"]) == {"gold", "mild", "strong", "truncated", "wording", "wrong"}
    a = results["a"]["table"]
    assert {"SFT", "DFT", "CADFT (defaults)", "CADFT (earlier)", "DFT + oracle filter"} <= set(a)
    # The variance assumption at the base and at the middle of training: norms against z, moments
    for stage in ("base", "mid"):
        probe = results["a"]["variance"][stage]
        assert math.isfinite(probe["norm_vs_z"]["spearman"]["r"]) and len(probe["norms"]) == probe["n"]
        assert set(probe["moments"]["dft"]) == {"0", "0.5", "1", "2"} and set(probe["moments"]) == {"dft", "nll"}
        assert all(-1 <= m["cosine"]["value"] <= 1 for m in probe["moments"]["dft"].values())
    assert results["a"]["variance"]["mid"]["params"] == 2 * results["a"]["variance"]["base"]["params"]  # A and B
    for row in a.values():
        assert row["trace_cov"]["value"] >= 0 and row["ess"]["value"] >= 1
        assert all(-1 <= row[key]["value"] <= 1 for key in ("cos_own", "cos_nll", "cos_mean_own", "cos_mean_nll"))
    b = results["b"]["table"]
    assert set(b["mixed"]["methods"]) == {"SFT", "DFT", "CADFT", "CADFT (earlier)", "CADFT + paper rewriting",
                                          "DFT + oracle filter"}
    assert {"CADFT - DFT", "CADFT - SFT", "DFT + oracle filter - DFT", "CADFT + paper rewriting - CADFT",
            "CADFT (earlier) - CADFT"} <= set(b["mixed"]["paired"])
    # The paper's rewriting ran its rounds and counted right and wrong replacements
    for seed in results["b"]["runs"]["mixed"]["CADFT + paper rewriting"]["seeds"].values():
        rounds = seed["rewrite_per_round"]
        assert rounds and all(r["replaced"] == r["right"] + r["wrong"] + r["unchecked"] for r in rounds)
    assert set(b["clean"]["methods"]) == {"DFT", "CADFT"} and "CADFT - DFT" in b["clean"]["paired"]
    assert all(ci["n"] == 2 for ci in b["mixed"]["methods"]["CADFT"].values() if ci["n"])

    # Part B on two worker processes (--jobs is no part of the reuse key: a fresh folder)
    # trains the same runs to the same results
    pooled = subprocess.run([sys.executable, *RUN, "--smoke", "--out", str(tmp_path / "pooled"), "--gsm8k",
                             str(shared_data / "gsm8k"), "--clean_methods", "DFT,CADFT", "--parts", "b", "--jobs", "2"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert pooled.returncode == 0, pooled.stderr[-3000:]
    same_as_one_job(json.loads((tmp_path / "pooled" / "b.json").read_text())["runs"], results["b"]["runs"])

    # A second invocation with one more clean method (the default SFT,DFT,CADFT) reuses every
    # finished run and trains that one alone
    again = subprocess.run([sys.executable, *RUN, "--smoke", "--out", str(out), "--gsm8k",
                            str(shared_data / "gsm8k"), "--parts", "b"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[part b] reusing finished runs" in again.stdout
    b2 = json.loads((out / "b.json").read_text())
    assert b2["reused"] == {"mixed": sorted(b["mixed"]["methods"]), "clean": ["CADFT", "DFT"]}
    assert b2["table"]["mixed"] == json.loads(json.dumps(b["mixed"]))  # reused as they were
    clean = b2["table"]["clean"]
    assert set(clean["methods"]) == {"SFT", "DFT", "CADFT"} and "CADFT - SFT" in clean["paired"]
    assert b2["wall_s_total"] > b2["meta"]["wall_s"] and not (out / "b.partial.json").exists()

    page = (out / "real-model.md").read_text()
    for heading in ("## The data kinds", "## Compatibility per kind", "## Part A", "## Part B",
                    "## What a GPU run would add"):
        assert heading in page
    assert "SMOKE RUN" in page
    assert "### The variance assumption, measured" in page and "wrong answer" in page
    for figure in ("compat_by_kind", "part_a", "part_a_norm_vs_z", "part_b_grad_norms"):
        assert (out / "real-model" / f"{figure}.png").stat().st_size > 0
