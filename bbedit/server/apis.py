"""The OpenAI APIs the proxy edits: chat completions, the Responses API and plain completions.

Each :class:`API` says, for its request and response shapes, how to read the conversation to route,
how a request editor's edited request is written back into the body (every other field kept), where
the answer's text is in a whole response (for answer editors), and how a whole response becomes the
stream a streaming client expects. The proxy (:mod:`bbedit.server.proxy`) runs the same route for all
three, so passthrough stays byte for byte on each.

Items of a Responses ``input`` that are not messages (function calls, their outputs, reasoning) travel
through routing and editing as placeholder messages of role ``"_item"`` and come back unchanged, in
their places; a conversation that ends with one is out of scope, like a chat that ends with a tool turn.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from bbedit.conversation import content_text
from bbedit.editors.base import Edits, RequestEditor
from bbedit.server import sse
from bbedit.server.errors import bad_request
from bbedit.types import Message

ITEM_ROLE = "_item"


def _stream_flag(body: Mapping[str, Any]) -> bool:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean", param="stream")
    return bool(stream)


class Slot:
    """One answer's text in a response: ``holder[key]``; ``logprobs_of`` holds its token
    log-probabilities, which are dropped when the text is rewritten (they described the old words)."""

    __slots__ = ("empty", "holder", "key", "logprobs_of")

    def __init__(self, holder: MutableMapping[str, Any], key: str, logprobs_of: MutableMapping[str, Any],
                 empty: Any = None) -> None:
        self.holder, self.key, self.logprobs_of, self.empty = holder, key, logprobs_of, empty

    @property
    def text(self) -> str:
        return str(self.holder[self.key])

    def replace(self, text: str) -> None:
        self.holder[self.key] = text
        if self.logprobs_of.get("logprobs"):
            self.logprobs_of["logprobs"] = self.empty


class API(ABC):
    """One OpenAI endpoint as the proxy sees it."""

    name: str
    path: str  # the upstream path
    answers_key: str = "choices"  # the list a whole response holds its answers in

    @abstractmethod
    def parse(self, body: Mapping[str, Any]) -> tuple[list[Message], bool]:
        """The conversation to route and the stream flag. Raises a 400 APIError for a request no
        OpenAI-compatible server could answer."""

    @abstractmethod
    def edited_request(self, body: Mapping[str, Any], messages: list[Message], editor: RequestEditor,
                       edit: Edits) -> dict[str, Any]:
        """``body`` with the request editor's edit applied (every other field as sent)."""

    @abstractmethod
    def text_slots(self, data: Mapping[str, Any]) -> list[Slot]:
        """Where the answer's texts are in a whole response, one :class:`Slot` per answer."""

    @abstractmethod
    def stream_events(self, data: Mapping[str, Any], extra: Mapping[str, Any],
                      body: Mapping[str, Any]) -> Iterator[bytes]:
        """The SSE events of a stream equal to the whole response ``data`` (``extra`` merged into each)."""

    def whole_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The request for a whole (unstreamed) answer, which an answer editor needs."""
        return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}


class ChatAPI(API):
    """``POST /v1/chat/completions``."""

    name, path = "chat", "chat/completions"

    def parse(self, body: Mapping[str, Any]) -> tuple[list[Message], bool]:
        if "messages" not in body:
            raise bad_request("'messages' is required", param="messages", code="missing_required_parameter")
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            raise bad_request("'messages' must be a non-empty array of message objects", param="messages")
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise bad_request(f"messages[{i}] must be an object", param=f"messages[{i}]")
            if not isinstance(m.get("role"), str):
                raise bad_request(f"messages[{i}].role must be a string", param=f"messages[{i}].role")
        opts = body.get("stream_options")
        if opts is not None and not isinstance(opts, dict):
            raise bad_request("'stream_options' must be an object", param="stream_options")
        return messages, _stream_flag(body)

    def edited_request(self, body: Mapping[str, Any], messages: list[Message], editor: RequestEditor,
                       edit: Edits) -> dict[str, Any]:
        return {**body, "messages": editor.build_messages(messages, edit)}

    def text_slots(self, data: Mapping[str, Any]) -> list[Slot]:
        out: list[Slot] = []
        for choice in data.get("choices") or []:
            msg = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(msg, dict) and isinstance(msg.get("content"), str):
                out.append(Slot(msg, "content", choice))
        return out

    def stream_events(self, data: Mapping[str, Any], extra: Mapping[str, Any],
                      body: Mapping[str, Any]) -> Iterator[bytes]:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return sse.completion_chunks(data, extra, include_usage)


class CompletionsAPI(API):
    """``POST /v1/completions`` (plain-text prompts). Routed only when ``prompt`` is one string."""

    name, path = "completions", "completions"

    def parse(self, body: Mapping[str, Any]) -> tuple[list[Message], bool]:
        if "prompt" not in body:
            raise bad_request("'prompt' is required", param="prompt", code="missing_required_parameter")
        prompt = body["prompt"]
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        stream = _stream_flag(body)
        if not isinstance(prompt, str):  # several prompts or token ids: nothing one edit could be about
            return [], stream
        return [{"role": "user", "content": prompt}], stream

    def edited_request(self, body: Mapping[str, Any], messages: list[Message], editor: RequestEditor,
                       edit: Edits) -> dict[str, Any]:
        prompt = content_text(messages[-1]["content"])
        return {**body, "prompt": editor.build_prompt(prompt, edit)}

    def text_slots(self, data: Mapping[str, Any]) -> list[Slot]:
        return [Slot(c, "text", c) for c in data.get("choices") or []
                if isinstance(c, dict) and isinstance(c.get("text"), str)]

    def stream_events(self, data: Mapping[str, Any], extra: Mapping[str, Any],
                      body: Mapping[str, Any]) -> Iterator[bytes]:
        base = {k: data[k] for k in ("id", "created", "model", "system_fingerprint") if k in data}
        base["object"] = "text_completion"
        for n, choice in enumerate(data.get("choices") or []):
            if not isinstance(choice, Mapping):
                continue
            index = choice.get("index", n)
            for piece in sse.word_chunks(str(choice.get("text") or "")):
                yield sse.data_event({**base, "choices": [{"text": piece, "index": index, "logprobs": None,
                                                           "finish_reason": None}], **extra})
            yield sse.data_event({**base, "choices": [{"text": "", "index": index, "logprobs": None,
                                                       "finish_reason": choice.get("finish_reason", "stop")}], **extra})
        opts = body.get("stream_options") or {}
        if isinstance(opts, Mapping) and opts.get("include_usage") and data.get("usage") is not None:
            yield sse.data_event({**base, "choices": [], "usage": data["usage"], **extra})
        yield sse.DONE


class ResponsesAPI(API):
    """``POST /v1/responses``: ``input`` (a string or a list of items) and ``instructions``."""

    name, path, answers_key = "responses", "responses", "output"

    def parse(self, body: Mapping[str, Any]) -> tuple[list[Message], bool]:
        if "input" not in body:
            raise bad_request("'input' is required", param="input", code="missing_required_parameter")
        given = body["input"]
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise bad_request("'instructions' must be a string", param="instructions")
        messages: list[Message] = [{"role": "system", "content": instructions}] if instructions else []
        if isinstance(given, str):
            messages.append({"role": "user", "content": given})
        elif isinstance(given, list):
            for i, item in enumerate(given):
                if not isinstance(item, dict):
                    raise bad_request(f"input[{i}] must be an object", param=f"input[{i}]")
                if item.get("type", "message") == "message" and isinstance(item.get("role"), str):
                    messages.append({"role": item["role"], "content": item.get("content", ""), "_source": i})
                else:
                    messages.append({"role": ITEM_ROLE, "item": item})
        else:
            raise bad_request("'input' must be a string or an array of input items", param="input")
        return messages, _stream_flag(body)

    def edited_request(self, body: Mapping[str, Any], messages: list[Message], editor: RequestEditor,
                       edit: Edits) -> dict[str, Any]:
        built = editor.build_messages(messages, edit)
        out = {k: v for k, v in body.items() if k != "instructions"}
        items: list[Any] = []
        system: list[str] = []
        for m in built:
            role = m.get("role")
            if role == ITEM_ROLE:
                items.append(m["item"])
            elif role == "system" and not items:
                system.append(content_text(m.get("content")))  # the leading system turn: the instructions
            else:
                items.append(_input_message(m, body["input"]))
        if system:
            out["instructions"] = "\n\n".join(system)
        out["input"] = items
        return out

    def text_slots(self, data: Mapping[str, Any]) -> list[Slot]:
        out: list[Slot] = []
        for item in data.get("output") or []:
            if isinstance(item, dict) and item.get("type") == "message":
                for part in item.get("content") or []:
                    if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                        out.append(Slot(part, "text", part, []))
        return out

    def stream_events(self, data: Mapping[str, Any], extra: Mapping[str, Any],
                      body: Mapping[str, Any]) -> Iterator[bytes]:
        seq = iter(range(1 << 30))

        def event(kind: str, **fields: Any) -> bytes:
            payload = {"type": kind, "sequence_number": next(seq), **fields, **extra}
            return f"event: {kind}\n".encode() + sse.data_event(payload)

        started = {**data, "status": "in_progress", "output": [], "created_at": data.get("created_at", time.time())}
        yield event("response.created", response=started)
        yield event("response.in_progress", response=started)
        for oi, item in enumerate(data.get("output") or []):
            if not isinstance(item, Mapping):
                continue
            is_message = item.get("type") == "message"
            opened = {**item, "status": "in_progress", "content": []} if is_message else item
            yield event("response.output_item.added", output_index=oi, item=opened)
            for ci, part in enumerate(item.get("content") or [] if is_message else []):
                if not isinstance(part, Mapping):
                    continue
                ids = {"item_id": item.get("id"), "output_index": oi, "content_index": ci}
                text = str(part.get("text") or "")
                yield event("response.content_part.added", **ids, part={**part, "text": ""})
                if part.get("type") == "output_text":
                    for piece in sse.word_chunks(text):
                        yield event("response.output_text.delta", **ids, delta=piece, logprobs=[])
                    yield event("response.output_text.done", **ids, text=text, logprobs=[])
                yield event("response.content_part.done", **ids, part=dict(part))
            yield event("response.output_item.done", output_index=oi, item=dict(item))
        yield event("response.completed", response=dict(data))


def _input_message(m: Message, original: Any) -> dict[str, Any]:
    """A message of the edited conversation as a Responses input item (``type: message``, which strict
    servers need for assistant turns): an original item keeps its fields (only its content changes),
    list content uses input parts."""
    base: dict[str, Any] = {}
    src = m.get("_source")
    if isinstance(src, int) and isinstance(original, list) and src < len(original):
        base = dict(original[src])
    content = m.get("content")
    if isinstance(content, list):
        kind = "output_text" if m.get("role") == "assistant" else "input_text"
        content = [{**p, "type": kind} if isinstance(p, dict) and p.get("type") == "text" else p for p in content]
    return {"type": "message", **base, "role": m.get("role"), "content": content}


CHAT, COMPLETIONS, RESPONSES = ChatAPI(), CompletionsAPI(), ResponsesAPI()

__all__ = ["API", "CHAT", "COMPLETIONS", "ITEM_ROLE", "RESPONSES", "ChatAPI", "CompletionsAPI", "ResponsesAPI", "Slot"]
