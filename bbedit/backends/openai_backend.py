"""A backend for any OpenAI-compatible chat endpoint (OpenAI, llama.cpp, vLLM, Ollama...).

Built on the official ``openai`` SDK, with the SDK's own retries turned off
(``max_retries=0``) and a retry loop of our own: exponential backoff with
jitter on timeouts, connection errors, HTTP 429 and 5xx, never on other 4xx.
Every SDK failure is turned into a :class:`bbedit.errors.BackendError`
(:class:`bbedit.errors.BackendUnavailable` when the endpoint cannot be reached).

This is the only module of bbedit that imports ``openai``.
"""

from __future__ import annotations

import inspect
import logging
import os
import random
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import openai

from bbedit.errors import BackendError, BackendUnavailable, ConfigError
from bbedit.types import Completion, Message

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_API_KEY = "sk-no-key"
"""API key sent when none is given: local servers (llama.cpp, vLLM) ignore it."""

_MAX_BACKOFF_S = 8.0
_MAX_RETRY_AFTER_S = 30.0


def _redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, safe to log and show."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _server_message(err: openai.APIStatusError) -> str:
    """The error text the server sent (``{"error": {"message": ...}}`` or similar)."""
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            msg = inner.get("message") or inner.get("detail")
            if msg:
                return str(msg)
        elif isinstance(inner, str) and inner:
            return inner
        if body.get("message"):
            return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    try:
        text = err.response.text.strip()
    except Exception:
        text = ""
    return text[:500] or err.message


