"""`cadft eval --benchmark`: the papers' five benchmarks. Metrics against hand-computed
values, every real row's reference read and graded, bad rows named, the results file
resumed after a SIGKILL, the vLLM request, the CLI on the tiny and the embedded model."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cadft.suite.grading import grade, parse_reference  # the old path: (ok, extracted) from the one grader

from cadft.cli.common import CommandError
from cadft.cli.eval import BENCHMARKS as CLI_BENCHMARKS
from cadft.cli.eval import SUITE_DEFAULTS, _fill_defaults, build_parser, main
from cadft.data.answers import last_boxed
from cadft.data.validate import DataError
from cadft.evaluation import benchmarks
from cadft.evaluation.benchmarks import FOLDERS, PAPER, Problem, load_problems, prompt_text
from cadft.evaluation.metrics import avg_at_k, avg_at_k_interval, pass_at_ks, suite_average, wilson_interval
from cadft.evaluation.results import ResultsFile, ResumeError
from cadft.evaluation.suite import Sampling, chunks
from cadft.evaluation.vllm import vllm_request
from cadft.model.tiny import save_tiny, tiny_tokenizer

SRC = Path(__file__).resolve().parents[1] / "src"
ROWS = {"math500": 500, "minerva": 272, "olympiadbench": 675, "aime24": 30, "amc23": 40}  # shared/data/README.md


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny"), max_position_embeddings=1024)


def _write(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- metrics, by hand


def test_avg_and_pass_at_k_hand_computed():
    correct, k = [2, 0, 4], 4  # three problems, four answers each
    assert avg_at_k(correct, k) == pytest.approx(6 / 12)
    passes = pass_at_ks(correct, k)
    assert set(passes) == {"1", "2", "4"}
    assert passes["1"] == pytest.approx((2 / 4 + 0 + 1) / 3)  # pass@1 is avg@k
    # pass@2 of 2 correct in 4: 1 - C(2,2)/C(4,2) = 1 - 1/6
    assert passes["2"] == pytest.approx((5 / 6 + 0 + 1) / 3)
    assert passes["4"] == pytest.approx(2 / 3)  # some answer right
    assert pass_at_ks([1], 3)["2"] == pytest.approx(1 - math.comb(2, 2) / math.comb(3, 2))  # 2/3
    assert suite_average({"a": 0.1, "b": 0.3, "c": 0.2}) == pytest.approx(0.2)


def test_avg_at_k_interval_hand_computed():
    # p = 0.5 over n = 3 problems: centre 0.5, half-width z sqrt(1/12 + z^2/36) / (1 + z^2/3)
    low, high = avg_at_k_interval([2, 0, 4], 4)
    assert (low, high) == pytest.approx((0.1253, 0.8747), abs=1e-4)
    assert avg_at_k_interval([0, 0, 0, 0], 16) == pytest.approx((0.0, 0.4899), abs=1e-4)  # not a point at 0%
    assert avg_at_k_interval([1, 0, 1], 1) == pytest.approx(wilson_interval(2, 3))  # k = 1: the binomial one
    for bad in ([5], []):
        with pytest.raises(ValueError):
            avg_at_k(bad, 4)


def test_chunks_are_sorted_longest_first_and_stable():
    assert chunks([3, 9, 3, 1, 9], 2) == [[1, 4], [0, 2], [3]]
    assert chunks([5], 8) == [[0]]


def test_sampling_defaults_are_the_papers_protocol_and_greedy_has_one_answer():
    assert (Sampling().num_samples, Sampling().temperature, Sampling().top_p, Sampling().max_new_tokens) == (
        16, 1.0, 1.0, 4096)
    with pytest.raises(ValueError, match="greedy"):
        Sampling(num_samples=4, temperature=0)
    parser = build_parser()
    args = parser.parse_args(["--benchmark", "paper"])
    _fill_defaults(parser, args)
    assert {k: getattr(args, k) for k in SUITE_DEFAULTS} == {
        "max_new_tokens": 4096, "num_samples": 16, "temperature": 1.0, "top_p": 1.0}
    args = parser.parse_args(["--benchmark", "aime24", "--temperature", "0"])
    _fill_defaults(parser, args)
    assert (args.num_samples, args.temperature) == (1, 0)
    assert CLI_BENCHMARKS == benchmarks.BENCHMARKS  # written out in the CLI so that --help needs nothing


# --------------------------------------------------------------------------- grading


@pytest.mark.parametrize(
    "reference, generation, ok",
    [
        ("69,84", r"So the answers are \boxed{84, 69}.", True),  # several answers, any order
        ("69,84", r"\boxed{69}", False),  # one of two is not enough
        ("(1,8,19), (2,7,13), (4,5,7)", r"\boxed{(2,7,13),(4,5,7),(1,8,19)}", True),  # tuples
        ("(1,8,19), (2,7,13)", r"\boxed{(8,1,19),(2,7,13)}", False),  # a tuple is ordered
        (r"(-\infty, 0) \cup\{1\}", r"\boxed{(-\infty,0)\cup\{1\}}", True),  # intervals and a union
        (r"[\frac{1}{2}, 8]", r"\boxed{[0.5, 8]}", True),
        (r"[\frac{1}{2}, 8]", r"\boxed{(0.5, 8]}", False),  # open vs closed
        ("45", r"It takes \boxed{45 \text{ minutes}}.", True),  # a unit in text
        ("27", r"\boxed{27.0}", True),
        (r"4.5\times10^{33}", r"\boxed{4.5 \times 10^{33}}", True),
        ("25", r"\boxed{26}", False),
    ],
)
def test_grade_compares_as_mathematics(reference, generation, ok):
    assert grade(generation, parse_reference(reference))[0] is ok


def test_an_answer_math_verify_cannot_find_is_unparsable():
    assert grade("I do not know.", parse_reference("3")) == (False, None)


# --------------------------------------------------------------------------- every real row


def _as_float(text) -> float | None:
    """The number a plain decimal answer means (`"025"`, `27.0`, `"4.5e33"`), or None (`52_8` is base 8)."""
    if isinstance(text, (int, float)):
        return float(text)
    if isinstance(text, str) and re.fullmatch(r"-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?", text.strip()):
        return float(text)
    return None


def test_every_reference_of_the_five_files_reads_and_grades_itself(shared_data):
    """Each row gives a reference math-verify reads, and the answer `\\boxed{reference}` is
    graded correct; AIME/AMC's reference + 1 and half of a two-answer reference are not."""
    raw = {"math500": lambda row: row["answer"], "minerva": lambda row: last_boxed(row["solution"]),
           "olympiadbench": lambda row: None, "aime24": lambda row: row["answer"], "amc23": lambda row: row["answer"]}
    loaded = {}
    for name in PAPER:
        problems, table = load_problems(name, shared_data, check=False)  # the check `load_problems` makes is below
        loaded[name] = {p.id: p for p in problems}
        assert len(problems) == ROWS[name] == len(table.rows), name
        assert len({p.id for p in problems}) == len(problems)
        for p, row in zip(problems, table.rows):
            gold = parse_reference(p.reference)
            assert gold, (name, p.id, p.reference)
            ok, extracted = grade(f"Therefore the answer is $\\boxed{{{p.reference}}}$.", gold)
            assert ok and extracted is not None, (name, p.id, p.reference)
            number = _as_float(raw[name](row))  # `4.5e33` in a Minerva solution is 4.5e33, not 4.5 * e * 33
            if number is not None:
                assert float(gold[0]) == pytest.approx(number, rel=1e-9), (name, p.id, p.reference, gold)
            if name in ("aime24", "amc23"):
                assert not grade(f"\\boxed{{{int(p.reference) + 1}}}", gold)[0], (name, p.id)
        if name == "olympiadbench":
            several = [p for p in problems if p.several_answers]
            assert len(several) == 94 and sum(p.unit is not None for p in problems) == 8
            for p in several:  # two distinct plain answers (`69,84`): the first alone is not enough
                parts = [part.strip() for part in p.reference.split(",")]
                if len(set(parts)) == 2 == len(parts) and "(" not in p.reference and "=" not in p.reference:
                    assert not grade(f"\\boxed{{{parts[0]}}}", parse_reference(p.reference))[0], p.reference
    assert [p.reference for p in loaded["amc23"].values()][:2] == ["27", "36"]  # 27.0, 36.0
    assert loaded["aime24"]["67"].reference == "25"  # "025"
    assert next(iter(loaded["minerva"].values())).reference == "1.6"  # its last \boxed{}
    several = loaded["olympiadbench"]["1664"]  # final_answer ["$69$,$84$"]
    assert several.reference == "69,84"
    assert several.several_answers and "more than one answer" in prompt_text(several)


