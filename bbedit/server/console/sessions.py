"""Console sessions: who is logged in (a random id in an HttpOnly, SameSite=Strict cookie, the session
itself kept in this process with an idle and an absolute expiry), its CSRF token, and the login
throttle. Nothing here imports a web framework."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

COOKIE = "bbedit_console"
LOGIN_COOKIE = "bbedit_console_login"  # the login form's own CSRF token (double submit), before a session exists


@dataclass
class Session:
    """One logged-in browser: ``who`` (the admin token's name) acting on ``namespace``; ``csrf`` must come
    back with every write; ``flashes`` are messages for the next page; ``pending`` holds state between two
    steps of a form (an import's preview and its commit)."""

    id: str
    who: str
    namespace: str
    csrf: str
    created: float
    seen: float
    flashes: list[tuple[str, str]] = field(default_factory=list)
    pending: dict[str, Any] = field(default_factory=dict)

    def flash(self, kind: str, message: str) -> None:
        """Show ``message`` (kind: "ok" or "error") on the next page."""
        self.flashes.append((kind, message))

    def take_flashes(self) -> list[tuple[str, str]]:
        out, self.flashes = self.flashes, []
        return out


class Sessions:
    """The sessions of one console. A session ends ``idle_s`` seconds after its last request or ``max_s``
    after login, whichever comes first; at most ``limit`` live at once (the oldest go first).
    Raises :class:`ValueError` for non-positive durations."""

    def __init__(self, idle_s: float = 3600, max_s: float = 8 * 3600, limit: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        if idle_s <= 0 or max_s <= 0 or limit < 1:
            raise ValueError("session durations and limit must be positive")
        self.idle_s, self.max_s, self.limit, self.clock = idle_s, max_s, limit, clock
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, who: str, namespace: str) -> Session:
        now = self.clock()
        s = Session(secrets.token_urlsafe(32), who, namespace, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._purge(now)
            while len(self._by_id) >= self.limit:
                del self._by_id[min(self._by_id.values(), key=lambda x: x.seen).id]
            self._by_id[s.id] = s
        return s

    def lookup(self, sid: str | None) -> tuple[Session | None, str]:
        """(session, state): state is "ok", "missing" (no or unknown cookie) or "expired"."""
        if not sid:
            return None, "missing"
        now = self.clock()
        with self._lock:
            s = self._by_id.get(sid)
            if s is None:
                return None, "missing"
            if now - s.seen > self.idle_s or now - s.created > self.max_s:
                del self._by_id[sid]
                return None, "expired"
            s.seen = now
            return s, "ok"

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)

    def _purge(self, now: float) -> None:
        for sid in [k for k, s in self._by_id.items() if now - s.seen > self.idle_s or now - s.created > self.max_s]:
            del self._by_id[sid]

    def __len__(self) -> int:
        return len(self._by_id)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token (False when either is missing)."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def same_site(headers: Mapping[str, str], host: str) -> bool:
    """Whether a write comes from a page of this console: a browser's ``Sec-Fetch-Site`` must be
    same-origin (or absent), and an ``Origin`` header, when sent, must name this host."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    return origin.split("://", 1)[-1].rstrip("/").lower() == host.lower()


class LoginThrottle:
    """Refuses logins from a client after ``limit`` failures within ``window_s`` seconds."""

    def __init__(self, limit: int = 10, window_s: float = 300, clock: Callable[[], float] = time.time) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        q = self._fails.setdefault(client, deque())
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def blocked(self, client: str) -> bool:
        with self._lock:
            return len(self._recent(client, self.clock())) >= self.limit

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            self._recent(client, now).append(now)
            if len(self._fails) > 10_000:  # forget clients that stopped trying
                for c in [c for c, q in self._fails.items() if not q or now - q[-1] > self.window_s]:
                    del self._fails[c]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._fails.pop(client, None)
