"""The evaluation answers through the path users run: Router → EditedModel.chat, with caching around it.

A fake backend (a name and a ``generate`` that maps each request to its own canned answer) stands in
for the model, so these tests need no llama.cpp server.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bbedit.editors.base import AnswerEditor, Rewrite
from bbedit.errors import ConfigError
from bbedit.evaluation.calls import CachedModel, CallCache
from bbedit.evaluation.harness import RunContext, SuiteConfig
from bbedit.evaluation.systems import CachedAnswerEditor, CachedBackend, RecordedBackend, Systems, user
from bbedit.types import Edit, Message
from tests.test_eval_cases import CF_FLAT, write


class EchoBackend:
    """Answers each distinct request with its own text, and counts the calls."""

    name = "echo"

    def __init__(self) -> None:
        self.calls: list[list[Message]] = []
        self._lock = threading.Lock()

    def generate(self, messages: Sequence[Message], **opts: Any) -> str:
        with self._lock:
            self.calls.append(list(messages))
        digest = hashlib.sha256(json.dumps([list(messages), opts], sort_keys=True).encode()).hexdigest()[:8]
        return f"reply {digest} to {messages[-1]['content']!s:.40}"


class Swap(AnswerEditor):
    """Writes the edit's new target in place of its old one (or appends it), remembering what it was told."""

    name = "swap"

    def __init__(self) -> None:
        self.seen: list[Edit] = []

    def rewrite(self, query: str, answer: str, edit: Edit) -> Rewrite:
        self.seen.append(edit)
        old = edit.target_old
        text = answer.replace(old, edit.target_new) if old and old in answer else f"{answer} {edit.target_new}"
        return Rewrite(text, text != answer, 0.1, 0.01)


CASES = [dict(CF_FLAT[0], case_id=0),
         {"case_id": 1, "prompt": "The capital of France is", "target_new": "Rome", "subject": "France",
          "ground_truth": "Paris", "rephrase_prompt": "France's capital city is",
          "locality_prompt": "The capital of Germany is", "locality_ground_truth": "Berlin"}]


def _ctx(tmp_path: Path, fake: EchoBackend, **raw: Any) -> RunContext:
    write(tmp_path / "data" / "cf.json", CASES)
    cfg = SuiteConfig.from_dict({"suite": "fake", "dataset": {"path": "cf.json"}, "workers": 2, **raw})
    cache = CallCache()
    return RunContext(cfg, data_root=tmp_path / "data", _model=CachedModel(fake, cache, max_tokens=16), _cache=cache)


def test_editing_answers_are_edited_model_chat(tmp_path: Path, embedder: Any) -> None:
    from bbedit.evaluation.tasks import editing
    from bbedit.memory.memory import EditMemory
    from bbedit.pipeline import EditedModel

    fake = EchoBackend()
    ctx = _ctx(tmp_path, fake, systems=["none", "bbedit", "always"])
    out = editing.run(ctx)
    _, edits = editing.load(ctx)
    memory = EditMemory(None, embedder=embedder)
    memory.add_many(edits, supersede=False, progress=False)
    direct = EditedModel(EchoBackend(), memory, editor=editing.make_editor(ctx.cfg))
    routed = 0
    for rec in out["records"]:
        answer = direct.chat(user(rec["query"]), max_tokens=16)
        assert rec["bbedit"] == answer.text, rec["query"]
        assert rec["bbedit_edit"] == (answer.edit.id if answer.edit else None)
        assert rec["none"] == EchoBackend().generate(user(rec["query"]), max_tokens=16)  # passed through untouched
        assert rec["always_edit"] is not None  # the top hit is applied to every query
        routed += answer.edit is not None
    assert routed >= 2 and out["headline"]["gate_recall"] == 1.0
    # each distinct request reached the backend once, although none/bbedit/always share many of them
    assert len(fake.calls) == len({json.dumps(m) for m in fake.calls}) == out["headline"]["model_calls"]


