"""EditedModel: the query path, memory → scope gate → editor or untouched backend."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from bbedit.backends import Backend, supports
from bbedit.editors.base import Editor, make_editor
from bbedit.errors import ConfigError
from bbedit.memory.memory import EditMemory
from bbedit.scope.gate import ScopeGate, load_gate
from bbedit.types import Answer, GateDecision, Message

log = logging.getLogger(__name__)


def last_user_text(messages: Sequence[Message]) -> str:
    """The text of the last user message (text parts joined). Raises ConfigError if there is none."""
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
            return ""
    raise ConfigError("the conversation has no user message")


class EditedModel:
    """A backend with edits applied from outside.

    ``gate`` defaults to the gate saved with the memory (or the built-in learned
    gate); ``editor`` is an :class:`Editor` or a registered name ("ike", "postedit",
    "replace"). An editor with a ``gate_threshold`` below the gate's (the post-editor, whose
    keep decision filters again) is routed at that threshold.
    Out-of-scope conversations reach the backend exactly as given.
    """

    def __init__(self, backend: Backend, memory: EditMemory, gate: ScopeGate | None = None,
                 editor: Editor | str = "ike", *, k: int = 5) -> None:
        self.backend = backend
        self.memory = memory
        self.gate: ScopeGate = gate if gate is not None else load_gate(memory)
        self.editor: Editor = make_editor(editor) if isinstance(editor, str) else editor
        self.k = k

    def route(self, messages: Sequence[Message]) -> tuple[GateDecision, dict[str, float]]:
        """The gate's decision for the conversation's last user message, and its timings."""
        t0 = time.perf_counter()
        query = last_user_text(messages)
        r = self.memory.retrieve(query, self.k)
        t1 = time.perf_counter()
        d = self.gate.decide(query, r, getattr(self.editor, "gate_threshold", None))
        t2 = time.perf_counter()
        return d, {"retrieve_s": t1 - t0, "gate_s": t2 - t1}

    def chat(self, messages: Sequence[Message], **opts: Any) -> Answer:
        """Answer a conversation (OpenAI-style messages). Raises BackendError from the backend."""
        t0 = time.perf_counter()
        decision, timings = self.route(messages)
        t1 = time.perf_counter()
        if decision.edit is None:
            text = self.backend.generate(list(messages), **opts)
            original = None
        else:
            out = self.editor.answer(self.backend, messages, decision.edit, **opts)
            text, original = out.text, out.original_text
            log.debug("applied edit %s (score %.3f)", decision.edit.id, decision.score)
        t2 = time.perf_counter()
        return Answer(text, decision.edit, decision.score, original,
                      {**timings, "generate_s": t2 - t1, "total_s": t2 - t0})

    def ask(self, question: str, **opts: Any) -> Answer:
        """Answer one question."""
        return self.chat([{"role": "user", "content": question}], **opts)

    def stream(self, messages: Sequence[Message], **opts: Any) -> tuple[GateDecision, Iterator[str]]:
        """The gate's decision and an iterator over the answer's text chunks."""
        decision, _ = self.route(messages)
        if decision.edit is not None:
            return decision, self.editor.stream(self.backend, messages, decision.edit, **opts)
        if supports(self.backend, "stream"):
            return decision, self.backend.stream(list(messages), **opts)  # type: ignore[attr-defined]
        return decision, iter([self.backend.generate(list(messages), **opts)])
