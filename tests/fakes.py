"""A fake backend for unit tests of the router, the pipeline and the editors.

It is a real :class:`bbedit.backends.Backend` (``name`` and ``generate``, plus ``stream``) with
deterministic answers, so tests can check exactly what an editor sent and what came back without
starting llama.cpp. Tests that are about the model's own behaviour use the real server instead.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from bbedit.conversation import content_text


class FakeBackend:
    """Answers from ``answers`` (question text → answer), else "I don't know."; when the conversation
    states a fact the way IKE does ("New fact: ... <target>."), it answers with the fact's sentence,
    so a test can tell an edited request from an unedited one. Records every conversation sent."""

    name = "fake"

    def __init__(self, answers: Mapping[str, str] | None = None) -> None:
        self.answers = dict(answers or {})
        self.sent: list[list[dict[str, Any]]] = []
        self.opts: list[dict[str, Any]] = []

    def generate(self, messages: Sequence[dict[str, Any]], **opts: Any) -> str:
        self.sent.append(copy.deepcopy(list(messages)))
        self.opts.append(dict(opts))
        last = content_text(messages[-1].get("content"))
        facts = re.findall(r"New fact: (.+?)\n", last + "\n")
        if facts:
            return facts[-1].strip()
        return self.answers.get(last.strip(), "I don't know.")

    def stream(self, messages: Sequence[dict[str, Any]], **opts: Any) -> Iterator[str]:
        text = self.generate(messages, **opts)
        for i in range(0, len(text), 5):
            yield text[i:i + 5]
