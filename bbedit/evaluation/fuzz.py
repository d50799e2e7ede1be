"""Malformed and hostile HTTP requests for the proxy, generated with hypothesis (the ``eval``/``dev`` extras).

Requests aim at every route (chat, models, admin, health, metrics, unknown paths) with every method;
bodies are random bytes, random JSON, or chat requests and edits whose fields have random types and
values; the admin token is right, wrong or missing. :func:`fuzz` sends them and counts the answers.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FuzzResult:
    """What came back: statuses, and the requests answered 5xx by the proxy itself (not an upstream error)."""

    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[tuple[FuzzRequest, int, str]] = field(default_factory=list)
    upstream_errors: int = 0
    upstream_samples: list[tuple[FuzzRequest, int, str]] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    distinct: set[tuple[str, str, bytes]] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + len(self.transport_errors)


def request_strategy(token: str) -> Any:
    """A hypothesis strategy of :class:`FuzzRequest` (hypothesis is imported here, not at module import)."""
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | \
        st.text(max_size=40)
    values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                        max_size=4), max_leaves=12)
    text = st.text(max_size=120) | st.sampled_from(["Who is the CEO of Acme Corporation?", "", " ", "\x00",
                                                    "\ud800", "Acme " * 200, "What is 2+2?"])
    part = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]) | values},
                                 optional={"text": text | values})
    message = st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "tool", "developer"]) | values},
        optional={"content": text | st.lists(part, max_size=3) | values, "name": values, "tool_calls": values})
    chat = st.fixed_dictionaries(
        {"messages": st.lists(message, max_size=4) | values,
         "max_tokens": st.integers(-3, 8) | values},
        optional={"model": st.text(max_size=12) | values, "stream": st.booleans() | values,
                  "temperature": st.floats(-1, 3) | values, "n": st.integers(-1, 3) | values,
                  "stop": values, "stream_options": values, "tools": values, "tool_choice": values,
                  "logprobs": values, "top_logprobs": st.integers(-2, 30) | values, "seed": values,
                  "response_format": values, "bbedit": values})
    edit = st.fixed_dictionaries(
        {}, optional={k: text | values for k in ("subject", "prompt", "target_new", "target_old", "id", "source",
                                                 "supersedes", "created_at", "colour")}
    ) | st.fixed_dictionaries({"subject": st.just("Acme Corporation"), "prompt": text, "target_new": text},
                              optional={"aliases": st.lists(text, max_size=3) | values, "id": text})
    def dump(v: Any) -> bytes:
        return json.dumps(v, allow_nan=True).encode()

    any_body = (st.binary(max_size=300) | values.map(dump) | st.just(b"{" * 5000)
                | st.just(b"[" * 3000 + b"]" * 3000))
    chat_body = chat.map(dump) | any_body
    edit_body = edit.map(dump) | st.lists(edit, max_size=3).map(lambda v: dump({"edits": v})) | \
        st.lists(edit, max_size=3).map(dump) | any_body
    segment = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"),
                      min_size=1, max_size=12)
    query = st.dictionaries(st.sampled_from(["offset", "limit", "format", "supersede", "include_superseded",
                                             "upstream", "x"]), st.text(max_size=8) | st.integers().map(str),
                            max_size=3)
    # (path, its usual method): most requests go where a client would send them, a few anywhere
    routes = st.sampled_from([("/v1/chat/completions", "POST")] * 10 + [("/admin/edits", "POST")] * 4 + [
        ("/admin/edits/batch", "POST")] * 2 + [("/admin/edits", "GET"), ("/admin/edits/export", "GET"),
                                               ("/v1/models", "GET"), ("/healthz", "GET"), ("/metrics", "GET")])
    edit_routes = segment.map(lambda s: f"/admin/edits/{s}").flatmap(
        lambda p: st.tuples(st.just(p), st.sampled_from(["GET", "PATCH", "DELETE"])))
    methods = st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"])
    odd_routes = st.tuples(st.sampled_from(["/", "/docs", "/openapi.json", "/v1/completions"]) |
                           segment.map(lambda s: f"/{s}"), methods)
    auth = st.sampled_from([f"Bearer {token}"] * 3 + ["", "Bearer wrong", f"Basic {token}", "Bearer"])
    ctype = st.sampled_from(["application/json", "text/plain", "", "application/x-www-form-urlencoded"])

    @st.composite
    def build(draw: Any) -> FuzzRequest:
        kind = draw(st.sampled_from(["route"] * 8 + ["edit", "odd"]))
        path, method = draw({"route": routes, "edit": edit_routes, "odd": odd_routes}[kind])
        if draw(st.integers(0, 9)) == 0:
            method = draw(methods)  # and now and then the wrong method
        q = draw(query)
        if q:
            import urllib.parse

            path += "?" + urllib.parse.urlencode(q)
        headers = {k: v for k, v in (("authorization", draw(auth)), ("content-type", draw(ctype))) if v}
        body = b""
        if method in ("POST", "PATCH", "PUT"):
            body = draw(edit_body if path.startswith("/admin") else chat_body)
        return FuzzRequest(method, path, headers, body)

    return build()


def fuzz(base_url: str, n: int, token: str, *, seed: int = 0, timeout: float = 60.0) -> FuzzResult:
    """Send ``n`` generated requests to the proxy at ``base_url`` (derandomised by ``seed``); never raises
    for what comes back. A 5xx counts as the proxy's own error unless its body is an ``upstream_error``."""
    import httpx
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    result = FuzzResult()
    client = httpx.Client(base_url=base_url, timeout=timeout)

    @hseed(seed)
    @settings(max_examples=n, phases=[Phase.generate], deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(request_strategy(token))
    def send(req: FuzzRequest) -> None:
        result.distinct.add((req.method, req.path, req.body))
        try:
            r = client.request(req.method, req.path, content=req.body, headers=req.headers)
        except httpx.HTTPError as e:
            result.transport_errors.append(f"{req.method} {req.path}: {type(e).__name__}: {e}")
            return
        result.statuses[r.status_code] += 1
        if r.status_code >= 500:
            try:
                kind = r.json()["error"]["type"]
            except (ValueError, KeyError, TypeError):
                kind = ""
            if kind == "upstream_error":
                result.upstream_errors += 1
                result.upstream_samples.append((req, r.status_code, r.text[:300]))
            else:
                result.server_errors.append((req, r.status_code, r.text[:300]))

    try:
        send()
    finally:
        client.close()
    log.info("fuzz: %d requests, statuses %s", result.total, dict(result.statuses))
    return result
