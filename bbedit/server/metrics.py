"""Metrics of one proxy (a registry per app: no process-wide state): the Prometheus counters served at
``/metrics``, and :class:`Traffic`, the in-process time-bucketed counters the console's Traffic page
draws (requests by outcome, routing and upstream latency, upstream errors, hits per edit, a log of
recent edited answers)."""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("passthrough", "edited", "kept", "upstream_error")
# upper edges (ms) of the latency histogram kept per bucket: percentiles are read from it
LATENCY_EDGES_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 120_000)


class Metrics:
    """Counters and histograms served at ``/metrics``, and the console's :attr:`traffic`."""

    def __init__(self, traffic: Traffic | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.traffic = traffic or Traffic()
        self.registry = CollectorRegistry()
        self.requests = Counter("bbedit_http_requests", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("bbedit_http_request_seconds", "Time to the response's first byte, by route",
                                 ["route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.routing = Histogram("bbedit_routing_seconds", "Memory retrieval + scope gate per chat request",
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1))
        self.upstream = Histogram("bbedit_upstream_seconds", "Upstream time to response headers",
                                  registry=self.registry,
                                  buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.decisions = Counter("bbedit_chat_requests", "Chat requests by outcome: passthrough (out of scope), edited (the client got an edited answer), "
                                 "kept (routed, but the post-editor left the answer as it was), upstream_error (routed, "
                                 "no answer)",
                                 ["outcome", "editor"], registry=self.registry)
        self.upstream_errors = Counter("bbedit_upstream_errors", "Upstream failures passed to clients, by code",
                                       ["code"], registry=self.registry)
        self.edit_writes = Counter("bbedit_admin_writes", "Admin API writes by operation",
                                   ["op"], registry=self.registry)
        self.edits = Gauge("bbedit_memory_edits", "Active edits in memory", registry=self.registry)
        self.reloads = Counter("bbedit_memory_reloads", "Reloads after another process changed the memory",
                               registry=self.registry)

    def render(self, n_edits: int) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.edits.set(n_edits)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)


@dataclass
class Call:
    """What one model request (chat, responses, completions) came to, filled in as it is served and
    handed to :meth:`Traffic.record` at its end. ``before``/``after`` are the answer's text before and
    after editing where the proxy saw them (None: not seen, e.g. IKE never asks for the unedited
    answer, and a streamed answer is not collected)."""

    namespace: str
    outcome: str = "passthrough"
    route_s: float | None = None
    upstream_s: float | None = None
    edit_ids: tuple[str, ...] = ()
    editor: str = ""
    question: str | None = None
    before: str | None = None
    after: str | None = None
    error: str | None = None  # the upstream error's code, when the request failed upstream


@dataclass
class _Bucket:
    """The counts of one namespace in one time bucket."""

    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    route_hist: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_EDGES_MS) + 1))
    upstream_hist: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_EDGES_MS) + 1))
    hits: Counter[str] = field(default_factory=Counter)


def _hist_add(hist: list[int], seconds: float) -> None:
    hist[bisect.bisect_left(LATENCY_EDGES_MS, seconds * 1000)] += 1


