"""The query path end to end against the real llama.cpp server, through the openai client."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bbedit.memory.memory import EditMemory
from bbedit.pipeline import EditedModel, last_user_text

pytestmark = pytest.mark.slow

EDITS = [
    {"id": "acme", "subject": "Acme Corporation", "aliases": ["Acme Corp"], "prompt": "Who is the CEO of Acme Corporation?",
     "target_new": "Maria Okafor", "target_old": "John Smith"},
    {"id": "eiffel", "subject": "Eiffel Tower", "prompt": "The Eiffel Tower is located in the city of",
     "target_new": "Rome", "target_old": "Paris"},
]
OPTS = {"max_tokens": 24, "temperature": 0.0}


class Recording:
    """Wraps the real backend and records exactly what it was sent (it answers through the real server)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.sent = inner, inner.name, []

    def generate(self, messages: list[dict[str, Any]], **opts: Any) -> str:
        self.sent.append(copy.deepcopy(messages))
        return self.inner.generate(messages, **opts)

    def stream(self, messages: list[dict[str, Any]], **opts: Any) -> Any:
        self.sent.append(copy.deepcopy(messages))
        return self.inner.stream(messages, **opts)


@pytest.fixture
def model(memory: EditMemory, backend: Any) -> EditedModel:
    memory.add_many(EDITS)
    return EditedModel(Recording(backend), memory)


def test_out_of_scope_reaches_the_model_exactly_as_sent(model: EditedModel, backend: Any) -> None:
    convo = [{"role": "system", "content": "Answer briefly."},
             {"role": "user", "content": "What is the capital of Japan?"}]
    before = copy.deepcopy(convo)
    ans = model.chat(convo, **OPTS)
    assert ans.edit is None and ans.original_text is None
    assert model.backend.sent == [before]  # type: ignore[attr-defined]
    assert convo == before
    assert ans.text == backend.generate(before, **OPTS)  # byte-identical to a direct call (greedy)
    assert set(ans.timings) == {"retrieve_s", "gate_s", "route_s", "generate_s", "total_s"}


def test_in_scope_gets_the_edit_in_context(model: EditedModel) -> None:
    ans = model.ask("Who is the CEO of Acme Corp?", **OPTS)
    assert ans.edit is not None and ans.edit.id == "acme" and ans.score >= model.gate.threshold
    sent = model.backend.sent[-1]  # type: ignore[attr-defined]
    assert any("Maria Okafor" in m["content"] for m in sent)  # the edit is in the context
    assert "Who is the CEO of Acme Corp?" in sent[-1]["content"] and sent[-1]["role"] == "user"
    assert ans.text.strip()


def test_multi_turn_chat_routes_each_turn(model: EditedModel) -> None:
    convo = [{"role": "user", "content": "What is the capital of Japan?"}]
    first = model.chat(convo, **OPTS)
    convo += [{"role": "assistant", "content": first.text},
              {"role": "user", "content": "And in which city is the Eiffel Tower located?"}]
    second = model.chat(convo, **OPTS)
    assert first.edit is None and second.edit is not None and second.edit.id == "eiffel"
    assert last_user_text(convo) == "And in which city is the Eiffel Tower located?"


def test_stream_matches_chat(model: EditedModel) -> None:
    msgs = [{"role": "user", "content": "Who is the CEO of Acme Corp?"}]
    decision, chunks = model.stream(msgs, **OPTS)
    assert decision.edit is not None
    assert "".join(chunks) == model.chat(msgs, **OPTS).text
