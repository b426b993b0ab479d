"""What a rewriting round must never do, with real components: a tiny Llama in a real
CADFTTrainer, a real chat-completions server on 127.0.0.1 (tests/test_generators.py's
`ChatServer`), real tokenization by TRL.

    pytest tests/test_rewriting_guards.py -q

- evaluation rows never take a training sample's rewrite;
- a sample whose prompt cannot be rewritten is rejected (`bad_prompt`), never a crash;
- with `rewrite_verifier="none"` the compatibility gain alone gates, reference or not;
- a reply over the size limit is rejected unread (`reply_too_large`) and stored cut short;
- a rewrite whose training row would not fit `max_length` is rejected (`too_long`);
- an API key that the server echoes never reaches a file;
- a policy whose tokenizer has no chat template fails at start-up;
- rewrites are tokenized and truncated exactly as TRL tokenizes training rows.

The server answers each rewrite prompt with `re:<the prompt>#<i>` (about 900 characters),
so with `rewrite_min_gain=-1` every reply that passes the screens is accepted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset

from cadft import CADFTTrainer
from cadft.cli.main import main as cadft_main
from cadft.model.tiny import tiny_llama, tiny_tokenizer
from cadft.rewriting.round import STORED_REPLY_CHARS
from cadft.rewriting.store import DATASET_FILE, PROVENANCE_FILE

from helpers import trainer_args
from test_generators import SECRET, ChatServer

pytestmark = pytest.mark.filterwarnings("ignore:verifier 'none'")


@pytest.fixture(scope="module")
def server():
    chat = ChatServer()
    yield chat
    chat.close()


def question(i: int, mode: str = "normal") -> str:
    return f"Q{i}: what is {i} plus 2? mode:{mode}"


def rows(modes: list[str]) -> list[dict]:
    """Conversational prompt-completion rows whose completions state no marked answer."""
    return [
        {"prompt": [{"role": "user", "content": question(i, mode)}],
         "completion": [{"role": "assistant", "content": f"It is {i + 2}."}]}
        for i, mode in enumerate(modes)
    ]


ENDS_WITH_ASSISTANT = {
    "prompt": [{"role": "user", "content": "Q: what is 1 plus 1?"}, {"role": "assistant", "content": "Let me see."}],
    "completion": [{"role": "assistant", "content": "It is 2."}],
}
SYSTEM_ONLY = {
    "prompt": [{"role": "system", "content": "Be brief."}],
    "completion": [{"role": "assistant", "content": "It is 3."}],
}


def rewriting_trainer(output_dir, server, train_rows, eval_rows=None, generator_kwargs=None, **overrides):
    """A trainer whose single round, after step 1 of 2, attempts every training row
    (one batch holds them all) and accepts whatever passes the screens."""
    tok = tiny_tokenizer()
    settings = dict(
        per_device_train_batch_size=len(train_rows),
        rewrite=True,
        rewrite_preset="verified",
        rewrite_selection="flagged",
        rewrite_verifier="none",
        rewrite_min_gain=-1.0,
        rewrite_flag_threshold=100.0,
        rewrite_persistence=1,
        rewrite_start_step=1,
        rewrite_budget=len(train_rows),
        rewrite_num_candidates=2,
        rewrite_temperature=1.0,
        rewrite_max_new_tokens=64,
        rewrite_generator=f"openai:test-model@{server.base_url}",
        rewrite_generator_kwargs={"api_key_env": None, "max_retries": 0, "timeout_s": 30.0,
                                  **(generator_kwargs or {})},
        max_length=2048,
    )
    args = trainer_args(output_dir, **{**settings, **overrides})
    return CADFTTrainer(tiny_llama(tok, seed=0), args=args, processing_class=tok,
                        train_dataset=Dataset.from_list(train_rows),
                        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def round_metrics(trainer) -> dict:
    [metrics] = [h for h in trainer.state.log_history if "rewrite/round" in h]
    return metrics


def spy_on_eval_inputs(trainer) -> list[tuple[int, list[int]]]:
    """(sample id, input ids) of every evaluation row the model sees."""
    seen = []
    compute_loss = trainer.compute_loss

    def spy(model, inputs, *args, **kwargs):
        if not model.training:
            for sample_id, ids, mask in zip(inputs["sample_id"].tolist(), inputs["input_ids"], inputs["attention_mask"]):
                seen.append((sample_id, ids[mask.bool()].tolist()))
        return compute_loss(model, inputs, *args, **kwargs)

    trainer.compute_loss = spy
    return seen


# ------------------------------------------------------------------------------ one round, every row


@pytest.fixture(scope="module")
def trained(server, tmp_path_factory):
    """Six rows without a marked answer and two whose prompt cannot be rewritten, with
    the `none` verifier; evaluation rows carry the same sample ids 0..5."""
    out = tmp_path_factory.mktemp("round")
    train = [*rows(["normal"] * 6), ENDS_WITH_ASSISTANT, SYSTEM_ONLY]
    evaluation = [{"prompt": [{"role": "user", "content": f"Eval {i}: what is {i} times 3?"}],
                   "completion": [{"role": "assistant", "content": f"It is {3 * i}."}]} for i in range(6)]
    trainer = rewriting_trainer(out, server, train, evaluation, max_steps=2)
    trainer.train()
    return trainer, out


def test_bad_prompts_are_rejected_and_the_round_goes_on(trained):
    trainer, out = trained
    assert trainer.state.global_step == 2  # the round after step 1 did not stop training
    records = {r["sample_id"]: r for r in read_jsonl(out / PROVENANCE_FILE)}
    assert set(records) == set(range(8))
    for sample_id, roles in [(6, "['user', 'assistant']"), (7, "['system']")]:
        r = records[sample_id]
        assert (r["accepted"], r["rejection"], r["num_candidates"]) == (False, "bad_prompt", 0)
        assert roles in r["rejection_detail"]
    metrics = round_metrics(trainer)
    assert metrics["rewrite/rejected_bad_prompt"] == 2 and metrics["rewrite/attempted"] == 6
    # ... and they keep their original targets, in the dataset file too
    assert not {6, 7} & set(trainer.data_collator.targets)
    saved = read_jsonl(out / DATASET_FILE)
    assert [row["rewritten_completion"] is None for row in saved] == [False] * 6 + [True] * 2


def test_a_round_does_not_cancel_its_steps_training_log(trained):
    """The round runs at the end of step 1; step 1's training loss is still logged."""
    trainer, _ = trained
    assert [h["step"] for h in trainer.state.log_history if "loss" in h] == [1, 2]


