"""Log in with an admin token (the server's ``--token`` or a namespace's admin token), log out, and the
console's static files."""

from __future__ import annotations

import secrets
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from bbedit.server.console.sessions import COOKIE, LOGIN_COOKIE, Session, same_site, tokens_match
from bbedit.server.console.web import Console, Refused, client_id
from bbedit.server.tenants import AccessDenied, admin_identity

STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


def _safe_next(base: str, value: str) -> str:
    """Where to go after login: a path of this console, never another site."""
    if value.startswith(base + "/") and not value.startswith("//") and "\\" not in value and "://" not in value:
        return value
    return base + "/"


def routes(c: Console) -> list[Route]:
    def form(request: Request, *, status: int = 200, error: str = "", notice: str = "") -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        resp = c.render(request, "login.html", None, status=status, title="Log in", active="", error=error,
                        notice=notice, login_csrf=token, next=request.query_params.get("next", ""))
        c.set_cookie(request, resp, LOGIN_COOKIE, token, 3600)
        return resp

    async def login(request: Request) -> Response:
        base = c.base(request)
        if c.ctx.open:
            return c.redirect(request, "/")
        if request.method == "GET":
            session, _ = c.sessions.lookup(request.cookies.get(COOKIE))
            if session is not None:
                return c.redirect(request, "/")
            q = request.query_params
            notice = ("Your session has expired; log in again." if q.get("expired") else
                      "You are logged out." if q.get("out") else "")
            return form(request, notice=notice)
        if not same_site(request.headers, request.url.netloc):
            return c.error_page(request, 403, "Refused: this form was sent from another site.")
        try:
            data = await c.form(request)
        except Refused as e:
            return c.error_page(request, e.status, e.message)
        if not tokens_match(request.cookies.get(LOGIN_COOKIE), str(data.get("csrf") or "")):
            return form(request, status=403, error="The login form is out of date; it was reloaded, try again.")
        who = client_id(request)
        if c.throttle.blocked(who):
            return form(request, status=429, error="Too many failed attempts; wait a few minutes and try again.")
        token = str(data.get("token") or "").strip()
        if not token:
            return form(request, status=401, error="Enter an admin token.")
        try:
            name, namespace = admin_identity(c.ctx.access, c.ctx.token, {"authorization": f"Bearer {token}"}, None)
        except AccessDenied:
            c.throttle.failed(who)
            return form(request, status=401, error="This token is not an admin token of this server.")
        c.throttle.succeeded(who)
        resp = c.redirect(request, "")
        resp.headers["location"] = _safe_next(base, str(data.get("next") or ""))
        c.login_session(request, resp, name, namespace)
        resp.delete_cookie(LOGIN_COOKIE, path=base or "/")
        return resp

    async def logout(request: Request, session: Session) -> Response:
        c.sessions.drop(session.id)
        resp = c.redirect(request, "/login", out="1")
        resp.delete_cookie(COOKIE, path=c.base(request) or "/", httponly=True, samesite="strict")
        return resp

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        path = STATIC / name
        if "/" in name or path.suffix not in STATIC_TYPES or not path.is_file():
            return c.error_page(request, 404, "No such file.")
        return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers={"Cache-Control": "max-age=3600"})

    return [Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", c.page(logout, write=True), methods=["POST"]),
            Route("/static/{name}", static)]