def test_cached_backend_sends_each_request_once_and_keeps_its_cost() -> None:
    fake = EchoBackend()
    backend = CachedBackend(CachedModel(fake, CallCache(), max_tokens=8))
    msgs = user("hello")
    assert backend.generate(msgs) == backend.generate(msgs) == backend.completion(msgs).text
    assert len(fake.calls) == 1 and backend.calls == 1
    with pytest.raises(ConfigError, match="no completion"):
        backend.completion(user("never asked"))
    longer = backend.generate(msgs, max_tokens=32)  # another option set: another cached model, same cache
    assert longer != backend.generate(msgs) and backend.calls == 2
    assert CachedBackend(CachedModel(fake, backend.model.cache, max_tokens=8)).generate(msgs) == backend.generate(msgs)
    assert len(fake.calls) == 2  # the second instance answered from the shared cache


def test_post_editor_rewrites_the_recorded_answer_through_chat(tmp_path: Path, embedder: Any) -> None:
    from bbedit.evaluation import postediting
    from bbedit.evaluation.tasks.editing import Item
    from bbedit.memory.memory import EditMemory
    from bbedit.routing import Route

    edit = Edit(subject="Acme", prompt="The CEO of Acme is", target_new="Jane Doe", target_old="John Smith", id="acme")
    memory = EditMemory(None, embedder=embedder)
    memory.add_many([edit], supersede=False, progress=False)
    fake = EchoBackend()
    ctx = _ctx(tmp_path, fake, options={"hide_old": True})
    swap = Swap()
    cache = CallCache()
    editor = CachedAnswerEditor(swap, cache, "swap:test", hide_old=True)
    model = Systems(memory).model("replace", RecordedBackend({}), editor)

    from bbedit.evaluation.cases import Case, Probe
    from bbedit.types import Completion, GateDecision

    case = Case("acme", (edit,), ())
    items = [Item(case, Probe("Who runs Acme?", "reliability", ("Jane Doe",), ("John Smith",))),
             Item(case, Probe("Who runs Globex?", "locality"))]
    routes = [Route("Who runs Acme?", GateDecision(edit, 0.9, ())), Route.passthrough("Who runs Globex?")]
    originals = [Completion("John Smith runs it."), Completion("Hank Scorpio.")]
    answers, recs = postediting.post_edit_all(ctx, model, "replace", items, routes, originals, recorded=True)
    assert [a.text for a in answers] == ["John Smith runs it. Jane Doe", "Hank Scorpio."]
    assert swap.seen[0].target_old is None  # hide_old: the editor was not told what the edit replaces
    assert [r["item"] for r in recs] == [0] and recs[0]["changed"] and not fake.calls
    again = CachedAnswerEditor(Swap(), cache, "swap:test", hide_old=True)
    assert again.rewrite("Who runs Acme?", "John Smith runs it.", edit).text == answers[0].text
    assert not again.inner.seen  # type: ignore[attr-defined]  # answered from the cache
    with pytest.raises(ConfigError, match="no recorded answer"):
        RecordedBackend({"a?": "b"}).generate(user("c?"))
    with pytest.raises(ConfigError, match="not an answer editor"):
        CachedAnswerEditor(object(), cache, "x")  # type: ignore[arg-type]


def test_the_always_system_applies_the_top_hit(embedder: Any) -> None:
    from bbedit.evaluation.systems import route
    from bbedit.memory.memory import EditMemory

    edit = Edit(subject="Acme", prompt="The CEO of Acme is", target_new="Jane Doe", id="acme")
    memory = EditMemory(None, embedder=embedder)
    memory.add_many([edit], supersede=False, progress=False)
    systems = Systems(memory)
    from bbedit.editors.base import make_editor

    ike = make_editor("ike")
    always = systems.model("always", EchoBackend(), ike)
    gated = systems.model("bbedit", EchoBackend(), ike)
    (r_always,), ms = route(always, ["How do volcanoes form?"])
    (r_gated,), _ = route(gated, ["How do volcanoes form?"])
    assert r_always.edit == edit and r_gated.edit is None and ms >= 0
    assert always.router is systems.always and gated.router is systems.router
    assert route(None, ["q"])[0][0].edit is None
