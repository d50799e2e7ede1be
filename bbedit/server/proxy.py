"""The chat route of the proxy: route with the :class:`~bbedit.routing.Router`, then pass through or edit.

Out of scope (the gate finds no edit, or the conversation does not end with a user message),
the client's request body goes upstream byte for byte and the upstream's answer comes back byte
for byte, streamed or not. In scope, the editor acts on the whole request, by its declared kind,
so every other field (``n``, tools, ``logprobs``, sampling options, vendor extensions) still
reaches the upstream:

* a request editor (:class:`~bbedit.editors.RequestEditor`, IKE) changes only ``messages``;
  the upstream's answer comes back with a ``bbedit`` field added (to every chunk when streaming);
* an answer editor (:class:`~bbedit.editors.AnswerEditor`, the post-editors) gets the upstream's
  whole answer and rewrites each choice's text; a streaming client receives the result as chunks.

Edited responses carry ``X-BBEdit-Edit: <edit id>`` and ``"bbedit": {"edit_id", "score", "editor"}``.
A request sent with ``X-BBEdit-Explain: 1`` gets ``X-BBEdit-Route``, edited or passed through: the
gate's candidates with their scores and the subject name the query used (JSON, one line).
The CPU-bound parts (memory retrieval, gate, post-editor) run in a thread pool; the upstream call
is asynchronous. Nothing on this route writes to the memory.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bbedit.conversation import content_text, last_user_text
from bbedit.editors.base import AnswerEditor, EditorBase, Edits, RequestEditor, check_editor
from bbedit.memory.memory import EditMemory
from bbedit.routing import Route, Router
from bbedit.server import sse
from bbedit.server.apis import API, CHAT, COMPLETIONS, RESPONSES
from bbedit.server.config import ServerConfig
from bbedit.server.errors import APIError, bad_request, error_body
from bbedit.server.metrics import Call, Metrics
from bbedit.server.tenants import AccessDenied, Namespaces, chat_namespace
from bbedit.server.upstream import Upstream, forward_headers, response_headers
from bbedit.types import Message

log = logging.getLogger(__name__)

T = TypeVar("T")
EDIT_HEADER = "X-BBEdit-Edit"
EXPLAIN_HEADER = "X-BBEdit-Explain"  # a request with "1" gets ROUTE_HEADER on its answer, edited or not
ROUTE_HEADER = "X-BBEdit-Route"


def route_header(route: Route, n: int = 5) -> str:
    """The routing decision as one line of ASCII JSON: the threshold and the ``n`` best candidates
    (id, subject, the name of it the query used, score, accepted)."""
    d = route.explanation(n)
    d["candidates"] = [{k: v for k, v in c.items() if k != "prompt"} for c in route.explain(n)]
    return json.dumps(d, ensure_ascii=True, separators=(",", ":"))


async def read_body(request: Request, limit: int) -> bytes:
    """The request body; raises a 413 :class:`APIError` past ``limit`` bytes (before reading it
    when ``Content-Length`` says so)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise too_large(limit)
    return bytes(buf)


def too_large(limit: int) -> APIError:
    return APIError(413, f"request body is larger than the limit of {limit} bytes", code="request_too_large")


def parse_object(raw: bytes, what: str = "request body") -> dict[str, Any]:
    """``raw`` as a JSON object; raises a 400 :class:`APIError` otherwise."""
    if not raw.strip():
        raise bad_request(f"the {what} is empty; send a JSON object", code="invalid_json")
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise bad_request(f"the {what} is not valid JSON: {str(e)[:200]}", code="invalid_json") from e
    if not isinstance(obj, dict):
        raise bad_request(f"the {what} must be a JSON object, not {type(obj).__name__}", code="invalid_json")
    return obj


