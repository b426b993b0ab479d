"""Rewriting end to end: real training, a real chat-completions server on 127.0.0.1,
kill -9 and resume, a failing server, and a 2-process (gloo) round.

    pytest tests/test_rewriting_e2e.py -q

The policy is a tiny Llama pre-trained for a few seconds on plain-style demonstrations
only, so the plain style is far more compatible than the foreign styles. The server
"rewrites" every demonstration in the plain style, ending with the final answer that the
reference solution in the rewrite prompt states: a foreign demonstration comes back
plain and correct (accepted, a large gain), a plain one comes back unchanged (no gain),
and a wrong one comes back with its wrong answer, which the `math` verifier rejects
against the `answer` column. The runs themselves are in tests/rewrite_train.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from datasets import load_dataset

from cadft.data import mixed_quality_demos
from cadft.model.scoring import tokenize_demonstration
from cadft.model.tiny import tiny_llama, tiny_tokenizer
from cadft.rewriting.store import DATASET_FILE, ORPHANED_FILE, PROVENANCE_FILE

from helpers import torchrun
from rewrite_train import PAPER, RESUMABLE, demos, make_trainer, rewriting_state

HERE = Path(__file__).parent
RUN_TIMEOUT_S = 180  # per subprocess run; a healthy one takes about 10 s

ROUND_METRICS = ("rewrite/selected", "rewrite/attempted", "rewrite/accepted", "rewrite/rejected_verifier",
                 "rewrite/rejected_no_gain", "rewrite/rejected_error", "rewrite/mean_gain")
PROVENANCE_FIELDS = {"sample_id", "round", "step", "original", "rewrite", "compat_before", "compat_after",
                     "num_candidates", "candidates", "generator", "accepted", "rejection", "verifier"}


# ------------------------------------------------------------------------------ the policy


@pytest.fixture(scope="session")
def plain_model(tmp_path_factory) -> str:
    """A tiny Llama (hidden 64, 2 layers) trained ~4 s on plain demonstrations only."""
    tok = tiny_tokenizer()
    model = tiny_llama(tok, hidden_size=64, num_layers=2, seed=0)
    data = mixed_quality_demos(64, seed=123, frac_foreign=0, frac_wrong=0)
    rows = [tokenize_demonstration(tok, example) for example in data]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    order = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(60):
        batch = [rows[i] for i in torch.randperm(len(rows), generator=order)[:8].tolist()]
        width = max(len(r["input_ids"]) for r in batch)
        input_ids = torch.full((len(batch), width), tok.pad_token_id)  # (B, T)
        labels = torch.full((len(batch), width), -100)  # (B, T)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
        for b, r in enumerate(batch):
            n = len(r["input_ids"])
            input_ids[b, :n], labels[b, :n] = torch.tensor(r["input_ids"]), torch.tensor(r["labels"])
            attention_mask[b, :n] = 1
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = tmp_path_factory.mktemp("plain-model")
    model.save_pretrained(path)
    return str(path)


# ------------------------------------------------------------------------------ the server

_QUESTION = re.compile(
    r"(?P<name>\w+) has (?P<a>\d+) (?P<item>\w+)\. (?P=name) .+? (?P<b>\d+) more and then .+? (?P<c>\d+)\. How many"
)


def plain_rewrite(question: str, reference: str | None) -> str:
    """The plain style of cadft.data.embedded (`_plain`), solved from the question's
    numbers, ending with the final answer the reference states (right or wrong), or,
    asked the question alone (no reference), the right one."""
    m = _QUESTION.search(question)
    a, b, c = int(m["a"]), int(m["b"]), int(m["c"])
    stated = re.findall(r"-?\d+", reference)[-1] if reference is not None else a + b - c
    return (
        f"{m['name']} starts with {a} {m['item']}. After getting {b} more: {a} + {b} = {a + b}. "
        f"After losing {c}: {a + b} - {c} = {a + b - c}.\nThe answer is {stated}."
    )


def split_rewrite_prompt(content: str) -> tuple[str, str | None]:
    """(question, reference) from a prompt built with DEFAULT_REWRITE_TEMPLATE; (the
    question, None) from the prompt alone (the paper's procedure)."""
    if "Problem:\n" not in content:
        return content, None
    question, rest = content.split("Problem:\n", 1)[1].split("\n\nReference solution:\n", 1)
    return question, rest.split("\n\nWrite your OWN", 1)[0]


class RewriteServer:
    """A chat-completions server on 127.0.0.1 that answers with `plain_rewrite` (first
    choice) and a shouted copy of it (second choice, far less compatible).

    `faults` maps a question to how its requests fail: "timeout" (no answer for 3 s),
    "500", or "malformed" (HTTP 200, not JSON). While `block_when()` is true, requests
    are held (at most 60 s) until `release` is set; `blocked` says one arrived.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = Counter()  # requests per question
        self.faults: dict[str, str] = {}
        self.block_when = None
        self.blocked = threading.Event()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, body) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout) or was killed

            def do_GET(self):
                self.reply(200, {"object": "list", "data": [{"id": "tiny-plain", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                question, reference = split_rewrite_prompt(body["messages"][-1]["content"])
                with server.lock:
                    server.seen[question] += 1
                release = server.release
                if server.block_when is not None and server.block_when():
                    server.blocked.set()
                    release.wait(60)
                    return self.reply(503, {"error": "released"})
                fault = server.faults.get(question)
                if fault == "timeout":
                    release.wait(3)
                elif fault == "500":
                    return self.reply(500, {"error": "internal"})
                elif fault == "malformed":
                    return self.reply(200, b'{"choices": [{"message": ')
                text = plain_rewrite(question, reference)
                texts = [text, text.upper()][: body["n"]]
                choices = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                           for i, t in enumerate(texts)]
                self.reply(200, {"id": "chatcmpl-0", "object": "chat.completion", "choices": choices})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reset(self) -> None:
        self.release.set()  # frees any held request
        self.faults, self.block_when = {}, None
        self.blocked, self.release = threading.Event(), threading.Event()
        self.seen.clear()

    def close(self) -> None:
        self.reset()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def chat_server():
    server = RewriteServer()
    yield server
    server.close()


@pytest.fixture
def server(chat_server):
    chat_server.reset()
    yield chat_server
    chat_server.reset()


# ------------------------------------------------------------------------------ helpers


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def round_logs(trainer) -> list[dict]:
    return [h for h in trainer.state.log_history if "rewrite/round" in h]


def kinds() -> dict[int, str]:
    return dict(enumerate(demos()["kind"]))


def spy_on_inputs(trainer) -> list[tuple[int, int, list[int]]]:
    """(optimizer steps done, sample id, input ids) of every training row."""
    seen = []
    compute_loss = trainer.compute_loss

    def spy(model, inputs, *args, **kwargs):
        if model.training:
            rows = zip(inputs["sample_id"].tolist(), inputs["input_ids"], inputs["attention_mask"])
            for sample_id, ids, mask in rows:
                seen.append((trainer.state.global_step, sample_id, ids[mask.bool()].tolist()))
        return compute_loss(model, inputs, *args, **kwargs)

    trainer.compute_loss = spy
    return seen


def original_ids(trainer) -> dict[int, list[int]]:
    """The input ids TRL built for each original demonstration (truncated to max_length)."""
    return dict(zip(trainer.train_dataset["sample_id"], trainer.train_dataset["input_ids"]))


def assert_trains_on_accepted_rewrites(seen, accepted: dict[int, dict], originals: dict[int, list[int]], tok) -> int:
    """Every visit from a sample's accepted round on trains on the rewrite, every other
    visit on the original. Returns how many visits trained on a rewrite."""
    on_rewrite = 0
    for steps_done, sample_id, ids in seen:
        entry = accepted.get(sample_id)
        if entry is not None and steps_done >= entry["step"]:
            text = tok.decode(ids)
            assert text.endswith(entry["text"] + "<|im_end|>\n"), (steps_done, sample_id, text)
            on_rewrite += 1
        else:
            assert ids == originals[sample_id], (steps_done, sample_id)
    return on_rewrite


def assert_close(got, want, path="state"):
    """Equal structures; floats within 1e-5."""
    if isinstance(want, float) or isinstance(got, float):
        assert got == pytest.approx(want, abs=1e-5), path
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (path, sorted(set(got) ^ set(want)))
        for key in want:
            assert_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, f"{path}[{i}]")
    else:
        assert got == want, path


def assert_dataset_keeps_every_row(output_dir: Path, accepted: dict) -> None:
    rows = load_dataset("json", data_files=str(output_dir / DATASET_FILE), split="train")
    original = demos()
    assert rows["sample_id"] == list(range(len(original)))
    for column in ("prompt", "completion", "kind", "answer"):
        assert rows[column] == original[column], column  # never lost, never changed
    for row in rows:
        entry = accepted.get(row["sample_id"])
        if entry is None:
            assert row["rewritten_completion"] is None and row["rewrite_round"] is None
        else:
            assert row["rewritten_completion"] == [{"role": "assistant", "content": entry["text"]}]
            assert row["rewrite_round"] == entry["round"]


def assert_rounds_not_duplicated(records: list[dict]) -> list[int]:
    """Rounds appear in order, each as one block. Returns them."""
    blocks = [r["round"] for i, r in enumerate(records) if i == 0 or records[i - 1]["round"] != r["round"]]
    assert blocks == sorted(set(blocks)), blocks
    return blocks


# ------------------------------------------------------------------------------ one run, in process


def test_round_rewrites_foreign_and_rejects_wrong(plain_model, server, tmp_path):
    trainer = make_trainer(plain_model, tmp_path, server.base_url, max_steps=12, rewrite_budget=16)
    seen = spy_on_inputs(trainer)
    trainer.train()
    kind = kinds()
    data = demos()

    # Delayed (default: one epoch = 4 steps), once per epoch; P = 2 flagged visits, so the
    # first round finds nobody persistent yet and the third finds the attempted ones reset
    logs = round_logs(trainer)
    assert [(h["step"], h["rewrite/round"], h["rewrite/selected"]) for h in logs] == [(4, 1, 0), (8, 2, 16)]  # none at the last step
    metrics = logs[1]
    assert all(key in h for key in ROUND_METRICS for h in logs)
    assert {k: metrics[k] for k in ROUND_METRICS if k != "rewrite/mean_gain"} == {
        "rewrite/selected": 16, "rewrite/attempted": 16, "rewrite/accepted": 4, "rewrite/rejected_verifier": 4,
        "rewrite/rejected_no_gain": 8, "rewrite/rejected_error": 0,
    }
    assert metrics["rewrite/mean_gain"] > 0.05

    records = read_jsonl(tmp_path / PROVENANCE_FILE)
    assert len(records) == 16 and all(PROVENANCE_FIELDS <= set(r) for r in records)
    assert {kind[r["sample_id"]] for r in records[:4]} == {"foreign"}  # least compatible first
    for r in records:
        assert (r["round"], r["step"], r["num_candidates"]) == (2, 8, 2)
        assert r["generator"] == f"openai:tiny-plain@{server.base_url}" and r["verifier"] == "math"
        row = data[r["sample_id"]]
        assert r["original"] == row["completion"][0]["content"] and r["reference"] == row["answer"]
        assert len(r["candidates"]) == 2
        assert all({"text", "verdict", "reason", "compat"} <= set(c) for c in r["candidates"])
        if kind[r["sample_id"]] == "foreign":
            expected = plain_rewrite(data[r["sample_id"]]["prompt"][0]["content"], r["original"])
            assert r["accepted"] and r["rejection"] is None and r["rewrite"] == expected
            assert r["compat_after"] >= r["compat_before"] + 0.01
            # the best accepted candidate: no other accepted one is more compatible
            assert r["compat_after"] == max(c["compat"] for c in r["candidates"] if c["reason"] == "accepted")
        elif kind[r["sample_id"]] == "wrong":
            assert not r["accepted"] and r["rejection"] == "verifier" and r["rewrite"] is None
            assert all(c["verdict"] is False and c["reason"].startswith("verifier: ") for c in r["candidates"])
        else:  # a plain demonstration comes back as itself: verified, but no gain
            assert not r["accepted"] and r["rejection"] == "no_gain"
            assert r["candidates"][0]["text"] == r["original"] and r["candidates"][0]["verdict"] is True

    accepted = trainer.rewriter.store.accepted
    foreign = {i for i, k in kind.items() if k == "foreign"}
    assert set(accepted) == foreign
    assert_dataset_keeps_every_row(tmp_path, accepted)

    # From the round on, the accepted samples train on their rewrite, the others on their original
    assert set(trainer.data_collator.targets) == foreign
    on_rewrite = assert_trains_on_accepted_rewrites(seen, accepted, original_ids(trainer), trainer.processing_class)
    assert on_rewrite == len(foreign)  # epoch 3 saw each once
    sample_id = min(foreign)
    index = trainer.train_dataset["sample_id"].index(sample_id)
    batch = trainer.data_collator([trainer.train_dataset[index]])
    completion = batch["input_ids"][0][batch["labels"][0] != -100]
    assert trainer.processing_class.decode(completion).startswith(accepted[sample_id]["text"] + "<|im_end|>")
    history = trainer.rewriter.tracker.records[sample_id].history
    assert [(h["round"], h["accepted"]) for h in history] == [(2, True)]


def test_failing_server_keeps_the_originals(plain_model, server, tmp_path):
    data = demos()
    foreign = [i for i, k in kinds().items() if k == "foreign"]
    faults = dict(zip(foreign, ["timeout", "500", "malformed"]))
    server.faults = {data[i]["prompt"][0]["content"]: fault for i, fault in faults.items()}
    trainer = make_trainer(plain_model, tmp_path, server.base_url, generator_kwargs=dict(timeout_s=0.5),
                           max_steps=9, rewrite_budget=16)
    start = time.perf_counter()
    trainer.train()
    assert time.perf_counter() - start < 60
    assert trainer.state.global_step == 9  # the round (after step 8) finished and so did training

    [_, metrics] = round_logs(trainer)
    assert metrics["rewrite/rejected_error"] == 3 and metrics["rewrite/accepted"] == 1
    assert metrics["rewrite/rejected_verifier"] == 4 and metrics["rewrite/rejected_no_gain"] == 8
    records = {r["sample_id"]: r for r in read_jsonl(tmp_path / PROVENANCE_FILE)}
    for sample_id, fault in faults.items():
        r = records[sample_id]
        assert not r["accepted"] and r["rejection"] == "generation_error" and r["num_candidates"] == 2
        reasons = [c["reason"] for c in r["candidates"]]
        expected = {"timeout": "timeout", "500": "HTTP 500", "malformed": "malformed response"}[fault]
        assert all(c.startswith("generation_error: ") and expected in c for c in reasons), reasons
        attempts = {"timeout": 2, "500": 2, "malformed": 1}[fault]  # max_retries=1; a bad body is not retried
        assert server.seen[data[sample_id]["prompt"][0]["content"]] == attempts, fault
    # The failed samples keep their original targets; the healthy foreign one is rewritten
    assert set(trainer.data_collator.targets) == set(foreign) - set(faults)
    assert set(trainer.rewriter.store.accepted) == set(foreign) - set(faults)
    assert_dataset_keeps_every_row(tmp_path, trainer.rewriter.store.accepted)


# ------------------------------------------------------------------------------ kill -9 and resume


@pytest.fixture(scope="module")
def uninterrupted(plain_model, chat_server, tmp_path_factory):
    """The resumable config run once without interruption, in this process."""
    chat_server.reset()
    out = tmp_path_factory.mktemp("uninterrupted")
    trainer = make_trainer(plain_model, out, chat_server.base_url, **RESUMABLE)
    seen = spy_on_inputs(trainer)
    trainer.train()
    state = json.loads(json.dumps(rewriting_state(trainer)))
    return {"state": state, "records": read_jsonl(out / PROVENANCE_FILE), "seen": seen,
            "originals": original_ids(trainer), "tok": trainer.processing_class, "rounds": round_logs(trainer)}


def test_uninterrupted_resumable_run(uninterrupted):
    """The reference for the resume tests: rounds after steps 3, 5 and 7, in mid-epoch,
    and an accepted sample visited in the very next step (the data loader collates one
    batch ahead; that batch must still train on the rewrite)."""
    run = uninterrupted
    assert [(h["step"], h["rewrite/selected"]) for h in run["rounds"]] == [(3, 3), (5, 3), (7, 3)]
    done = set()  # a sample with an accepted rewrite is never selected again
    for r in run["records"]:
        assert r["sample_id"] not in done
        done |= {r["sample_id"]} if r["accepted"] else set()
    accepted = {int(k): v for k, v in run["state"]["store"]["accepted"].items()}
    assert {v["round"] for v in accepted.values()} == {1, 2}
    assert set(run["state"]["targets"]) == {str(k) for k in accepted}
    assert assert_trains_on_accepted_rewrites(run["seen"], accepted, run["originals"], run["tok"]) > 0
    right_after = [i for steps_done, i, _ in run["seen"] if i in accepted and steps_done == accepted[i]["step"]]
    assert right_after, "no accepted sample in the step right after its round: the case to cover"


def launch(tmp_path: Path, name: str, **config) -> subprocess.Popen:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / f"{name}.log", "w")
    try:
        return subprocess.Popen([sys.executable, str(HERE / "rewrite_train.py"), str(path)], env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=str(tmp_path))
    finally:
        log.close()


def log_tail(tmp_path: Path, name: str) -> str:
    return (tmp_path / f"{name}.log").read_text()[-4000:]


def wait_until(condition, proc: subprocess.Popen, tmp_path: Path, name: str, timeout: float = RUN_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"{name} exited early ({proc.returncode}):\n{log_tail(tmp_path, name)}"
        assert time.monotonic() < deadline, f"{name}: timed out waiting\n{log_tail(tmp_path, name)}"
        time.sleep(0.05)


def kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def finish(proc: subprocess.Popen, tmp_path: Path, name: str) -> None:
    try:
        code = proc.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{name} timed out:\n{log_tail(tmp_path, name)}") from None
    assert code == 0, f"{name} failed ({code}):\n{log_tail(tmp_path, name)}"


@pytest.fixture
def processes():
    """Started subprocesses, killed at teardown if still running."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def resume_and_compare(plain_model, server, tmp_path, out: Path, uninterrupted, processes) -> dict:
    config = dict(model=plain_model, output_dir=str(out), base_url=server.base_url, resume=True,
                  dump=str(tmp_path / "resumed-{rank}.json"))
    processes.append(proc := launch(tmp_path, "resumed", **config))
    finish(proc, tmp_path, "resumed")
    resumed = json.loads((tmp_path / "resumed-0.json").read_text())
    assert_close(resumed, uninterrupted["state"])  # tracker, accepted rewrites, collator targets, m

    records = read_jsonl(out / PROVENANCE_FILE)
    assert assert_rounds_not_duplicated(records) == [1, 2, 3]
    assert_close(records, uninterrupted["records"])
    accepted = {int(k): v for k, v in resumed["store"]["accepted"].items()}
    assert_dataset_keeps_every_row(out, accepted)
    return resumed


def test_kill_after_a_round_then_resume(plain_model, server, tmp_path, uninterrupted, processes):
    """Round 2 (step 5) is in checkpoint-5; round 3 (step 7) is logged, then the run dies
    before its next checkpoint. The resumed run redoes round 3; the old rows move aside."""
    out = tmp_path / "run"
    marker = tmp_path / "paused"
    config = dict(model=plain_model, output_dir=str(out), base_url=server.base_url, pause_at_step=7,
                  pause_marker=str(marker))
    processes.append(proc := launch(tmp_path, "killed", **config))
    wait_until(marker.exists, proc, tmp_path, "killed")
    kill9(proc)
    logged = read_jsonl(out / PROVENANCE_FILE)
    assert [r["round"] for r in logged].count(3) == 3 and (out / "checkpoint-5" / "trainer_state.json").exists()
    lost = [r for r in logged if r["round"] == 3]

    resume_and_compare(plain_model, server, tmp_path, out, uninterrupted, processes)
    assert read_jsonl(out / ORPHANED_FILE) == lost  # moved, never deleted


def test_kill_during_a_round_then_resume(plain_model, server, tmp_path, uninterrupted, processes):
    """The run dies while round 3 (step 7) waits for the server; checkpoint-5 holds round 2."""
    out = tmp_path / "run"
    server.block_when = (out / "checkpoint-5" / "trainer_state.json").exists
    config = dict(model=plain_model, output_dir=str(out), base_url=server.base_url)
    processes.append(proc := launch(tmp_path, "killed", **config))
    wait_until(server.blocked.is_set, proc, tmp_path, "killed")
    kill9(proc)
    server.reset()
    assert sorted({r["round"] for r in read_jsonl(out / PROVENANCE_FILE)}) == [1, 2]  # round 3 never logged

    resume_and_compare(plain_model, server, tmp_path, out, uninterrupted, processes)
    assert not (out / ORPHANED_FILE).exists()  # nothing was logged after the checkpoint


# ------------------------------------------------------------------------------ 2 processes


def run_two_processes(plain_model, server, tmp_path, processes, out, overrides: dict) -> tuple[dict, dict]:
    """tests/rewrite_train.py under torchrun on 2 processes (gloo), 2 samples each per step;
    the rewriting state each rank dumped at the end."""
    overrides = dict(overrides, per_device_train_batch_size=2, ddp_backend="gloo", save_strategy="no")
    config = dict(model=plain_model, output_dir=str(out), base_url=server.base_url, overrides=overrides,
                  dump=str(tmp_path / "rank-{rank}.json"))
    (tmp_path / "ddp.json").write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [*torchrun(2), str(HERE / "rewrite_train.py"), str(tmp_path / "ddp.json")]
    with open(tmp_path / "ddp.log", "w") as log:
        processes.append(proc := subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp_path),
                                                  start_new_session=True))
    try:
        finish(proc, tmp_path, "ddp")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its workers
    rank0, rank1 = (json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1))
    return rank0, rank1


