"""The Edits pages: the searchable table, one edit with its versions, add, change, delete, revert,
export."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bbedit.errors import DuplicateEdit, EditNotFound, InvalidEdit
from bbedit.server.console.forms import LABELS, EditForm, read_edit_form
from bbedit.server.console.listing import PAGE_SIZES, SORTS, EditTable
from bbedit.server.console.sessions import Session
from bbedit.server.console.web import Console, Refused

EXPORTS = {"jsonl": ("application/x-ndjson", "jsonl"), "counterfact": ("application/json", "json"),
           "postedit": ("application/json", "json")}


def _int(value: Any, default: int, lo: int, hi: int) -> int:
    try:
        return min(hi, max(lo, int(str(value))))
    except (TypeError, ValueError):
        return default


def routes(c: Console) -> list[Route]:
    table = c.caches.setdefault("edits", EditTable())

    def hits(session: Session) -> Any:
        return c.ctx.traffic.hits(session.namespace) if c.ctx.traffic is not None else None

    async def index(request: Request, session: Session) -> Response:
        p = request.query_params
        sort = p.get("sort", "newest")
        sort = sort if sort in SORTS else "newest"
        per = _int(p.get("per"), 50, 1, 1000)
        per = per if per in PAGE_SIZES else 50
        search = (p.get("q") or "")[:500]
        superseded = p.get("superseded") == "1"
        counts = hits(session)
        memory = c.memory(session)
        result = await c.ctx.run(table.query, memory, search=search, include_superseded=superseded, sort=sort,
                                 page=_int(p.get("page"), 1, 1, 10**9), per_page=per, hits=counts)
        query = {"q": search, "sort": sort, "per": per, "superseded": "1" if superseded else ""}
        return c.render(request, "edits.html", session, title="Edits", active="edits", result=result, query=query,
                        sorts=SORTS, page_sizes=PAGE_SIZES, hits=counts, exports=EXPORTS,
                        counting=c.ctx.traffic is not None)

    async def show(request: Request, session: Session) -> Response:
        edit_id = request.query_params.get("id", "")
        memory = c.memory(session)

        def read() -> dict[str, Any]:
            memory.refresh()
            try:
                chain = memory.history(edit_id)
            except EditNotFound:  # deleted: its history is still there, to bring it back
                versions = memory.audit(edit_id)  # raises EditNotFound for an id never stored
                last = next(s for v in reversed(versions) for s in (v.after, v.before) if s is not None)
                return {"edit": last.edit, "chain": [], "versions": versions, "in_force": False, "deleted": True,
                        "replaced_by": None}
            versions = memory.audit(edit_id)
            in_force = memory.is_active(edit_id)
            replaced_by = None
            if not in_force:
                replaced_by = next((v.after.superseded_by for v in reversed(versions)
                                    if v.after is not None and v.after.superseded_by), None)
            return {"edit": chain[0], "chain": chain[1:], "versions": versions, "in_force": in_force,
                    "deleted": False, "replaced_by": replaced_by}

        try:
            data = await c.ctx.run(read)
        except EditNotFound as e:
            raise Refused(404, f"No edit with id {edit_id!r} in namespace {session.namespace!r}.") from e
        counts = hits(session)
        return c.render(request, "edit.html", session, title=f"Edit {edit_id}", active="edits", labels=LABELS,
                        hits=None if counts is None else counts.get(edit_id, 0), **data)

    async def new(request: Request, session: Session) -> Response:
        if request.method == "GET":
            return c.render(request, "edit_form.html", session, title="Add an edit", active="edits",
                            form=EditForm({k: "" for k in LABELS}), new=True, labels=LABELS, supersede=True)
        await c.check_write(request, session)
        form = await c.form(request)
        f, kwargs = read_edit_form(form, new=True)
        supersede = form.get("supersede") == "1"
        if kwargs is not None:
            from bbedit.types import Edit

            memory = c.memory(session)
            try:
                stored = await c.ctx.run(lambda: memory.add(Edit(**kwargs, source="console"), supersede=supersede,
                                                            actor=c.actor(session)))
            except DuplicateEdit as e:
                f.errors["id"] = f"An edit with this id already exists: {e}"
            except InvalidEdit as e:
                f.errors[""] = str(e)
            else:
                note = f"; it supersedes {stored.supersedes}" if stored.supersedes else ""
                session.flash("ok", f"Added edit {stored.id}{note}.")
                return c.redirect(request, "/edit", id=stored.id)
        return c.render(request, "edit_form.html", session, status=422, title="Add an edit", active="edits", form=f,
                        new=True, labels=LABELS, supersede=supersede)

    async def change(request: Request, session: Session) -> Response:
        memory = c.memory(session)
        edit_id = request.query_params.get("id", "")
        try:
            current = await c.ctx.run(memory.get, edit_id)
        except EditNotFound as e:
            raise Refused(404, f"No edit with id {edit_id!r} in namespace {session.namespace!r}.") from e
        if request.method == "GET":
            return c.render(request, "edit_form.html", session, title=f"Change edit {edit_id}", active="edits",
                            form=EditForm.of(current), new=False, labels=LABELS, edit_id=edit_id, supersede=False)
        await c.check_write(request, session)
        f, kwargs = read_edit_form(await c.form(request), new=False)
        if kwargs is not None:
            changes = {k: v for k, v in kwargs.items() if getattr(current, k) != v}
            if not changes:
                session.flash("ok", "Nothing changed.")
                return c.redirect(request, "/edit", id=edit_id)
            try:
                await c.ctx.run(lambda: memory.update(edit_id, actor=c.actor(session), **changes))
            except InvalidEdit as e:
                f.errors[""] = str(e)
            else:
                session.flash("ok", f"Changed {', '.join(LABELS[k].lower() for k in changes)} of edit {edit_id}.")
                return c.redirect(request, "/edit", id=edit_id)
        return c.render(request, "edit_form.html", session, status=422, title=f"Change edit {edit_id}",
                        active="edits", form=f, new=False, labels=LABELS, edit_id=edit_id, supersede=False)

    async def delete(request: Request, session: Session) -> Response:
        form = await c.form(request)
        edit_id = str(form.get("id") or "")
        memory = c.memory(session)
        try:
            await c.ctx.run(lambda: memory.remove(edit_id, actor=c.actor(session)))
        except EditNotFound as e:
            raise Refused(404, f"No edit with id {edit_id!r} in namespace {session.namespace!r}.") from e
        session.flash("ok", f"Deleted edit {edit_id}. Its page keeps its versions (see History): revert it there to "
                            "bring it back.")
        return c.redirect(request, "/")

    async def revert(request: Request, session: Session) -> Response:
        form = await c.form(request)
        edit_id = str(form.get("id") or "")
        to = _int(form.get("to"), -1, -1, 10**9)
        memory = c.memory(session)
        try:
            now = await c.ctx.run(lambda: memory.revert(edit_id, to, actor=c.actor(session)))
        except EditNotFound as e:
            raise Refused(404, f"No edit with id {edit_id!r} in namespace {session.namespace!r}.") from e
        except InvalidEdit as e:
            session.flash("error", f"Cannot revert: {e}")
            return c.redirect(request, "/edit", id=edit_id)
        session.flash("ok", f"Reverted edit {edit_id} to version {to}" + ("" if now is not None else
                                                                         " (it is removed now)") + ".")
        return c.redirect(request, "/edit", id=edit_id)

    async def export(request: Request, session: Session) -> Response:
        from bbedit.memory.formats import write_edits

        fmt = request.query_params.get("format", "jsonl")
        if fmt not in EXPORTS:
            raise Refused(400, f"Unknown export format {fmt!r}; choose one of {', '.join(EXPORTS)}.")
        superseded = request.query_params.get("superseded") == "1"
        memory = c.memory(session)

        def write() -> bytes:
            fd, tmp = tempfile.mkstemp(prefix="bbedit-console-", suffix=".json")
            os.close(fd)
            try:
                memory.refresh()
                write_edits(memory.list(include_superseded=superseded), tmp, fmt)
                return Path(tmp).read_bytes()
            finally:
                Path(tmp).unlink(missing_ok=True)

        data = await c.ctx.run(write)
        ctype, suffix = EXPORTS[fmt]
        name = f"edits-{session.namespace}-{fmt}.{suffix}"
        return Response(data, media_type=ctype, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return [Route("/", c.page(index), name="edits"), Route("/edit", c.page(show)),
            Route("/new", c.page(new), methods=["GET", "POST"]), Route("/change", c.page(change), methods=["GET", "POST"]),
            Route("/delete", c.page(delete, write=True), methods=["POST"]),
            Route("/revert", c.page(revert, write=True), methods=["POST"]), Route("/export", c.page(export))]
