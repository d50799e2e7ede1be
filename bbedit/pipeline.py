"""EditedModel: the query path, router (memory → scope gate) → editor or the untouched backend."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from bbedit.backends import Backend, supports
from bbedit.conversation import last_user_text
from bbedit.editors.base import AnswerEditor, EditorBase, RequestEditor, check_editor, make_editor
from bbedit.errors import ConfigError
from bbedit.memory.memory import EditMemory
from bbedit.routing import Route, Router
from bbedit.scope.gate import ScopeGate
from bbedit.types import Answer, Message

log = logging.getLogger(__name__)

__all__ = ["EditedModel", "last_user_text"]


class EditedModel:
    """A backend with edits applied from outside.

    Give either ``memory`` (with an optional ``gate`` and ``k``: a :class:`~bbedit.routing.Router` is
    built, whose ``k`` defaults to the gate's saved one) or a ready ``router``. ``editor`` is an editor
    or a registered name ("ike", "postedit", "replace"); it is routed at its ``gate_threshold`` when
    that is below the gate's (the post-editor, whose keep decision filters again).
    Out-of-scope conversations reach the backend exactly as given.
    Raises :class:`ConfigError` for an unknown editor name or when neither memory nor router is given.
    """

    def __init__(self, backend: Backend, memory: EditMemory | None = None, gate: ScopeGate | None = None,
                 editor: EditorBase | str = "ike", *, k: int | None = None, router: Router | None = None) -> None:
        if router is None:
            if memory is None:
                raise ConfigError("EditedModel needs an edit memory or a router")
            router = Router(memory, gate, k=k)
        elif memory is not None and memory is not router.memory:
            raise ConfigError("the router routes over another edit memory than the one given")
        self.backend = backend
        self.router = router
        self.editor: EditorBase = make_editor(editor) if isinstance(editor, str) else editor
        check_editor(self.editor)
        self.editor.bind(router.memory)

    @property
    def memory(self) -> EditMemory:
        return self.router.memory

    @property
    def gate(self) -> ScopeGate:
        return self.router.gate

    @property
    def k(self) -> int:
        return self.router.k

    # -- routing ------------------------------------------------------------------------------------
    def route(self, messages: Sequence[Message]) -> Route:
        """The routing decision for the conversation (at this editor's gate threshold)."""
        return self.router.route(messages, threshold=self.editor.gate_threshold)

    def route_many(self, queries: Sequence[str]) -> list[Route]:
        """Routing decisions for many single questions at once (batched retrieval)."""
        return self.router.route_many(queries, threshold=self.editor.gate_threshold)

    def request_messages(self, messages: Sequence[Message], route: Route) -> list[Message]:
        """The messages the backend receives for ``messages`` on ``route``: the edited request for a
        request editor in scope, else the conversation as given."""
        if route.edit is not None and isinstance(self.editor, RequestEditor):
            return self.editor.build_messages(messages, route.edits)
        return list(messages)

    # -- answering ----------------------------------------------------------------------------------
    def chat(self, messages: Sequence[Message], *, route: Route | None = None, **opts: Any) -> Answer:
        """Answer a conversation (OpenAI-style messages). ``route`` is a decision already made for it
        by this model's router (batch callers route many conversations at once). Raises BackendError
        from the backend and ConfigError for malformed messages."""
        t0 = time.perf_counter()
        if route is None:
            route = self.route(messages)
        t1 = time.perf_counter()
        if route.edit is None:
            text = self.backend.generate(list(messages), **opts)
            original = None
        else:
            out = self.editor.answer(self.backend, messages, route.edits, **opts)
            text, original = out.text, out.original_text
            log.debug("applied edits %s (score %.3f)", ", ".join(e.id for e in route.edits), route.score)
        t2 = time.perf_counter()
        timings = {**route.timings, "route_s": t1 - t0, "generate_s": t2 - t1, "total_s": t2 - t0}
        return Answer(text, route.edit, route.score, original, timings, route)

    def ask(self, question: str, **opts: Any) -> Answer:
        """Answer one question."""
        return self.chat([{"role": "user", "content": question}], **opts)

    def stream(self, messages: Sequence[Message], *, route: Route | None = None,
               **opts: Any) -> tuple[Route, Iterator[str]]:
        """The routing decision and an iterator over the answer's text chunks."""
        if route is None:
            route = self.route(messages)
        if route.edit is not None:
            return route, self.editor.stream(self.backend, messages, route.edits, **opts)
        if supports(self.backend, "stream"):
            return route, self.backend.stream(list(messages), **opts)  # type: ignore[attr-defined]
        return route, iter([self.backend.generate(list(messages), **opts)])

    @property
    def rewrites_answers(self) -> bool:
        """Whether the editor rewrites the backend's answers (an answer editor)."""
        return isinstance(self.editor, AnswerEditor)