def test_minerva_answers_written_as_code_become_latex():
    assert benchmarks._minerva_latex("4.5e33") == r"4.5\times10^{33}"
    assert benchmarks._minerva_latex("2.7778e-6") == r"2.7778\times10^{-6}"
    assert benchmarks._minerva_latex("np.arcsin(10/13)") == r"\arcsin(10/13)"
    assert benchmarks._minerva_latex("-1./3") == "-1/3"
    assert benchmarks._minerva_latex(r"\frac{1}{2} e^{x}") == r"\frac{1}{2} e^{x}"


# --------------------------------------------------------------------------- bad rows


GOOD = {
    "math500": {"problem": "p", "answer": "3", "unique_id": "a"},
    "minerva": {"problem": "p", "solution": r"so \boxed{3}", "idx": 1},
    "olympiadbench": {"id": 1, "question": "q", "final_answer": ["$3$"], "is_multiple_answer": False, "unit": None},
    "aime24": {"id": 1, "problem": "p", "answer": "003"},
    "amc23": {"id": 1, "problem": "p", "answer": 3.0},
}


@pytest.mark.parametrize(
    "name, bad, message",
    [
        ("amc23", {"answer": "twenty"}, r"line 2: field 'answer': must be a number, got a string 'twenty'"),
        ("amc23", {"answer": None}, r"line 2: field 'answer': must be a finite number"),
        ("aime24", {"answer": "12a"}, r"line 2: field 'answer': must be an integer answer"),
        ("minerva", {"solution": "no box"}, r"line 2: field 'solution': has no \\boxed\{\} answer"),
        ("olympiadbench", {"final_answer": []}, r"line 2: field 'final_answer': must be a non-empty list"),
        ("olympiadbench", {"is_multiple_answer": "yes"}, r"line 2: field 'is_multiple_answer': must be true or"),
        ("math500", {"answer": r"\text{}"}, r"line 2: field 'answer': math-verify cannot read the reference"),
        ("math500", {"answer": ""}, r"line 2: field 'answer': is empty"),
        ("math500", {"unique_id": "a"}, r"line 2: field 'unique_id': 'a' is also the id of line 1"),
        ("minerva", {"problem": 5}, r"line 2: field 'problem': must be a string"),
    ],
)
def test_a_bad_row_names_the_file_line_and_field(tmp_path, name, bad, message):
    second = {**GOOD[name], benchmarks._ID[name]: "b", **bad}  # another id, unless `bad` repeats the first
    path = _write(tmp_path / FOLDERS[name] / "test.jsonl", [GOOD[name], second])
    good = _write(tmp_path / "good.jsonl", [GOOD[name], {**GOOD[name], benchmarks._ID[name]: "b"}])
    assert len(load_problems(name, good)[0]) == 2  # the same rows without the fault are fine
    with pytest.raises(DataError, match=r"test\.jsonl: " + message):
        load_problems(name, tmp_path)
    with pytest.raises(DataError, match=message):
        load_problems(name, path)  # the file itself, as --benchmark_path


