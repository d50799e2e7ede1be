"""Cached model calls: a persistent cache, so an interrupted batch of calls resumes where it stopped.

Used by the benchmarks (``bbedit.evaluation.calls`` gives them the prompt templates' fingerprint by
default) and by the post-editor's training data builder.

Every call is greedy, so a request (model, messages, options) has one answer. The
cache is a SQLite file (WAL, one row per request, committed as each call returns);
a killed run loses at most the calls in flight. :class:`CachedModel` wraps any
backend with ``complete`` (or ``generate``) and answers repeated requests from it.

A key holds the model id, the messages, the options and a fingerprint of what else shapes the
answer (the evaluation harness passes the prompt templates' fingerprint), so a changed template or
editor cannot replay an answer made before the change. Latencies are never replayed: an answer from
the cache has ``latency_s`` NaN, and aggregates skip it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bbedit.types import Completion, Message

T = TypeVar("T")
R = TypeVar("R")


class CallCache:
    """``key -> JSON object`` in SQLite; ``path=None`` keeps it in memory. Thread-safe."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.commit()

    @staticmethod
    def key(model: str, messages: Sequence[Message], opts: dict[str, Any], fingerprint: str = "") -> str:
        """sha256 of the request: ``model``, ``messages``, ``opts`` and the ``fingerprint`` of the code,
        templates or weights behind the answer (left out of the hash when empty, so keys made without
        one stay as they were)."""
        req: dict[str, Any] = {"model": model, "messages": list(messages), "opts": opts}
        if fingerprint:
            req["fingerprint"] = fingerprint
        blob = json.dumps(req, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM calls WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        blob = json.dumps(value, ensure_ascii=False)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO calls (key, value) VALUES (?, ?)", (key, blob))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


NOT_MEASURED = float("nan")  # the latency of an answer from the cache (see metrics.measured)


class CachedModel:
    """A backend behind a :class:`CallCache`. ``opts`` (``max_tokens``, ``temperature``...)
    apply to every call and are part of the cache key, as are ``model_id`` and ``fingerprint``
    (empty by default; the evaluation harness gives the prompt templates'). An answer from the cache has ``latency_s`` NaN:
    its time was measured in another run and is not this run's figure."""

    def __init__(self, backend: Any, cache: CallCache | None = None, model_id: str | None = None, *,
                 fingerprint: str | None = None, **opts: Any) -> None:
        self.backend = backend
        self.cache = cache if cache is not None else CallCache()  # an empty cache is falsy
        self.model_id = model_id or str(getattr(backend, "model", type(backend).__name__))
        self.fingerprint = fingerprint or ""
        self.opts = opts
        self.calls = 0  # calls that reached the backend
        self.hits = 0
        self._lock = threading.Lock()

    def complete(self, messages: Sequence[Message]) -> Completion:
        key = CallCache.key(self.model_id, messages, self.opts, self.fingerprint)
        found = self.cache.get(key)
        if found is not None:
            with self._lock:
                self.hits += 1
            return Completion(**{**found, "latency_s": NOT_MEASURED})
        if hasattr(self.backend, "complete"):
            result = self.backend.complete(list(messages), **self.opts)
        else:
            result = Completion(text=self.backend.generate(list(messages), **self.opts))
        self.cache.put(key, dict(result.__dict__))
        with self._lock:
            self.calls += 1
        return result

    def __call__(self, messages: Sequence[Message]) -> str:
        return self.complete(messages).text


class CachedScorer:
    """Teacher-forced scores (``backend.score``) behind a :class:`CallCache`; ``fingerprint`` is part
    of the key."""

    def __init__(self, backend: Any, cache: CallCache | None = None, model_id: str | None = None, *,
                 fingerprint: str | None = None) -> None:
        self.backend = backend
        self.cache = cache if cache is not None else CallCache()  # an empty cache is falsy
        self.model_id = "score:" + (model_id or str(getattr(backend, "model", type(backend).__name__)))
        self.fingerprint = fingerprint or ""

    def score(self, messages: Sequence[Message], continuations: Sequence[str], prefix: str = "") -> list[Any]:
        from bbedit.backends.transformers_backend import Score

        key = CallCache.key(self.model_id, messages, {"continuations": list(continuations), "prefix": prefix},
                            self.fingerprint)
        found = self.cache.get(key)
        if found is None:
            scores = self.backend.score(messages, continuations, prefix=prefix)
            found = {"scores": [[s.logprob, list(s.token_logprobs), list(s.argmax_hits)] for s in scores]}
            self.cache.put(key, found)
        return [Score(lp, tuple(t), tuple(h)) for lp, t, h in found["scores"]]


def pmap(fn: Callable[[T], R], items: Sequence[T], workers: int = 4, desc: str | None = None) -> list[R]:
    """``fn`` over ``items`` with ``workers`` threads, results in order, with a progress bar
    when ``desc`` is given."""
    from tqdm import tqdm

    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in tqdm(items, desc=desc, disable=desc is None, mininterval=5)]
    with ThreadPoolExecutor(workers, thread_name_prefix="bbedit-calls") as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, disable=desc is None, mininterval=5))
