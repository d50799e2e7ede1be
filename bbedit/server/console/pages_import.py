"""Import: upload a file in any supported format, see what will be created and every record's error,
then create the good edits."""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bbedit.errors import ConfigError, DuplicateEdit, EditFileError, InvalidEdit
from bbedit.server.console.importing import preview
from bbedit.server.console.sessions import Session
from bbedit.server.console.web import Console, Refused

SHOWN = 200  # edits listed in the preview (all are created)
PENDING_S = 1800  # a preview can be committed for this long


def _formats() -> tuple[str, ...]:
    from bbedit.memory.formats import FORMATS

    return ("auto", *FORMATS)


def routes(c: Console) -> list[Route]:
    def page(request: Request, session: Session, *, status: int = 200, errors: dict[str, str] | None = None,
             values: dict[str, Any] | None = None, **extra: Any) -> Response:
        return c.render(request, "import.html", session, status=status, title="Import edits", active="edits",
                        formats=_formats(), errors=errors or {}, values=values or {"format": "auto", "prefix": "",
                                                                                    "supersede": True},
                        max_bytes=c.ctx.settings.max_upload_bytes, shown=SHOWN, **extra)

    async def upload(request: Request, session: Session) -> Response:
        if request.method == "GET":
            return page(request, session)
        await c.check_write(request, session)
        form = await c.form(request)
        fmt = str(form.get("format") or "auto")
        prefix = str(form.get("prefix") or "").strip()
        values = {"format": fmt, "prefix": prefix, "supersede": form.get("supersede") == "1"}
        errors: dict[str, str] = {}
        if fmt not in _formats():
            errors["format"] = f"Unknown format {fmt!r}."
        if prefix and not prefix.replace("-", "").replace("_", "").isalnum():
            errors["prefix"] = "Use letters, digits, - and _ only."
        upload = form.get("file")
        if upload is None or isinstance(upload, str) or not upload.filename:
            errors["file"] = "Choose a file to import."
        if errors:
            return page(request, session, status=422, errors=errors, values=values)
        data = await upload.read(c.ctx.settings.max_upload_bytes + 1)
        if len(data) > c.ctx.settings.max_upload_bytes:
            errors["file"] = f"The file is larger than the limit of {c.ctx.settings.max_upload_bytes // 1024} KiB."
        elif not data.strip():
            errors["file"] = "The file is empty."
        if errors:
            return page(request, session, status=422, errors=errors, values=values)
        memory = c.memory(session)
        try:
            result = await c.ctx.run(preview, data, upload.filename, fmt, prefix or None, memory,
                                     c.ctx.settings.max_import)
        except (EditFileError, ConfigError) as e:
            return page(request, session, status=422, errors={"file": str(e)}, values=values)
        token = secrets.token_urlsafe(16)
        now = time.time()
        session.pending = {k: v for k, v in session.pending.items()
                           if not k.startswith("import:") or now - v[0] < PENDING_S}
        session.pending[f"import:{token}"] = (now, result, values["supersede"])
        return page(request, session, values=values, preview=result, token=token)

    async def commit(request: Request, session: Session) -> Response:
        form = await c.form(request)
        pending = session.pending.pop(f"import:{form.get('token') or ''}", None)
        if pending is None or time.time() - pending[0] > PENDING_S:
            raise Refused(410, "This import preview is no longer available (it was already imported, or it is "
                               "older than 30 minutes). Upload the file again.")
        _, result, supersede = pending
        memory = c.memory(session)
        fresh = [e for e in result.fresh if e.id not in memory]
        try:
            stored = await c.ctx.run(lambda: memory.add_many(fresh, supersede=supersede, actor=c.actor(session)))
        except (InvalidEdit, DuplicateEdit) as e:
            session.flash("error", f"Nothing was imported: {e}")
            return c.redirect(request, "/import")
        replaced = sum(1 for e in stored if e.supersedes)
        return c.render(request, "import_done.html", session, title="Import done", active="edits", preview=result,
                        created=stored, replaced=replaced, shown=SHOWN)

    return [Route("/import", c.page(upload), methods=["GET", "POST"]),
            Route("/import/commit", c.page(commit, write=True), methods=["POST"])]
