"""The edit admin API under ``/admin``: create, batch create, get, list, update, delete, export the
edits (``/admin/edits``), their history and revert (``/admin/edits/{id}/history``, ``.../revert``),
the namespace's history and point-in-time restore (``/admin/history``, ``/admin/restore``).

Every write returns only after the store committed it (SQLite with ``synchronous=FULL``, or
PostgreSQL), so an acknowledged edit survives a crash, and the chat route sees it at its next
request (same memory object; other replicas hear it through the database's change feed). With a
token configured, each request needs ``Authorization: Bearer <token>``; a token acts on its own
namespace only (:mod:`bbedit.server.tenants`), and its name is recorded as who made each change.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import JSONResponse, Response

from bbedit.errors import ConfigError, DuplicateEdit, EditNotFound, InvalidEdit, MemoryCorrupt
from bbedit.memory.memory import EditMemory
from bbedit.server.errors import APIError
from bbedit.server.proxy import EditingProxy, parse_object, read_body
from bbedit.server.tenants import AccessDenied, admin_identity
from bbedit.types import Edit

UPDATABLE = ("subject", "prompt", "target_new", "target_old", "aliases", "source")
EXPORT_TYPES = {"jsonl": "application/x-ndjson", "counterfact": "application/json", "postedit": "application/json"}


def _edit_error(e: Exception) -> APIError:
    if isinstance(e, EditNotFound):
        return APIError(404, str(e), code="edit_not_found")
    if isinstance(e, DuplicateEdit):
        return APIError(409, str(e), code="duplicate_edit")
    return APIError(422, str(e), code="invalid_edit")


@dataclass(frozen=True)
class Admin:
    """Who is asking (the token's name) and the memory of their namespace."""

    who: str
    namespace: str
    memory: EditMemory


def _at(value: Any) -> float:
    """A restore time: Unix seconds or an ISO-8601 string (UTC unless it names a zone)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            t = datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return (t if t.tzinfo else t.replace(tzinfo=datetime.UTC)).timestamp()
    raise APIError(422, "'at' must be Unix seconds or an ISO-8601 time like 2026-12-03T17:30:00Z", param="at",
                   code="invalid_value")


def admin_router(proxy: EditingProxy) -> APIRouter:
    """The admin routes over the memory of each request's namespace."""
    config = proxy.config
    assert config.access is not None
    access = config.access

    def auth(request: Request, namespace: str | None = None) -> Admin:
        try:
            who, ns = admin_identity(access, config.token, request.headers, namespace)
        except AccessDenied as e:
            raise APIError(e.status, e.message, "authentication_error" if e.status == 401 else "permission_error",
                           code=e.code, headers={"WWW-Authenticate": "Bearer"} if e.status == 401 else None) from e
        return Admin(who, ns, proxy.namespaces.router(ns).memory)

    router = APIRouter(prefix="/admin", tags=["admin"])

    def show(admin: Admin, edit: Edit) -> dict[str, Any]:
        return {**edit.to_dict(), "active": edit.id in admin.memory}

    def refreshed_call(memory: EditMemory, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if memory.refresh():  # another process wrote: act on its rows too
            proxy.metrics.reloads.inc()
        return fn(*args, **kwargs)

    async def call(admin: Admin, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn`` in the worker pool, after picking up other processes' writes; edit errors become API errors."""
        try:
            return await proxy.run(lambda: refreshed_call(admin.memory, fn, *args, **kwargs))
        except (InvalidEdit, DuplicateEdit, EditNotFound) as e:
            raise _edit_error(e) from e

    def metric(op: str, n: int = 1) -> None:
        proxy.metrics.edit_writes.labels(op).inc(n)

    @router.post("/edits", status_code=201, summary="Create one edit (durable before the response)")
    async def create(request: Request, supersede: bool = True, admin: Admin = Depends(auth)) -> JSONResponse:
        body = parse_object(await read_body(request, config.max_body_bytes), "edit")
        try:
            edit = Edit.from_dict(body)
        except InvalidEdit as e:
            raise _edit_error(e) from e
        stored = await call(admin, admin.memory.add, edit, supersede=supersede, actor=admin.who)
        metric("create")
        return JSONResponse(show(admin, stored), status_code=201)

    @router.post("/edits/batch", status_code=201, summary="Create many edits in one transaction")
    async def create_batch(request: Request, supersede: bool = True, admin: Admin = Depends(auth)) -> JSONResponse:
        raw = await read_body(request, config.max_body_bytes)
        items: Any = parse_object(b'{"edits": ' + raw + b"}" if raw.lstrip()[:1] == b"[" else raw, "batch")
        items = items.get("edits")
        if not isinstance(items, list) or not items:
            raise APIError(422, "send a non-empty JSON array of edits, or {\"edits\": [...]}", param="edits",
                           code="invalid_edit")
        if len(items) > config.max_batch:
            raise APIError(413, f"a batch holds at most {config.max_batch} edits, got {len(items)}",
                           code="batch_too_large")
        edits = []
        for n, item in enumerate(items):
            try:
                edits.append(Edit.from_dict(item))
            except InvalidEdit as e:
                raise APIError(422, f"edit #{n + 1}: {e}", param=f"edits[{n}]", code="invalid_edit") from e
        stored = await call(admin, admin.memory.add_many, edits, supersede=supersede, batch_size=len(edits),
                            actor=admin.who)
        metric("create", len(stored))
        return JSONResponse({"object": "list", "data": [show(admin, e) for e in stored], "count": len(stored)},
                            status_code=201)

    @router.get("/edits", summary="List edits, oldest first, a page at a time")
    async def list_edits(offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000),
                         include_superseded: bool = False, admin: Admin = Depends(auth)) -> dict[str, Any]:
        edits = await call(admin, lambda: admin.memory.list(include_superseded=include_superseded))
        page = edits[offset:offset + limit]
        more = offset + len(page) < len(edits)
        return {"object": "list", "data": [show(admin, e) for e in page], "total": len(edits), "offset": offset,
                "limit": limit, "has_more": more, "next_offset": offset + len(page) if more else None,
                "namespace": admin.namespace}

    @router.get("/edits/export", summary="Export edits as a file (jsonl, counterfact or postedit)")
    async def export(format: str = "jsonl", include_superseded: bool = False,
                     admin: Admin = Depends(auth)) -> Response:
        if format not in EXPORT_TYPES:
            raise APIError(400, f"format must be one of {', '.join(EXPORT_TYPES)}", param="format")
        data = await call(admin, _export, admin.memory, format, include_superseded)
        suffix = "jsonl" if format == "jsonl" else "json"
        return Response(data, media_type=EXPORT_TYPES[format],
                        headers={"Content-Disposition": f'attachment; filename="edits-{format}.{suffix}"'})

    @router.get("/edits/{edit_id}", summary="One edit, active or superseded")
    async def get(edit_id: str, admin: Admin = Depends(auth)) -> dict[str, Any]:
        history = await call(admin, admin.memory.history, edit_id)
        return {**show(admin, history[0]), "history": [h.id for h in history[1:]]}

    @router.patch("/edits/{edit_id}", summary="Change fields of an active edit (same id)")
    async def update(edit_id: str, request: Request, admin: Admin = Depends(auth)) -> dict[str, Any]:
        changes = parse_object(await read_body(request, config.max_body_bytes), "update")
        if changes.get("id", edit_id) != edit_id:
            raise APIError(422, "an edit's id cannot be changed", param="id", code="invalid_edit")
        changes.pop("id", None)
        unknown = sorted(set(changes) - set(UPDATABLE))
        if unknown:
            raise APIError(422, f"cannot update field(s) {', '.join(unknown)}; updatable: {', '.join(UPDATABLE)}",
                           code="invalid_edit")
        if not changes:
            raise APIError(422, "nothing to update", code="invalid_edit")
        new = await call(admin, admin.memory.update, edit_id, actor=admin.who, **changes)
        metric("update")
        return show(admin, new)

    @router.delete("/edits/{edit_id}", summary="Delete an edit (its history stays; revert brings it back)")
    async def delete(edit_id: str, admin: Admin = Depends(auth)) -> dict[str, Any]:
        edit = await call(admin, admin.memory.remove, edit_id, actor=admin.who)
        metric("delete")
        return {"id": edit.id, "object": "edit", "deleted": True}

    @router.get("/edits/{edit_id}/history", summary="Every version of an edit: what changed, who, when")
    async def edit_history(edit_id: str, admin: Admin = Depends(auth)) -> dict[str, Any]:
        changes = await call(admin, admin.memory.audit, edit_id)
        return {"object": "list", "id": edit_id,
                "data": [{"version": n, **c.to_dict()} for n, c in enumerate(changes, 1)]}

    @router.get("/edits/{edit_id}/live", summary="Whether this process routes with the edit now (no database read)")
    async def live(edit_id: str, admin: Admin = Depends(auth)) -> dict[str, Any]:
        # answered on the event loop from the in-process structures: what the next request here would use
        return {"id": edit_id, "object": "edit.live", "live": edit_id in admin.memory,
                "version": admin.memory.version}

    @router.post("/edits/{edit_id}/revert", summary="Put an edit back as it was after one of its versions")
    async def revert(edit_id: str, request: Request, admin: Admin = Depends(auth)) -> dict[str, Any]:
        body = parse_object(await read_body(request, config.max_body_bytes), "revert")
        to = body.get("to")
        if not isinstance(to, int) or isinstance(to, bool):
            raise APIError(422, "send {\"to\": VERSION} (an integer; 0 removes the edit)", param="to",
                           code="invalid_value")
        now = await call(admin, admin.memory.revert, edit_id, to, actor=admin.who)
        metric("revert")
        return {"id": edit_id, "object": "edit", "reverted_to": to,
                "edit": None if now is None else show(admin, now)}

    @router.get("/history", summary="The namespace's changes, newest last")
    async def history(limit: int = Query(100, ge=1, le=10_000), admin: Admin = Depends(auth)) -> dict[str, Any]:
        changes = await call(admin, admin.memory.audit, None, limit=limit)
        return {"object": "list", "namespace": admin.namespace, "data": [c.to_dict() for c in changes]}

    @router.post("/restore", summary="Put the namespace back as it was at a time")
    async def restore(request: Request, admin: Admin = Depends(auth)) -> dict[str, Any]:
        body = parse_object(await read_body(request, config.max_body_bytes), "restore")
        at = _at(body.get("at"))
        n = await call(admin, admin.memory.restore, at, actor=admin.who)
        metric("restore", max(n, 1))
        return {"object": "restore", "namespace": admin.namespace, "at": at, "changed": n}

    @router.post("/route", summary="Where a question or conversation would be routed (nothing is sent upstream)")
    async def route(request: Request, admin: Admin = Depends(auth)) -> dict[str, Any]:
        body = parse_object(await read_body(request, config.max_body_bytes), "route")
        messages = body.get("messages")
        if messages is None and isinstance(body.get("question"), str):
            messages = [{"role": "user", "content": body["question"]}]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise APIError(422, "send {\"question\": TEXT} or {\"messages\": [...]}", param="messages",
                           code="invalid_value")
        r = await proxy.run(lambda: proxy.namespaces.router(admin.namespace).route(messages))
        return {"object": "route", "namespace": admin.namespace, "version": admin.memory.version,
                "edit_ids": [e.id for e in r.edits], **r.explanation()}

    @router.get("/check", summary="Verify that this process's index agrees with the stored rows")
    async def check(admin: Admin = Depends(auth)) -> dict[str, Any]:
        def run() -> int:
            admin.memory.refresh()
            return admin.memory.check_index()

        try:
            n = await proxy.run(run)
        except MemoryCorrupt as e:
            raise APIError(500, f"the index disagrees with the database: {e}", "server_error",
                           code="index_mismatch") from e
        return {"object": "check", "namespace": admin.namespace, "active": n, "version": admin.memory.version,
                "ok": True}

    return router


def _export(memory: Any, format: str, include_superseded: bool) -> bytes:
    from bbedit.memory.formats import write_edits

    fd, tmp = tempfile.mkstemp(prefix="bbedit-export-", suffix=".json")
    os.close(fd)
    try:
        write_edits(memory.list(include_superseded=include_superseded), tmp, format)
        return Path(tmp).read_bytes()
    except ConfigError as e:
        raise APIError(400, str(e), param="format") from e
    finally:
        Path(tmp).unlink(missing_ok=True)