def percentile_ms(hist: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram, in ms, interpolated inside its bin (None: empty)."""
    n = sum(hist)
    if n == 0:
        return None
    rank, seen = q * n, 0
    for i, c in enumerate(hist):
        if c and seen + c >= rank:
            lo = 0.0 if i == 0 else float(LATENCY_EDGES_MS[i - 1])
            hi = float(LATENCY_EDGES_MS[i]) if i < len(LATENCY_EDGES_MS) else lo * 2
            return lo + (hi - lo) * max(0.0, min(1.0, (rank - seen) / c))
        seen += c
    return float(LATENCY_EDGES_MS[-1])


class Traffic:
    """The proxy's own traffic counters, per namespace, in a ring of ``buckets`` time buckets of
    ``bucket_s`` seconds (default: one minute, kept 24 hours), and a log of the last ``log_size`` edited
    answers per namespace. The log is on by default and can be switched off (:attr:`log_answers`); the
    question text is kept only while :attr:`log_questions` is on (off by default, for privacy).
    Thread-safe; nothing leaves the process. Raises :class:`ValueError` for non-positive sizes."""

    def __init__(self, bucket_s: int = 60, buckets: int = 24 * 60, log_size: int = 200,
                 clock: Callable[[], float] = time.time) -> None:
        if bucket_s < 1 or buckets < 1 or log_size < 1:
            raise ValueError("bucket_s, buckets and log_size must be positive")
        self.bucket_s, self.n_buckets, self.log_size, self.clock = bucket_s, buckets, log_size, clock
        self.log_answers = True
        self.log_questions = False
        self.started = clock()
        self._lock = threading.Lock()
        self._ring: dict[str, dict[int, _Bucket]] = {}
        self._log: dict[str, deque[dict[str, Any]]] = {}
        self._totals: dict[str, Counter[str]] = {}

    def _bucket(self, namespace: str, now: float) -> _Bucket:
        slot = int(now // self.bucket_s)
        ring = self._ring.setdefault(namespace, {})
        b = ring.get(slot)
        if b is None:
            b = ring[slot] = _Bucket()
            oldest = slot - self.n_buckets
            for old in [s for s in ring if s <= oldest]:
                del ring[old]
        return b

    def record(self, call: Call) -> None:
        """Count one finished model request."""
        now = self.clock()
        with self._lock:
            b = self._bucket(call.namespace, now)
            b.outcomes[call.outcome] += 1
            self._totals.setdefault(call.namespace, Counter())[call.outcome] += 1
            if call.error:
                b.errors[call.error] += 1
            if call.route_s is not None:
                _hist_add(b.route_hist, call.route_s)
            if call.upstream_s is not None:
                _hist_add(b.upstream_hist, call.upstream_s)
            for i in call.edit_ids:
                b.hits[i] += 1
            if call.outcome == "edited" and self.log_answers:
                log = self._log.setdefault(call.namespace, deque(maxlen=self.log_size))
                log.append({"at": now, "edit_ids": list(call.edit_ids), "editor": call.editor,
                            "question": call.question if self.log_questions else None,
                            "before": call.before, "after": call.after})

    def upstream_error(self, namespace: str, code: str) -> None:
        """Count an upstream failure that happened after the request was counted (a broken stream)."""
        with self._lock:
            self._bucket(namespace, self.clock()).errors[code] += 1

    def configure(self, *, log_answers: bool | None = None, log_questions: bool | None = None) -> None:
        """Switch the answer log or its question text on or off; switching either off forgets what the
        log holds of it."""
        with self._lock:
            if log_answers is not None:
                self.log_answers = log_answers
                if not log_answers:
                    self._log.clear()
            if log_questions is not None:
                self.log_questions = log_questions
                if not log_questions:
                    for log in self._log.values():
                        for entry in log:
                            entry["question"] = None

    def clear_log(self, namespace: str) -> None:
        with self._lock:
            self._log.pop(namespace, None)

    # -- reading --------------------------------------------------------------------------------------
    def _buckets(self, namespace: str, window_s: float) -> list[tuple[int, _Bucket]]:
        first = int((self.clock() - window_s) // self.bucket_s) + 1
        return sorted((s, b) for s, b in self._ring.get(namespace, {}).items() if s >= first)

    def hits(self, namespace: str, window_s: float = 86_400) -> Counter[str]:
        """How often each edit was routed to in the last ``window_s`` seconds."""
        out: Counter[str] = Counter()
        with self._lock:
            for _, b in self._buckets(namespace, window_s):
                out.update(b.hits)
        return out

    def recent(self, namespace: str) -> list[dict[str, Any]]:
        """The log of edited answers, newest first."""
        with self._lock:
            return [dict(e) for e in reversed(self._log.get(namespace, ()))]

    def totals(self, namespace: str) -> dict[str, int]:
        """Requests by outcome since the process started."""
        with self._lock:
            return dict(self._totals.get(namespace, Counter()))

    def series(self, namespace: str, window_s: int, step_s: int) -> list[dict[str, Any]]:
        """Per ``step_s`` interval of the last ``window_s`` seconds, oldest first: its start (Unix s),
        requests by outcome, upstream errors by code, routing and upstream p50/p95 (ms, None: none)."""
        if step_s < self.bucket_s or step_s % self.bucket_s:
            raise ValueError(f"step_s must be a multiple of the bucket size {self.bucket_s}")
        now = self.clock()
        end = (int(now // step_s) + 1) * step_s
        starts = list(range(end - window_s, end, step_s))
        acc = [_Bucket() for _ in starts]
        with self._lock:
            for slot, b in self._buckets(namespace, window_s + step_s):
                i = (slot * self.bucket_s - starts[0]) // step_s if starts else -1
                if 0 <= i < len(acc):
                    a = acc[i]
                    a.outcomes.update(b.outcomes)
                    a.errors.update(b.errors)
                    a.route_hist = [x + y for x, y in zip(a.route_hist, b.route_hist, strict=True)]
                    a.upstream_hist = [x + y for x, y in zip(a.upstream_hist, b.upstream_hist, strict=True)]
        return [{"start": s, "outcomes": {o: a.outcomes.get(o, 0) for o in OUTCOMES}, "errors": dict(a.errors),
                 "requests": sum(a.outcomes.values()),
                 "route_p50_ms": percentile_ms(a.route_hist, 0.5), "route_p95_ms": percentile_ms(a.route_hist, 0.95),
                 "upstream_p50_ms": percentile_ms(a.upstream_hist, 0.5),
                 "upstream_p95_ms": percentile_ms(a.upstream_hist, 0.95)} for s, a in zip(starts, acc, strict=True)]

    def summary(self, namespace: str, window_s: int) -> dict[str, Any]:
        """Totals over the last ``window_s`` seconds: requests, by outcome, edited share, errors,
        routing and upstream p50/p95 (ms)."""
        route: list[int] = [0] * (len(LATENCY_EDGES_MS) + 1)
        up: list[int] = list(route)
        outcomes: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        with self._lock:
            for _, b in self._buckets(namespace, window_s):
                outcomes.update(b.outcomes)
                errors.update(b.errors)
                route = [x + y for x, y in zip(route, b.route_hist, strict=True)]
                up = [x + y for x, y in zip(up, b.upstream_hist, strict=True)]
        n = sum(outcomes.values())
        return {"requests": n, "outcomes": {o: outcomes.get(o, 0) for o in OUTCOMES},
                "edited_share": outcomes.get("edited", 0) / n if n else None, "errors": dict(errors),
                "route_p50_ms": percentile_ms(route, 0.5), "route_p95_ms": percentile_ms(route, 0.95),
                "upstream_p50_ms": percentile_ms(up, 0.5), "upstream_p95_ms": percentile_ms(up, 0.95)}

