"""The console's web plumbing: sessions and login checks around every page, CSRF and same-site checks
on every write, templates, security headers and the ``Server-Timing`` of each page."""

from __future__ import annotations

import datetime
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bbedit.errors import (
    BackendError,
    BBEditError,
    ConfigError,
    DuplicateEdit,
    EditNotFound,
    InvalidEdit,
    MemoryCorrupt,
    StoreUnavailable,
)
from bbedit.server.console.context import ConsoleContext
from bbedit.server.console.sessions import COOKIE, LoginThrottle, Session, Sessions, same_site, tokens_match

log = logging.getLogger(__name__)

Handler = Callable[[Request, Session], Awaitable[Response]]
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
NAV = (("edits", "Edits"), ("try", "Try it"), ("traffic", "Traffic"), ("calibrate", "Calibrate"),
       ("history", "History"))


class Refused(Exception):
    """A request the console answers with an error page: ``status`` and a message for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _when(at: Any) -> str:
    if at is None or at == "":
        return "–"
    if isinstance(at, str):
        return at.replace("T", " ").replace("+00:00", " UTC")
    return datetime.datetime.fromtimestamp(float(at), datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ms(v: Any) -> str:
    return "–" if v is None else f"{float(v):.1f} ms" if v < 100 else f"{float(v):.0f} ms"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * float(v):.1f}%"


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("bbedit.server.console", "templates"),
                             autoescape=jinja2.select_autoescape(["html"], default=True),
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(q=lambda s: urllib.parse.quote(str(s), safe=""), when=_when, ms=_ms, pct=_pct)
    return env


class Console:
    """One console over a :class:`ConsoleContext`: its sessions, login throttle and templates."""

    def __init__(self, ctx: ConsoleContext, clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.clock = clock
        s = ctx.settings
        self.sessions = Sessions(s.session_idle_s, s.session_max_s, clock=clock)
        self.throttle = LoginThrottle(s.login_attempts, clock=clock)
        self.env = _env()
        self.caches: dict[str, Any] = {}  # per-page caches (the edits table's snapshots)

    # -- rendering -----------------------------------------------------------------------------------
    def base(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def render(self, request: Request, template: str, session: Session | None, *, status: int = 200,
               **values: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(
            base=self.base(request), session=session, nav=NAV, open=self.ctx.open,
            flashes=session.take_flashes() if session is not None else [],
            namespaces=self.ctx.access.namespaces, **values)
        return HTMLResponse(html, status_code=status)

    def error_page(self, request: Request, status: int, message: str, session: Session | None = None) -> Response:
        return self.render(request, "error.html", session, status=status, title=f"Error {status}", message=message,
                           active="")

    def redirect(self, request: Request, path: str, **query: Any) -> RedirectResponse:
        q = {k: v for k, v in query.items() if v not in (None, "")}
        return RedirectResponse(self.base(request) + path + (f"?{urllib.parse.urlencode(q)}" if q else ""),
                                status_code=303)

    def memory(self, session: Session) -> Any:
        """The memory of the session's namespace."""
        return self.ctx.router(session.namespace).memory

    @staticmethod
    def actor(session: Session) -> str:
        """Who the history records for a change made in the console."""
        return f"console:{session.who}"

    # -- sessions ------------------------------------------------------------------------------------
    def secure(self, request: Request) -> bool:
        mode = self.ctx.settings.secure_cookies
        return mode == "always" or (mode == "auto" and request.url.scheme == "https")

    def set_cookie(self, request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(name, value, max_age=max_age, path=self.base(request) or "/", httponly=True,
                            samesite="strict", secure=self.secure(request))

    def login_session(self, request: Request, response: Response, who: str, namespace: str) -> Session:
        s = self.sessions.create(who, namespace)
        self.set_cookie(request, response, COOKIE, s.id, int(self.ctx.settings.session_max_s))
        return s

    def page(self, fn: Handler, *, write: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a page: a session is required (made at once when no token is configured), writes must be
        POSTs from this console's own pages carrying the session's CSRF token; errors become pages."""

        async def endpoint(request: Request) -> Response:
            t0 = time.perf_counter()
            fresh: Session | None = None
            session, state = self.sessions.lookup(request.cookies.get(COOKIE))
            try:
                if session is None and self.ctx.open and request.method == "GET":
                    fresh = session = self.sessions.create("admin", self.ctx.access.default)
                if session is None:
                    if write or request.method != "GET":
                        raise Refused(403, "Your session has expired; log in again." if state == "expired"
                                      else "You are not logged in (or the session cookie was not sent).")
                    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return self.redirect(request, "/login", next=nxt, expired="1" if state == "expired" else None)
                if write:
                    await self.check_write(request, session)
                response = await fn(request, session)
            except Refused as e:
                response = self.error_page(request, e.status, e.message, session)
            except BBEditError as e:
                status, message = _status_of(e)
                response = self.error_page(request, status, message, session)
            if fresh is not None:
                self.set_cookie(request, response, COOKIE, fresh.id, int(self.ctx.settings.session_max_s))
            response.headers["Server-Timing"] = f"console;dur={(time.perf_counter() - t0) * 1000:.2f}"
            return response

        return endpoint

    async def check_write(self, request: Request, session: Session) -> None:
        """Raises :class:`Refused` (403) unless the request is a same-site POST with the session's CSRF token."""
        if request.method != "POST":
            raise Refused(405, "This address only takes a form submission (POST).")
        if not same_site(request.headers, request.url.netloc):
            log.warning("console: refused a cross-site %s %s (Origin %s)", request.method, request.url.path,
                        request.headers.get("origin"))
            raise Refused(403, "Refused: this form was sent from another site.")
        given = request.headers.get("x-csrf-token")
        if given is None:
            given = str((await self.form(request)).get("csrf") or "")
        if not tokens_match(session.csrf, given):
            raise Refused(403, "Refused: the form's security token is missing or out of date. Reload the page "
                               "and try again.")

    async def form(self, request: Request) -> Any:
        """The request's form (cached on the request). Raises :class:`Refused` (413) for an upload over
        the limit, (400) for a malformed form."""
        cached = request.scope.get("bbedit.form")
        if cached is not None:
            return cached
        limit = self.ctx.settings.max_upload_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + 64 * 1024:
            raise Refused(413, f"The upload is larger than the limit of {limit // 1024} KiB.")
        try:
            form = await request.form(max_files=1, max_fields=2000, max_part_size=limit)
        except Exception as e:  # python-multipart raises its own errors for malformed bodies
            raise Refused(400, f"The form could not be read: {e}") from e
        request.scope["bbedit.form"] = form
        return form


def _status_of(e: BBEditError) -> tuple[int, str]:
    """The status and message of an error the library raised, for an error page."""
    if isinstance(e, EditNotFound):
        return 404, str(e)
    if isinstance(e, StoreUnavailable):
        log.warning("console: memory store unavailable: %s", e)
        return 503, f"The edit memory's database cannot be reached; nothing was written. ({e})"
    if isinstance(e, MemoryCorrupt):
        log.error("console: memory unreadable: %s", e)
        return 503, f"The edit memory cannot be read: {e}"
    if isinstance(e, BackendError):
        return 502, f"The model did not answer: {e}"
    if isinstance(e, ConfigError | InvalidEdit | DuplicateEdit):
        return 400, str(e)
    log.exception("console: unexpected bbedit error")
    return 500, f"Internal error: {type(e).__name__}"


def client_id(request: Request) -> str:
    return request.client.host if request.client else "unknown"