def test_without_a_local_copy_the_hub_is_asked_and_its_failure_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("CADFT_SHARED_DATA", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)  # no ../shared/data either
    import datasets
    import huggingface_hub

    # Offline, as this machine is (read at import, so set on the loaded modules): fails at once
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    assert benchmarks.locate("aime24") == ("math-ai/aime24", "test")
    with pytest.raises(DataError, match=r"math-ai/aime24 \[test\]: no local copy of aime24 .* --benchmark_path"):
        load_problems("aime24")
    with pytest.raises(DataError, match="no aime24/test.jsonl or test.jsonl here"):
        load_problems("aime24", tmp_path)
    # one benchmark's file in a folder: fine for that benchmark, never read as all five's
    _write(tmp_path / "test.jsonl", [GOOD["aime24"]])
    assert len(load_problems("aime24", tmp_path)[0]) == 1
    with pytest.raises(DataError, match=r"no amc23/test.jsonl here \(give a folder"):
        load_problems("amc23", tmp_path, nested=True)
    with pytest.raises(CommandError, match="--benchmark paper needs a folder"):
        main(["--benchmark", "paper", "--benchmark_path", str(tmp_path / "test.jsonl")])


# --------------------------------------------------------------------------- the results file


def test_results_file_resumes_drops_a_cut_last_line_and_refuses_other_settings(tmp_path):
    path = tmp_path / "suite_results.jsonl"
    settings = {"model": "m", "sampling": {"num_samples": 2, "seed": 0}}
    results, done = ResultsFile.open(path, settings)
    assert done == {}
    results.append({"benchmark": "aime24", "id": "1", "num_correct": 1})
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"benchmark": "aime24", "id": "2", "num_')  # killed mid-write
    results, done = ResultsFile.open(path, settings)
    assert list(done) == [("aime24", "1")] and path.read_text().endswith('"num_correct": 1}\n')
    with pytest.raises(ResumeError, match=r"sampling\.num_samples: 2 in the file, 16 now.*same arguments"):
        ResultsFile.open(path, {"model": "m", "sampling": {"num_samples": 16, "seed": 0}})
    with open(path, "a", encoding="utf-8") as f:
        f.write("not json\n{}\n")
    with pytest.raises(ResumeError, match=r"suite_results\.jsonl: line 3: not a result record"):
        ResultsFile.open(path, settings)


