"""Generation, the eval metrics, `evaluate_math` and the `cadft eval` CLI on a tiny model."""

import json
import math
from pathlib import Path

import cadft.evaluate
import pytest
from cadft.evaluate import evaluate_math, math_problems, pass_at_k, wilson_interval

import cadft.evaluation.evaluate
from cadft.cli.common import CommandError
from cadft.cli.eval import BACKENDS, main
from cadft.data.loading import DataFormatError
from cadft.model.generation import generate
from cadft.model.tiny import save_tiny, tiny_llama, tiny_tokenizer

from math_rows import MATH_ROWS, gsm8k_answer, gsm8k_rows, write_jsonl


@pytest.fixture(scope="module")
def gsm8k(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("gsm8k") / "test.jsonl", gsm8k_rows(4))


@pytest.fixture(scope="module")
def math500(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("math500") / "test.jsonl", MATH_ROWS)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny"), max_position_embeddings=1024)


def _rows(path: Path, n: int) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line, _ in zip(f, range(n))]


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (5, 2, 1, 2 / 5),
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (4, 2, 3, 1.0),  # any 3 of 4 samples include a correct one
        (8, 0, 4, 0.0),
        (8, 8, 1, 1.0),
    ],
)
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))


def test_pass_at_k_rejects_bad_counts():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_wilson_interval():
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 4) == pytest.approx((0.0, 0.4899), abs=1e-4)
    assert wilson_interval(4, 4) == pytest.approx((0.5101, 1.0), abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(1, 0)


# --------------------------------------------------------------------------- rows


def test_math_problems_reads_gsm8k_and_math500_rows(gsm8k, math500):
    gsm8k = math_problems(_rows(gsm8k, 2) + [{"question": "q?", "answer": "so\n#### 1,234"}], "g")
    assert [p.reference for p in gsm8k] == [gsm8k_answer(0), gsm8k_answer(1), "1234"] and gsm8k[0].kind == "gsm8k"
    math500 = math_problems(_rows(math500, 1), "m")[0]
    assert math500.reference == r"\left( 2, \frac{\pi}{2} \right)" and math500.id == "test/precalculus/1.json"
    from_solution = math_problems([{"problem": "p", "solution": r"so \boxed{\frac{1}{2}}."}])[0]
    assert from_solution.reference == r"\frac{1}{2}" and from_solution.kind == "math"


def test_math_problems_reads_every_real_gsm8k_and_math500_row(shared_data):
    for name, kind in (("gsm8k", "gsm8k"), ("math500", "math")):
        path = shared_data / name / "test.jsonl"
        rows = _rows(path, 10**6)
        problems = math_problems(rows, str(path))
        assert len(problems) == len(rows) > 100 and {p.kind for p in problems} == {kind}
        assert all(p.question and p.reference for p in problems)


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ({"text": "hello"}, r"data\.jsonl: row 2: unknown row format with fields \['text'\]"),
        ({"question": "q?"}, r"data\.jsonl: row 2: field 'answer': missing"),
        ({"question": "q?", "answer": "no marker"}, r"row 2: field 'answer': has no '####"),
        ({"problem": "p"}, r"row 2: field 'answer': missing \(MATH rows"),
    ],
)
def test_math_problems_names_the_file_row_and_field(bad_row, message):
    with pytest.raises(DataFormatError, match=message):
        math_problems([{"question": "q", "answer": "#### 1"}, bad_row], "data.jsonl")


# --------------------------------------------------------------------------- generation


def test_left_padded_batches_match_one_by_one_greedy_generation():
    tok = tiny_tokenizer()
    model = tiny_llama(tok, hidden_size=64)
    prompts = [[{"role": "user", "content": "What is " + "1+" * k + "2?"}] for k in (0, 9, 3, 14, 1)]
    prompts.append("plain text prompt, no chat template")
    batched = generate(model, tok, prompts, max_new_tokens=12, batch_size=4, progress=False)
    single = [generate(model, tok, [p], max_new_tokens=12, batch_size=1, progress=False)[0] for p in prompts]
    assert batched == single
    assert all(len(texts) == 1 and len(texts[0]) > 0 for texts in batched)
    assert not any("<|im_end|>" in texts[0] or "<pad>" in texts[0] for texts in batched)