class EditingProxy:
    """The chat route over one :class:`Router` (memory, gate, k), one editor and one upstream.

    Raises :class:`ConfigError` when the editor is neither a request nor an answer editor.
    """

    def __init__(self, config: ServerConfig, router: Router, editor: EditorBase, upstream: Upstream,
                 pool: ThreadPoolExecutor, metrics: Metrics, namespaces: Namespaces | None = None) -> None:
        check_editor(editor)
        self.config = config
        self.router = router  # the default namespace's
        self.namespaces = namespaces or Namespaces(lambda ns: router, (config.namespace, router))
        self.editor = editor
        self.upstream = upstream
        self.pool = pool
        self.metrics = metrics
        editor.bind(router.memory)

    @property
    def memory(self) -> EditMemory:
        return self.router.memory

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args))

    # -- routing ------------------------------------------------------------------------------------
    def _route(self, messages: list[Message], router: Router | None = None) -> Route:
        route = (router or self.router).route(messages, threshold=self.editor.gate_threshold)
        if route.reloaded:
            self.metrics.reloads.inc()
        return route

    def warm_up(self) -> None:
        """Load the embedder, the gate and the editor's model before the first request."""
        self.router.route_query("warm-up question about nothing in particular")
        self.editor.load()

    # -- the routes ---------------------------------------------------------------------------------
    async def chat(self, request: Request) -> Response:
        """``POST /v1/chat/completions``."""
        return await self.handle(request, CHAT)

    async def responses(self, request: Request) -> Response:
        """``POST /v1/responses``."""
        return await self.handle(request, RESPONSES)

    async def completions(self, request: Request) -> Response:
        """``POST /v1/completions``."""
        return await self.handle(request, COMPLETIONS)

    async def handle(self, request: Request, api: API) -> Response:
        """Route the request of ``api``; pass it through byte for byte out of scope, else edit it."""
        t0 = time.perf_counter()
        router = self.router_for(request)
        raw = await read_body(request, self.config.max_body_bytes)
        body = parse_object(raw)
        messages, stream = api.parse(body)
        try:
            route = await self.run(self._route, messages, router) if messages else Route.passthrough()
        except UnicodeError as e:
            raise bad_request(f"a message is not valid Unicode text: {e}", param="messages") from e
        timing = {"route": time.perf_counter() - t0}
        self.metrics.routing.observe(timing["route"])
        headers = forward_headers(request.headers, self.config.upstream_api_key)
        call = Call(router.memory.namespace, route_s=timing["route"], edit_ids=tuple(e.id for e in route.edits),
                    editor=self.editor.name if route.edit is not None else "")
        try:
            resp = await self._dispatch(api, raw, body, messages, stream, route, headers, timing, t0, call)
        except APIError as e:
            if e.kind == "upstream_error":
                call.error = e.code or "upstream_error"
            raise
        finally:
            call.upstream_s = timing.get("upstream")
            self.metrics.traffic.record(call)
        if request.headers.get(EXPLAIN_HEADER, "").strip().lower() in ("1", "true", "yes"):
            resp.headers[ROUTE_HEADER] = route_header(route)
        return resp

    def router_for(self, request: Request) -> Router:
        """The router of the request's namespace (by API key or header; see :mod:`bbedit.server.tenants`).
        Raises a 401/403 :class:`APIError` for a request that may not use the namespace it names."""
        assert self.config.access is not None
        try:
            ns = chat_namespace(self.config.access, request.headers)
        except AccessDenied as e:
            raise APIError(e.status, e.message, "authentication_error" if e.status == 401 else "permission_error",
                           code=e.code) from e
        return self.namespaces.router(ns)  # type: ignore[no-any-return]

    async def _dispatch(self, api: API, raw: bytes, body: dict[str, Any], messages: list[Message], stream: bool,
                        route: Route, headers: dict[str, str], timing: dict[str, float], t0: float,
                        call: Call) -> Response:
        edit = route.edit
        if edit is None:
            self.metrics.decisions.labels("passthrough", "").inc()
            return await self.forward(api.path, raw, headers, stream, timing, t0, call=call)
        if self.metrics.traffic.log_answers:
            call.question = last_user_text(messages)
        info: dict[str, Any] = {"edit_id": edit.id, "score": round(float(route.score), 4), "editor": self.editor.name}
        if route.also:  # the question is about several edits: all are applied
            info["edit_ids"] = [e.id for e in route.edits]
        if isinstance(self.editor, RequestEditor):
            return await self._in_context(api, self.editor, body, messages, route.edits, info, headers, stream,
                                          timing, t0, call)
        assert isinstance(self.editor, AnswerEditor)  # check_editor: one of the two kinds
        return await self._post_edit(api, self.editor, body, messages, route.edits, info, headers, stream, timing, t0,
                                     call)

    async def _routed_upstream(self, api: API, content: bytes, headers: dict[str, str],
                               stream: bool, call: Call) -> httpx.Response:
        """The upstream call of a routed request; a failure is counted as its outcome, then raised."""
        try:
            return await self.upstream.request("POST", api.path, content=content, headers=headers, stream=stream)
        except APIError:
            self._outcome("upstream_error", call)
            raise

    def _outcome(self, outcome: str, call: Call) -> None:
        """Count a routed request by what became of it: ``edited`` only when the client got an edited
        answer (``kept``: the post-editor left every choice as it was; ``upstream_error``: no answer)."""
        self.metrics.decisions.labels(outcome, self.editor.name).inc()
        call.outcome = outcome

    async def forward(self, path: str, raw: bytes, headers: dict[str, str], stream: bool,
                      timing: dict[str, float], t0: float, method: str = "POST", *,
                      call: Call | None = None) -> Response:
        """Send ``raw`` upstream unchanged and return the answer unchanged (``call``: the model request
        this is, for the traffic counters)."""
        t1 = time.perf_counter()
        resp = await self.upstream.request(method, path, content=raw if raw else None, headers=headers,
                                           stream=stream)
        timing["upstream"] = time.perf_counter() - t1
        self.metrics.upstream.observe(timing["upstream"])
        out_headers = {**response_headers(resp.headers), **_server_timing(timing, t0)}
        if stream and resp.status_code == 200:
            return StreamingResponse(self._relay(resp, None, call), status_code=200, headers=out_headers)
        if stream:
            await resp.aread()
            await resp.aclose()
        return Response(resp.content, status_code=resp.status_code, headers=out_headers)

    async def _relay(self, resp: httpx.Response, info: Mapping[str, Any] | None,
                     call: Call | None = None) -> AsyncIterator[bytes]:
        """The upstream's stream as it comes (tagged with ``info`` when given); a failure half-way
        becomes an error event, since the status line has already gone out."""
        try:
            if info is None:
                async for chunk in resp.aiter_bytes():
                    yield chunk
            else:
                async for event in sse.events(resp.aiter_bytes()):
                    yield sse.tag_event(event, "bbedit", info)
        except httpx.HTTPError as e:
            kind = "upstream_timeout" if isinstance(e, httpx.TimeoutException) else "upstream_error"
            self.metrics.upstream_errors.labels(kind).inc()
            if call is not None:
                self.metrics.traffic.upstream_error(call.namespace, kind)
            log.warning("upstream stream broke: %s: %s", type(e).__name__, e)
            yield sse.data_event(error_body(f"the upstream stream broke: {type(e).__name__}", "upstream_error",
                                            code=kind))
        finally:
            await resp.aclose()

    async def _in_context(self, api: API, editor: RequestEditor, body: dict[str, Any], messages: list[Message],
                          edit: Edits, info: dict[str, Any], headers: dict[str, str], stream: bool,
                          timing: dict[str, float], t0: float, call: Call) -> Response:
        edited = await self.run(api.edited_request, body, messages, editor, edit)
        try:
            content = json.dumps(edited, ensure_ascii=False).encode()
        except (ValueError, RecursionError) as e:
            raise bad_request(f"the request cannot be re-encoded: {e}") from e
        t1 = time.perf_counter()
        resp = await self._routed_upstream(api, content, headers, stream, call)
        timing["upstream"] = time.perf_counter() - t1
        self.metrics.upstream.observe(timing["upstream"])
        out_headers = {**response_headers(resp.headers), **_server_timing(timing, t0), **_edit_headers(info)}
        if stream and resp.status_code == 200:
            self._outcome("edited", call)
            return StreamingResponse(self._relay(resp, info, call), status_code=200, headers=out_headers)
        if stream:
            await resp.aread()
            await resp.aclose()
        data = _json_object(resp)
        if resp.status_code != 200 or data is None:
            self._outcome("upstream_error", call)
            return Response(resp.content, status_code=resp.status_code, headers=out_headers)
        if api is COMPLETIONS and body.get("echo"):  # the echoed prompt is the user's, not the edited one
            for slot, prompt in ((s, str(edited["prompt"])) for s in api.text_slots(data)):
                if slot.text.startswith(prompt):
                    slot.replace(content_text(messages[-1]["content"]) + slot.text[len(prompt):])
        self._outcome("edited", call)
        if self.metrics.traffic.log_answers:
            call.after = "\n\n".join(slot.text for slot in api.text_slots(data))
        data["bbedit"] = info
        return _json_response(data, out_headers)

    async def _post_edit(self, api: API, editor: AnswerEditor, body: dict[str, Any], messages: list[Message],
                         edit: Edits, info: dict[str, Any], headers: dict[str, str], stream: bool,
                         timing: dict[str, float], t0: float, call: Call) -> Response:
        t1 = time.perf_counter()
        resp = await self._routed_upstream(api, json.dumps(api.whole_body(body)).encode(), headers, False, call)
        timing["upstream"] = time.perf_counter() - t1
        self.metrics.upstream.observe(timing["upstream"])
        data = _json_object(resp)
        out_headers = {**response_headers(resp.headers), **_edit_headers(info)}
        if resp.status_code != 200 or data is None or not isinstance(data.get(api.answers_key), list):
            self._outcome("upstream_error", call)
            return Response(resp.content, status_code=resp.status_code, headers=out_headers)
        query = last_user_text(messages)
        changed = []
        befores, afters = [], []
        for slot in api.text_slots(data):
            befores.append(slot.text)
            if not slot.text.strip():
                changed.append(False)
                afters.append(slot.text)
                continue
            rewritten = await self.run(editor.rewrite_all, query, slot.text, edit)
            if rewritten.changed:
                slot.replace(rewritten.text)
            changed.append(bool(rewritten.changed))
            afters.append(rewritten.text if rewritten.changed else slot.text)
        info = {**info, "changed": changed}
        self._outcome("edited" if any(changed) else "kept", call)
        if self.metrics.traffic.log_answers:
            call.before, call.after = "\n\n".join(befores), "\n\n".join(afters)
        out_headers.update(_server_timing(timing, t0))
        if not stream:
            data["bbedit"] = info
            return _json_response(data, out_headers)
        out_headers["content-type"] = "text/event-stream; charset=utf-8"
        chunks = list(api.stream_events(data, {"bbedit": info}, body))
        return StreamingResponse(_iterate(chunks), status_code=200, headers=out_headers)


async def _iterate(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c


def _json_object(resp: httpx.Response) -> dict[str, Any] | None:
    try:
        data = json.loads(resp.content)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _json_response(data: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
    hs = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return Response(json.dumps(data, ensure_ascii=False).encode(), status_code=200, headers=hs,
                    media_type="application/json")


def _edit_headers(info: Mapping[str, Any]) -> dict[str, str]:
    return {EDIT_HEADER: str(info["edit_id"]), "X-BBEdit-Editor": str(info["editor"]),
            "X-BBEdit-Score": str(info["score"])}


def _server_timing(timing: Mapping[str, float], t0: float) -> dict[str, str]:
    """``Server-Timing``: the proxy's own time (``bbedit``: everything but the upstream wait),
    the routing part of it, and the upstream's time to response headers, in ms."""
    total = time.perf_counter() - t0
    own = total - timing.get("upstream", 0.0)
    parts = [f"bbedit;dur={own * 1000:.2f}", f"route;dur={timing.get('route', 0.0) * 1000:.2f}"]
    if "upstream" in timing:
        parts.append(f"upstream;dur={timing['upstream'] * 1000:.2f}")
    return {"Server-Timing": ", ".join(parts)}
