"""The FastAPI application: chat proxy, models, health, metrics, admin API, errors in OpenAI form."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from bbedit.editors.base import EditorBase, make_editor
from bbedit.errors import BackendError, BBEditError, ConfigError, MemoryCorrupt, StoreUnavailable
from bbedit.memory.memory import EditMemory
from bbedit.routing import Router
from bbedit.server.admin import admin_router
from bbedit.server.config import ServerConfig
from bbedit.server.console import from_proxy as console_context
from bbedit.server.console import mount as mount_console
from bbedit.server.errors import APIError
from bbedit.server.metrics import Metrics
from bbedit.server.proxy import EditingProxy, read_body, too_large
from bbedit.server.tenants import Namespaces
from bbedit.server.upstream import Upstream, forward_headers

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _Guard:
    """Outermost ASGI layer: refuses bodies whose ``Content-Length`` exceeds the limit before
    anything reads them (413), and records each request's route, status and time in the metrics."""

    def __init__(self, app: Any, limit: int, metrics: Metrics) -> None:
        self.app, self.limit, self.metrics = app, limit, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                route = scope.get("route")
                self.metrics.observe(getattr(route, "path", "unmatched"), scope.get("method", ""),
                                     message["status"], time.perf_counter() - t0)
            await send(message)

        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            err = too_large(self.limit)
            await JSONResponse(err.body(), status_code=413)(scope, receive, send_timed)
            return
        await self.app(scope, receive, send_timed)


