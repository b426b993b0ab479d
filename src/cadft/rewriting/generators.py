"""Rewrite generators: who writes the candidate rewrites of a demonstration.

    generator = make_generator("openai:Qwen2.5-7B-Instruct@http://localhost:8000/v1")
    generator.check()  # at start-up: fails fast when the server is unreachable
    conversations = [rewrite_messages(row["prompt"], row["completion"]) for row in rows]
    candidates = generator.generate(conversations, GenerationSettings(num_candidates=2))
    candidates[0][1].text  # the second candidate for the first conversation (or None, then .error says why)

Every generator maps a list of chat conversations (or plain-text prompts: the prompt
alone of string data, which a local model continues as it is and a server gets as one
user turn) to one list of
`settings.num_candidates` `Candidate`s per conversation, in order. A failure that
concerns some conversations (an unencodable prompt, a server error, a malformed
response) becomes `Candidate(None, error=...)` entries for them and never raises;
misconfiguration (a model that cannot be loaded, vLLM not installed) raises.

- `policy`: the model being trained (a PEFT model too), through `cadft.model.generation.generate`.
- `local:<path-or-name>`: a separate local model (`embedded`, a folder, a hub name),
  loaded on first use (or by `check()`).
- `openai:<model>@<base_url>`: an OpenAI-compatible chat-completions server.
- `vllm:<path-or-name>`: a separate model in vLLM (needs `pip install cadft[vllm]` and a GPU).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "GENERATOR_SPECS",
    "REPLY_CHARS_PER_TOKEN",
    "Candidate",
    "GenerationSettings",
    "LocalModelGenerator",
    "OpenAIChatGenerator",
    "PolicyGenerator",
    "RewriteGenerator",
    "VLLMGenerator",
    "make_generator",
    "redact_key",
]

logger = logging.getLogger(__name__)

REDACTED = "[REDACTED]"  # stands in for the API key wherever a server echoed it

GENERATOR_SPECS = ("policy", "local:<path-or-name>", "openai:<model>@<base_url>", "vllm:<path-or-name>")


# The longest tokens of common vocabularies (runs of spaces, dashes) are 16 to 32
# characters, and a typical token is about 4: a reply of more than 32 characters per
# allowed token did not come from `max_new_tokens` tokens of generation
REPLY_CHARS_PER_TOKEN = 32


@dataclass(frozen=True)
class GenerationSettings:
    """How candidates are sampled, whatever the generator."""

    max_new_tokens: int = 256  # a full GSM8K-style solution; a cut-off one has no final answer
    temperature: float = 0.7  # diverse candidates that still read like the model's own
    top_p: float = 0.95  # trims the unreliable tail of the distribution (CADFTConfig's default: the paper's 0.9)
    num_candidates: int = 2  # more candidates raise the acceptance rate, at linear cost
    # Longer replies are rejected unread (None: REPLY_CHARS_PER_TOKEN x max_new_tokens): a
    # server that ignores max_tokens, or echoes its input, cannot flood the round or the files
    max_reply_chars: int | None = None

    def __post_init__(self):
        if self.max_new_tokens < 1 or self.num_candidates < 1:
            raise ValueError(
                f"max_new_tokens and num_candidates must be >= 1, got {self.max_new_tokens} and {self.num_candidates}"
            )
        if self.max_reply_chars is not None and self.max_reply_chars < 1:
            raise ValueError(f"max_reply_chars must be >= 1 (or None), got {self.max_reply_chars}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature} and {self.top_p}")
        if self.temperature == 0 and self.num_candidates > 1:
            raise ValueError("temperature 0 (greedy) gives identical candidates; use temperature > 0 for several")

    @property
    def reply_char_limit(self) -> int:
        """The most characters a reply may have: `max_reply_chars`, else
        REPLY_CHARS_PER_TOKEN per token of `max_new_tokens`."""
        return self.max_reply_chars or REPLY_CHARS_PER_TOKEN * self.max_new_tokens


@dataclass(frozen=True)
class Candidate:
    """One generated rewrite: its text, or why there is none. Exactly one is set."""

    text: str | None
    error: str | None = None

    def __post_init__(self):
        if (self.text is None) == (self.error is None):
            raise ValueError("a Candidate holds exactly one of text and error")


@runtime_checkable
class RewriteGenerator(Protocol):
    name: str  # recorded in each rewrite's provenance, e.g. "policy" or "openai:gpt-4o-mini@https://..."

    def generate(self, conversations: list[list[dict]], settings: GenerationSettings) -> list[list[Candidate]]:
        """`settings.num_candidates` candidates per conversation, in order; never raises
        for a failure that concerns single conversations."""
        ...


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300]}" if text else type(error).__name__


def _failed(count: int, reason: str) -> list[Candidate]:
    return [Candidate(None, error=reason)] * count


def _batch_then_each(generate_batch, conversations, count: int) -> list[list[Candidate]]:
    """Run `generate_batch(conversations) -> list[list[str]]` on all conversations; if the
    batch fails, run it on each conversation alone, so one bad conversation (unencodable,
    too long) fails only itself."""
    if not conversations:
        return []
    try:
        return [[Candidate(text) for text in texts] for texts in generate_batch(conversations)]
    except Exception as error:  # noqa: BLE001 - retried one by one below, where it is recorded
        logger.warning("batched rewrite generation failed (%s); retrying one conversation at a time", _describe(error))
        _free_accelerator_memory()
    results = []
    for conversation in conversations:
        try:
            results.append([Candidate(text) for text in generate_batch([conversation])[0]])
        except Exception as error:  # noqa: BLE001 - a per-conversation failure becomes its candidates' error
            results.append(_failed(count, _describe(error)))
            _free_accelerator_memory()
    return results


def _free_accelerator_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # after an OOM, so that the smaller retries can fit


def _log_round(name: str, results: list[list[Candidate]], seconds: float) -> None:
    failed = sum(c.error is not None for candidates in results for c in candidates)
    total = sum(len(candidates) for candidates in results)
    logger.info(
        "%s: %d candidates for %d conversations in %.1f s, %d failed", name, total, len(results), seconds, failed
    )


# --------------------------------------------------------------------------- local models


class PolicyGenerator:
    """The model being trained writes its own rewrites.

    Runs `cadft.model.generation.generate`: eval mode without gradients, each
    module's training flag restored afterwards, so the trainer may call it mid-run. Pass
    the unwrapped model (not a DDP/FSDP wrapper); a PEFT model generates with its adapter.
    """

    name = "policy"

    def __init__(self, model, tokenizer, *, batch_size: int = 8):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"PolicyGenerator(model={type(self.model).__name__}, batch_size={self.batch_size})"

    def check(self) -> None:
        """The policy is already in memory; its tokenizer must have a chat template, since
        every rewrite prompt is a chat conversation."""
        name = getattr(getattr(self.model, "config", None), "_name_or_path", "") or type(self.model).__name__
        _require_chat_template(self.tokenizer, f"the policy model {name!r} (rewrite_generator='policy')")

    def generate(
        self, conversations: list[list[dict]], settings: GenerationSettings, *, synced: bool = False,
        progress: bool = True,
    ) -> list[list[Candidate]]:
        """`synced=True`: every process generates its own share of the same length, in step
        (the parameters are sharded across processes); a failed batch then raises instead of
        being retried one conversation at a time, which would desynchronise the processes."""
        start = time.perf_counter()
        results = _generate_with_transformers(
            self.model, self.tokenizer, conversations, settings, self.batch_size, synced=synced, progress=progress
        )
        _log_round(self.name, results, time.perf_counter() - start)
        return results


class LocalModelGenerator:
    """A separate local model (`embedded`, a model or LoRA-adapter folder, or a hub name).

    It is loaded on the first `generate` (or by `check()`, to fail at start-up rather than
    at the first rewriting round) and then stays in memory. `device` None means the
    current CUDA device when there is one, else the CPU. A model that cannot be loaded
    raises: that is misconfiguration, not a per-conversation failure.
    """

    def __init__(self, name_or_path: str, *, batch_size: int = 8, device: str | None = None):
        if not name_or_path:
            raise ValueError("LocalModelGenerator needs a model: 'embedded', a folder or a hub name")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.name_or_path = name_or_path
        self.batch_size = batch_size
        self.device = device
        self.name = f"local:{name_or_path}"
        self.model = None
        self.tokenizer = None

    def __repr__(self) -> str:
        state = "loaded" if self.model is not None else "not loaded"
        return (
            f"LocalModelGenerator({self.name_or_path!r}, batch_size={self.batch_size}, device={self.device!r}, {state})"
        )

    def check(self) -> None:
        """Load the model now, so that a bad path or name, or a tokenizer without a chat
        template, fails at start-up."""
        self._load()
        _require_chat_template(self.tokenizer, f"the rewrite generator model {self.name_or_path!r}")

    def _load(self) -> None:
        if self.model is not None:
            return
        import torch

        from ..model.loading import load_model_and_tokenizer

        device = self.device
        if device is None:
            device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
        logger.info("loading the rewrite generator model %s on %s", self.name_or_path, device)
        model, tokenizer = load_model_and_tokenizer(self.name_or_path)
        self.model, self.tokenizer = model.to(device).eval(), tokenizer

    def generate(self, conversations: list[list[dict]], settings: GenerationSettings) -> list[list[Candidate]]:
        self._load()
        start = time.perf_counter()
        results = _generate_with_transformers(self.model, self.tokenizer, conversations, settings, self.batch_size)
        _log_round(self.name, results, time.perf_counter() - start)
        return results


def _require_chat_template(tokenizer, owner: str) -> None:
    """Raise a ValueError naming `owner` and its tokenizer unless the tokenizer has a chat
    template: without one every candidate of every round would fail, one by one."""
    if getattr(tokenizer, "chat_template", None):
        return
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    raise ValueError(
        f"{owner} cannot write rewrites: its tokenizer ({name}) has no chat template, and the rewrite prompt "
        "is a chat conversation. Use a chat (instruct) model, set tokenizer.chat_template, or choose another "
        "generator (local:<path>, openai:<model>@<url>)."
    )


def _generate_with_transformers(model, tokenizer, conversations, settings, batch_size, *, synced=False, progress=True):
    from ..model.generation import generate as generate_texts  # imports torch: only when a model is used

    def generate_batch(batch):
        return generate_texts(
            model,
            tokenizer,
            batch,
            max_new_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            num_return_sequences=settings.num_candidates,
            batch_size=batch_size,
            progress=progress and len(batch) > 1,  # a bar for the round; none for one-by-one retries
            synced_gpus=True if synced else None,
        )

    if synced:
        return [[Candidate(text) for text in texts] for texts in generate_batch(conversations)] if conversations else []
    return _batch_then_each(generate_batch, conversations, settings.num_candidates)


class VLLMGenerator:
    """A separate model served in-process by vLLM (GPU machines; `pip install cadft[vllm]`).

    The engine is built on the first `generate` (or by `check()`) with
    `cadft.evaluation.vllm.load_vllm`, which merges a LoRA adapter folder into its base model
    first. vLLM reserves most of the GPU's memory for itself by default: next to a model
    in training, pass e.g. `gpu_memory_utilization=0.3` (forwarded to `vllm.LLM`).
    """

    def __init__(self, name_or_path: str, *, seed: int = 0, **llm_kwargs):
        try:
            import vllm  # noqa: F401
        except ImportError as error:
            raise ImportError(
                f"the vllm rewrite generator needs vLLM, which is not importable here ({error}); "
                "install it with `pip install cadft[vllm]` (CUDA GPU machines), or use "
                f"'local:{name_or_path}' instead"
            ) from None
        if not name_or_path:
            raise ValueError("VLLMGenerator needs a model: 'embedded', a folder or a hub name")
        self.name_or_path = name_or_path
        self.seed = seed
        self.llm_kwargs = llm_kwargs
        self.name = f"vllm:{name_or_path}"
        self.llm = None
        self.tokenizer = None

    def __repr__(self) -> str:
        return f"VLLMGenerator({self.name_or_path!r}, seed={self.seed}, {'loaded' if self.llm else 'not loaded'})"

    def check(self) -> None:
        """Build the engine now, so that a bad model, too little GPU memory or a tokenizer
        without a chat template fails at start-up."""
        self._load()
        _require_chat_template(self.tokenizer, f"the rewrite generator model {self.name_or_path!r}")

    def _load(self) -> None:
        if self.llm is None:
            from ..evaluation.vllm import load_vllm

            self.llm, self.tokenizer = load_vllm(self.name_or_path, seed=self.seed, **self.llm_kwargs)

    def generate(self, conversations: list[list[dict]], settings: GenerationSettings) -> list[list[Candidate]]:
        from ..evaluation.sampling import Sampling
        from ..evaluation.vllm import generate_vllm

        self._load()
        start = time.perf_counter()
        sampling = Sampling(settings.num_candidates, settings.temperature, settings.top_p, settings.max_new_tokens)

        def generate_batch(batch):
            return generate_vllm(self.llm, self.tokenizer, batch, sampling, progress=True)

        results = _batch_then_each(generate_batch, conversations, settings.num_candidates)
        _log_round(self.name, results, time.perf_counter() - start)
        return results


# --------------------------------------------------------------------------- OpenAI-compatible server


class _RetryableError(Exception):
    """A failure worth retrying: no connection, a timeout, HTTP 429 or 5xx."""

    def __init__(self, reason: str, *, unreachable: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable  # no answer at all, as opposed to an error answer
        self.retry_after = retry_after


class _FinalError(Exception):
    """A failure that retrying will not fix: HTTP 4xx (not 429), a malformed response."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would resend the Authorization header to wherever it points
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class OpenAIChatGenerator:
    """An OpenAI-compatible `/v1/chat/completions` server (OpenAI, vLLM, SGLang, llama.cpp, ...).

    `base_url` is the API root, as for the `openai` client: `http://localhost:8000/v1`;
    a URL without a path gets `/v1` (so `http://localhost:8000` works too). Requests go to
    `<base_url>/chat/completions` with `model`, `messages`, `max_tokens`, `temperature`,
    `top_p` and `n` = the candidates still missing: a server that returns fewer choices
    than asked (some support only n=1) is asked again for the rest, at most
    `num_candidates` requests per conversation in all.

    A reply body over `max_body_bytes` (64 MiB) fails that conversation without being read
    further (a server ignoring max_tokens cannot fill the memory). Each request waits at
    most `timeout_s` for the connection and for each read, and is
    retried up to `max_retries` times, after `backoff_s * 2**attempt` seconds (or the
    server's Retry-After, up to 60 s), on a connection error, a timeout, HTTP 429 and
    HTTP 5xx; other 4xx answers and malformed responses are not retried. At most
    `concurrency` requests are in flight. Once one conversation has found the server
    unreachable after all its retries, the conversations of that round not yet started
    fail at once, so a dead server costs one retry cycle, not one per conversation.

    The API key is read from the environment variable `api_key_env` at each request (unset
    or None: no Authorization header) and is never logged, stored, or put in an error:
    every reply text and error message has each occurrence of the key replaced with
    `[REDACTED]` (a server that echoes the request would otherwise hand it back).
    Redirects are not followed (they would carry the key elsewhere).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        concurrency: int = 4,
        max_body_bytes: int = 64 * 2**20,
    ):
        parsed = urllib.parse.urlsplit(base_url or "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
        if "@" in parsed.netloc:
            raise ValueError("put the API key in an environment variable (api_key_env), not in base_url")
        if not model:
            raise ValueError("OpenAIChatGenerator needs a model name")
        if timeout_s <= 0 or backoff_s < 0 or max_retries < 0 or concurrency < 1 or max_body_bytes < 1:
            raise ValueError(
                "need timeout_s > 0, backoff_s >= 0, max_retries >= 0, concurrency >= 1 and max_body_bytes >= 1, "
                f"got {timeout_s}, {backoff_s}, {max_retries}, {concurrency} and {max_body_bytes}"
            )
        root = base_url.rstrip("/")
        self.base_url = root if parsed.path.strip("/") else root + "/v1"
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.concurrency = concurrency
        self.max_body_bytes = max_body_bytes
        self.name = f"openai:{model}@{base_url}"
        self._opener = urllib.request.build_opener(_NoRedirects)
        if api_key_env and not os.environ.get(api_key_env):
            logger.info("%s is not set: requests to %s carry no Authorization header", api_key_env, self.base_url)

    def __repr__(self) -> str:
        return (
            f"OpenAIChatGenerator(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r}, "
            f"timeout_s={self.timeout_s}, max_retries={self.max_retries}, concurrency={self.concurrency})"
        )

    # ---- plumbing

    def _api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        return os.environ.get(self.api_key_env) or None

    def _redact(self, text: str) -> str:
        key = self._api_key()
        return redact_key(text, key) if key else text

    def _redact_candidate(self, candidate: Candidate) -> Candidate:
        # A server may echo the request (its Authorization header included) in a reply or an error
        if candidate.text is not None:
            return Candidate(self._redact(candidate.text))
        return Candidate(None, error=self._redact(candidate.error))

    def _request(self, method: str, path: str, payload: dict | None, timeout: float) -> bytes:
        """One HTTP exchange; returns the body of a 2xx answer, raises _RetryableError or _FinalError."""
        headers = {"Accept": "application/json"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=timeout) as response:
                body = response.read(self.max_body_bytes + 1)  # never more than the cap in memory
                if len(body) > self.max_body_bytes:
                    raise _FinalError(f"reply body over max_body_bytes={self.max_body_bytes} (read no further)")
                return body
        except urllib.error.HTTPError as error:
            body = self._redact(error.read(300).decode("utf-8", "replace")).strip()
            reason = f"HTTP {error.code}" + (f": {body}" if body else "")
            if error.code == 429 or error.code >= 500:
                raise _RetryableError(reason, retry_after=_retry_after(error.headers)) from None
            raise _FinalError(reason) from None
        except (TimeoutError, socket.timeout):
            raise _RetryableError(f"no answer within {timeout:g} s (timeout)") from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise _RetryableError(f"no answer within {timeout:g} s (timeout)") from None
            raise _RetryableError(f"unreachable: {self._redact(str(reason))}", unreachable=True) from None
        except (ConnectionError, http.client.HTTPException) as error:  # reset or closed mid-answer
            raise _RetryableError(f"connection lost: {self._redact(_describe(error))}") from None

    def _request_with_retries(self, payload: dict, server_down: threading.Event) -> bytes:
        for attempt in range(self.max_retries + 1):
            if server_down.is_set():
                raise _FinalError(f"skipped: {self.base_url} was unreachable earlier in this round")
            try:
                return self._request("POST", "/chat/completions", payload, self.timeout_s)
            except _RetryableError as error:
                if attempt == self.max_retries:
                    if error.unreachable:
                        server_down.set()
                    tries = "1 attempt" if attempt == 0 else f"{attempt + 1} attempts"
                    raise _FinalError(f"{error.reason} (after {tries})") from None
                delay = self.backoff_s * 2**attempt
                if error.retry_after is not None:
                    delay = max(delay, min(error.retry_after, 60.0))
                delay *= 1 + 0.1 * random.random()  # de-synchronise the concurrent retries
                logger.warning(
                    "%s: attempt %d/%d failed (%s); retrying in %.2f s",
                    *(self.base_url, attempt + 1, self.max_retries + 1, error.reason, delay),
                )
                time.sleep(delay)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _complete(self, conversation: list[dict], settings: GenerationSettings, server_down) -> list[Candidate]:
        """The candidates of one conversation, with the API key redacted; never raises."""
        return [self._redact_candidate(c) for c in self._request_candidates(conversation, settings, server_down)]

    def _request_candidates(self, conversation, settings: GenerationSettings, server_down) -> list[Candidate]:
        candidates: list[Candidate] = []
        for _ in range(settings.num_candidates):  # each request yields >= 1 choice, or ends the loop
            missing = settings.num_candidates - len(candidates)
            if missing == 0:
                break
            payload = {
                "model": self.model,
                "messages": _as_messages(conversation),
                "max_tokens": settings.max_new_tokens,
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "n": missing,
            }
            try:
                texts = _parse_choices(self._request_with_retries(payload, server_down))
            except _FinalError as error:
                return candidates + _failed(missing, str(error))
            except Exception as error:  # noqa: BLE001 - e.g. an unserialisable message: this conversation only
                return candidates + _failed(missing, _describe(error))
            candidates += [Candidate(text) for text in texts[:missing]]
        return candidates

    # ---- public

    def check(self) -> None:
        """Raise a ConnectionError naming the base URL when the server cannot be reached,
        or a PermissionError when it rejects the API key. One quick try (GET /models)."""
        timeout = min(self.timeout_s, 10.0)
        try:
            body = self._request("GET", "/models", None, timeout)
        except _RetryableError as error:
            if error.unreachable or "timeout" in error.reason:
                raise ConnectionError(
                    f"cannot reach the OpenAI-compatible server at {self.base_url} ({error.reason}); "
                    "is it running, and is the URL right?"
                ) from None
            return  # it answered (429/5xx on /models): reachable
        except _FinalError as error:
            if str(error).startswith(("HTTP 401", "HTTP 403")):
                where = f"${self.api_key_env}" if self._api_key() else f"no key (${self.api_key_env} is unset)"
                raise PermissionError(f"the server at {self.base_url} rejected {where}: {error}") from None
            return  # e.g. 404: a server without /models
        try:
            listed = [entry["id"] for entry in json.loads(body)["data"]]
        except (ValueError, KeyError, TypeError):
            return
        if self.model not in listed:
            logger.warning("%s does not list model %r (it lists %s)", self.base_url, self.model, listed[:10])

    def generate(self, conversations: list[list[dict]], settings: GenerationSettings) -> list[list[Candidate]]:
        start = time.perf_counter()
        server_down = threading.Event()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="cadft-openai") as pool:
            results = list(pool.map(lambda c: self._complete(c, settings, server_down), conversations))
        _log_round(self.name, results, time.perf_counter() - start)
        return results


def _as_messages(conversation) -> list[dict]:
    """A conversation as chat messages: a plain-text prompt (the prompt alone, of string data) is one user turn."""
    return [{"role": "user", "content": conversation}] if isinstance(conversation, str) else conversation


def redact_key(text: str, key: str) -> str:
    """`text` with every occurrence of `key` replaced by REDACTED, and also a start of the
    key (4 characters or more) at the very end, where an excerpt was cut inside it."""
    text = text.replace(key, REDACTED)
    for n in range(min(len(key) - 1, len(text)), 3, -1):
        if text.endswith(key[:n]):
            return text[:-n] + REDACTED
    return text


def _retry_after(headers) -> float | None:
    try:
        return max(0.0, float(headers.get("Retry-After")))
    except (TypeError, ValueError):
        return None  # absent, or an HTTP date: fall back to the exponential backoff


def _parse_choices(body: bytes) -> list[str]:
    """The message texts of a chat-completions response, by choice index."""
    try:
        response = json.loads(body)
    except ValueError:
        excerpt = body[:80].decode("utf-8", "replace")
        raise _FinalError(f"malformed response: not JSON ({excerpt!r})") from None
    if not isinstance(response, dict) or not isinstance(response.get("choices"), list):
        raise _FinalError("malformed response: no 'choices' list")
    if not response["choices"]:
        raise _FinalError("malformed response: 'choices' is empty")
    texts = []
    for position, choice in enumerate(response["choices"]):
        try:
            text = choice["message"]["content"]
        except (KeyError, TypeError):
            raise _FinalError(f"malformed response: choice {position} has no message.content") from None
        if not isinstance(text, str):
            raise _FinalError(f"malformed response: choice {position} content is {type(text).__name__}, not text")
        index = choice.get("index", position)
        texts.append((index if isinstance(index, int) else position, text))
    return [text for _, text in sorted(texts, key=lambda pair: pair[0])]


# --------------------------------------------------------------------------- specs

_OPENAI_SPEC = re.compile(r"^(?P<model>[^@\s]+(?:@[^@\s]+)*?)@(?P<url>https?://\S+)$")


def make_generator(spec: str, *, policy_model=None, tokenizer=None, **kwargs) -> RewriteGenerator:
    """Build a generator from its spec; `kwargs` go to its constructor.

    `policy` (needs `policy_model` and `tokenizer`), `local:<path-or-name>`,
    `openai:<model>@<base_url>` (e.g. `openai:gpt-4o-mini@https://api.openai.com/v1`),
    `vllm:<path-or-name>`.
    """
    valid = "valid forms: " + ", ".join(repr(form) for form in GENERATOR_SPECS)
    if not isinstance(spec, str):
        raise ValueError(f"a generator spec must be a string; {valid}")
    kind, _, rest = spec.strip().partition(":")
    if kind == "policy" and not rest:
        if policy_model is None or tokenizer is None:
            raise ValueError("the 'policy' generator needs the policy model and its tokenizer")
        return PolicyGenerator(policy_model, tokenizer, **kwargs)
    if kind == "local" and rest:
        return LocalModelGenerator(rest, **kwargs)
    if kind == "vllm" and rest:
        return VLLMGenerator(rest, **kwargs)
    if kind == "openai":
        match = _OPENAI_SPEC.match(rest)
        if match:
            return OpenAIChatGenerator(match["url"], match["model"], **kwargs)
        raise ValueError(
            f"bad openai generator spec {spec!r}: expected 'openai:<model>@<base_url>' with an http(s) URL, "
            "e.g. 'openai:gpt-4o-mini@https://api.openai.com/v1'"
        )
    raise ValueError(f"unknown rewrite generator {spec!r}; {valid}")
