"""Reading OpenAI-style conversations: message text, the question being asked.

Message ``content`` is either a string or a list of parts (``{"type": "text", "text": ...}``,
images, audio...). Everything that reads a conversation's words goes through here, so that a
list-form message is never turned into its Python repr.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bbedit.errors import ConfigError
from bbedit.types import Message


def content_text(content: Any) -> str:
    """The words of one message's ``content``: the string itself, or its text parts joined by a
    space (other parts, such as images, are left out). Anything else reads as ""."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content
                        if isinstance(p, dict) and p.get("type") in ("text", "input_text") and p.get("text"))
    return ""


def last_user_index(messages: Sequence[Message]) -> int:
    """The position of the last user message. Raises :class:`ConfigError` when there is none."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], dict) and messages[i].get("role") == "user":
            return i
    raise ConfigError("the conversation has no user message")


def last_user_text(messages: Sequence[Message]) -> str:
    """The text of the last user message (text parts joined). Raises :class:`ConfigError` if there is none."""
    return content_text(messages[last_user_index(messages)].get("content"))


def ends_with_user(messages: Sequence[Message]) -> bool:
    """Whether the conversation's last message is the user's (a question waiting for an answer)."""
    return bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "user"


def with_content_text(message: Message, text: str) -> Message:
    """A copy of ``message`` whose words are ``text``: string content is replaced; in list-form
    content the text parts are replaced by one text part (other parts, such as images, are kept)."""
    content = message.get("content")
    if isinstance(content, list):
        others = [p for p in content if not (isinstance(p, dict) and p.get("type") in ("text", "input_text"))]
        return {**message, "content": [{"type": "text", "text": text}, *others]}
    return {**message, "content": text}


__all__ = ["content_text", "ends_with_user", "last_user_index", "last_user_text", "with_content_text"]
