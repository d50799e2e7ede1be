"""``bbedit console --memory DIR``: the console for a memory, without a proxy. Try it answers with
``upstream`` (an OpenAI-compatible base URL) or, without one, the embedded SmolLM2 llama.cpp server,
started at the first question; the Traffic page stays empty (the counters belong to a proxy)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bbedit.errors import ConfigError
from bbedit.server.config import is_loopback
from bbedit.server.console.context import ConsoleContext, ConsoleSettings, LazyBackend
from bbedit.server.tenants import NamespaceAccess, Namespaces

log = logging.getLogger(__name__)


def create_console_app(memory: str | os.PathLike[str], *, token: str | None = None,
                       access: NamespaceAccess | None = None, namespace: str = "default", editor: str = "ike",
                       upstream: str | None = None, model: str | None = None, api_key: str | None = None,
                       answers: bool = True, host: str = "127.0.0.1", gate_threshold: float | None = None,
                       settings: ConsoleSettings | None = None, workers: int = 2) -> Any:
    """An ASGI app serving the console of ``memory`` at ``/console`` (``/`` redirects there).

    ``token`` / ``access`` as for ``bbedit serve`` (a token is required off loopback); ``editor`` is the
    editor Try it applies; ``upstream``/``model``/``api_key`` the model it asks (default: the embedded
    model), ``answers=False`` shows routing only. Raises :class:`ConfigError` for bad settings,
    :class:`MemoryCorrupt` / :class:`StoreUnavailable` when the memory cannot be opened.
    """
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Mount, Route

    from bbedit.editors.base import make_editor
    from bbedit.memory.memory import EditMemory
    from bbedit.routing import Router
    from bbedit.scope.gate import load_gate
    from bbedit.server.console import console_app

    access = access or NamespaceAccess(default=namespace)
    if token is not None and not token.strip():
        raise ConfigError("the admin token must not be empty")
    if token is None and not access.admin_tokens and not is_loopback(host):
        raise ConfigError(f"serving the console on {host} (not loopback) needs an admin token: pass --token or "
                          f"set $BBEDIT_SERVER_TOKEN")
    opened: list[EditMemory] = []

    def open_router(ns: str) -> Router:
        shared = opened[0].embedder if opened else None  # one embedder for every namespace
        m = EditMemory(memory, namespace=ns, embedder=shared, actor="console")
        opened.append(m)
        gate = load_gate(m)
        if gate_threshold is not None:
            gate.set_threshold(gate_threshold)
        return Router(m, gate)

    namespaces = Namespaces(open_router)
    namespaces.router(access.default)  # fail now, not at the first page, when the memory cannot be opened
    the_editor = make_editor(editor)
    stack = contextlib.ExitStack()

    def make_backend() -> Any:
        from bbedit.backends.factory import make_backend as build

        if upstream is None:
            log.warning("console: starting the embedded model for Try it (no --upstream)")
        return build(upstream, model, api_key, stack=stack)

    backend = LazyBackend(make_backend, upstream or "the embedded SmolLM2 (started at the first question)") \
        if answers else None
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bbedit-console")
    ctx = ConsoleContext(access=access, token=token, router=namespaces.router, editor=the_editor, pool=pool,
                         backend=backend, traffic=None, settings=settings or ConsoleSettings(),
                         gate_override=gate_threshold)
    console = console_app(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if backend is not None:
                backend.close()
            stack.close()
            pool.shutdown(wait=True)
            for m in opened:
                m.close()

    async def home(request: Any) -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    app = Starlette(routes=[Route("/", home), Route("/console", home), Mount("/console", console)],
                    lifespan=lifespan)
    app.state.console = console.console  # type: ignore[attr-defined]
    return app


def serve_console(memory: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 8001,
                  log_level: str = "info", **kwargs: Any) -> None:
    """Run :func:`create_console_app` with uvicorn until interrupted. Raises :class:`ConfigError` /
    :class:`MemoryCorrupt` / :class:`StoreUnavailable`."""
    import uvicorn

    if not 0 < port < 65536:
        raise ConfigError(f"port must be in 1..65535, got {port}")
    app = create_console_app(memory, host=host, **kwargs)
    log.warning("bbedit console: http://%s:%d/console/", host if ":" not in host else f"[{host}]", port)
    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False, proxy_headers=False,
                lifespan="on")
