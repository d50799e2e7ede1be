"""The systems under test, built from the library's own parts, so every task answers through the path
users run: :class:`~bbedit.routing.Router` → :class:`~bbedit.pipeline.EditedModel` ``.chat``.

The evaluation only wraps that path:

- :class:`CachedBackend` is a :class:`~bbedit.backends.Backend` over the suite's call cache
  (:class:`~bbedit.evaluation.calls.CachedModel`); it also keeps the :class:`~bbedit.types.Completion`
  (tokens, latency) of every request it answered, and answers a request repeated within its lifetime once;
- :class:`RecordedBackend` answers with a dataset's recorded answer (PostEdit's ``response_before_edit``),
  so a post-editor rewrites that answer through ``EditedModel.chat`` too;
- :class:`CachedAnswerEditor` is an :class:`~bbedit.editors.AnswerEditor` around a post-editor whose
  rewrites are cached (and optionally not told the old value, ``hide_old``);
- :class:`Systems` holds one memory and gate and the routers the systems share: ``bbedit`` and the
  post-editors route through the gate (a post-editor at its own ``gate_threshold``), ``always`` through
  a :class:`~bbedit.scope.gate.SimilarityGate` that accepts the top hit, ``none`` not at all.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from bbedit.backends import Backend
from bbedit.conversation import last_user_text
from bbedit.editors.base import AnswerEditor, EditorBase, Rewrite
from bbedit.errors import ConfigError
from bbedit.evaluation.calls import NOT_MEASURED, CachedModel, CallCache, pmap
from bbedit.memory.memory import EditMemory
from bbedit.pipeline import EditedModel
from bbedit.routing import Route, Router
from bbedit.scope.gate import ScopeGate
from bbedit.types import Answer, Completion, Edit, Message

log = logging.getLogger(__name__)

def user(text: str) -> list[Message]:
    """``text`` as the only user message."""
    return [{"role": "user", "content": text}]


class CachedBackend:
    """A :class:`~bbedit.backends.Backend` over a :class:`CachedModel` (the suite's model behind its call
    cache). ``generate`` options other than the cached model's own (a task's ``max_tokens``) select a
    cached model with those options, on the same cache and backend.

    Each distinct request (messages and options) is sent once per instance, even when several systems
    or threads ask it at the same time; :meth:`completion` gives back what it cost. Raises what the
    wrapped backend raises (BackendError).
    """

    def __init__(self, model: CachedModel) -> None:
        self.model = model
        self.name = model.model_id
        self._lock = threading.Lock()
        self._seen: dict[str, Future[Completion]] = {}
        self._variants: dict[str, CachedModel] = {}

    def _model(self, opts: Mapping[str, Any]) -> CachedModel:
        if not opts or all(self.model.opts.get(k) == v for k, v in opts.items()):
            return self.model
        key = repr(sorted(opts.items()))
        with self._lock:
            if key not in self._variants:
                self._variants[key] = CachedModel(self.model.backend, self.model.cache, self.model.model_id,
                                                  **{**self.model.opts, **opts})
            return self._variants[key]

    @staticmethod
    def _key(messages: Sequence[Message], opts: Mapping[str, Any]) -> str:
        return CallCache.key("", messages, dict(opts))

    def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        """The completion of ``messages`` (from the cache when it was made before)."""
        key = self._key(messages, opts)
        with self._lock:
            fut = self._seen.get(key)
            owner = fut is None
            if fut is None:
                fut = self._seen[key] = Future()
        if not owner:
            return fut.result()
        try:
            result = self._model(opts).complete(list(messages))
        except BaseException as e:
            fut.set_exception(e)
            with self._lock:
                del self._seen[key]  # a later call tries again
            raise
        fut.set_result(result)
        return result

    def generate(self, messages: Sequence[Message], **opts: Any) -> str:
        """The reply's text (the :class:`~bbedit.backends.Backend` protocol)."""
        return self.complete(messages, **opts).text

    def completion(self, messages: Sequence[Message], **opts: Any) -> Completion:
        """The completion this backend returned for ``messages`` (and ``opts``). Raises
        :class:`ConfigError` when it was never asked them."""
        with self._lock:
            fut = self._seen.get(self._key(messages, opts))
        if fut is None:
            raise ConfigError("no completion was made for these messages")
        return fut.result()

    @property
    def calls(self) -> int:
        """Calls that reached the model, over every option set."""
        return self.model.calls + sum(m.calls for m in self._variants.values())

    @property
    def hits(self) -> int:
        """Calls answered from the cache, over every option set."""
        return self.model.hits + sum(m.hits for m in self._variants.values())


