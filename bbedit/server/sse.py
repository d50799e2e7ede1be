"""Server-sent events of streamed chat completions: split, tag, and build from a whole completion."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from bbedit.editors.base import word_chunks as _word_chunks

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


async def events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The events of an SSE byte stream, each with its blank-line terminator (a trailing partial
    event is yielded as it is)."""
    buf = b""
    async for chunk in chunks:
        buf += chunk
        while m := _EVENT_END.search(buf):
            yield buf[:m.end()]
            buf = buf[m.end():]
    if buf:
        yield buf


def tag_event(event: bytes, key: str, value: Any) -> bytes:
    """``event`` with ``value`` added under ``key`` to its JSON ``data:`` object; other events
    (``[DONE]``, comments, non-JSON data) come back unchanged."""
    lines = event.split(b"\n")
    for i, line in enumerate(lines):
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if not payload.startswith(b"{"):
            return event
        try:
            obj = json.loads(payload)
        except (ValueError, RecursionError):
            return event
        if not isinstance(obj, dict):
            return event
        obj[key] = value
        lines[i] = b"data: " + json.dumps(obj, ensure_ascii=False).encode()
        return b"\n".join(lines)
    return event


def data_event(obj: Any) -> bytes:
    """One ``data: <json>`` event."""
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def word_chunks(text: str, words: int = 4) -> list[str]:
    """``text`` in pieces of a few words that join back to it exactly (one empty piece for "")."""
    return list(_word_chunks(text, words)) or [""]


def completion_chunks(completion: Mapping[str, Any], extra: Mapping[str, Any], include_usage: bool) -> Iterator[bytes]:
    """The SSE events of a streamed answer equal to a whole ``chat.completion`` object: per choice a
    role delta, its content in a few words at a time, its tool calls, then its finish reason; the
    usage chunk when ``include_usage``; ``[DONE]``. ``extra`` is merged into every chunk."""
    base = {"id": completion.get("id"), "object": "chat.completion.chunk",
            "created": completion.get("created", int(time.time())), "model": completion.get("model"),
            **({"system_fingerprint": completion["system_fingerprint"]} if "system_fingerprint" in completion else {})}
    choices: Sequence[Any] = completion.get("choices") or []
    for n, choice in enumerate(choices):
        if not isinstance(choice, Mapping):
            continue
        index = choice.get("index", n)
        m = choice.get("message")
        msg: Mapping[str, Any] = m if isinstance(m, Mapping) else {}

        def chunk(delta: dict[str, Any], finish: Any = None, index: Any = index) -> bytes:
            return data_event({**base, "choices": [{"index": index, "delta": delta, "logprobs": None,
                                                    "finish_reason": finish}], **extra})

        yield chunk({"role": msg.get("role", "assistant"), "content": ""})
        content = msg.get("content")
        if isinstance(content, str) and content:
            for piece in word_chunks(content):
                yield chunk({"content": piece})
        for k, call in enumerate(msg.get("tool_calls") or []):
            if isinstance(call, Mapping):
                yield chunk({"tool_calls": [{"index": k, **call}]})
        yield chunk({}, choice.get("finish_reason", "stop"))
    if include_usage and completion.get("usage") is not None:
        yield data_event({**base, "choices": [], "usage": completion["usage"], **extra})
    yield DONE
