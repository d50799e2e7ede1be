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

from bbedit import dialogue
from bbedit.conversation import ends_with_user, last_user_text
from bbedit.errors import ConfigError
from bbedit.memory.memory import EditMemory
from bbedit.memory.subjects import named_in
from bbedit.scope.gate import ScopeGate, load_gate
from bbedit.scope.pair_templates import rule_differs
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
    reading: str | None = None  # the reading the decision was made on, when not the question as asked
    also: tuple[tuple[Edit, float, str], ...] = ()  # further edits in scope: (edit, score, the reading)

    @property
    def edit(self) -> Edit | None:
        """The edit the conversation is most surely about, or None (out of scope)."""
        return self.decision.edit

    @property
    def edits(self) -> tuple[Edit, ...]:
        """Every edit in scope, best first: the decision's edit, then those that other readings of the
        question reached (its other parts, a follow-up resolved with an earlier turn's subject)."""
        return tuple(e for e, _ in self.scored_edits)

    @property
    def scored_edits(self) -> tuple[tuple[Edit, float], ...]:
        """:attr:`edits` with their scores."""
        if self.decision.edit is None:
            return ()
        return ((self.decision.edit, self.decision.score), *((e, s) for e, s, _ in self.also))

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
        prompt, ``subject_named`` (the subject name or alias the query uses, or None), score, accepted, and
        ``labels_differ`` (the two Wikidata labels) where the query and the edit name different properties,
        ``roles_differ`` (the two offices) where they ask about different holders of one ("first president",
        "president")."""
        chosen = self.edit.id if self.edit is not None else None
        q = self.query or ""
        out: list[dict[str, object]] = []
        for e, s in self.candidates[:n]:
            row: dict[str, object] = {"id": e.id, "subject": e.subject, "prompt": e.prompt,
                                      "subject_named": named_in(q, (e.subject, *e.aliases)), "score": round(float(s), 4),
                                      "accepted": e.id == chosen}
            if (differ := rule_differs(q, e.prompt, (e.subject, *e.aliases))) is not None:
                row[differ[0]] = list(differ[1])  # why a named candidate scored 0
            out.append(row)
        return out

    def explanation(self, n: int = 5) -> dict[str, object]:
        """The decision as a plain dict: the threshold, whether it is in scope, :meth:`explain`'s ``n``
        best candidates (what ``ask --explain`` shows and the proxy's route header carries), and when
        present the reading decided on and the further edits in scope."""
        out: dict[str, object] = {"threshold": round(self.threshold, 4), "in_scope": self.in_scope,
                                  "candidates": self.explain(n)}
        if self.reading is not None:
            out["reading"] = self.reading
        if self.also:
            out["also"] = [{"id": e.id, "subject": e.subject, "prompt": e.prompt, "score": round(float(s), 4),
                            "reading": r} for e, s, r in self.also]
        return out

    @classmethod
    def passthrough(cls, query: str | None = None) -> Route:
        """A route that applies no edit (a system without editing, or nothing to route)."""
        return cls(query)


class Router:
    """Decides, for a conversation, which stored edit (if any) it is about.

    ``gate`` defaults to the gate saved with the memory (``gate.json``) or the built-in one; ``k``
    (how many nearest edits retrieval hands the gate) defaults to the gate's own ``k``, the one saved
    with its calibration. ``refresh`` picks up other processes' writes before each routing;
    ``readings=False`` routes each question as it comes only (no follow-up or part readings).
    Raises :class:`ConfigError` when ``gate`` belongs to another memory or ``k`` is not positive.
    """

    def __init__(self, memory: EditMemory, gate: ScopeGate | None = None, *, k: int | None = None,
                 refresh: bool = True, readings: bool = True) -> None:
        self.memory = memory
        self.use_readings = readings
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
        """Route a conversation on its last user message, read with the conversation: a follow-up that
        names no stored subject but refers back ("it", "the company") is also read with the subjects
        of the earlier turns, and a several-part question part by part (:mod:`bbedit.dialogue`).
        A conversation that does not end with a user message (an assistant prefill, a tool result) is
        out of scope. ``threshold`` lowers the gate's threshold for this call (never raises it):
        editors with a second filter of their own ask for it. Raises :class:`ConfigError` for
        malformed messages and what the memory raises (MemoryCorrupt)."""
        if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
            raise ConfigError("messages must be a list of message objects")
        if not ends_with_user(messages):
            return Route.passthrough()
        return self._route_read([(last_user_text(messages), messages)], threshold)[0]

    def route_query(self, query: str, *, threshold: float | None = None) -> Route:
        """Route one question (as the only user message)."""
        return self.route_many([query], threshold=threshold)[0]

    def route_many(self, queries: Sequence[str], *, threshold: float | None = None,
                   batch_size: int = 512) -> list[Route]:
        """Route many questions (each as the only user message) with batched embedding and search;
        each batch sees one state of the memory. Timings are amortised per question (its readings
        included). Raises
        :class:`ConfigError` for non-string queries."""
        for q in queries:
            if not isinstance(q, str):
                raise ConfigError(f"query must be a string, got {type(q).__name__}")
        out: list[Route] = []
        for b in range(0, len(queries), batch_size):
            out += self._route_read([(q, None) for q in queries[b:b + batch_size]], threshold)
        return out

    # -- readings ---------------------------------------------------------------------------------
    def readings(self, query: str, messages: Sequence[Message] | None = None) -> list[str]:
        """The other readings of ``query`` routed beside it: with an earlier turn's subject in place
        of its pronoun or description (when it names no stored subject itself), and each part of a
        several-part question asked about its subject. Without ``readings`` (the constructor's
        switch), none."""
        if not self.use_readings:
            return []
        named = self.memory.subjects_in(query)
        out: list[str] = []
        resolved = False  # bases read with an earlier turn's subject: their parts must refer back too
        if named:
            bases = [(query, named[0][0])] if dialogue.name_like(named[0][0]) else []
        else:
            resolved = True
            found = dialogue.anaphors(query)
            if not messages or not (found or dialogue.elliptical(query)):
                return []
            context = self._earlier_subjects(messages)
            if found:
                bases = [(dialogue.substitute(query, found[0], name), name) for name in context]
                out += [b for b, _ in bases]
            else:  # "And the CTO?": the part asked about each earlier subject
                out += [r for name in context for r in dialogue.about(dialogue.strip_lead(query), name)]
                bases = []
        for base, subject in bases:
            for sentence in dialogue.sentences(base):  # a sentence naming a subject is a question of its own
                if self.memory.subjects_in(sentence):
                    out.append(sentence)
                elif dialogue.anaphors(sentence):
                    out += dialogue.about(sentence, subject)
            for part in dialogue.parts(base, keep=[subject]):
                if self.memory.subjects_in(part):
                    if dialogue.asks(part) and not resolved:  # a question of its own ("who is the CEO of Acme")
                        out.append(part)
                elif not resolved or dialogue.anaphors(part):
                    out += dialogue.about(part, subject)
        unique = [r for r in dict.fromkeys(out) if r != query]
        return unique[:MAX_READINGS]

    def _earlier_subjects(self, messages: Sequence[Message], n: int = 3) -> list[str]:
        """Up to ``n`` stored subject names from the earlier turns, the most recent turn first."""
        names: dict[str, str] = {}
        for text in dialogue.earlier_texts(messages):
            for surface, _ in self.memory.subjects_in(text):
                if dialogue.name_like(surface):
                    names.setdefault(surface.casefold(), surface)
            if len(names) >= n:
                break
        return list(names.values())[:n]

    def _route_read(self, items: Sequence[tuple[str, Sequence[Message] | None]], threshold: float | None
                    ) -> list[Route]:
        """Route each (question, conversation or None) with its readings, all in one batch."""
        limit = self._limit(threshold)
        with self.memory.lock:  # retrieval and the gate's look-ups see the same edits
            reloaded = self.memory.refresh() if self.refresh else False
            t0 = time.perf_counter()
            groups = [[q, *self.readings(q, msgs)] if len(self.memory) else [q] for q, msgs in items]
            texts = [t for g in groups for t in g]
            found = self.memory.retrieve_many(texts, self.k) if len(self.memory) else []
            t1 = time.perf_counter()
            decisions = [self.gate.decide(q, r, threshold) for q, r in zip(texts, found, strict=True)] \
                if found else [_NO_DECISION] * len(texts)
            t2 = time.perf_counter()
        n = max(len(items), 1)
        timings = {"retrieve_s": (t1 - t0) / n, "gate_s": (t2 - t1) / n}
        out, at = [], 0
        for g in groups:
            ds = decisions[at:at + len(g)]
            at += len(g)
            out.append(_combine(g, ds, limit, timings, reloaded))
        return out


MAX_READINGS = 12  # routed beside a question, at most


def _combine(texts: Sequence[str], decisions: Sequence[GateDecision], limit: float,
             timings: Mapping[str, float], reloaded: bool) -> Route:
    """One route from the decisions on a question (``texts[0]``) and its readings: the question's own
    decision when it is in scope, else the best reading's; every other edit a reading reached is
    added once, best first."""
    accepted = [i for i, d in enumerate(decisions) if d.edit is not None]
    if not accepted:
        return Route(texts[0], decisions[0], limit, timings, reloaded)
    main = 0 if decisions[0].edit is not None else max(accepted, key=lambda i: decisions[i].score)
    chosen = decisions[main]
    assert chosen.edit is not None
    seen = {chosen.edit.id}
    also: list[tuple[Edit, float, str]] = []
    for i in sorted(accepted, key=lambda i: -decisions[i].score):
        e = decisions[i].edit
        if e is not None and e.id not in seen:
            seen.add(e.id)
            also.append((e, decisions[i].score, texts[i]))
    return Route(texts[0], chosen, limit, timings, reloaded, None if main == 0 else texts[main], tuple(also))


__all__ = ["Route", "Router"]
