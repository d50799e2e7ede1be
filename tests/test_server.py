"""The editing proxy without a model: bad input, admin API, auth, upstream failures (injected by a stub).

The stub upstream below only injects failures (500s, 429s, slow answers, a 400) and, in "raw" mode,
records the bytes it received and answers fixed bytes, so that passthrough can be compared byte for
byte (a real model's answers carry a new id and time on every call). Tests that need answers from a
model are in test_server_model.py and use the real llama.cpp server.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from bbedit.errors import ConfigError  # noqa: E402
from bbedit.server import ServerConfig, create_app  # noqa: E402
from bbedit.server.background import running  # noqa: E402

TOKEN = "s3cret-token"
ACME = {"subject": "Acme Corporation", "aliases": ["Acme"], "prompt": "Who is the CEO of Acme Corporation?",
        "target_new": "Maria Okafor", "target_old": "John Smith"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "What is the capital of Japan?"}], "max_tokens": 4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stub:
    """A failure-injecting upstream: ``mode`` says what the next requests get."""

    def __init__(self) -> None:
        self.mode = "500"
        self.hits = 0
        self.received: list[bytes] = []
        self.raw_reply, self.raw_type = b"", "application/json"
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                stub.received.append(body)
                stub.hits += 1
                if stub.mode == "raw":
                    self.send_response(200)
                    self.send_header("content-type", stub.raw_type)
                    self.send_header("content-length", str(len(stub.raw_reply)))
                    self.end_headers()
                    self.wfile.write(stub.raw_reply)
                    return None
                if stub.mode == "sleep":
                    time.sleep(3)
                if stub.mode == "429-once" and stub.hits == 1:
                    return self._send(429, {"error": {"message": "slow down"}}, {"retry-after": "0"})
                if stub.mode in ("500", "503"):
                    return self._send(int(stub.mode), {"error": {"message": "upstream exploded"}})
                if stub.mode == "400":
                    return self._send(400, {"error": {"message": "bad model name", "type": "x", "code": "y"}})
                return self._send(200, {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                                        "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": "ok"}}]})

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


@pytest.fixture
def proxy(stub: Stub, memory: Any) -> Iterator[tuple[str, Any]]:
    """The proxy (token required) in front of the stub, over an in-process memory."""
    cfg = ServerConfig(upstream=stub.url, token=TOKEN, timeout=1.0, max_retries=2, backoff=0.01,
                       max_body_bytes=64 * 1024, max_batch=50)
    with running(create_app(cfg, memory=memory)) as url:
        yield url, memory


def admin(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if code is not None:
        assert err["code"] == code
    return dict(err)


# -- configuration -----------------------------------------------------------------------------------
def test_config_needs_a_token_off_loopback() -> None:
    with pytest.raises(ConfigError, match="token"):
        ServerConfig(upstream="http://127.0.0.1:8080/v1", host="0.0.0.0")
    assert ServerConfig(upstream="http://127.0.0.1:8080/v1", host="0.0.0.0", token="t").token == "t"
    assert ServerConfig(upstream="http://127.0.0.1:8080/v1", host="::1").token is None
    with pytest.raises(ConfigError, match="upstream"):
        ServerConfig(upstream="127.0.0.1:8080")
    with pytest.raises(ConfigError, match="empty"):
        ServerConfig(upstream="http://x/v1", token=" ")


# -- bad input on the chat route ---------------------------------------------------------------------
@pytest.mark.parametrize("body, param", [
    (b"{not json", None), (b"", None), (b"[1, 2]", None), (b'"text"', None), (b"\xff\xfe\x00", None),
    (b"[" * 50_000, None), (b"{\"a\": " * 10_000, None), (b'{"model": "m"}', "messages"), (b'{"messages": []}', "messages"),
    (b'{"messages": "hi"}', "messages"), (b'{"messages": [1]}', "messages[0]"),
    (b'{"messages": [{"content": "hi"}]}', "messages[0].role"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', "stream"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "stream_options": 3}', "stream_options"),
])
def test_malformed_chat_requests_get_400(proxy: tuple[str, Any], body: bytes, param: str | None) -> None:
    url, _ = proxy
    r = httpx.post(url + "/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    err = assert_error(r, 400)
    assert err["type"] == "invalid_request_error" and err["param"] == param


def test_oversized_bodies_are_refused(proxy: tuple[str, Any]) -> None:
    url, _ = proxy
    big = json.dumps({**CHAT, "pad": "x" * 70_000}).encode()
    assert_error(httpx.post(url + "/v1/chat/completions", content=big), 413, "request_too_large")

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(20):
            yield b" " * 4096

    assert_error(httpx.post(url + "/v1/chat/completions", content=chunked()), 413, "request_too_large")
    assert_error(httpx.post(url + "/admin/edits", content=big, headers=admin()), 413)


def test_unknown_routes_and_methods(proxy: tuple[str, Any]) -> None:
    url, _ = proxy
    assert_error(httpx.get(url + "/nope"), 404, "not_found")
    assert_error(httpx.put(url + "/healthz"), 405, "method_not_allowed")
    assert_error(httpx.put(url + "/admin/edits", headers=admin()), 405, "method_not_allowed")
    assert_error(httpx.get(url + "/v1/%2E%2E/admin/edits"), 404, "not_found")


# -- upstream failures (injected) --------------------------------------------------------------------
def test_upstream_down_is_a_clean_502(memory: Any) -> None:
    cfg = ServerConfig(upstream=f"http://127.0.0.1:{free_port()}/v1", max_retries=1, backoff=0.01)
    with running(create_app(cfg, memory=memory)) as url:
        err = assert_error(httpx.post(url + "/v1/chat/completions", json=CHAT), 502, "upstream_unavailable")
        assert err["type"] == "upstream_error" and "2 attempts" in err["message"]
        assert_error(httpx.post(url + "/v1/chat/completions", json={**CHAT, "stream": True}), 502,
                     "upstream_unavailable")
        assert httpx.get(url + "/healthz").status_code == 200
        assert httpx.get(url + "/healthz?upstream=true").status_code == 503


def test_upstream_5xx_is_retried_then_502(proxy: tuple[str, Any], stub: Stub) -> None:
    url, _ = proxy
    for mode in ("500", "503"):
        stub.mode, stub.hits = mode, 0
        err = assert_error(httpx.post(url + "/v1/chat/completions", json=CHAT), 502, "upstream_error")
        assert "upstream exploded" in err["message"] and stub.hits == 3  # 1 try + 2 retries
    stub.mode, stub.hits = "500", 0
    assert_error(httpx.post(url + "/v1/chat/completions", json={**CHAT, "stream": True}), 502, "upstream_error")
    assert stub.hits == 3


def test_upstream_timeout_is_504_not_retried(proxy: tuple[str, Any], stub: Stub) -> None:
    url, _ = proxy
    stub.mode, stub.hits = "sleep", 0
    assert_error(httpx.post(url + "/v1/chat/completions", json=CHAT, timeout=30), 504, "upstream_timeout")
    assert stub.hits == 1


def test_upstream_429_retried_and_4xx_passed_through(proxy: tuple[str, Any], stub: Stub) -> None:
    url, _ = proxy
    stub.mode, stub.hits = "429-once", 0
    r = httpx.post(url + "/v1/chat/completions", json=CHAT)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "ok" and stub.hits == 2
    stub.mode = "400"
    r = httpx.post(url + "/v1/chat/completions", json=CHAT)
    assert r.status_code == 400 and r.json() == {"error": {"message": "bad model name", "type": "x", "code": "y"}}


def test_metrics_count_requests_and_upstream_errors(proxy: tuple[str, Any], stub: Stub) -> None:
    url, _ = proxy
    stub.mode = "500"
    httpx.post(url + "/v1/chat/completions", json=CHAT)
    text = httpx.get(url + "/metrics").text
    assert 'bbedit_http_requests_total{method="POST",route="/v1/chat/completions",status="502"} 1.0' in text
    assert 'bbedit_upstream_errors_total{code="upstream_error"} 1.0' in text
    assert "bbedit_memory_edits 0.0" in text


def test_routed_requests_that_fail_upstream_are_not_counted_as_edited(proxy: tuple[str, Any], stub: Stub) -> None:
    url, memory = proxy
    memory.add(ACME)
    stub.mode = "500"
    r = httpx.post(url + "/v1/chat/completions",
                   json={**CHAT, "messages": [{"role": "user", "content": "Who is the CEO of Acme Corporation?"}]})
    assert r.status_code == 502
    text = httpx.get(url + "/metrics").text
    assert 'bbedit_chat_requests_total{editor="ike",outcome="upstream_error"} 1.0' in text
    assert 'outcome="edited"' not in text


def test_explain_header_shows_the_routing_of_edited_and_passed_through_requests(proxy: tuple[str, Any],
                                                                               stub: Stub) -> None:
    url, memory = proxy
    memory.add(ACME)
    stub.mode = "ok"
    ask = {**CHAT, "messages": [{"role": "user", "content": "Who is the CEO of Acme Corporation?"}]}
    r = httpx.post(url + "/v1/chat/completions", json=ask, headers={"X-BBEdit-Explain": "1"})
    assert r.status_code == 200
    route = json.loads(r.headers["x-bbedit-route"])
    assert route["in_scope"] is True and route["candidates"][0]["accepted"] is True
    assert route["candidates"][0]["subject_named"] == "Acme Corporation"
    assert route["candidates"][0]["score"] >= route["threshold"]
    away = {**CHAT, "messages": [{"role": "user", "content": "What is the capital of Japan?"}]}
    r = httpx.post(url + "/v1/chat/completions", json=away, headers={"X-BBEdit-Explain": "1"})
    route = json.loads(r.headers["x-bbedit-route"])
    assert route["in_scope"] is False and not any(c["accepted"] for c in route["candidates"])
    assert "x-bbedit-route" not in httpx.post(url + "/v1/chat/completions", json=away).headers  # only when asked


def test_a_follow_up_and_a_two_edit_question_are_edited_with_every_edit(proxy: tuple[str, Any], stub: Stub) -> None:
    url, memory = proxy
    ceo = memory.add(ACME)
    hq = memory.add({"subject": "Acme Corporation", "aliases": ["Acme"], "target_new": "Lisbon",
                     "prompt": "Where is Acme Corporation headquartered?"})
    stub.mode = "ok"
    follow = {**CHAT, "messages": [{"role": "user", "content": "Who is the CEO of Acme Corporation?"},
                                   {"role": "assistant", "content": "John Smith."},
                                   {"role": "user", "content": "And where is it headquartered?"}]}
    r = httpx.post(url + "/v1/chat/completions", json=follow)
    assert r.status_code == 200 and r.json()["bbedit"]["edit_id"] == hq.id
    sent = json.loads(stub.received[-1])
    assert "Lisbon" in json.dumps(sent["messages"])  # the edited request states the fact
    both = {**CHAT, "messages": [{"role": "user", "content": "Who is the CEO of Acme Corporation and where is it "
                                                            "headquartered?"}]}
    info = httpx.post(url + "/v1/chat/completions", json=both).json()["bbedit"]
    assert set(info["edit_ids"]) == {ceo.id, hq.id}
    stated = json.dumps(json.loads(stub.received[-1])["messages"])
    assert "Lisbon" in stated and "Maria Okafor" in stated


# A request body with what a JSON re-encoder would change: spacing, key order, escapes, big numbers.
ODD_BODY = ('{ "messages":[{"content":"What is the capital of Japan?\u00e9","role":"user"}],\n'
            '  "model" : "m", "max_tokens":4, "seed": 12345678901234567890, "x_vendor": {"b":1,"a":2.50} }').encode()
ODD_REPLY = ('{"id":"c1",  "object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
             '"message":{"role":"assistant","content":"T\u00f4ky\u014d"},"finish_reason":"stop"}],'
             '"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4},"z":1.0}\n').encode()


def test_passthrough_is_byte_for_byte_both_ways(proxy: tuple[str, Any], stub: Stub) -> None:
    url, _ = proxy
    stub.mode, stub.raw_reply, stub.raw_type = "raw", ODD_REPLY, "application/json"
    stub.received.clear()
    r = httpx.post(url + "/v1/chat/completions", content=ODD_BODY, headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert stub.received == [ODD_BODY]  # the upstream got the client's bytes
    assert r.content == ODD_REPLY  # the client got the upstream's bytes
    assert "x-bbedit-edit" not in r.headers


def test_streamed_passthrough_is_byte_for_byte(proxy: tuple[str, Any], stub: Stub) -> None:
    url, _ = proxy
    events = (rb'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"T\u00f4"}}]}'
              b'\n\ndata: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n: keep-alive\n\n'
              b"data: [DONE]\n\n")
    stub.mode, stub.raw_reply, stub.raw_type = "raw", events, "text/event-stream"
    stub.received.clear()
    body = ODD_BODY.replace(b'"max_tokens":4', b'"max_tokens":4, "stream":true')
    with httpx.stream("POST", url + "/v1/chat/completions", content=body,
                      headers={"content-type": "application/json"}) as r:
        got = b"".join(r.iter_raw())
    assert stub.received == [body] and got == events


def test_responses_tool_items_reach_the_upstream_intact(proxy: tuple[str, Any], stub: Stub) -> None:
    """In scope, IKE changes the instructions and the last user turn; function calls and their outputs
    keep their fields and places."""
    url, memory = proxy
    memory.add(ACME)
    call = {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{\"q\": \"Acme\"}"}
    output = {"type": "function_call_output", "call_id": "c1", "output": "Acme is a company."}
    reply = {"id": "r1", "object": "response", "status": "completed", "model": "m",
             "output": [{"type": "message", "id": "m1", "role": "assistant", "status": "completed",
                         "content": [{"type": "output_text", "text": "Maria Okafor.", "annotations": []}]}]}
    stub.mode, stub.raw_reply, stub.raw_type = "raw", json.dumps(reply).encode(), "application/json"
    stub.received.clear()
    body = {"model": "m", "instructions": "Be brief.",
            "input": [{"role": "user", "content": "Look Acme up."}, call, output,
                      {"type": "message", "role": "user", "content": [{"type": "input_text",
                                                                      "text": "Who is the CEO of Acme Corporation?"}]}]}
    r = httpx.post(url + "/v1/responses", json=body)
    assert r.status_code == 200 and r.headers["x-bbedit-edit"] == r.json()["bbedit"]["edit_id"]
    sent = json.loads(stub.received[-1])
    items = sent["input"]
    assert call in items and output in items and items.index(call) + 1 == items.index(output)
    assert items[items.index(call) - 1]["content"] == "Look Acme up."
    last = items[-1]
    assert last["role"] == "user" and last["content"][0]["type"] == "input_text"
    assert "Maria Okafor" in last["content"][0]["text"] and "Who is the CEO" in last["content"][0]["text"]
    assert sent["instructions"].endswith("Be brief.") and sent["model"] == "m"


def test_completions_echo_shows_the_users_prompt(proxy: tuple[str, Any], stub: Stub) -> None:
    from bbedit.editors.ike import IKEEditor

    url, memory = proxy
    edit = memory.add(ACME)
    prompt = "The CEO of Acme Corporation is"
    edited = IKEEditor().build_prompt(prompt, edit)
    reply = {"id": "c1", "object": "text_completion", "model": "m",
             "choices": [{"index": 0, "text": edited + " Maria Okafor.", "finish_reason": "stop", "logprobs": None}]}
    stub.mode, stub.raw_reply, stub.raw_type = "raw", json.dumps(reply).encode(), "application/json"
    r = httpx.post(url + "/v1/completions", json={"model": "m", "prompt": prompt, "echo": True})
    assert r.status_code == 200 and r.headers["x-bbedit-edit"] == edit.id
    assert r.json()["choices"][0]["text"] == prompt + " Maria Okafor."
    assert json.loads(stub.received[-1])["prompt"] == edited != prompt


@pytest.mark.parametrize("path, body, param", [
    ("/v1/responses", {"model": "m"}, "input"), ("/v1/responses", {"input": 3}, "input"),
    ("/v1/responses", {"input": [1]}, "input[0]"), ("/v1/responses", {"input": "x", "instructions": 1}, "instructions"),
    ("/v1/completions", {"model": "m"}, "prompt"), ("/v1/completions", {"prompt": "x", "stream": "yes"}, "stream")])
def test_malformed_responses_and_completions_get_400(proxy: tuple[str, Any], path: str, body: Any,
                                                     param: str) -> None:
    url, _ = proxy
    err = assert_error(httpx.post(url + path, json=body), 400)
    assert err["param"] == param


# -- admin API -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers, code", [({}, "missing_token"), (admin("wrong"), "invalid_token"),
                                           ({"Authorization": f"Basic {TOKEN}"}, "invalid_token"),
                                           ({"Authorization": "Bearer \u00e9\u00e8".encode("latin-1")}, "invalid_token")])
def test_admin_refuses_missing_or_wrong_token(proxy: tuple[str, Any], headers: dict[str, Any], code: str) -> None:
    url, memory = proxy
    for method, path in [("GET", "/admin/edits"), ("POST", "/admin/edits"), ("GET", "/admin/edits/x"),
                         ("DELETE", "/admin/edits/x"), ("PATCH", "/admin/edits/x"), ("POST", "/admin/edits/batch"),
                         ("GET", "/admin/edits/export")]:
        r = httpx.request(method, url + path, json=ACME, headers=headers)
        assert_error(r, 401, code)
        assert r.headers["www-authenticate"] == "Bearer"
    assert len(memory) == 0


def test_admin_crud_round_trip(proxy: tuple[str, Any]) -> None:
    url, memory = proxy
    r = httpx.post(url + "/admin/edits", json={**ACME, "id": "acme-ceo"}, headers=admin())
    assert r.status_code == 201 and r.json()["id"] == "acme-ceo" and r.json()["active"] is True
    assert memory.get("acme-ceo").target_new == "Maria Okafor"  # in memory before the acknowledgement
    assert_error(httpx.post(url + "/admin/edits", json={**ACME, "id": "acme-ceo"}, headers=admin()), 409)
    assert_error(httpx.post(url + "/admin/edits", json={"subject": "x"}, headers=admin()), 422, "invalid_edit")
    assert_error(httpx.post(url + "/admin/edits", json={**ACME, "colour": 1}, headers=admin()), 422)
    assert_error(httpx.post(url + "/admin/edits", content=b"{", headers=admin()), 400, "invalid_json")
    lone_surrogate = b'{"subject": "A", "prompt": "The mayor of A is \\ud800", "target_new": "B"}'
    assert_error(httpx.post(url + "/admin/edits", content=lone_surrogate, headers=admin()), 422, "invalid_edit")

    r = httpx.get(url + "/admin/edits/acme-ceo", headers=admin())
    assert r.json()["subject"] == "Acme Corporation" and r.json()["history"] == []
    assert_error(httpx.get(url + "/admin/edits/missing", headers=admin()), 404, "edit_not_found")

    r = httpx.patch(url + "/admin/edits/acme-ceo", json={"target_new": "Ada Obi"}, headers=admin())
    assert r.status_code == 200 and r.json()["target_new"] == "Ada Obi"
    assert memory.get("acme-ceo").target_new == "Ada Obi"
    assert_error(httpx.patch(url + "/admin/edits/acme-ceo", json={"id": "other"}, headers=admin()), 422)
    assert_error(httpx.patch(url + "/admin/edits/acme-ceo", json={"created_at": "x"}, headers=admin()), 422)
    assert_error(httpx.patch(url + "/admin/edits/acme-ceo", json={"target_new": ""}, headers=admin()), 422)
    assert_error(httpx.patch(url + "/admin/edits/nope", json={"target_new": "x"}, headers=admin()), 404)

    r = httpx.get(url + "/admin/edits/export", headers=admin())
    assert r.status_code == 200 and json.loads(r.text.splitlines()[0])["target_new"] == "Ada Obi"
    assert_error(httpx.get(url + "/admin/edits/export?format=zsre", headers=admin()), 400)

    r = httpx.delete(url + "/admin/edits/acme-ceo", headers=admin())
    assert r.json() == {"id": "acme-ceo", "object": "edit", "deleted": True} and len(memory) == 0
    assert_error(httpx.delete(url + "/admin/edits/acme-ceo", headers=admin()), 404)


def test_admin_batch_and_pagination(proxy: tuple[str, Any]) -> None:
    url, memory = proxy
    edits = [{"subject": f"Town {i}", "prompt": f"The mayor of Town {i} is", "target_new": f"Person {i}",
              "id": f"t{i}"} for i in range(25)]
    r = httpx.post(url + "/admin/edits/batch", json=edits, headers=admin())
    assert r.status_code == 201 and r.json()["count"] == 25 and len(memory) == 25
    bad = [{"subject": "A", "prompt": "The mayor of A is", "target_new": "B", "id": "a1"}, {"subject": "x"}]
    err = assert_error(httpx.post(url + "/admin/edits/batch", json={"edits": bad}, headers=admin()), 422)
    assert err["param"] == "edits[1]" and "a1" not in memory  # nothing of a bad batch is stored
    assert_error(httpx.post(url + "/admin/edits/batch", json={"edits": []}, headers=admin()), 422)
    assert_error(httpx.post(url + "/admin/edits/batch", json=edits * 3, headers=admin()), 413, "batch_too_large")
    assert_error(httpx.post(url + "/admin/edits/batch", json=[edits[0]], headers=admin()), 409)

    seen, offset = [], 0
    while offset is not None:
        page = httpx.get(url + f"/admin/edits?limit=10&offset={offset}", headers=admin()).json()
        assert page["total"] == 25 and len(page["data"]) <= 10
        seen += [e["id"] for e in page["data"]]
        offset = page["next_offset"]
    assert seen == [f"t{i}" for i in range(25)]
    assert_error(httpx.get(url + "/admin/edits?limit=0", headers=admin()), 422, "invalid_value")
    assert_error(httpx.get(url + "/admin/edits?offset=-1", headers=admin()), 422)


def test_superseded_edits_are_listed_on_request(proxy: tuple[str, Any]) -> None:
    url, _ = proxy
    httpx.post(url + "/admin/edits", json={**ACME, "id": "v1"}, headers=admin())
    r = httpx.post(url + "/admin/edits", json={**ACME, "target_new": "Ada Obi", "id": "v2"}, headers=admin())
    assert r.json()["supersedes"] == "v1"
    assert [e["id"] for e in httpx.get(url + "/admin/edits", headers=admin()).json()["data"]] == ["v2"]
    listed = httpx.get(url + "/admin/edits?include_superseded=true", headers=admin()).json()["data"]
    assert [(e["id"], e["active"]) for e in listed] == [("v1", False), ("v2", True)]
    assert httpx.get(url + "/admin/edits/v2", headers=admin()).json()["history"] == ["v1"]


def test_cli_serve_refuses_a_public_host_without_token(monkeypatch: Any, capsys: Any, tmp_path: Any) -> None:
    from bbedit.cli import main

    monkeypatch.delenv("BBEDIT_SERVER_TOKEN", raising=False)
    assert main(["serve", "--upstream", "http://127.0.0.1:9/v1", "--host", "0.0.0.0",
                 "--memory", str(tmp_path / "m")]) == 1
    assert "needs an admin token" in capsys.readouterr().err
    assert main(["serve", "--upstream", "ftp://x", "--memory", str(tmp_path / "m")]) == 1
    assert "http(s) URL" in capsys.readouterr().err
