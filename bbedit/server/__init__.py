"""``bbedit serve``: an OpenAI-compatible editing proxy in front of any upstream, and the edit admin API.

FastAPI is imported only by :func:`create_app` / :func:`serve` (``bbedit.server.app``).
"""

from __future__ import annotations

from typing import Any

from bbedit.server.config import ServerConfig, is_loopback


def create_app(config: ServerConfig, **kwargs: Any) -> Any:
    """The ASGI app; see :func:`bbedit.server.app.create_app`."""
    from bbedit.server.app import create_app as _create

    return _create(config, **kwargs)


def serve(config: ServerConfig, log_level: str = "info", torch_threads: int | None = 1) -> None:
    """Run the proxy until interrupted; see :func:`bbedit.server.app.serve`."""
    from bbedit.server.app import serve as _serve

    _serve(config, log_level, torch_threads)


__all__ = ["ServerConfig", "create_app", "is_loopback", "serve"]
