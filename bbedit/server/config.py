"""Settings of the editing proxy, validated in one place."""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from bbedit.errors import ConfigError
from bbedit.server.tenants import NamespaceAccess

TOKEN_ENV = "BBEDIT_SERVER_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine ("localhost", 127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServerConfig:
    """How ``bbedit serve`` runs.

    ``upstream`` is the OpenAI-compatible base URL requests are forwarded to (with its ``/v1``);
    ``memory`` the edit memory directory or PostgreSQL URL (None: a memory that lives only in this
    process). ``access`` says which namespace of it a request reaches and which admin tokens act on
    which (:mod:`bbedit.server.tenants`; default: every request in namespace ``namespace``, the
    admin API behind ``token``).
    ``token`` protects the admin API (``Authorization: Bearer <token>``); it is required when
    ``host`` is not a loopback address. ``upstream_api_key`` replaces the client's
    ``Authorization`` header towards the upstream when set (otherwise the client's is forwarded).
    ``timeout`` is seconds per upstream request (``connect_timeout`` to open the connection);
    failed requests are retried ``max_retries`` times with exponential backoff from ``backoff``
    seconds when that is safe (connection failures, HTTP 429/500/502/503/504 before any byte of
    the answer was passed on). Request bodies over ``max_body_bytes`` are refused (413); a batch
    create takes at most ``max_batch`` edits. ``workers`` threads run the CPU-bound parts
    (embedding, gate, post-editor, memory writes). Raises :class:`ConfigError` on bad values.
    """

    upstream: str
    memory: str | os.PathLike[str] | None = None
    editor: str = "ike"
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    upstream_api_key: str | None = None
    timeout: float = 120.0
    connect_timeout: float = 5.0
    max_retries: int = 2
    backoff: float = 0.25
    max_body_bytes: int = 4 * 1024 * 1024
    max_batch: int = 10_000
    gate_threshold: float | None = None
    workers: int = 4
    warm_up: bool = True
    namespace: str = "default"
    access: NamespaceAccess | None = None

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.upstream or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"upstream must be an http(s) URL like http://127.0.0.1:8080/v1, got {self.upstream!r}")
        self.upstream = self.upstream.rstrip("/")
        if self.memory is not None and not (isinstance(self.memory, str) and "://" in self.memory):
            self.memory = Path(self.memory)
        if self.access is None:
            self.access = NamespaceAccess(default=self.namespace)
        self.namespace = self.access.default
        if self.token is not None and not self.token.strip():
            raise ConfigError("the admin token must not be empty")
        if self.token is None and not self.access.admin_tokens and not is_loopback(self.host):
            raise ConfigError(f"listening on {self.host} (not loopback) needs an admin token: pass --token or set "
                              f"${TOKEN_ENV}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be in 1..65535, got {self.port}")
        for name in ("timeout", "connect_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)!r}")
        if self.max_retries < 0 or self.backoff < 0:
            raise ConfigError("max_retries and backoff must be >= 0")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}")
        if self.max_batch < 1 or self.workers < 1:
            raise ConfigError("max_batch and workers must be >= 1")
