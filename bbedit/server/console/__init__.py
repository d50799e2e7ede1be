"""The operator's console: manage edits, try questions, see what the proxy did, calibrate the gate, and
go back in history, in a browser.

Served by ``bbedit serve`` at ``/console`` (:func:`mount`) and by ``bbedit console --memory DIR`` for a
memory without a proxy (:mod:`bbedit.server.console.standalone`). Server-rendered pages (Jinja2
templates and a little vanilla JavaScript, all inside the package: nothing is fetched from another
site). With an admin token configured, every page needs a session made by logging in with a token
(an HttpOnly, SameSite=Strict cookie); the console acts on the token's namespace, records its name in
the history, and every write must be a POST from the console's own pages carrying the session's CSRF
token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bbedit.server.console.context import ConsoleContext, ConsoleSettings, LazyBackend, from_proxy

Scope = MutableMapping[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
SECURITY_HEADERS = {
    b"x-frame-options": b"DENY",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",  # "no-referrer" would make browsers send "Origin: null" on our own POSTs
    b"cross-origin-opener-policy": b"same-origin",
}


def console_app(ctx: ConsoleContext, clock: Callable[[], float] | None = None) -> Any:
    """The console as an ASGI app (mount it at a path, e.g. ``/console``). ``clock`` replaces the
    sessions' clock (tests)."""
    import time

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from bbedit.server.console import (
        pages_auth,
        pages_calibrate,
        pages_edits,
        pages_history,
        pages_import,
        pages_traffic,
        pages_try,
    )
    from bbedit.server.console.web import CSP, Console

    console = Console(ctx, clock or time.time)
    routes = [*pages_auth.routes(console), *pages_edits.routes(console), *pages_import.routes(console),
              *pages_try.routes(console), *pages_traffic.routes(console), *pages_calibrate.routes(console),
              *pages_history.routes(console)]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return console.error_page(request, status, "No such page." if status == 404 else
                                  "This address does not take that method." if status == 405 else str(exc))

    async def crashed(request: Request, exc: Exception) -> Response:
        import logging

        logging.getLogger(__name__).exception("console: error on %s %s", request.method, request.url.path)
        return console.error_page(request, 500, f"Internal error: {type(exc).__name__}. The server log has details.")

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found, Exception: crashed})
    app.state.console = console
    csp = CSP.encode()

    async def guarded(scope: Scope, receive: Any, send: Any) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in SECURITY_HEADERS]
                headers += [*SECURITY_HEADERS.items(), (b"content-security-policy", csp)]
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_headers if scope["type"] == "http" else send)

    guarded.console = console  # type: ignore[attr-defined]
    return guarded


def mount(app: Any, ctx: ConsoleContext, path: str = "/console") -> Any:
    """Serve the console of ``ctx`` at ``path`` of a Starlette/FastAPI ``app`` (``path`` alone redirects to
    ``path/``). Returns the console app."""
    from starlette.requests import Request
    from starlette.responses import RedirectResponse

    console = console_app(ctx)

    async def to_slash(request: Request) -> RedirectResponse:
        return RedirectResponse(path + "/", status_code=307)

    app.add_route(path, to_slash, include_in_schema=False)
    app.mount(path, console)
    return console


__all__ = ["ConsoleContext", "ConsoleSettings", "LazyBackend", "console_app", "from_proxy", "mount"]