class RecordedBackend:
    """A backend that answers each recorded question with its recorded answer (a dataset's answer from
    before the edit), so a post-editor can rewrite it through :meth:`EditedModel.chat`. ``generate``
    raises :class:`ConfigError` for a question it has no answer for."""

    name = "recorded"

    def __init__(self, answers: Mapping[str, str]) -> None:
        self.answers = dict(answers)

    def generate(self, messages: Sequence[Message], **opts: Any) -> str:
        q = last_user_text(messages)
        try:
            return self.answers[q]
        except KeyError:
            raise ConfigError(f"no recorded answer for {q[:80]!r}") from None


class ScoringOnlyBackend:
    """For systems only scored under the probability protocol (the messages they would send, see
    :meth:`EditedModel.request_messages`): ``generate`` raises :class:`ConfigError`."""

    name = "scoring-only"

    def generate(self, messages: Sequence[Message], **opts: Any) -> str:
        raise ConfigError("this system is scored by teacher forcing only; it has no generating backend")


class CachedAnswerEditor(AnswerEditor):
    """An answer editor whose rewrites are kept in the suite's call cache, keyed by ``editor_id`` (the
    editor's behaviour: name, config, adapter weights), the question, the answer and the edit. With
    ``hide_old`` the editor is not told what the edit replaces (results are scored against it all the
    same). Rewrites run one at a time (a post-editor's model is not shared between threads); each
    one's record (``p_keep``, seconds, tokens, passes, script, ``answer_tokens``) is kept for
    :meth:`record`. Raises what the wrapped editor raises."""

    def __init__(self, inner: AnswerEditor, cache: CallCache, editor_id: str, *, hide_old: bool = False) -> None:
        if not isinstance(inner, AnswerEditor):
            raise ConfigError(f"{getattr(inner, 'name', inner)!r} is not an answer editor")
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.gate_threshold = inner.gate_threshold
        self.cache = cache
        self.editor_id = editor_id
        self.hide_old = hide_old
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}

    def load(self) -> None:
        self.inner.load()

    def bind(self, memory: Any) -> None:
        self.inner.bind(memory)

    def _seen_edit(self, edit: Edit) -> Edit:
        return dataclasses.replace(edit, target_old=None) if self.hide_old else edit

    def _key(self, query: str, answer: str, edit: Edit) -> str:
        return CallCache.key(self.editor_id, [{"role": "user", "content": query},
                                              {"role": "assistant", "content": answer}],
                             {"edit": [edit.prompt, edit.target_new, edit.target_old or ""]})

    def rewrite(self, query: str, answer: str, edit: Edit) -> Rewrite:
        """The (cached) rewrite of ``answer`` for ``edit``."""
        e = self._seen_edit(edit)
        key = self._key(query, answer, e)
        found = self.cache.get(key)
        if found is None:
            with self._lock:
                r = self.inner.rewrite(query, answer, e)
            found = {"text": r.text, "changed": r.changed, "p_keep": r.p_keep, "latency_s": r.latency_s,
                     "tokens": r.tokens, "passes": r.passes, "script": r.script,
                     "answer_tokens": answer_tokens(self.inner, answer)}
            self.cache.put(key, found)
        else:  # its time was measured in another run: not this run's figure
            found = {**found, "latency_s": NOT_MEASURED}
        with self._lock:
            self._records[key] = found
        return Rewrite(found["text"], bool(found["changed"]), float(found["p_keep"]), float(found["latency_s"]),
                       int(found.get("tokens", 0)), int(found.get("passes", 1)), str(found.get("script", "")))

    def record(self, query: str, answer: str, edit: Edit) -> dict[str, Any]:
        """The record of the rewrite made for (``query``, ``answer``, ``edit``). Raises
        :class:`ConfigError` when there was none."""
        with self._lock:
            found = self._records.get(self._key(query, answer, self._seen_edit(edit)))
        if found is None:
            raise ConfigError("no rewrite was made for this answer")
        return found