def test_verifier_none_gates_on_the_gain_alone(trained):
    """The rows state no final answer (no reference): with `none` they are rewritten all the same."""
    trainer, out = trained
    records = read_jsonl(out / PROVENANCE_FILE)
    normal = [r for r in records if r["sample_id"] < 6]
    assert all(r["reference"] is None and r["accepted"] and r["rejection"] is None for r in normal)
    assert round_metrics(trainer)["rewrite/rejected_no_reference"] == 0
    assert set(trainer.data_collator.targets) == set(range(6))


def test_evaluation_rows_never_take_a_training_rewrite(trained):
    trainer, _ = trained
    seen = spy_on_eval_inputs(trainer)
    trainer.evaluate()
    own = dict(zip(trainer.eval_dataset["sample_id"], trainer.eval_dataset["input_ids"]))
    assert sorted(i for i, _ in seen) == list(range(6))  # the same ids as the rewritten training rows
    assert all(ids == own[sample_id] for sample_id, ids in seen)
    # Training batches still take the rewrites
    batch = next(iter(trainer.get_train_dataloader()))
    text = trainer.processing_class.decode(batch["input_ids"][batch["sample_id"].tolist().index(0)])
    assert "re:" in text


# ------------------------------------------------------------------------------ replies that must not be kept


# The paper's procedure, every selected target drawn for replacement: the screens that
# keep training sound (reply size, length, key redaction) hold without any gate
PAPER = dict(rewrite_preset="paper", rewrite_verifier=None, rewrite_replace_prob=1.0)


@pytest.mark.parametrize("preset, max_length", [("verified", 256), ("paper", 64)])
def test_oversized_and_too_long_replies_are_rejected(server, tmp_path, preset, max_length):
    """Replies of 5 MB (over 32 x 64 characters) are rejected before verification and
    stored cut; replies whose rows exceed max_length are too long (~900 characters with the
    rewrite prompt; with the paper's prompt alone ~40, so a smaller max_length)."""
    out = tmp_path / "run"
    trainer = rewriting_trainer(out, server, rows(["huge", "normal", "normal"]), max_steps=2, max_length=max_length,
                                **(PAPER if preset == "paper" else {}))
    trainer.train()

    records = {r["sample_id"]: r for r in read_jsonl(out / PROVENANCE_FILE)}
    huge = records[0]
    assert (huge["accepted"], huge["rejection"]) == (False, "reply_too_large")
    for c in huge["candidates"]:
        assert c["reason"].startswith("reply_too_large: ") and "> 2048" in c["reason"]
        assert c["verdict"] is None and len(c["text"]) <= STORED_REPLY_CHARS + 100
    for sample_id in (1, 2):
        r = records[sample_id]
        assert (r["accepted"], r["rejection"]) == (False, "too_long")
        assert all(c["reason"].startswith("too_long: ") and f"> max_length {max_length}" in c["reason"]
                   for c in r["candidates"])
    assert trainer.data_collator.targets == {}
    metrics = round_metrics(trainer)
    assert (metrics["rewrite/rejected_reply_too_large"], metrics["rewrite/rejected_too_long"]) == (1, 2)
    assert (out / PROVENANCE_FILE).stat().st_size < 50_000 and (out / DATASET_FILE).stat().st_size < 10_000


