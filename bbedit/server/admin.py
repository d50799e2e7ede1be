"""The edit admin API under ``/admin/edits``: create, batch create, get, list, update, delete, export.

Every write returns only after the memory committed it to SQLite (``synchronous=FULL``), so an
acknowledged edit survives a crash, and the chat route sees it at its next request (same
memory object). With a token configured, each request needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import JSONResponse, Response

from bbedit.errors import ConfigError, DuplicateEdit, EditNotFound, InvalidEdit
from bbedit.server.errors import APIError
from bbedit.server.proxy import EditingProxy, parse_object, read_body
from bbedit.types import Edit

UPDATABLE = ("subject", "prompt", "target_new", "target_old", "aliases", "source")
EXPORT_TYPES = {"jsonl": "application/x-ndjson", "counterfact": "application/json", "postedit": "application/json"}


def check_token(request: Request, token: str | None) -> None:
    """Raise a 401 :class:`APIError` unless the request carries ``Bearer <token>`` (no-op without a token)."""
    if token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        raise APIError(401, "the admin API needs 'Authorization: Bearer <token>'", "authentication_error",
                       code="missing_token", headers={"WWW-Authenticate": "Bearer"})
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise APIError(401, "invalid admin token", "authentication_error", code="invalid_token",
                       headers={"WWW-Authenticate": "Bearer"})


def _edit_error(e: Exception) -> APIError:
    if isinstance(e, EditNotFound):
        return APIError(404, str(e), code="edit_not_found")
    if isinstance(e, DuplicateEdit):
        return APIError(409, str(e), code="duplicate_edit")
    return APIError(422, str(e), code="invalid_edit")


def admin_router(proxy: EditingProxy) -> APIRouter:
    """The admin routes over ``proxy``'s memory."""
    config = proxy.config
    memory = proxy.memory

    def auth(request: Request) -> None:
        check_token(request, config.token)

    router = APIRouter(prefix="/admin/edits", dependencies=[Depends(auth)], tags=["admin"])

    def show(edit: Edit) -> dict[str, Any]:
        return {**edit.to_dict(), "active": edit.id in memory}

    def refreshed_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        if memory.refresh():  # another process wrote: act on its rows too
            proxy.metrics.reloads.inc()
        return fn(*args, **kwargs)

    async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn`` in the worker pool, after picking up other processes' writes; edit errors become API errors."""
        try:
            return await proxy.run(lambda: refreshed_call(fn, *args, **kwargs))
        except (InvalidEdit, DuplicateEdit, EditNotFound) as e:
            raise _edit_error(e) from e

    def metric(op: str, n: int = 1) -> None:
        proxy.metrics.edit_writes.labels(op).inc(n)

    @router.post("", status_code=201, summary="Create one edit (durable before the response)")
    async def create(request: Request, supersede: bool = True) -> JSONResponse:
        body = parse_object(await read_body(request, config.max_body_bytes), "edit")
        try:
            edit = Edit.from_dict(body)
        except InvalidEdit as e:
            raise _edit_error(e) from e
        stored = await call(memory.add, edit, supersede=supersede)
        metric("create")
        return JSONResponse(show(stored), status_code=201)

    @router.post("/batch", status_code=201, summary="Create many edits in one transaction")
    async def create_batch(request: Request, supersede: bool = True) -> JSONResponse:
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
        stored = await call(memory.add_many, edits, supersede=supersede, batch_size=len(edits))
        metric("create", len(stored))
        return JSONResponse({"object": "list", "data": [show(e) for e in stored], "count": len(stored)},
                            status_code=201)

    @router.get("", summary="List edits, oldest first, a page at a time")
    async def list_edits(offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000),
                         include_superseded: bool = False) -> dict[str, Any]:
        edits = await call(lambda: memory.list(include_superseded=include_superseded))
        page = edits[offset:offset + limit]
        more = offset + len(page) < len(edits)
        return {"object": "list", "data": [show(e) for e in page], "total": len(edits), "offset": offset,
                "limit": limit, "has_more": more, "next_offset": offset + len(page) if more else None}

    @router.get("/export", summary="Export edits as a file (jsonl, counterfact or postedit)")
    async def export(format: str = "jsonl", include_superseded: bool = False) -> Response:
        if format not in EXPORT_TYPES:
            raise APIError(400, f"format must be one of {', '.join(EXPORT_TYPES)}", param="format")
        data = await call(_export, memory, format, include_superseded)
        suffix = "jsonl" if format == "jsonl" else "json"
        return Response(data, media_type=EXPORT_TYPES[format],
                        headers={"Content-Disposition": f'attachment; filename="edits-{format}.{suffix}"'})

    @router.get("/{edit_id}", summary="One edit, active or superseded")
    async def get(edit_id: str) -> dict[str, Any]:
        history = await call(memory.history, edit_id)
        return {**show(history[0]), "history": [h.id for h in history[1:]]}

    @router.patch("/{edit_id}", summary="Change fields of an active edit (same id)")
    async def update(edit_id: str, request: Request) -> dict[str, Any]:
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
        new = await call(memory.update, edit_id, **changes)
        metric("update")
        return show(new)

    @router.delete("/{edit_id}", summary="Delete an edit for good")
    async def delete(edit_id: str) -> dict[str, Any]:
        edit = await call(memory.remove, edit_id)
        metric("delete")
        return {"id": edit.id, "object": "edit", "deleted": True}

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
