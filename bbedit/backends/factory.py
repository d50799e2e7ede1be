"""Choose and build the model backend from user settings."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bbedit.backends.openai_backend import OpenAIBackend

logger = logging.getLogger(__name__)


def make_backend(
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    stack: contextlib.ExitStack | None = None,
) -> OpenAIBackend:
    """The backend bbedit talks to.

    With a ``base_url`` (argument, else the ``OPENAI_BASE_URL`` environment
    variable): an :class:`OpenAIBackend` on that endpoint (``model`` None means
    the first model the server lists). Without one: the embedded default model
    (SmolLM2-135M-Instruct on llama.cpp, see :mod:`bbedit.backends.embedded`)
    is started and an :class:`OpenAIBackend` on it is returned. That server
    is registered on ``stack`` when given, so closing the stack stops it;
    otherwise it stops at interpreter exit. ``model`` is then the name the
    embedded server answers to.

    Raises :class:`bbedit.errors.ModelNotFound` when the embedded model is
    needed but not installed, :class:`bbedit.errors.BackendUnavailable` /
    :class:`bbedit.errors.BackendError` when the endpoint cannot be used,
    :class:`bbedit.errors.ConfigError` on bad settings.
    """
    from bbedit.backends.openai_backend import DEFAULT_API_KEY, OpenAIBackend

    url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    if url:
        backend = OpenAIBackend(model=model, base_url=url, api_key=api_key, timeout=timeout)
        logger.info("model backend: %s", backend.name)
        return backend

    from bbedit.backends.embedded import DEFAULT_MODEL_ALIAS, EmbeddedServer

    logger.info(
        "no --base-url / OPENAI_BASE_URL: starting the embedded model (SmolLM2-135M-Instruct, llama.cpp)"
    )
    server = EmbeddedServer(model=model or DEFAULT_MODEL_ALIAS)
    if stack is not None:
        server = stack.enter_context(server)
    else:
        server.start()  # stopped at interpreter exit
    try:
        # never send the user's OPENAI_API_KEY to the local server
        backend = OpenAIBackend(
            model=server.model, base_url=server.base_url, api_key=api_key or DEFAULT_API_KEY, timeout=timeout
        )
    except BaseException:
        server.stop()
        raise
    logger.info("model backend: %s (embedded, started in %.1fs)", backend.name, server.start_seconds or 0.0)
    return backend


__all__ = ["make_backend"]
