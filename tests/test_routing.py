"""The routing seam and the two editor kinds, with a fake backend (no model server).

The router is what the pipeline, the proxy, LangChain and the evaluation tasks share; these tests pin
its contract: passthrough byte for byte, one consistent memory state per routing, the gate's own k,
editors applied by their declared kind.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from bbedit.editors import AnswerEditor, RequestEditor, check_editor, make_editor
from bbedit.editors.ike import IKEEditor
from bbedit.editors.postedit import ReplaceEditor
from bbedit.errors import ConfigError
from bbedit.memory.memory import EditMemory
from bbedit.pipeline import EditedModel
from bbedit.routing import Route, Router
from bbedit.scope.gate import SimilarityGate, load_gate
from tests.fakes import FakeBackend

EDITS = [
    {"id": "acme", "subject": "Acme Corporation", "aliases": ["Acme Corp"],
     "prompt": "Who is the CEO of Acme Corporation?", "target_new": "Maria Okafor", "target_old": "John Smith"},
    {"id": "eiffel", "subject": "Eiffel Tower", "prompt": "The Eiffel Tower is located in the city of",
     "target_new": "Rome", "target_old": "Paris"},
]
ACME_Q = "Who is the CEO of Acme Corp?"
OTHER_Q = "What is the capital of Japan?"


@pytest.fixture
def filled(memory: EditMemory) -> EditMemory:
    memory.add_many(EDITS)
    return memory


def test_router_routes_in_and_out_of_scope(filled: EditMemory) -> None:
    router = Router(filled)
    inside, outside = router.route_many([ACME_Q, OTHER_Q])
    assert inside.edit is not None and inside.edit.id == "acme" and inside.in_scope
    assert inside.score >= router.threshold and inside.candidates[0][0].id == "acme"
    assert outside.edit is None and not outside.in_scope
    assert set(inside.timings) == {"retrieve_s", "gate_s"}
    explained = inside.explain()
    assert explained[0]["id"] == "acme" and explained[0]["accepted"] is True
    assert explained[0]["subject_named"] == "Acme Corp"  # the alias the question used
    assert all(not c["accepted"] for c in outside.explain())


def test_named_in_matches_whole_words_ignoring_case_and_accents() -> None:
    from bbedit.memory.subjects import named_in

    assert named_in("who runs ACME corp today?", ["Acme Corporation", "Acme Corp"]) == "Acme Corp"
    assert named_in("Where was Zoe Saldana born?", ["Zoë Saldaña"]) == "Zoë Saldaña"
    assert named_in("What does Acmeology study?", ["Acme"]) is None  # not part of a word
    assert named_in("Who sang in Beatles songs?", ["The Beatles"]) == "The Beatles"  # leading "the" optional
    assert named_in("anything", ["", "Acme"]) is None


def test_a_conversation_not_ending_with_the_user_is_out_of_scope(filled: EditMemory) -> None:
    router = Router(filled)
    convo = [{"role": "user", "content": ACME_Q}, {"role": "assistant", "content": "The CEO is"}]
    route = router.route(convo)
    assert route.edit is None and route.query is None
    assert router.route([{"role": "user", "content": ACME_Q}]).edit is not None
    with pytest.raises(ConfigError):
        router.route("Who is the CEO?")  # type: ignore[arg-type]


def test_router_takes_k_from_the_saved_gate(filled: EditMemory, tmp_path: Any) -> None:
    gate = load_gate(filled)
    gate.k = 9
    gate.save(tmp_path)
    assert Router(filled, load_gate(filled, tmp_path)).k == 9
    assert Router(filled, load_gate(filled, tmp_path), k=3).k == 3
    with pytest.raises(ConfigError, match="k must be"):
        Router(filled, k=0)


def test_router_refuses_a_gate_of_another_memory(filled: EditMemory, embedder: Any) -> None:
    with EditMemory(None, embedder=embedder) as other, pytest.raises(ConfigError, match="another edit memory"):
        Router(filled, SimilarityGate(other))


def test_routing_sees_one_memory_state_while_edits_change(filled: EditMemory) -> None:
    """An edit removed between retrieval and the gate used to raise a bare KeyError."""
    router = Router(filled)
    errors: list[BaseException] = []
    stop = threading.Event()

    def churn() -> None:
        try:
            while not stop.is_set():
                filled.remove("acme")
                filled.add(EDITS[0])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=churn)
    t.start()
    try:
        for _ in range(40):
            r = router.route_query(ACME_Q)
            assert r.edit is None or r.edit.id == "acme"
    finally:
        stop.set()
        t.join()
    assert not errors


def test_the_threshold_can_only_be_lowered(filled: EditMemory) -> None:
    router = Router(filled)
    assert router.route_query(ACME_Q, threshold=2.0).threshold == router.threshold
    assert router.route_query(ACME_Q, threshold=0.01).threshold == 0.01


def test_out_of_scope_reaches_the_backend_exactly_as_sent(filled: EditMemory) -> None:
    backend = FakeBackend({OTHER_Q: "Tokyo."})
    model = EditedModel(backend, filled)
    convo = [{"role": "system", "content": "Answer briefly."},
             {"role": "user", "content": [{"type": "text", "text": OTHER_Q}]}]
    before = copy.deepcopy(convo)
    ans = model.chat(convo, max_tokens=8)
    assert ans.edit is None and ans.text == "Tokyo." and ans.original_text is None
    assert backend.sent == [before] and backend.opts == [{"max_tokens": 8}] and convo == before
    assert isinstance(ans.route, Route) and not ans.route.in_scope


def test_request_editor_states_the_fact_and_keeps_list_content(filled: EditMemory) -> None:
    backend = FakeBackend()
    model = EditedModel(backend, filled, editor="ike")
    convo = [{"role": "user", "content": [{"type": "text", "text": ACME_Q},
                                          {"type": "image_url", "image_url": {"url": "data:,"}}]}]
    ans = model.chat(convo)
    assert ans.edit is not None and ans.edit.id == "acme"
    sent = backend.sent[-1]
    last = sent[-1]["content"]
    assert isinstance(last, list) and last[1]["type"] == "image_url"
    text = last[0]["text"]
    assert "Maria Okafor" in text and ACME_Q in text and "[{" not in text and "'type'" not in text
    assert ans.text.endswith("Maria Okafor.")
    assert model.request_messages(convo, ans.route) == sent  # what the probability protocol scores


def test_answer_editor_rewrites_the_backend_answer(filled: EditMemory) -> None:
    backend = FakeBackend({ACME_Q: "The CEO of Acme is John Smith."})
    model = EditedModel(backend, filled, editor="replace")
    ans = model.ask(ACME_Q)
    assert ans.original_text == "The CEO of Acme is John Smith."
    assert ans.text == "The CEO of Acme is Maria Okafor."
    assert backend.sent == [[{"role": "user", "content": ACME_Q}]]  # the request is not changed
    route, chunks = model.stream([{"role": "user", "content": ACME_Q}])
    assert route.edit is not None and "".join(chunks) == ans.text


def test_stream_matches_chat_for_request_editors(filled: EditMemory) -> None:
    model = EditedModel(FakeBackend(), filled)
    msgs = [{"role": "user", "content": ACME_Q}]
    route, chunks = model.stream(msgs)
    assert route.edit is not None and "".join(chunks) == model.chat(msgs).text


def test_an_editor_routed_at_its_own_lower_threshold(filled: EditMemory) -> None:
    editor = ReplaceEditor()
    editor.gate_threshold = 0.0
    model = EditedModel(FakeBackend(), filled, editor=editor)
    assert model.route([{"role": "user", "content": OTHER_Q}]).threshold == 0.0


def test_editors_declare_their_kind() -> None:
    assert isinstance(make_editor("ike"), RequestEditor) and make_editor("ike").kind == "request"
    assert isinstance(make_editor("replace"), AnswerEditor) and make_editor("replace").kind == "answer"

    class Loose:
        name = "loose"

        def answer(self, *a: Any) -> str:
            return ""

    with pytest.raises(ConfigError, match="neither a request editor"):
        check_editor(Loose())
    with pytest.raises(ConfigError, match="unknown editor"):
        make_editor("nope")


def test_ike_embeds_with_the_memory_embedder(filled: EditMemory) -> None:
    calls: list[int] = []
    inner = filled.embedder

    class Counting:
        name, dim = inner.name, inner.dim

        def embed(self, texts: Any) -> Any:
            calls.append(len(texts))
            return inner.embed(texts)

        def embed_spans(self, texts: Any, spans: Any) -> Any:
            return inner.embed_spans(texts, spans)

    filled._embedder = Counting()  # type: ignore[assignment]
    ike = IKEEditor()
    EditedModel(FakeBackend(), filled, editor=ike).ask(ACME_Q)
    assert calls and ike._embedder is None  # no embedder of its own was loaded


def test_ask_explain_table_names_each_candidate_and_the_applied_one(filled: EditMemory) -> None:
    from bbedit.cli.ask import explain_text

    route = Router(filled).route_query(ACME_Q)
    text = explain_text({"threshold": route.threshold, "in_scope": route.in_scope, "candidates": route.explain()})
    lines = text.strip().splitlines()
    assert lines[0].startswith("[routing: in scope, threshold")
    assert lines[2].split()[:3] == ["acme", "Acme", "Corp"] and lines[2].endswith("applied")
    assert "no explanation" in explain_text(None)
