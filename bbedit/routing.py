"""The one routing seam: memory + scope gate + k, under the memory's lock → a :class:`Route`.

Every caller that decides whether a conversation is about a stored edit goes through
:class:`Router`: the pipeline (:class:`~bbedit.pipeline.EditedModel`), the proxy, the LangChain
wrapper and every evaluation task. Retrieval and the gate's look-ups run under the memory's lock,
so an edit removed or superseded by another thread in between cannot be half-seen (it used to
surface as a bare ``KeyError``); the memory is refreshed first when another process wrote to it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bbedit.conversation import ends_with_user, last_user_text
from bbedit.errors import ConfigError
from bbedit.memory.memory import EditMemory
from bbedit.memory.subjects import named_in
from bbedit.scope.gate import ScopeGate, load_gate
from bbedit.types import Edit, GateDecision, Message

_NO_DECISION = GateDecision(None, 0.0, ())


@dataclass(frozen=True)
class Route:
    """The routing decision for one conversation or query.

    ``query`` is the text that was routed (None when the conversation does not end with a user
    message, which is then out of scope); ``decision`` the gate's decision with every candidate it
    scored; ``threshold`` the score an edit needed; ``timings`` seconds per stage (``retrieve_s``,
    ``gate_s``; amortised per query in a batch); ``reloaded`` whether the memory was reloaded first
    because another process had changed it.
    """

    query: str | None
    decision: GateDecision = _NO_DECISION
    threshold: float = 1.0
    timings: Mapping[str, float] = field(default_factory=dict)
    reloaded: bool = False

    @property
    def edit(self) -> Edit | None:
        """The edit the conversation is about, or None (out of scope)."""
        return self.decision.edit

    @property
    def score(self) -> float:
        """The gate's score for the best candidate (whether or not it was accepted)."""
        return self.decision.score

    @property
    def in_scope(self) -> bool:
        return self.decision.edit is not None

    @property
    def candidates(self) -> tuple[tuple[Edit, float], ...]:
        """Every candidate the gate scored, best first, with its score."""
        return self.decision.candidates

    def explain(self, n: int = 5) -> list[dict[str, object]]:
        """The ``n`` best candidates as plain dicts, for logs, the CLI and debug fields: id, subject,
        prompt, ``subject_named`` (the subject name or alias the query uses, or None), score, accepted."""
        chosen = self.edit.id if self.edit is not None else None
        q = self.query or ""
        return [{"id": e.id, "subject": e.subject, "prompt": e.prompt,
                 "subject_named": named_in(q, (e.subject, *e.aliases)), "score": round(float(s), 4),
                 "accepted": e.id == chosen} for e, s in self.candidates[:n]]

    def explanation(self, n: int = 5) -> dict[str, object]:
        """The decision as a plain dict: the threshold, whether it is in scope and :meth:`explain`'s
        ``n`` best candidates (what ``ask --explain`` shows and the proxy's route header carries)."""
        return {"threshold": round(self.threshold, 4), "in_scope": self.in_scope, "candidates": self.explain(n)}

    @classmethod
    def passthrough(cls, query: str | None = None) -> Route:
        """A route that applies no edit (a system without editing, or nothing to route)."""
        return cls(query)


class Router:
    """Decides, for a conversation, which stored edit (if any) it is about.

    ``gate`` defaults to the gate saved with the memory (``gate.json``) or the built-in one; ``k``
    (how many nearest edits retrieval hands the gate) defaults to the gate's own ``k``, the one saved
    with its calibration. ``refresh`` picks up other processes' writes before each routing.
    Raises :class:`ConfigError` when ``gate`` belongs to another memory or ``k`` is not positive.
    """

    def __init__(self, memory: EditMemory, gate: ScopeGate | None = None, *, k: int | None = None,
                 refresh: bool = True) -> None:
        self.memory = memory
        self.gate: ScopeGate = gate if gate is not None else load_gate(memory)
        gate_memory = getattr(self.gate, "memory", memory)
        if gate_memory is not memory:
            raise ConfigError("the scope gate was built for another edit memory than the router's")
        self.k = int(k if k is not None else getattr(self.gate, "k", 5))
        if self.k < 1:
            raise ConfigError(f"k must be a positive number of candidates, got {self.k}")
        self.refresh = refresh

    @property
    def threshold(self) -> float:
        """The gate's own threshold."""
        return float(self.gate.threshold)

    def _limit(self, threshold: float | None) -> float:
        return self.threshold if threshold is None else min(float(threshold), self.threshold)

    def route(self, messages: Sequence[Message], *, threshold: float | None = None) -> Route:
        """Route a conversation on its last user message. A conversation that does not end with a user
        message (an assistant prefill, a tool result) is out of scope. ``threshold`` lowers the gate's
        threshold for this call (never raises it): editors with a second filter of their own ask for it.
        Raises :class:`ConfigError` for malformed messages and what the memory raises (MemoryCorrupt)."""
        if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
            raise ConfigError("messages must be a list of message objects")
        if not ends_with_user(messages):
            return Route.passthrough()
        return self.route_many([last_user_text(messages)], threshold=threshold)[0]

    def route_query(self, query: str, *, threshold: float | None = None) -> Route:
        """Route one question (as the only user message)."""
        return self.route_many([query], threshold=threshold)[0]

    def route_many(self, queries: Sequence[str], *, threshold: float | None = None,
                   batch_size: int = 512) -> list[Route]:
        """Route many questions with batched embedding and search; each batch sees one state of the
        memory. Timings are amortised per query. Raises :class:`ConfigError` for non-string queries."""
        for q in queries:
            if not isinstance(q, str):
                raise ConfigError(f"query must be a string, got {type(q).__name__}")
        limit = self._limit(threshold)
        out: list[Route] = []
        for b in range(0, len(queries), batch_size):
            part = list(queries[b:b + batch_size])
            with self.memory.lock:  # retrieval and the gate's look-ups see the same edits
                reloaded = self.memory.refresh() if self.refresh else False
                t0 = time.perf_counter()
                found = self.memory.retrieve_many(part, self.k) if len(self.memory) else []
                t1 = time.perf_counter()
                decisions = [self.gate.decide(q, r, threshold) for q, r in zip(part, found, strict=True)] \
                    if found else [_NO_DECISION] * len(part)
                t2 = time.perf_counter()
            n = max(len(part), 1)
            timings = {"retrieve_s": (t1 - t0) / n, "gate_s": (t2 - t1) / n}
            out.extend(Route(q, d, limit, timings, reloaded) for q, d in zip(part, decisions, strict=True))
        return out


__all__ = ["Route", "Router"]
