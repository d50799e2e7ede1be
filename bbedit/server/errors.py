"""OpenAI-style error responses: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bbedit.errors import BBEditError


class APIError(BBEditError):
    """An error to send to the HTTP client with ``status``; ``kind`` is the body's ``type``."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", *,
                 code: str | None = None, param: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.kind, code=self.code, param=self.param)


def error_body(message: str, kind: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def upstream_unavailable(message: str) -> APIError:
    return APIError(502, message, "upstream_error", code="upstream_unavailable")


def upstream_failed(message: str) -> APIError:
    return APIError(502, message, "upstream_error", code="upstream_error")


def upstream_timeout(message: str) -> APIError:
    return APIError(504, message, "upstream_error", code="upstream_timeout")
