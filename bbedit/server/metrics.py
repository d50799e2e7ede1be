"""Prometheus metrics of one proxy (a registry per app: no process-wide state)."""

from __future__ import annotations


class Metrics:
    """Counters and histograms served at ``/metrics``."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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

