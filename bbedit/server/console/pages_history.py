"""History: the namespace's changes (who, when, what), and putting the whole namespace back as it was
at a time (recorded as a change itself, so a restore can be undone). One edit's versions and revert
are on its own page (:mod:`.pages_edits`)."""

from __future__ import annotations

import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bbedit.errors import EditNotFound
from bbedit.server.console.sessions import Session
from bbedit.server.console.web import Console

LIMITS = (50, 200, 1000)


def parse_at(text: str) -> float:
    """A restore time from the form: Unix seconds, or an ISO-8601 / ``datetime-local`` time (UTC unless a
    zone is given). Raises :class:`ValueError` with a message for the person."""
    text = text.strip()
    if not text:
        raise ValueError("Give the time to restore to.")
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" UTC", ""))
    except ValueError:
        raise ValueError("Use a time like 2026-12-03T17:30:00 (UTC) or Unix seconds.") from None
    return (t if t.tzinfo else t.replace(tzinfo=datetime.UTC)).timestamp()


def routes(c: Console) -> list[Route]:
    async def page(request: Request, session: Session) -> Response:
        p = request.query_params
        try:
            limit = int(p.get("limit", "50"))
        except ValueError:
            limit = 50
        limit = limit if limit in LIMITS else 50
        edit_id = (p.get("id") or "").strip()
        memory = c.memory(session)

        def read() -> tuple[list[Any], float]:
            memory.refresh()
            changes = memory.audit(edit_id or None, limit=limit)
            return list(reversed(changes)), memory.server_time()

        try:
            changes, now = await c.ctx.run(read)
        except EditNotFound:
            changes, now = [], await c.ctx.run(memory.server_time)
            session.flash("error", f"The history knows no edit with id {edit_id!r}.")
        return c.render(request, "history.html", session, title="History", active="history", changes=changes,
                        limit=limit, limits=LIMITS, edit_id=edit_id, now=now)

    async def restore(request: Request, session: Session) -> Response:
        form = await c.form(request)
        try:
            at = parse_at(str(form.get("at") or ""))
        except ValueError as e:
            session.flash("error", f"Not restored: {e}")
            return c.redirect(request, "/history")
        if form.get("confirm") != "1":
            return c.render(request, "restore_confirm.html", session, title="Restore the namespace", active="history",
                            at=at)
        memory = c.memory(session)
        n = await c.ctx.run(lambda: memory.restore(at, actor=c.actor(session)))
        session.flash("ok", f"Restored namespace {session.namespace!r} as it was at "
                            f"{datetime.datetime.fromtimestamp(at, datetime.UTC):%Y-%m-%d %H:%M:%S} UTC: "
                            f"{n} edit(s) changed. This restore is in the history and can be undone the same way.")
        return c.redirect(request, "/history")

    return [Route("/history", c.page(page)), Route("/restore", c.page(restore, write=True), methods=["POST"])]

