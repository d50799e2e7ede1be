"""The asynchronous client of the upstream OpenAI-compatible endpoint, with retries and error mapping.

Retries (exponential backoff with jitter, ``Retry-After`` honoured up to 30 s) happen only where
repeating the request is safe and nothing was passed on to the client yet: the connection could
not be opened, or the upstream answered 429, 500, 502, 503 or 504. A read timeout is not
retried (the upstream may still be generating); it becomes a 504. An upstream that cannot be
reached becomes a 502 with code ``upstream_unavailable``; 5xx answers that outlast the retries
become a 502 with the upstream's message. Other upstream answers (2xx, 4xx) are returned as they are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping

import httpx

from bbedit.server.config import ServerConfig
from bbedit.server.errors import APIError, upstream_failed, upstream_timeout, upstream_unavailable

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_MAX_WAIT_S = 30.0
# headers that describe one HTTP hop, not the message: never forwarded either way
HOP_HEADERS = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "trailer",
                         "upgrade", "proxy-authorization", "proxy-connection", "accept-encoding",
                         "content-encoding", "date", "server"})


def forward_headers(headers: Mapping[str, str], api_key: str | None) -> dict[str, str]:
    """Request headers for the upstream: the client's, minus hop headers and bbedit's own; the
    configured API key replaces the client's ``Authorization`` when given."""
    out = {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS and not k.lower().startswith("x-bbedit")}
    if api_key:
        out = {k: v for k, v in out.items() if k.lower() != "authorization"}
        out["Authorization"] = f"Bearer {api_key}"
    return out


def response_headers(headers: httpx.Headers) -> dict[str, str]:
    """Upstream response headers worth passing back (content type, request ids, rate limits...)."""
    return {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS}


def _upstream_message(resp: httpx.Response) -> str:
    try:
        body = json.loads(resp.content)
        inner = body.get("error", body) if isinstance(body, dict) else body
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
        if isinstance(inner, str):
            return inner[:500]
    except (ValueError, RecursionError):
        pass
    return resp.content[:500].decode("utf-8", "replace").strip() or resp.reason_phrase


class Upstream:
    """Requests to ``config.upstream`` over one pooled :class:`httpx.AsyncClient`."""

    def __init__(self, config: ServerConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.base_url = config.upstream
        self.client = httpx.AsyncClient(
            base_url=config.upstream + "/",
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            transport=transport, trust_env=False)

    async def aclose(self) -> None:
        await self.client.aclose()

    def _delay(self, attempt: int, resp: httpx.Response | None) -> float:
        if resp is not None and (after := resp.headers.get("retry-after")):
            try:
                return min(max(float(after), 0.0), _MAX_WAIT_S)
            except ValueError:
                pass
        return self.config.backoff * (2 ** attempt) * random.uniform(0.5, 1.5)

    async def request(self, method: str, path: str, *, content: bytes | None = None,
                      headers: Mapping[str, str] | None = None, stream: bool = False) -> httpx.Response:
        """Send one request, retrying where safe; with ``stream`` the body is left unread (close it).

        Returns the upstream's response when it is 2xx or a 4xx other than 429 (those are the
        upstream's answer to the client's request). Raises :class:`APIError`: 502 (unreachable, or
        5xx after the retries), 504 (timeout), or the upstream's 429 after the retries.
        """
        attempt = 0
        while True:
            req = self.client.build_request(method, path, content=content, headers=dict(headers or {}))
            resp: httpx.Response | None = None
            try:
                resp = await self.client.send(req, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
                err: APIError = upstream_unavailable(
                    f"cannot reach the upstream model endpoint {self.base_url}: {type(e).__name__}: {e}")
            except httpx.TimeoutException as e:
                raise upstream_timeout(f"the upstream model endpoint {self.base_url} did not answer within "
                                       f"{self.config.timeout:g} s ({type(e).__name__})") from e
            except httpx.HTTPError as e:  # the connection broke before an answer came
                err = upstream_unavailable(f"the upstream model endpoint {self.base_url} failed: "
                                           f"{type(e).__name__}: {e}")
            else:
                if resp.status_code not in RETRY_STATUS:
                    return resp
                if stream:
                    await resp.aread()
                    await resp.aclose()
                msg = f"the upstream model endpoint returned HTTP {resp.status_code}: {_upstream_message(resp)}"
                err = (APIError(429, msg, "rate_limit_error", code="upstream_rate_limited",
                                headers={"retry-after": resp.headers["retry-after"]} if "retry-after" in resp.headers
                                else None)
                       if resp.status_code == 429 else upstream_failed(msg))
            if attempt >= self.config.max_retries:
                if attempt:
                    err.message += f" (after {attempt + 1} attempts)"
                raise err
            wait = self._delay(attempt, resp)
            log.warning("upstream %s %s failed (%s); retry %d/%d in %.2f s", method, path, err.message[:120],
                        attempt + 1, self.config.max_retries, wait)
            await asyncio.sleep(wait)
            attempt += 1