def test_training_mode_is_restored_also_for_a_peft_model():
    from peft import LoraConfig, get_peft_model

    tok = tiny_tokenizer()
    model = get_peft_model(tiny_llama(tok), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    model.train()
    model.base_model.model.model.layers[0].eval()  # a mixed state must come back exactly
    before = {name: m.training for name, m in model.named_modules()}
    outputs = generate(
        model, tok, ["abc", "de"], max_new_tokens=4, temperature=1.0, num_return_sequences=3, progress=False
    )
    assert [len(texts) for texts in outputs] == [3, 3]
    assert {name: m.training for name, m in model.named_modules()} == before


def test_generate_rejects_greedy_with_several_sequences():
    tok = tiny_tokenizer()
    with pytest.raises(ValueError, match="temperature > 0"):
        generate(tiny_llama(tok), tok, ["abc"], num_return_sequences=2)


# --------------------------------------------------------------------------- evaluate_math


def test_evaluate_math_scores_and_pass_at_k(gsm8k, monkeypatch):
    """Canned generations (a reference solution, then a wrong answer) pin down the summary."""
    rows = _rows(gsm8k, 3)
    canned = [[row["answer"], "I think\n#### 0.123"] for row in rows]
    canned[2] = ["no idea", "no idea"]
    monkeypatch.setattr(cadft.evaluation.evaluate, "generate", lambda *args, **kwargs: canned)
    tok = tiny_tokenizer()
    records, summary = evaluate_math(tiny_llama(tok), tok, rows, num_samples=2, temperature=1.0)
    assert [r["correct"] for r in records] == [[True, False], [True, False], [False, False]]
    assert records[0]["extracted"] == [gsm8k_answer(0), "0.123"] and records[0]["reference"] == gsm8k_answer(0)
    assert records[0]["prompt"].startswith("Ravi picks") and "####" in records[0]["prompt"]
    assert summary["accuracy"] == pytest.approx(2 / 3) and summary["num_correct"] == 2
    assert summary["pass_at_k"] == pytest.approx({"1": (0.5 + 0.5 + 0) / 3, "2": 2 / 3})
    assert summary["accuracy_ci95"] == pytest.approx(list(wilson_interval(2, 3)))


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("dataset", ["gsm8k", "math500"])
def test_cli_end_to_end_on_the_tiny_model(tiny_dir, dataset, request, tmp_path, capsys):
    out = tmp_path / "eval"
    path = request.getfixturevalue(dataset)
    argv = ["--model_name_or_path", tiny_dir, "--dataset_path", str(path), "--limit", "4"]
    argv += ["--max_new_tokens", "8", "--batch_size", "2", "--output_dir", str(out), "--backend", "transformers"]
    assert main(argv) == 0
    records = [json.loads(line) for line in (out / "eval_samples.jsonl").read_text().splitlines()]
    summary = json.loads((out / "eval_summary.json").read_text())
    assert len(records) == 4 and summary["num_problems"] == 4 and summary["backend"] == "transformers"
    assert all(len(r["generations"]) == len(r["correct"]) == len(r["extracted"]) == 1 for r in records)
    assert 0 <= summary["accuracy_ci95"][0] <= summary["accuracy"] <= summary["accuracy_ci95"][1] <= 1
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line.startswith("accuracy ") and "/4), 95% CI [" in last_line


def test_cli_accepts_a_lora_adapter_folder(tiny_dir, math500, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapter = tmp_path / "adapter"
    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    argv = ["--model_name_or_path", str(adapter), "--dataset_path", str(math500), "--limit", "2"]
    assert main(argv + ["--max_new_tokens", "4", "--output_dir", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "eval_summary.json").read_text())["model"] == str(adapter)


def test_cli_sampling_reports_pass_at_k(tiny_dir, gsm8k, tmp_path, capsys):
    argv = ["--model_name_or_path", tiny_dir, "--dataset_path", str(gsm8k), "--limit", "2", "--max_new_tokens", "4"]
    argv += ["--num_samples", "3", "--temperature", "1.0", "--output_dir", str(tmp_path)]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "eval_summary.json").read_text())
    assert set(summary["pass_at_k"]) == {"1", "2", "3"}
    assert "pass@3 " in capsys.readouterr().out


def test_cli_backend_choices_are_the_evaluators():
    assert BACKENDS == cadft.evaluate.BACKENDS  # written out in the CLI so that --help needs no torch


def test_cli_errors(tiny_dir, gsm8k, tmp_path, capsys):
    base = ["--model_name_or_path", tiny_dir, "--output_dir", str(tmp_path / "out")]
    with pytest.raises(DataFormatError, match=r"missing\.jsonl: file not found"):
        main(base + ["--dataset_path", str(tmp_path / "missing.jsonl")])
    with pytest.raises(CommandError, match="model folder not found"):
        main(["--model_name_or_path", str(tmp_path / "no_model"), "--dataset_path", str(gsm8k)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "answer": "#### 1"}) + "\n" + json.dumps({"prompt": "p"}) + "\n")
    with pytest.raises(DataFormatError, match=r"bad\.jsonl: line 2: unknown row format"):
        main(base + ["--dataset_path", str(bad)])
    for args, message in [
        (["--limit", "0"], "--limit must be >= 1"),
        (["--num_samples", "4"], "needs --temperature > 0"),
        (["--top_p", "0"], "--top_p must be in"),
        (["--backend", "tpu"], "invalid choice"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(base + ["--dataset_path", str(gsm8k)] + args)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(base)  # --dataset_path is required
    assert exit_info.value.code == 2 and "--dataset_path" in capsys.readouterr().err
    if not cadft.evaluate.vllm_available():
        with pytest.raises(CommandError, match="--backend vllm needs"):
            main(base + ["--dataset_path", str(gsm8k), "--backend", "vllm"])
