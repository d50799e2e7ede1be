"""A client of a running ``bbedit serve`` proxy, so ``bbedit ask``/``chat`` need not load any model.

The proxy is OpenAI-compatible: a question is one ``POST /v1/chat/completions``. An edited answer
carries ``"bbedit": {"edit_id", "score", "editor"}`` in its body (and an ``X-BBEdit-Edit`` header),
which is how the CLI tells which edit applied. Only the standard library's HTTP client is used (httpx's
import alone costs a quarter of a second, more than the rest of the command).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from bbedit.errors import BackendError, BackendUnavailable, ConfigError
from bbedit.types import Message

SERVER_ENV = "BBEDIT_SERVER"
"""Environment variable with the URL of a running ``bbedit serve`` for ``ask`` and ``chat``."""
EDIT_HEADER = "x-bbedit-edit"
EXPLAIN_HEADER = "x-bbedit-explain"
ROUTE_HEADER = "x-bbedit-route"


@dataclass(frozen=True)
class RemoteAnswer:
    """The proxy's answer: its text, and the edit that changed it (None when it passed through)."""

    text: str
    edit_id: str | None
    score: float | None
    editor: str | None
    seconds: float
    route: dict[str, Any] | None = None  # the server's routing explanation, when asked for


def base_url(url: str) -> str:
    """``url`` with ``/v1`` appended unless it already ends with it. Raises :class:`ConfigError`
    for anything that is not an http(s) URL."""
    u = url.strip().rstrip("/")
    if not u.startswith(("http://", "https://")):
        raise ConfigError(f"--server/${SERVER_ENV} must be an http(s) URL of a running `bbedit serve`, not {url!r}")
    return u if u.endswith("/v1") else u + "/v1"


class ProxyClient:
    """Talks to the proxy at ``url``. ``api_key`` (default ``$OPENAI_API_KEY``) is sent as the bearer
    token the proxy forwards upstream; ``model`` defaults to the first model the proxy lists."""

    def __init__(self, url: str, *, api_key: str | None = None, model: str | None = None,
                 timeout: float = 60.0) -> None:
        self.url = base_url(url)
        key = api_key or os.environ.get("OPENAI_API_KEY")
        self._headers = {"authorization": f"Bearer {key}"} if key else {}
        self._timeout = timeout
        self._model = model

    def _request(self, method: str, path: str, body: Any = None, extra: dict[str, str] | None = None
                 ) -> tuple[Any, dict[str, str]]:
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        headers = {**self._headers, **({"content-type": "application/json"} if data is not None else {}),
                   **(extra or {})}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as r:
                raw, got = r.read(), {k.lower(): v for k, v in r.headers.items()}
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            try:
                detail = json.loads(text).get("error", {}).get("message") or text
            except (ValueError, AttributeError):
                detail = text
            raise BackendError(f"the bbedit server at {self.url} answered {e.code}: {str(detail)[:300]}") from e
        except (OSError, ValueError) as e:  # URLError, refused connections and timeouts are OSErrors
            raise BackendUnavailable(f"cannot reach the bbedit server at {self.url}: {e}") from e
        try:
            return json.loads(raw), got
        except ValueError as e:
            raise BackendError(f"the bbedit server at {self.url} sent a body that is not JSON") from e

    @property
    def model(self) -> str:
        """The model name sent with each request. Raises :class:`BackendError` if the proxy lists none."""
        if self._model is None:
            body, _ = self._request("GET", "/models")
            try:
                self._model = str(body["data"][0]["id"])
            except (KeyError, IndexError, TypeError) as e:
                raise BackendError(f"the bbedit server at {self.url} lists no model; pass --model") from e
        return self._model

    def chat(self, messages: list[Message], *, explain: bool = False, **opts: Any) -> RemoteAnswer:
        """One chat completion through the proxy; ``explain`` asks for its routing decision too
        (:attr:`RemoteAnswer.route`). Raises :class:`BackendUnavailable` when it cannot be reached and
        :class:`BackendError` for an error answer."""
        t0 = time.perf_counter()
        body, headers = self._request("POST", "/chat/completions",
                                      {"model": self.model, "messages": messages, **opts},
                                      {EXPLAIN_HEADER: "1"} if explain else None)
        try:
            text = body["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as e:
            raise BackendError(f"the bbedit server at {self.url} sent no answer: {str(body)[:300]}") from e
        info = body.get("bbedit") if isinstance(body.get("bbedit"), dict) else {}
        edit_id = info.get("edit_id") or headers.get(EDIT_HEADER)
        score = info.get("score")
        route = None
        if explain and headers.get(ROUTE_HEADER):
            try:
                route = json.loads(headers[ROUTE_HEADER])
            except ValueError as e:
                raise BackendError(f"the bbedit server at {self.url} sent an unreadable {ROUTE_HEADER}") from e
        return RemoteAnswer(str(text), edit_id, None if score is None else float(score), info.get("editor"),
                            time.perf_counter() - t0, route)

    def close(self) -> None:
        """Nothing to release: each request opens its own connection (one per command)."""

    def __enter__(self) -> ProxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