def _is_retryable(err: BaseException) -> bool:
    if isinstance(err, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(err, openai.APIStatusError):
        return err.status_code == 429 or err.status_code >= 500
    return False


def _retry_after(err: BaseException) -> float | None:
    """Seconds the server asked us to wait (``Retry-After`` on a 429/503), if any."""
    if not isinstance(err, openai.APIStatusError):
        return None
    try:
        value = err.response.headers.get("retry-after")
        return min(float(value), _MAX_RETRY_AFTER_S) if value is not None else None
    except (TypeError, ValueError):
        return None


class OpenAIBackend:
    """Chat with a model behind an OpenAI-compatible ``/v1`` endpoint.

    ``base_url`` and ``api_key`` default to the ``OPENAI_BASE_URL`` and
    ``OPENAI_API_KEY`` environment variables (then to the SDK's default URL and
    to ``"sk-no-key"``, which local servers accept). When ``model`` is None the
    server's ``/v1/models`` list is asked and its first id is used.
    ``timeout`` is per request, in seconds; a failed request is tried again at
    most ``max_retries`` times (timeouts, connection errors, HTTP 429 and 5xx
    only), waiting ``backoff`` seconds times 2**attempt, with jitter, between
    tries. ``default_opts`` are chat-completion options applied to every call
    (per-call options win).

    Raises :class:`ConfigError` when ``model`` is None and the server lists no
    model, :class:`BackendUnavailable` / :class:`BackendError` when that
    listing fails. The API key is never logged or shown.
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        default_opts: dict[str, Any] | None = None,
        *,
        backoff: float = 0.5,
    ) -> None:
        if timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries!r}")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or DEFAULT_API_KEY
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.default_opts: dict[str, Any] = dict(default_opts or {})
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=self.timeout, max_retries=0)
        self.base_url: str = _redact_url(str(self._client.base_url).rstrip("/"))
        self._known_params = frozenset(inspect.signature(self._client.chat.completions.create).parameters) - {
            "messages",
            "model",
            "stream",
        }
        self.model: str = model if model else self._discover_model()
        self.name: str = f"openai:{self.model}@{self.base_url}"
        logger.debug(
            "OpenAIBackend ready: %s (timeout %.1fs, %d retries)", self.name, self.timeout, self.max_retries
        )

    # -- plumbing ---------------------------------------------------------

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the HTTP connection pool (the backend cannot be used afterwards)."""
        self._client.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _map_error(self, err: Exception, attempts: int) -> BackendError:
        tries = f" ({attempts} attempt{'s' if attempts != 1 else ''})"
        if isinstance(err, openai.APITimeoutError):
            return BackendError(
                f"request to model endpoint {self.base_url} timed out after {self.timeout:g} s{tries}"
            )
        if isinstance(err, openai.APIConnectionError):
            cause = err.__cause__ or err
            return BackendUnavailable(
                f"cannot reach the model endpoint at {self.base_url}{tries}: {cause}. "
                "Is the server running? Check --base-url / OPENAI_BASE_URL."
            )
        if isinstance(err, openai.APIStatusError):
            return BackendError(
                f"model endpoint {self.base_url} returned HTTP {err.status_code}{tries}: {_server_message(err)}"
            )
        return BackendError(f"model endpoint {self.base_url} failed: {type(err).__name__}: {err}")

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one SDK request), retrying transient failures; map errors."""
        attempt = 0
        while True:
            try:
                return fn()
            except openai.OpenAIError as err:
                if not _is_retryable(err) or attempt >= self.max_retries:
                    raise self._map_error(err, attempt + 1) from err
                delay = _retry_after(err)
                if delay is None:
                    delay = min(self.backoff * (2**attempt), _MAX_BACKOFF_S) * random.uniform(0.5, 1.5)
                logger.warning(
                    "%s to %s failed (%s); retry %d/%d in %.2fs",
                    what,
                    self.base_url,
                    _short(err),
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
                attempt += 1

    def _discover_model(self) -> str:
        models = self._call("listing models", lambda: self._client.models.list())
        ids = [m.id for m in models.data if getattr(m, "id", None)]
        if not ids:
            raise ConfigError(
                f"the server at {self.base_url} lists no model at /models; pass a model name "
                "explicitly (--model)"
            )
        logger.info("model not given: using %r, the first model listed by %s", ids[0], self.base_url)
        return ids[0]

    def _request(self, messages: Sequence[Message], opts: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for ``chat.completions.create``: SDK options pass
        through, anything else (``top_k``, ``repeat_penalty``...) goes in the JSON body."""
        merged = {**self.default_opts, **opts}
        kwargs: dict[str, Any] = {
            "model": merged.pop("model", None) or self.model,
            "messages": list(messages),
        }
        extra = dict(merged.pop("extra_body", None) or {})
        for key, value in merged.items():
            if key in self._known_params:
                kwargs[key] = value
            else:
                extra[key] = value
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    # -- Backend API ------------------------------------------------------

    def generate(self, messages: Sequence[Message], **opts: Any) -> str:
        """The assistant's reply to ``messages``.

        ``opts`` are chat-completion options (``max_tokens``, ``temperature``,
        ``stop``, ``seed``, ``top_p``...); server-specific ones go in the body.
        Raises :class:`BackendUnavailable` when the endpoint cannot be reached,
        :class:`BackendError` on a timeout, an HTTP error or an empty response.
        """
        return self.complete(messages, **opts).text

    def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        """:meth:`generate`, with the token counts the server reports (-1 when it reports none)
        and the wall time of the call."""
        kwargs = self._request(messages, opts)
        t0 = time.perf_counter()
        resp = self._call("chat completion", lambda: self._client.chat.completions.create(**kwargs))
        if not resp.choices:
            raise BackendError(f"model endpoint {self.base_url} returned no choices")
        usage = getattr(resp, "usage", None)
        return Completion(text=resp.choices[0].message.content or "",
                          prompt_tokens=int(getattr(usage, "prompt_tokens", -1) or -1) if usage else -1,
                          completion_tokens=int(getattr(usage, "completion_tokens", -1) or -1) if usage else -1,
                          latency_s=time.perf_counter() - t0,
                          finish_reason=resp.choices[0].finish_reason or "")

    def stream(self, messages: Sequence[Message], **opts: Any) -> Iterator[str]:
        """Yield the reply's text deltas as the server streams them.

        The request is retried like :meth:`generate` until the stream opens;
        a failure once text has been yielded is raised without retrying.
        Raises :class:`BackendUnavailable` / :class:`BackendError`.
        """
        kwargs = self._request(messages, opts)
        kwargs["stream"] = True
        stream = self._call(
            "streaming chat completion", lambda: self._client.chat.completions.create(**kwargs)
        )
        with stream:
            try:
                for chunk in stream:
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    text = getattr(delta, "content", None) if delta is not None else None
                    if text:
                        yield text
            except openai.OpenAIError as err:
                raise self._map_error(err, 1) from err

    def logprobs(
        self, messages: Sequence[Message], top_logprobs: int = 5, **opts: Any
    ) -> list[dict[str, Any]]:
        """Generate and return one entry per output token:
        ``{"token": str, "logprob": float, "top": [(token, logprob), ...]}``.

        Raises :class:`BackendError` when the server returns no logprobs (it
        does not support them), plus the errors of :meth:`generate`.
        """
        kwargs = self._request(messages, {**opts, "logprobs": True, "top_logprobs": top_logprobs})
        resp = self._call(
            "chat completion with logprobs", lambda: self._client.chat.completions.create(**kwargs)
        )
        if not resp.choices:
            raise BackendError(f"model endpoint {self.base_url} returned no choices")
        choice = resp.choices[0]
        content = choice.logprobs.content if choice.logprobs is not None else None
        if content is None or (not content and choice.message.content):
            raise BackendError(
                f"model endpoint {self.base_url} returned no logprobs (the server may not support them)"
            )
        return [
            {
                "token": item.token,
                "logprob": float(item.logprob),
                "top": [(t.token, float(t.logprob)) for t in (item.top_logprobs or [])],
            }
            for item in content
        ]

    def generate_many(
        self, batch: Sequence[Sequence[Message]], max_workers: int = 4, **opts: Any
    ) -> list[str]:
        """:meth:`generate` for each message list, ``max_workers`` requests at a
        time; results are in input order. The first failure (in input order) is
        raised; raises :class:`ConfigError` if ``max_workers`` < 1."""
        if max_workers < 1:
            raise ConfigError(f"max_workers must be >= 1, got {max_workers!r}")
        batch = list(batch)
        if not batch:
            return []
        if max_workers == 1 or len(batch) == 1:
            return [self.generate(m, **opts) for m in batch]
        with ThreadPoolExecutor(
            max_workers=min(max_workers, len(batch)), thread_name_prefix="bbedit-gen"
        ) as pool:
            return list(pool.map(lambda m: self.generate(m, **opts), batch))


def _short(err: BaseException) -> str:
    if isinstance(err, openai.APIStatusError):
        return f"HTTP {err.status_code}"
    if isinstance(err, openai.APITimeoutError):
        return "timeout"
    return type(err).__name__


__all__ = ["DEFAULT_API_KEY", "OpenAIBackend"]