# --------------------------------------------------------------------------- vLLM, without vLLM


def test_vllm_request_has_the_run_sampling_and_the_transformers_prompt_ids():
    from cadft.model.generation import encode_prompts

    tok = tiny_tokenizer()
    problem = Problem("olympiadbench", "7", "Find $x$.", "2", several_answers=True, unit="cm")
    prompts = [[{"role": "user", "content": prompt_text(problem)}], "Question: 1+1?\nAnswer:"]
    sampling = Sampling(num_samples=16, temperature=1.0, top_p=0.95, max_new_tokens=4096, seed=3)
    token_prompts, params = vllm_request(tok, prompts, sampling, seeds=[11, 12])
    assert token_prompts == [{"prompt_token_ids": ids} for ids in encode_prompts(tok, prompts)]
    assert params == [
        {"n": 16, "temperature": 1.0, "top_p": 0.95, "max_tokens": 4096, "seed": 11},
        {"n": 16, "temperature": 1.0, "top_p": 0.95, "max_tokens": 4096, "seed": 12},
    ]
    greedy = vllm_request(tok, prompts[:1], Sampling(num_samples=1, temperature=0), seeds=[0])[1][0]
    assert (greedy["n"], greedy["temperature"]) == (1, 0)
    with pytest.raises(ValueError, match="one seed per prompt"):
        vllm_request(tok, prompts, sampling, seeds=[1])
    assert "vllm" not in sys.modules


# --------------------------------------------------------------------------- the command


def _suite_argv(model, data, out, limit=1, *extra):
    return ["eval", "--benchmark", "paper", "--benchmark_path", str(data), "--limit", str(limit),
            "--model_name_or_path", str(model), "--output_dir", str(out), "--backend", "transformers", *extra]


def _records(out: Path) -> dict:
    lines = (out / "suite_results.jsonl").read_text(encoding="utf-8").splitlines()[1:]
    records = [json.loads(line) for line in lines]
    for r in records:
        r.pop("chunk_generation_s")
    return {(r["benchmark"], r["id"]): r for r in records}


def _summary(out: Path) -> dict:
    summary = json.loads((out / "suite_summary.json").read_text())
    summary.pop("wall_s")
    return summary