def test_two_process_round(plain_model, server, tmp_path, uninterrupted, processes):
    """torchrun, 2 x 2 samples per step (gloo): the round runs on rank 0 and its result
    reaches rank 1, so both train on the same targets with the same tracker."""
    out = tmp_path / "run"
    rank0, rank1 = run_two_processes(plain_model, server, tmp_path, processes, out, {})
    assert rank0["world"] == rank1["world"] == 2 and rank0["global_step"] == 8
    assert rank0 == rank1  # targets, tracker, accepted rewrites: identical on both processes
    assert rank0["targets"] and set(rank0["targets"]) == set(rank0["store"]["accepted"])
    # The same global batches as the 1-process run: the same samples are rewritten
    assert set(rank0["store"]["accepted"]) == set(uninterrupted["state"]["store"]["accepted"])
    records = read_jsonl(out / PROVENANCE_FILE)  # written once, by rank 0
    assert assert_rounds_not_duplicated(records) == [1, 2, 3]
    assert_dataset_keeps_every_row(out, {int(k): v for k, v in rank0["store"]["accepted"].items()})


def test_two_process_round_in_the_papers_mode(plain_model, server, tmp_path, processes):
    """The same 2-process run with the paper's procedure: the selection, the draws and the
    replacements are the same on both processes."""
    out = tmp_path / "run"
    rank0, rank1 = run_two_processes(plain_model, server, tmp_path, processes, out, PAPER)
    assert rank0["world"] == 2 and rank0 == rank1
    records = read_jsonl(out / PROVENANCE_FILE)
    assert assert_rounds_not_duplicated(records) == [1, 2, 3]
    assert {r["rejection"] for r in records} >= {None, "lost_draw"}  # some replaced, some kept by the draw
    replaced = {str(r["sample_id"]) for r in records if r["accepted"]}
    assert set(rank0["targets"]) == set(rank0["store"]["accepted"]) == replaced
    assert_dataset_keeps_every_row(out, {int(k): v for k, v in rank0["store"]["accepted"].items()})
