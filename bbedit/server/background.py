"""Run the proxy in a background thread of this process (tests, notebooks, benchmarks)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from bbedit.errors import BackendUnavailable


@contextlib.contextmanager
def running(app: Any, host: str = "127.0.0.1", port: int = 0, timeout: float = 120.0) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn in a daemon thread; yields its root URL (``http://host:port``)
    once it accepts connections, and stops it on exit. ``port`` 0 picks a free port.
    Raises :class:`BackendUnavailable` when it does not start within ``timeout`` seconds."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True, name="bbedit-proxy")
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise BackendUnavailable("the proxy did not start (see the log)")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