def test_cli_on_the_tiny_model_prints_the_protocol_and_table_and_report_shows_it(tiny_dir, shared_data, tmp_path,
                                                                                 capsys):
    from cadft.cli.main import main as cadft

    out = tmp_path / "out"
    argv = _suite_argv(tiny_dir, shared_data, out, 2, "--num_samples", "2", "--max_new_tokens", "8")
    assert cadft(argv) == 0
    printed = capsys.readouterr().out
    assert "protocol: 2 samples per problem, temperature 1, top_p 1, max_new_tokens 8, seed 0" in printed
    summary = _summary(out)
    assert list(summary["benchmarks"]) == list(PAPER) and summary["k"] == 2
    for name, b in summary["benchmarks"].items():
        assert b["num_problems"] == 2 and b["num_answers"] == 4 and 0 <= b["num_unparsable"] <= 4
        assert b["avg_at_k_ci95"][0] <= b["avg_at_k"] <= b["avg_at_k_ci95"][1] and set(b["pass_at_k"]) == {"1", "2"}
        assert f"\n{name} " in printed
    assert summary["suite_average"] == pytest.approx(sum(b["avg_at_k"] for b in summary["benchmarks"].values()) / 5)
    assert "paper average" in printed and len(_records(out)) == 10
    # the same command again: nothing left to do, the same summary
    assert cadft(argv) == 0 and "resuming: 10 of 10 problems" in capsys.readouterr().out
    assert _summary(out) == summary
    # other settings in the same folder: refused, before any model loads
    with pytest.raises(CommandError, match=r"sampling\.max_new_tokens: 8 in the file, 9 now"):
        main(_suite_argv(tiny_dir, shared_data, out, 2, "--num_samples", "2", "--max_new_tokens", "9")[1:])
    assert cadft(["report", str(out), "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert '<section id="benchmarks">' in page and "olympiadbench" in page and "paper average" in page


def test_resume_after_sigkill_gives_the_records_of_an_uninterrupted_run(tiny_dir, shared_data, tmp_path):
    """A real subprocess, killed with SIGKILL after its first problems; the rerun continues it
    and ends with the same records and summary as a run that was never interrupted."""
    from cadft.cli.main import main as cadft

    extra = ("--num_samples", "2", "--max_new_tokens", "48", "--batch_size", "1")
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "cadft.cli.main", *_suite_argv(tiny_dir, shared_data, killed, 3,
                                                                                    *extra)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = killed / "suite_results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if results.is_file() and results.read_text(encoding="utf-8").count("\n") >= 3:  # header + 2 problems
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    kept = len(_records(killed))
    assert 2 <= kept < 15 and not (killed / "suite_summary.json").exists()

    assert cadft(_suite_argv(tiny_dir, shared_data, killed, 3, *extra)) == 0  # the rerun continues
    assert cadft(_suite_argv(tiny_dir, shared_data, whole, 3, *extra)) == 0  # never interrupted
    assert len(_records(whole)) == 15
    assert _records(killed) == _records(whole)
    assert _summary(killed) == _summary(whole)


def test_embedded_model_on_one_problem_of_each_benchmark(shared_data, tmp_path, capsys):
    """SmolLM2-135M-Instruct with its chat template, greedy: every benchmark runs and is graded."""
    from cadft.cli.main import main as cadft

    out = tmp_path / "embedded"
    argv = _suite_argv("embedded", shared_data, out, 1, "--temperature", "0", "--max_new_tokens", "16")
    assert cadft(argv) == 0
    assert "protocol: 1 sample per problem, greedy, max_new_tokens 16" in capsys.readouterr().out
    records = _records(out)
    assert sorted(b for b, _ in records) == sorted(PAPER)
    for record in records.values():
        assert len(record["generations"]) == len(record["correct"]) == len(record["extracted"]) == 1
        assert all(text.strip() for text in record["generations"])  # the model answered
        assert record["prompt"].endswith("Put the final answer in \\boxed{}.") or "unit" in record["prompt"] or (
            "more than one answer" in record["prompt"])
    assert _summary(out)["suite_average"] is not None and _summary(out)["k"] == 1