def _error_response(err: APIError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def create_app(config: ServerConfig, *, memory: EditMemory | None = None, router: Router | None = None,
               editor: EditorBase | None = None, transport: httpx.AsyncBaseTransport | None = None) -> Any:
    """The ASGI app of the proxy (FastAPI wrapped in the body-size guard).

    ``memory`` or a whole ``router`` may be given (tests, embedding in another app): they are then
    not closed with the app. Otherwise the memory at ``config.memory`` is opened (created if
    missing) with its saved gate. ``editor`` defaults to ``config.editor`` built by name.
    ``transport`` replaces the HTTP transport to the upstream.
    Raises :class:`ConfigError` / :class:`MemoryCorrupt`.
    """
    from bbedit.scope.gate import load_gate

    owns_memory = memory is None and router is None

    def open_router(namespace: str, memory: EditMemory | None = None) -> Router:
        if memory is None:
            memory = EditMemory(config.memory, namespace=namespace,
                                embedder=router.memory.embedder if router is not None else None)
        gate = load_gate(memory)
        if config.gate_threshold is not None:
            gate.set_threshold(config.gate_threshold)
        return Router(memory, gate)

    if router is None:
        router = open_router(config.namespace, memory)
    namespaces = Namespaces(open_router, (config.namespace, router))
    if owns_memory:
        assert config.access is not None
        for ns in config.access.namespaces:  # opened now: each hears its change feed from the start
            namespaces.router(ns)
    if editor is None:
        editor = make_editor(config.editor)
    metrics = Metrics()
    pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="bbedit-serve")
    upstream = Upstream(config, transport)
    proxy = EditingProxy(config, router, editor, upstream, pool, metrics, namespaces)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.warm_up:
            await proxy.run(proxy.warm_up)
        log.info("bbedit proxy ready: upstream %s, editor %s, %d edits", config.upstream, proxy.editor.name,
                 len(proxy.memory))
        try:
            yield
        finally:
            await upstream.aclose()
            pool.shutdown(wait=True)
            if owns_memory:
                for _, r in namespaces.items():
                    r.memory.close()

    app = FastAPI(title="bbedit", version="0.1.0", lifespan=lifespan,
                  description="OpenAI-compatible editing proxy and edit admin API")
    app.state.proxy = proxy

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        if exc.kind == "upstream_error":
            metrics.upstream_errors.labels(exc.code or "upstream_error").inc()
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(x) for x in first.get("loc", ()) if x not in ("query", "path", "body"))
        return _error_response(APIError(422, f"{loc or 'request'}: {first.get('msg', 'invalid value')}",
                                        param=loc or None, code="invalid_value"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error_response(APIError(exc.status_code, str(exc.detail), code=code,
                                        headers=dict(exc.headers or {})))

    @app.exception_handler(BBEditError)
    async def bbedit_error(request: Request, exc: BBEditError) -> JSONResponse:
        if isinstance(exc, ConfigError):
            return _error_response(APIError(400, str(exc)))
        if isinstance(exc, BackendError):
            return _error_response(APIError(502, str(exc), "upstream_error", code="upstream_error"))
        if isinstance(exc, StoreUnavailable):
            log.warning("memory store unavailable: %s", exc)
            return _error_response(APIError(503, f"the edit memory's database cannot be reached; nothing was "
                                                 f"written: {exc}", "server_error", code="memory_unavailable",
                                            headers={"Retry-After": "1"}))
        if isinstance(exc, MemoryCorrupt):
            log.error("memory unreadable: %s", exc)
            return _error_response(APIError(503, f"the edit memory cannot be read: {exc}", "server_error",
                                            code="memory_unavailable"))
        log.exception("unexpected bbedit error")
        return _error_response(APIError(500, f"internal error: {type(exc).__name__}", "server_error"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error_response(APIError(500, f"internal error: {type(exc).__name__}", "server_error",
                                        code="internal_error"))

    @app.post("/v1/chat/completions", summary="Chat completions, edited where an edit applies")
    async def chat_completions(request: Request) -> Response:
        return await proxy.chat(request)

    @app.post("/v1/responses", summary="Responses API, edited where an edit applies")
    async def responses(request: Request) -> Response:
        return await proxy.responses(request)

    @app.post("/v1/completions", summary="Plain-text completions, edited where an edit applies")
    async def completions(request: Request) -> Response:
        return await proxy.completions(request)

    @app.get("/v1/models", summary="The upstream's models")
    async def models(request: Request) -> Response:
        headers = forward_headers(request.headers, config.upstream_api_key)
        return await proxy.forward("models", b"", headers, False, {}, time.perf_counter(), method="GET")

    @app.get("/healthz", summary="Liveness; with ?upstream=true also asks the upstream")
    async def healthz(upstream: bool = False) -> JSONResponse:
        body: dict[str, Any] = {"status": "ok", "edits": len(proxy.memory), "editor": proxy.editor.name,
                                "upstream": config.upstream}
        if upstream:
            try:
                resp = await proxy.upstream.request("GET", "models")
                body["upstream_status"] = resp.status_code
            except APIError as e:
                return JSONResponse({**body, "status": "degraded", "upstream_error": e.message}, status_code=503)
        return JSONResponse(body)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        data, ctype = metrics.render(len(proxy.memory))
        return Response(data, media_type=ctype)

    app.include_router(admin_router(proxy))
    mount_console(app, console_context(proxy))  # the operator's console at /console (same admin tokens)

    @app.api_route("/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                   summary="Any other OpenAI endpoint, passed through unchanged")
    async def other(path: str, request: Request) -> Response:
        if ".." in path.split("/"):
            raise APIError(404, f"no such endpoint: /v1/{path}", code="not_found")
        raw = await read_body(request, config.max_body_bytes)
        headers = forward_headers(request.headers, config.upstream_api_key)
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return await proxy.forward(target, raw, headers, False, {}, time.perf_counter(), method=request.method)

    return _Guard(app, config.max_body_bytes, metrics)


def serve(config: ServerConfig, log_level: str = "info", torch_threads: int | None = 1) -> None:
    """Run the proxy with uvicorn until interrupted. Raises :class:`ConfigError` / :class:`MemoryCorrupt`.

    ``torch_threads`` caps torch's threads in this process (embedder, gate, post-editor): next to a
    model server on the same cores, one thread routes faster at the tail than torch's default of one
    per core (seen while developing; the middleware suite measures the proxy's overhead as configured).
    """
    import uvicorn

    if torch_threads is not None:
        if torch_threads < 1:
            raise ConfigError(f"torch_threads must be >= 1, got {torch_threads}")
        import torch

        torch.set_num_threads(torch_threads)
    app = create_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, server_header=False,
                proxy_headers=False, timeout_graceful_shutdown=10, lifespan="on")