@pytest.mark.parametrize("preset", ["verified", "paper"])
def test_an_echoed_api_key_never_reaches_a_file(server, tmp_path, monkeypatch, preset):
    monkeypatch.setenv("CADFT_TEST_KEY", SECRET)
    out = tmp_path / "run"
    trainer = rewriting_trainer(out, server, rows(["echo_auth", "badrequest"]), max_steps=2,
                                generator_kwargs={"api_key_env": "CADFT_TEST_KEY"},
                                **(PAPER if preset == "paper" else {}))
    trainer.train()
    records = {r["sample_id"]: r for r in read_jsonl(out / PROVENANCE_FILE)}
    assert records[0]["accepted"] and "Bearer [REDACTED]" in records[0]["rewrite"]
    assert all("[REDACTED]" in c["reason"] for c in records[1]["candidates"])  # the HTTP 400 body echoed it
    sent = {r["authorization"] for r in server.requests if r["body"] and "mode:echo_auth" in json.dumps(r["body"])}
    assert sent == {f"Bearer {SECRET}"}  # the key was sent
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


# ------------------------------------------------------------------------------ start-up and tokenization


def string_rows(n: int = 4) -> list[dict]:
    return [{"prompt": f"Q{i}: what is {i} plus 2?\n", "completion": f"It is {i + 2}."} for i in range(n)]


def test_a_policy_tokenizer_without_chat_template_fails_at_start_up(tmp_path):
    tok = tiny_tokenizer()
    tok.chat_template = None  # plain-text data trains without one; rewrite prompts are chats
    args = trainer_args(tmp_path, rewrite=True, rewrite_generator="policy")
    with pytest.raises(ValueError, match=r"policy model .* has no chat template"):
        CADFTTrainer(tiny_llama(tok), args=args, processing_class=tok, train_dataset=Dataset.from_list(string_rows()))


def test_cadft_rewrite_fails_at_start_up_without_chat_template(tmp_path, capsys):
    tok = tiny_tokenizer()
    tok.chat_template = None
    tiny_llama(tok).save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in string_rows()))
    with pytest.raises(SystemExit) as exit_info:
        cadft_main(["rewrite", "--model_name_or_path", str(tmp_path / "model"), "--dataset_path", str(data),
                    "--output_dir", str(tmp_path / "out"), "--verifier", "none"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "has no chat template" in error and str(tmp_path / "model") in error


@pytest.mark.parametrize("truncation_mode, max_length", [("keep_start", 80), ("keep_end", 80), ("keep_start", None)])
def test_rewrites_are_tokenized_like_training_rows(tmp_path, truncation_mode, max_length):
    """The rewriter's tokenization of a completion is TRL's training row for it, cut the
    same way; untruncated, its length is what the `too_long` check compares."""
    tok = tiny_tokenizer()
    long = {"prompt": [{"role": "user", "content": "x" * 30}],
            "completion": [{"role": "assistant", "content": "It is " + "y" * 40}]}  # 97 tokens in all
    data = [*rows(["normal"] * 3), long]
    args = trainer_args(tmp_path, rewrite=True, truncation_mode=truncation_mode, max_length=max_length)
    trainer = CADFTTrainer(tiny_llama(tok), args=args, processing_class=tok, train_dataset=Dataset.from_list(data))
    rewriter = trainer.rewriter
    for row in trainer.train_dataset:
        original = rewriter.rows[row["sample_id"]]
        mine = rewriter.tokenize(original["prompt"], original["completion"], original["completion"][0]["content"])
        assert mine == {"input_ids": row["input_ids"], "labels": row["labels"]}, row["sample_id"]
        length = rewriter.length(original["prompt"], original["completion"][0]["content"])
        assert length == len(row["input_ids"]) if max_length is None else length >= len(row["input_ids"])
    if max_length is not None:  # some rows were cut: the test covers truncation
        assert any(rewriter.length(r["prompt"], r["completion"][0]["content"]) > max_length
                   for r in rewriter.rows.values())
