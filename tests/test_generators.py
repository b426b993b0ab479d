"""Rewrite generators and the rewrite prompt, with real components: tiny random models,
PEFT, and a real chat-completions HTTP server on 127.0.0.1.

    pytest tests/test_generators.py -q
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cadft.model.tiny import save_tiny, tiny_llama, tiny_tokenizer
from cadft.rewriting import (
    DEFAULT_REWRITE_TEMPLATE,
    Candidate,
    GenerationSettings,
    LocalModelGenerator,
    OpenAIChatGenerator,
    PolicyGenerator,
    RewriteGenerator,
    VLLMGenerator,
    make_generator,
    rewrite_messages,
)
from cadft.rewriting.generators import redact_key

SECRET = "sk-test-7f3a9c1e5b0d"  # must never show up in errors, logs or reprs
FAST = dict(max_retries=2, backoff_s=0.01, timeout_s=5.0)  # quick retries for the loopback server
TWO = GenerationSettings(max_new_tokens=8, temperature=1.0, top_p=1.0, num_candidates=2)


# --------------------------------------------------------------------------- a loopback chat server


class ChatServer:
    """A chat-completions server on 127.0.0.1. The word `mode:<name>` in the last message
    picks how it answers that request:

    normal (default)  n choices "re:<content>#<i>", listed in reverse index order
    one_choice        a single choice "re:<content>#req<k>" whatever n is
    slow              answers only after the test ends (or 5 s): the client times out
    flaky             HTTP 503 twice for this content, then normal
    ratelimited       HTTP 429 (Retry-After: 0) once for this content, then normal
    down              HTTP 500 always
    badrequest        HTTP 400, echoing the request's Authorization header in the body
    malformed         HTTP 200 with a body that is not JSON
    nochoices         HTTP 200 with JSON that has no `choices`
    echo_auth         n choices quoting the request's Authorization header (a server that echoes its input)
    huge              n choices of 5 MB each (a server that ignores max_tokens)
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.seen = Counter()  # requests per message content
        self.requests: list[dict] = []  # {"path", "authorization", "body"}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body, headers=()):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in headers:
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_GET(self):
                authorization = self.headers.get("Authorization")
                server.record(self.path, authorization, None)
                if self.path != "/v1/models":
                    return self.reply(404, {"error": "not found"})
                if authorization and "rejected" in authorization:
                    return self.reply(401, {"error": {"message": f"invalid key {authorization}"}})
                self.reply(200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                authorization = self.headers.get("Authorization")
                content = body["messages"][-1]["content"]
                count = server.record(self.path, authorization, body, content)
                mode = re.search(r"mode:(\w+)", content)
                mode = mode.group(1) if mode else "normal"
                if self.path != "/v1/chat/completions":
                    return self.reply(404, {"error": "not found"})
                if mode == "slow":
                    server.release.wait(5)
                elif mode == "flaky" and count <= 2:
                    return self.reply(503, {"error": "overloaded"})
                elif mode == "ratelimited" and count <= 1:
                    return self.reply(429, {"error": "slow down"}, headers=[("Retry-After", "0")])
                elif mode == "down":
                    return self.reply(500, {"error": "internal"})
                elif mode == "badrequest":
                    return self.reply(400, {"error": {"message": f"rejected request with {authorization}"}})
                elif mode == "malformed":
                    return self.reply(200, b'{"choices": [ oops')
                elif mode == "nochoices":
                    return self.reply(200, {"id": "chatcmpl-1", "object": "chat.completion"})
                if mode == "one_choice":
                    texts = [f"re:{content}#req{count}"]
                elif mode == "echo_auth":
                    texts = [f"you sent {authorization}; #### 5 #{i}" for i in range(body["n"])]
                elif mode == "huge":
                    texts = [f"#### 5 #{i} " + "blah " * 1_000_000 for i in range(body["n"])]
                else:
                    texts = [f"re:{content}#{i}" for i in range(body["n"])]
                choices = [
                    {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    for i, text in enumerate(texts)
                ]
                self.reply(200, {"id": "chatcmpl-1", "object": "chat.completion", "choices": choices[::-1]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def record(self, path, authorization, body, content=None) -> int:
        with self.lock:
            self.requests.append({"path": path, "authorization": authorization, "body": body})
            if content is None:
                return 0
            self.seen[content] += 1
            return self.seen[content]

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    chat = ChatServer()
    yield chat
    chat.close()


@pytest.fixture
def closed_port_url():
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def user(content: str) -> list[dict]:
    return [{"role": "user", "content": content}]


# --------------------------------------------------------------------------- OpenAI-compatible server


def test_openai_round_in_order_with_per_item_errors(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    generator = OpenAIChatGenerator(server.base_url, "test-model", concurrency=3, **FAST)
    assert isinstance(generator, RewriteGenerator)
    assert generator.name == f"openai:test-model@{server.base_url}"
    contents = ["q0", "q1 mode:malformed", "q2", "q3 mode:nochoices", "q4 mode:badrequest", "q5 mode:down", "q6"]
    results = generator.generate([user(c) for c in contents], TWO)

    assert len(results) == len(contents) and all(len(r) == 2 for r in results)
    for i in (0, 2, 6):  # in the caller's order, choices sorted by index
        assert [c.text for c in results[i]] == [f"re:{contents[i]}#0", f"re:{contents[i]}#1"]
        assert all(c.error is None for c in results[i])
    for i, reason in [(1, "malformed response: not JSON"), (3, "malformed response: no 'choices'")]:
        assert all(c.text is None and c.error.startswith(reason) for c in results[i])
    assert all(c.text is None and c.error.startswith("HTTP 400") for c in results[4])
    assert all(c.text is None and "HTTP 500" in c.error and "after 3 attempts" in c.error for c in results[5])
    assert server.seen["q4 mode:badrequest"] == 1  # a 4xx is not retried
    assert server.seen["q1 mode:malformed"] == 1
    assert server.seen["q5 mode:down"] == 3  # max_retries=2: three attempts
    body = next(r["body"] for r in server.requests if r["body"] and r["body"]["messages"] == user("q0"))
    sampling = {"max_tokens": 8, "temperature": 1.0, "top_p": 1.0, "n": 2}
    assert body == {"model": "test-model", "messages": user("q0"), **sampling}
    assert all(r["authorization"] is None for r in server.requests)  # no key set: no header


def test_openai_retries_5xx_and_429_then_succeeds(server):
    generator = OpenAIChatGenerator(server.base_url, "test-model", api_key_env=None, **{**FAST, "max_retries": 3})
    results = generator.generate([user("a mode:flaky"), user("b mode:ratelimited")], TWO)
    assert [c.text for c in results[0]] == ["re:a mode:flaky#0", "re:a mode:flaky#1"]
    assert [c.text for c in results[1]] == ["re:b mode:ratelimited#0", "re:b mode:ratelimited#1"]
    assert server.seen["a mode:flaky"] == 3  # two 503s, then success
    assert server.seen["b mode:ratelimited"] == 2


def test_openai_timeout_is_a_per_item_error(server):
    generator = OpenAIChatGenerator(
        server.base_url, "test-model", api_key_env=None, timeout_s=0.3, max_retries=1, backoff_s=0.01
    )
    start = time.perf_counter()
    results = generator.generate([user("fast"), user("x mode:slow"), user("also fast")], TWO)
    assert time.perf_counter() - start < 3
    assert results[0][0].text == "re:fast#0" and results[2][1].text == "re:also fast#1"
    assert all(c.text is None and "timeout" in c.error and "after 2 attempts" in c.error for c in results[1])
    assert server.seen["x mode:slow"] == 2  # timeouts are retried


def test_openai_asks_again_when_the_server_returns_fewer_choices(server):
    generator = OpenAIChatGenerator(server.base_url, "test-model", api_key_env=None, **FAST)
    settings = GenerationSettings(max_new_tokens=8, num_candidates=3)
    [candidates] = generator.generate([user("m mode:one_choice")], settings)
    assert [c.text for c in candidates] == [f"re:m mode:one_choice#req{k}" for k in (1, 2, 3)]
    asked = [r["body"]["n"] for r in server.requests if r["body"]]
    assert asked == [3, 2, 1]


def test_openai_api_key_is_sent_but_never_shown(server, closed_port_url, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CADFT_TEST_KEY", SECRET)
    generator = OpenAIChatGenerator(server.base_url, "test-model", api_key_env="CADFT_TEST_KEY", **FAST)
    generator.check()
    results = generator.generate([user("ok"), user("k mode:badrequest"), user("k mode:down")], TWO)

    assert {r["authorization"] for r in server.requests} == {f"Bearer {SECRET}"}
    assert results[0][0].text == "re:ok#0"
    assert "HTTP 400" in results[1][0].error and "[REDACTED]" in results[1][0].error  # the server echoed it
    assert "retrying" in caplog.text  # the 500s were logged ...
    shown = [c.error for r in results for c in r if c.error] + [caplog.text, repr(generator), generator.name]
    shown.append(repr(vars(generator)))
    unreachable = OpenAIChatGenerator(closed_port_url, "test-model", api_key_env="CADFT_TEST_KEY", **FAST)
    with pytest.raises(ConnectionError) as error:
        unreachable.check()
    shown.append(str(error.value))
    monkeypatch.setenv("CADFT_TEST_KEY", "rejected-" + SECRET)
    with pytest.raises(PermissionError, match=r"rejected \$CADFT_TEST_KEY") as error:
        generator.check()
    shown.append(str(error.value))
    assert all(SECRET not in text for text in shown)  # ... but the key never was


def test_openai_replies_that_echo_the_key_are_redacted(server, monkeypatch):
    """A server that echoes the request hands the key back, in a reply or in an error;
    neither may carry it on (into rewrites.jsonl, a log, an exception)."""
    monkeypatch.setenv("CADFT_TEST_KEY", SECRET)
    generator = OpenAIChatGenerator(server.base_url, "test-model", api_key_env="CADFT_TEST_KEY", **FAST)
    echoed, rejected = generator.generate([user("e mode:echo_auth"), user("b mode:badrequest")], TWO)
    assert [c.text for c in echoed] == [f"you sent Bearer [REDACTED]; #### 5 #{i}" for i in range(2)]
    assert all(c.text is None and "Bearer [REDACTED]" in c.error for c in rejected)
    assert all(SECRET not in (c.text or c.error) for c in echoed + rejected)


def test_redaction_also_covers_a_key_cut_by_an_excerpt():
    assert redact_key(f"a {SECRET} b {SECRET}", SECRET) == "a [REDACTED] b [REDACTED]"
    assert redact_key(f"error body ... Bearer {SECRET[:9]}", SECRET) == "error body ... Bearer [REDACTED]"
    assert redact_key("nothing to hide", SECRET) == "nothing to hide"


def test_openai_check(server, closed_port_url, caplog):
    OpenAIChatGenerator(server.base_url, "test-model", api_key_env=None).check()
    OpenAIChatGenerator(server.base_url, "other-model", api_key_env=None).check()
    assert "does not list model 'other-model'" in caplog.text
    # The base URL may omit /v1
    OpenAIChatGenerator(server.base_url.removesuffix("/v1"), "test-model", api_key_env=None).check()

    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=re.escape(closed_port_url)):
        OpenAIChatGenerator(closed_port_url, "test-model", api_key_env=None).check()
    assert time.perf_counter() - start < 2


def test_openai_unreachable_round_fails_fast(closed_port_url):
    generator = OpenAIChatGenerator(
        closed_port_url, "m", api_key_env=None, max_retries=2, backoff_s=0.05, concurrency=2
    )
    start = time.perf_counter()
    results = generator.generate([user(f"q{i}") for i in range(12)], TWO)
    assert time.perf_counter() - start < 3  # one retry cycle, not twelve
    assert len(results) == 12 and all(len(r) == 2 and all(c.text is None for c in r) for r in results)
    assert "unreachable" in results[0][0].error
    assert all(re.search("unreachable|skipped", c.error) for r in results for c in r)


def test_openai_rejects_bad_arguments():
    with pytest.raises(ValueError, match="http"):
        OpenAIChatGenerator("localhost:8000", "m")
    with pytest.raises(ValueError, match="api_key_env"):
        OpenAIChatGenerator("http://user:pw@localhost:8000/v1", "m")
    with pytest.raises(ValueError, match="concurrency"):
        OpenAIChatGenerator("http://localhost:8000/v1", "m", concurrency=0)


# --------------------------------------------------------------------------- local models


def assert_all_training(model):
    assert all(module.training for module in model.modules())


def test_policy_generator_restores_training_mode_and_isolates_failures(tok):
    model = tiny_llama(tok, seed=0).train()
    generator = PolicyGenerator(model, tok, batch_size=2)
    assert isinstance(generator, RewriteGenerator) and generator.name == "policy"
    conversations = [user("What is 2+2?"), [{"role": "user", "content": 5}], rewrite_messages("Q: 1+1?", "#### 2")]
    results = generator.generate(conversations, TWO)

    assert_all_training(model)
    assert len(results) == 3 and all(len(r) == 2 for r in results)
    assert all(isinstance(c.text, str) and c.error is None for i in (0, 2) for c in results[i])
    assert all(c.text is None and "TypeError" in c.error for c in results[1])  # content 5 is not text
    assert generator.generate([], TWO) == []


def test_policy_generator_with_peft_model(tok):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_llama(tok, seed=1), LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).train()
    results = PolicyGenerator(model, tok).generate([user("hi"), user("2*3?")], GenerationSettings(max_new_tokens=6))
    assert_all_training(model)
    assert [len(r) for r in results] == [2, 2] and all(c.error is None for r in results for c in r)


def test_local_model_generator_loads_lazily(tmp_path):
    path = save_tiny(tmp_path / "tiny")
    generator = LocalModelGenerator(path, batch_size=4, device="cpu")
    assert generator.name == f"local:{path}" and generator.model is None
    settings = GenerationSettings(max_new_tokens=6, num_candidates=3)
    results = generator.generate([user("a"), user("bb"), user("ccc")], settings)
    assert generator.model is not None and not generator.model.training
    assert [len(r) for r in results] == [3, 3, 3] and all(isinstance(c.text, str) for r in results for c in r)


def test_generators_without_a_chat_template_fail_at_check(tok, tmp_path):
    plain = tiny_tokenizer()
    plain.chat_template = None
    with pytest.raises(ValueError, match=r"policy model .* has no chat template"):
        PolicyGenerator(tiny_llama(plain), plain).check()
    PolicyGenerator(tiny_llama(tok), tok).check()  # the tiny tokenizer has one
    path = tmp_path / "plain"
    tiny_llama(plain).save_pretrained(path)
    plain.save_pretrained(path)
    with pytest.raises(ValueError, match=f"model '{path}' cannot write rewrites: its tokenizer .* no chat template"):
        LocalModelGenerator(str(path), device="cpu").check()


def test_local_model_generator_bad_path_raises_at_check(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    generator = LocalModelGenerator(str(tmp_path / "missing"))  # constructing loads nothing
    with pytest.raises(OSError):
        generator.check()


# --------------------------------------------------------------------------- specs, settings, candidates


def test_make_generator(tok, tmp_path):
    model = tiny_llama(tok)
    assert isinstance(make_generator("policy", policy_model=model, tokenizer=tok, batch_size=2), PolicyGenerator)
    local = make_generator("local:embedded", device="cpu")
    assert isinstance(local, LocalModelGenerator) and local.name == "local:embedded" and local.model is None
    remote = make_generator("openai:gpt-4o-mini@https://api.example.com/v1", timeout_s=5)
    assert (remote.model, remote.base_url, remote.timeout_s) == ("gpt-4o-mini", "https://api.example.com/v1", 5)
    assert remote.name == "openai:gpt-4o-mini@https://api.example.com/v1"
    assert make_generator("openai:org/model@v2@http://127.0.0.1:9/v1").model == "org/model@v2"

    with pytest.raises(ValueError, match="needs the policy model"):
        make_generator("policy")
    for bad in ["", "foo", "local:", "vllm:", "policy:x", "hub:model"]:
        with pytest.raises(ValueError, match="valid forms: 'policy', 'local:<path-or-name>'"):
            make_generator(bad)
    for bad in ["openai", "openai:gpt-4o", "openai:@http://localhost", "openai:m@localhost:8000"]:
        with pytest.raises(ValueError, match="openai:<model>@<base_url>"):
            make_generator(bad)


def test_vllm_generator_without_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=re.escape("pip install cadft[vllm]")):
            make_generator("vllm:embedded")
    else:
        generator = make_generator("vllm:embedded")  # builds no engine yet
        assert isinstance(generator, VLLMGenerator) and generator.name == "vllm:embedded"


def test_settings_and_candidate_validation():
    assert GenerationSettings() == GenerationSettings(256, 0.7, 0.95, 2)
    GenerationSettings(temperature=0, num_candidates=1)
    for bad in [dict(num_candidates=0), dict(max_new_tokens=0), dict(top_p=0), dict(temperature=-1)]:
        with pytest.raises(ValueError):
            GenerationSettings(**bad)
    with pytest.raises(ValueError, match="greedy"):
        GenerationSettings(temperature=0)  # two identical candidates
    assert Candidate("x").error is None and Candidate(None, "why").text is None
    with pytest.raises(ValueError, match="exactly one"):
        Candidate(None)
    with pytest.raises(ValueError, match="exactly one"):
        Candidate("x", "why")


# --------------------------------------------------------------------------- the rewrite prompt


def test_rewrite_messages_from_a_string():
    [message] = rewrite_messages("How many legs do 2 cats have? {x}", "2 * 4 = 8\n#### 8")
    assert message["role"] == "user"
    assert message["content"] == DEFAULT_REWRITE_TEMPLATE.format(
        question="How many legs do 2 cats have? {x}", reference="2 * 4 = 8\n#### 8"
    )
    assert "How many legs do 2 cats have? {x}" in message["content"] and "#### 8" in message["content"]
    assert "\\boxed{<answer>}" in message["content"] and "own" in message["content"]  # {{ }} became { }


def test_rewrite_messages_keeps_the_system_turn_and_earlier_turns():
    prompt = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "2+2?"},
    ]
    messages = rewrite_messages(prompt, "The answer is 4", template="Q={question} R={reference}")
    assert messages[:3] == prompt[:3]
    assert messages[3] == {"role": "user", "content": "Q=2+2? R=The answer is 4"}
    assert prompt[3]["content"] == "2+2?"  # the input is untouched


def test_rewrite_messages_errors():
    for template, match in [
        ("{question} only", r"must contain \{reference\}"),
        ("{reference} only", r"must contain \{question\}"),
        ("{question} {reference} {answer}", "unknown fields 'answer'"),
        ("{question} {reference} {}", "positional"),
        ("{question} {reference} }", "literal brace"),
    ]:
        with pytest.raises(ValueError, match=match):
            rewrite_messages("q", "r", template=template)
    rewrite_messages("q", "r", template="{{literal}} {question} {reference}")
    with pytest.raises(ValueError, match="no user turn"):
        rewrite_messages([{"role": "system", "content": "s"}], "r")
    with pytest.raises(ValueError, match="must end with a user turn"):
        rewrite_messages([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "r")
    with pytest.raises(TypeError):
        rewrite_messages(42, "r")


def test_openai_reply_bodies_over_the_cap_are_not_read(server):
    """A server that ignores max_tokens (n choices of 5 MB): with a 1 MiB cap the body is
    cut off unread and the conversation fails with the reason; under the default cap it
    is read (and the round rejects the replies as too large, tests/test_rewriting_guards.py)."""
    capped = OpenAIChatGenerator(server.base_url, "test-model", api_key_env=None, max_body_bytes=2**20, **FAST)
    [candidates] = capped.generate([user("q mode:huge")], TWO)
    assert all(c.text is None and c.error.startswith("reply body over max_body_bytes=1048576") for c in candidates)
    [candidates] = OpenAIChatGenerator(server.base_url, "test-model", api_key_env=None, **FAST).generate(
        [user("q mode:huge")], TWO)
    assert all(c.text is not None and len(c.text) > 5_000_000 for c in candidates)
