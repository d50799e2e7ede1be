"""What the console acts on: the namespaces' routers (memory + gate), the editor and the model Try it
answers with, the proxy's traffic counters, and the console's own settings. ``bbedit serve`` builds it
from its proxy (:func:`from_proxy`); ``bbedit console`` from a memory alone (:mod:`.standalone`)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from bbedit.errors import ConfigError

if TYPE_CHECKING:
    from bbedit.backends import Backend
    from bbedit.editors.base import EditorBase
    from bbedit.routing import Router
    from bbedit.server.metrics import Traffic
    from bbedit.server.proxy import EditingProxy
    from bbedit.server.tenants import NamespaceAccess

T = TypeVar("T")


@dataclass
class ConsoleSettings:
    """How the console behaves. A session ends after ``session_idle_s`` seconds without a request or
    ``session_max_s`` after login; uploads over ``max_upload_bytes`` are refused; an import takes at
    most ``max_import`` edits. ``secure_cookies``: "auto" (when the request came over https), "always"
    or "never". Raises :class:`ConfigError` on bad values."""

    session_idle_s: float = 3600
    session_max_s: float = 8 * 3600
    max_upload_bytes: int = 4 * 1024 * 1024
    max_import: int = 10_000
    secure_cookies: str = "auto"
    login_attempts: int = 10

    def __post_init__(self) -> None:
        if self.session_idle_s <= 0 or self.session_max_s <= 0:
            raise ConfigError("session lifetimes must be > 0 seconds")
        if self.max_upload_bytes < 1024 or self.max_import < 1 or self.login_attempts < 1:
            raise ConfigError("max_upload_bytes must be >= 1024, max_import and login_attempts >= 1")
        if self.secure_cookies not in ("auto", "always", "never"):
            raise ConfigError(f"secure_cookies must be auto, always or never, not {self.secure_cookies!r}")


class LazyBackend:
    """The model backend Try it answers with, built by ``make`` at its first use (so starting the
    console never waits for a model or the network) and closed with the console."""

    def __init__(self, make: Callable[[], Backend], label: str) -> None:
        self._make, self.label = make, label
        self._backend: Backend | None = None
        self._lock = threading.Lock()

    def get(self) -> Backend:
        """The backend. Raises what building it raises (:class:`BackendError`, :class:`ConfigError`)."""
        with self._lock:
            if self._backend is None:
                self._backend = self._make()
            return self._backend

    def close(self) -> None:
        with self._lock:
            close = getattr(self._backend, "close", None)
            if callable(close):
                close()
            self._backend = None


@dataclass
class ConsoleContext:
    """Everything a console page needs.

    ``router(namespace)`` gives a namespace's :class:`~bbedit.routing.Router` (opened on first use);
    ``editor`` is the editor the server applies; ``backend`` the model behind it (None: Try it shows the
    routing decision only); ``traffic`` the proxy's counters (None: no proxy runs in this process);
    ``pool`` runs the CPU-bound and blocking parts; ``gate_override`` is a threshold the server was
    started with that overrides the saved calibration.
    """

    access: NamespaceAccess
    token: str | None
    router: Callable[[str], Router]
    editor: EditorBase
    pool: ThreadPoolExecutor
    backend: LazyBackend | None = None
    traffic: Traffic | None = None
    settings: ConsoleSettings = field(default_factory=ConsoleSettings)
    gate_override: float | None = None

    @property
    def open(self) -> bool:
        """Whether no admin token is configured (a loopback-only server): no login is asked for."""
        return self.token is None and not self.access.admin_tokens

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the worker pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))


def from_proxy(proxy: EditingProxy) -> ConsoleContext:
    """The console of a running ``bbedit serve``: its namespaces, editor, upstream and traffic."""
    config = proxy.config
    assert config.access is not None

    def make() -> Backend:
        from bbedit.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(base_url=config.upstream, api_key=config.upstream_api_key, timeout=config.timeout,
                             max_retries=config.max_retries)

    return ConsoleContext(access=config.access, token=config.token, router=proxy.namespaces.router,
                          editor=proxy.editor, pool=proxy.pool, backend=LazyBackend(make, config.upstream),
                          traffic=proxy.metrics.traffic, settings=ConsoleSettings(max_upload_bytes=config.max_body_bytes,
                                                                                  max_import=config.max_batch),
                          gate_override=config.gate_threshold)