def answer_tokens(editor: Any, text: str) -> int:
    """The length of ``text`` in the editor's tokens (words, for an editor without a tokenizer)."""
    tok = getattr(editor, "_tok", None)
    return len(tok(text, add_special_tokens=False)["input_ids"]) if tok is not None else len(text.split())


class Systems:
    """One edit memory and scope gate, with the routers the systems built over them share.

    ``router`` routes through ``gate`` (bbedit, the post-editors); ``always`` through a
    :class:`~bbedit.scope.gate.SimilarityGate` with threshold -1 (the top hit is applied to every query)
    with the same ``k``. ``gate`` defaults to the memory's saved (or built-in) one. The memory is the
    run's own, in this process, so the routers do not check it for other processes' writes. Raises
    :class:`ConfigError` when ``gate`` belongs to another memory.
    """

    def __init__(self, memory: EditMemory, gate: ScopeGate | None = None) -> None:
        self.router = Router(memory, gate, refresh=False)
        self._always: Router | None = None

    @property
    def memory(self) -> EditMemory:
        return self.router.memory

    @property
    def gate(self) -> ScopeGate:
        return self.router.gate

    @property
    def always(self) -> Router:
        """The router of the ``always`` system."""
        if self._always is None:
            from bbedit.scope.gate import SimilarityGate

            self._always = Router(self.memory, SimilarityGate(self.memory, threshold=-1.0, k=self.router.k),
                                  refresh=False)
        return self._always

    def model(self, system: str, backend: Backend, editor: EditorBase) -> EditedModel:
        """``system``'s model: ``backend`` behind this memory's router for the system, with ``editor``."""
        return EditedModel(backend, router=self.always if system == "always" else self.router, editor=editor)


def route(model: EditedModel | None, queries: Sequence[str]) -> tuple[list[Route], float]:
    """Every query routed by ``model`` (None: the unedited system, every query passed through), in
    batches; returns the routes and the amortised routing time per query in ms."""
    if model is None or not queries:
        return [Route.passthrough(q) for q in queries], 0.0
    t0 = time.perf_counter()
    routes = model.route_many(queries)
    return routes, (time.perf_counter() - t0) * 1000 / len(queries)


def chat_all(jobs: Sequence[tuple[EditedModel, str, Route]], workers: int, desc: str | None = None,
             **opts: Any) -> list[Answer]:
    """``model.chat(user(query), route=route, **opts)`` for every job, ``workers`` at a time, in order."""
    def one(job: tuple[EditedModel, str, Route]) -> Answer:
        model, q, r = job
        return model.chat(user(q), route=r, **opts)

    return pmap(one, jobs, workers, desc)


def completions(model: EditedModel, backend: CachedBackend, queries: Sequence[str], routes: Sequence[Route],
                answers: Sequence[Answer], **opts: Any) -> list[Completion]:
    """What each answer cost (tokens, latency), from the request ``model`` sent for it, with the
    answer's own text."""
    return [dataclasses.replace(backend.completion(model.request_messages(user(q), r), **opts), text=a.text)
            for q, r, a in zip(queries, routes, answers, strict=True)]


def ask(model: EditedModel, backend: CachedBackend, queries: Sequence[str], routes: Sequence[Route],
        workers: int, desc: str | None = None, **opts: Any) -> list[Completion]:
    """Answer every query through ``model.chat`` on its route; the answers as completions."""
    got = chat_all([(model, q, r) for q, r in zip(queries, routes, strict=True)], workers, desc, **opts)
    return completions(model, backend, queries, routes, got, **opts)


__all__ = ["CachedAnswerEditor", "CachedBackend", "RecordedBackend", "ScoringOnlyBackend",
           "Systems", "answer_tokens", "ask", "chat_all", "completions", "route", "user"]
