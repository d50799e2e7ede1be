"""Try it: a question or a pasted conversation → the router's decision with its candidates and scores,
and the answer before and after editing side by side, the changed words marked. Answers go through the
library's one query path (:class:`~bbedit.pipeline.EditedModel` over the server's router, editor and
upstream), as the proxy answers them."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bbedit.errors import BackendError, ConfigError
from bbedit.server.console.diff import word_diff
from bbedit.server.console.forms import read_conversation
from bbedit.server.console.sessions import Session
from bbedit.server.console.web import Console
from bbedit.types import Message

MAX_TEXT = 8000


def answer(c: Console, namespace: str, messages: list[Message], ask_model: bool, max_tokens: int) -> dict[str, Any]:
    """Route ``messages`` and, when ``ask_model``, answer them before and after editing (blocking: run in
    the pool). Raises :class:`BackendError` when the model fails, :class:`ConfigError` for a bad
    conversation."""
    from bbedit.pipeline import EditedModel

    router = c.ctx.router(namespace)
    t0 = time.perf_counter()
    route = router.route(messages, threshold=c.ctx.editor.gate_threshold)
    out: dict[str, Any] = {"route": route, "explanation": route.explanation(10), "route_ms": 1000 * (time.perf_counter() - t0),
                           "threshold": router.threshold, "editor": c.ctx.editor.name,
                           "editor_threshold": c.ctx.editor.gate_threshold}
    if not ask_model or c.ctx.backend is None:
        return out
    backend = c.ctx.backend.get()
    model = EditedModel(backend, editor=c.ctx.editor, router=router)
    opts = {"max_tokens": max_tokens, "temperature": 0.0}
    t1 = time.perf_counter()
    if route.edit is None:
        before = after = backend.generate(list(messages), **opts)
    else:
        got = model.chat(messages, route=route, **opts)
        after = got.text
        before = got.original_text if got.original_text is not None else backend.generate(list(messages), **opts)
    out.update(before=before, after=after, answer_ms=1000 * (time.perf_counter() - t1), model=backend.name)
    out["before_spans"], out["after_spans"] = word_diff(before, after)
    return out


def routes(c: Console) -> list[Route]:
    async def page(request: Request, session: Session) -> Response:
        values: dict[str, Any] = {"text": request.query_params.get("q", "")[:MAX_TEXT], "ask": True,
                                  "max_tokens": 64}
        result = error = None
        status = 200
        if request.method == "POST":
            await c.check_write(request, session)
            form = await c.form(request)
            values = {"text": str(form.get("text") or ""), "ask": form.get("ask") == "1",
                      "max_tokens": str(form.get("max_tokens") or "64")}
            try:
                if len(values["text"]) > MAX_TEXT:
                    raise ValueError(f"At most {MAX_TEXT} characters.")
                messages = read_conversation(values["text"])
                try:
                    max_tokens = int(values["max_tokens"])
                except ValueError:
                    max_tokens = -1
                if not 1 <= max_tokens <= 1024:
                    raise ValueError("Max tokens must be a whole number from 1 to 1024.")
            except ValueError as e:
                error, status = str(e), 422
            else:
                try:
                    result = await c.ctx.run(answer, c, session.namespace, messages, bool(values["ask"]), max_tokens)
                except (BackendError, ConfigError) as e:
                    error, status = f"The model did not answer: {e}", 502
        backend = c.ctx.backend.label if c.ctx.backend is not None else None
        return c.render(request, "try.html", session, status=status, title="Try it", active="try", values=values,
                        result=result, error=error, backend=backend, editor=c.ctx.editor.name)

    return [Route("/try", c.page(page), methods=["GET", "POST"])]
