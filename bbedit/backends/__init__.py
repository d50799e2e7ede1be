"""Model backends: the narrow interface between bbedit and a language model.

A backend only has to turn chat messages into text. ``stream`` and ``logprobs``
are optional; use :func:`supports` to ask whether a backend offers them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from bbedit.types import Message


@runtime_checkable
class Backend(Protocol):
    """Anything that answers chat messages.

    ``generate`` returns the assistant's reply as text. Options are the
    OpenAI chat-completion ones (``max_tokens``, ``temperature``, ``stop``,
    ``seed``...). Raises :class:`bbedit.errors.BackendError` (or its subclass
    ``BackendUnavailable``) when the model cannot answer.
    """

    name: str

    def generate(self, messages: Sequence[Message], **opts: Any) -> str: ...


@runtime_checkable
class StreamingBackend(Backend, Protocol):
    def stream(self, messages: Sequence[Message], **opts: Any) -> Iterator[str]:
        """Yield the reply in text chunks as the model produces them."""
        ...


@runtime_checkable
class LogprobBackend(Backend, Protocol):
    def logprobs(self, messages: Sequence[Message], top_logprobs: int = 5, **opts: Any) -> list[dict[str, Any]]:
        """Generate and return one entry per output token:
        ``{"token": str, "logprob": float, "top": [(token, logprob), ...]}``."""
        ...


def supports(backend: object, capability: str) -> bool:
    """True if ``backend`` offers ``capability`` ("stream" or "logprobs")."""
    return callable(getattr(backend, capability, None))


__all__ = ["Backend", "LogprobBackend", "StreamingBackend", "supports"]
