"""Conversations: follow-ups that leave their subject out, questions about several edits, and editors
that apply every edit a question is about (issue: edits in real conversations)."""

from __future__ import annotations

import pytest

from bbedit import dialogue
from bbedit.editors.ike import IKEEditor
from bbedit.editors.postedit import ReplaceEditor
from bbedit.memory.memory import EditMemory
from bbedit.routing import Router
from bbedit.types import Edit
from tests.test_gate_hard import COMPANY

CEO_TURN = [{"role": "user", "content": "Who is the CEO of Veltrix Dynamics?"},
            {"role": "assistant", "content": "The CEO of Veltrix Dynamics is Priya Raman."}]


# -- text -------------------------------------------------------------------------------------------

def test_anaphors_and_their_substitution() -> None:
    text = "And where is it headquartered?"
    (a,) = dialogue.anaphors(text)
    assert text[a.start:a.end] == "it" and not a.possessive
    assert dialogue.substitute(text, a, "Acme") == "And where is Acme headquartered?"
    (p,) = dialogue.anaphors("What is its flagship product?")
    assert p.possessive
    assert dialogue.substitute("What is its flagship product?", p, "Veltrix Dynamics") == \
        "What is Veltrix Dynamics' flagship product?"
    two = "How big is the company and who runs her team?"
    assert [two[x.start:x.end] for x in dialogue.anaphors(two)] == ["the company", "her"]
    assert dialogue.anaphors("Who is the CEO of Acme?") == []  # "the CEO" is not a description of a subject
    # a description that opens a name refers to nothing earlier
    assert dialogue.anaphors("Who sang the song Hey Jude?") == []
    assert dialogue.anaphors("Which church is in the book of Revelation?") == []
    assert len(dialogue.anaphors("When was the company founded?")) == 1
    assert dialogue.parts("Who publishes Annual Review of Astronomy and Astrophysics?",
                          keep=["Annual Review of Astronomy and Astrophysics"]) == []  # a name is never split


def test_several_part_questions_split_into_parts_asked_about_the_subject() -> None:
    assert dialogue.parts("Give me an overview of Acme: CEO, headquarters and flagship product.") == [
        "Give me an overview of Acme", "CEO", "headquarters", "flagship product."]
    assert dialogue.parts("Who is the CEO of Acme?") == []
    assert dialogue.about("headquarters", "Acme") == ["Acme's headquarters", "the headquarters of Acme?"]
    assert dialogue.about("where is it based", "Veltrix Dynamics") == ["where is Veltrix Dynamics based"]
    assert dialogue.about("one two three four five six seven eight nine", "Acme") == []  # a sentence, not an item
    # a name joined to the subject is another thing, not an item asked about it
    assert dialogue.parts("In Trinidad and Tobago, the language spoken is", keep=["Trinidad"]) == [
        "In Trinidad", "Tobago", "the language spoken is"]
    assert dialogue.about("Tobago", "Trinidad") == [] and dialogue.about("the Globex?", "Acme") == []
    assert dialogue.about("CEO", "Acme") == ["Acme's CEO", "the CEO of Acme?"]
    assert dialogue.elliptical("And the CTO?") and not dialogue.elliptical("And where is it headquartered?")
    assert dialogue.strip_lead("What about the CTO?") == "the CTO?"
    assert dialogue.asks("where is Acme based") and dialogue.asks("the CTO of Acme")
    assert not dialogue.asks("belgium invade the ruhr")
    assert dialogue.name_like("Veltrix") and dialogue.name_like("the who") and not dialogue.name_like("who")


def test_a_message_of_several_questions_splits_into_its_sentences() -> None:
    assert dialogue.sentences("Who runs Acme? Also, where is Orbit Labs based?") == [
        "Who runs Acme?", "where is Orbit Labs based?"]
    assert dialogue.sentences("Who runs Acme?") == []


def test_earlier_texts_read_turns_most_recent_first_and_leave_tool_traffic_alone() -> None:
    msgs = [{"role": "system", "content": "You help Acme's customers."},
            {"role": "user", "content": "Who runs Acme?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]},
            {"role": "tool", "tool_call_id": "1", "content": "Orbit Labs record"},
            {"role": "assistant", "content": [{"type": "text", "text": "Jane Doe runs Acme."}]},
            {"role": "user", "content": "Where is it based?"}]
    assert dialogue.earlier_texts(msgs) == ["Jane Doe runs Acme.", "Who runs Acme?", "You help Acme's customers."]


# -- routing ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def router(embedder) -> Router:  # type: ignore[no-untyped-def]
    m = EditMemory(None, embedder=embedder)
    m.add_many(COMPANY, supersede=False)
    return Router(m)


@pytest.mark.parametrize(("follow_up", "edit_id"), [
    ("And where is it headquartered?", "hq"),
    ("What is its flagship product?", "product"),
    ("And the CTO?", "cto"),
    ("Who does she work for?", "priya"),  # "she": the person the answer named
])
def test_a_follow_up_reaches_the_edit_of_the_subject_named_earlier(router: Router, follow_up: str,
                                                                    edit_id: str) -> None:
    route = router.route([*CEO_TURN, {"role": "user", "content": follow_up}])
    assert route.edit is not None and route.edit.id == edit_id, route.explanation()
    assert route.reading is not None and route.query == follow_up  # the reading decided; the question is kept
    assert route.explanation()["reading"] == route.reading


@pytest.mark.parametrize("follow_up", ["How many employees does the company have?", "Who founded it?",
                                       "Where did she go to university?", "What is the capital of Portugal?"])
def test_a_follow_up_about_something_nobody_edited_stays_out_of_scope(router: Router, follow_up: str) -> None:
    route = router.route([*CEO_TURN, {"role": "user", "content": follow_up}])
    assert route.edit is None and route.edits == (), route.explanation()


def test_without_an_earlier_subject_a_pronoun_resolves_to_nothing(router: Router) -> None:
    route = router.route([{"role": "user", "content": "Where is it headquartered?"}])
    assert route.edit is None


@pytest.mark.parametrize(("question", "ids"), [
    ("Give me an overview of Veltrix Dynamics: CEO, headquarters and flagship product.", {"ceo", "hq", "product"}),
    ("Who is the CEO of Veltrix Dynamics and where is it headquartered?", {"ceo", "hq"}),
    ("Who are the CEO and the CTO of Veltrix?", {"ceo", "cto"}),
    ("Where is Corvane Labs based, and who runs it?", {"corvane-hq", "corvane-ceo"}),
    ("Who employs Omar Haddad? Also, how much does the Nimbus Hub cost?", {"omar", "price"}),
])
def test_a_question_about_several_edits_gets_all_of_them(router: Router, question: str, ids: set[str]) -> None:
    route = router.route_query(question)
    assert ids <= {e.id for e in route.edits}, route.explanation()
    assert len({e.id for e in route.edits}) == len(route.edits)  # each once
    assert [s for _, s in route.scored_edits][1:] == sorted((s for _, s, _ in route.also), reverse=True)
    assert {a["id"] for a in route.explanation()["also"]} == {e.id for e in route.edits[1:]}  # type: ignore[union-attr]


def test_a_name_that_contains_a_subject_is_not_a_question_about_it(embedder) -> None:  # type: ignore[no-untyped-def]
    m = EditMemory(None, embedder=embedder)
    m.add_many([Edit(subject="Trinidad", prompt="Trinidad, named for", target_new="Indianapolis", id="t")],
               supersede=False)
    router = Router(m)
    assert "Trinidad's Tobago" not in router.readings("In Trinidad and Tobago, the language spoken is")
    route = router.route_query("In Trinidad and Tobago, the language spoken is")
    assert route.edit is None, route.explanation()
    assert router.route_query("What is Trinidad named after?").edit is not None


def test_readings_can_be_switched_off(embedder) -> None:  # type: ignore[no-untyped-def]
    m = EditMemory(None, embedder=embedder)
    m.add_many(COMPANY, supersede=False)
    plain = Router(m, readings=False)
    assert plain.readings("Who is the CEO of Veltrix Dynamics and where is it headquartered?") == []
    assert plain.route([*CEO_TURN, {"role": "user", "content": "And where is it headquartered?"}]).edit is None


def test_subjects_in_names_the_words_used_and_the_edits(router: Router) -> None:
    found = dict(router.memory.subjects_in("Is Veltrix bigger than Corvane Labs?"))
    assert {e.id for e in found["Veltrix"]} == {"ceo", "cto", "hq", "product"}
    assert {e.id for e in found["Corvane Labs"]} == {"corvane-ceo", "corvane-hq"}
    assert router.memory.subjects_in("nothing stored here") == []


# -- editors with several edits --------------------------------------------------------------------

CEO = Edit(subject="Veltrix Dynamics", prompt="Who is the CEO of Veltrix Dynamics?", target_new="Priya Raman",
           target_old="Elena Veltrix", id="ceo")
HQ = Edit(subject="Veltrix Dynamics", prompt="Where is Veltrix Dynamics headquartered?", target_new="Lisbon",
          target_old="Madrid", id="hq")


def test_ike_states_every_routed_fact(embedder) -> None:  # type: ignore[no-untyped-def]
    editor = IKEEditor(embedder=embedder)
    msgs = editor.build_messages([{"role": "user", "content": "Who runs Veltrix Dynamics and where is it based?"}],
                                 [CEO, HQ])
    last = msgs[-1]["content"]
    assert "Priya Raman" in last and "Lisbon" in last
    assert editor.build_messages([{"role": "user", "content": "q?"}], CEO)[-1]["content"].count("Priya Raman") == 1


def test_ike_demonstrations_never_name_the_edits_subject_or_old_value(embedder) -> None:  # type: ignore[no-untyped-def]
    editor = IKEEditor(embedder=embedder)
    iphone = Edit(subject="iPhone", prompt="The iPhone is produced by", target_new="Nokia", target_old="Apple", id="i")
    msgs = editor.build_messages([{"role": "user", "content": "Who makes the iPhone?"}], iphone)
    shots = " ".join(str(m["content"]) for m in msgs[1:-1])
    assert shots, "the demonstrations are still there"
    for name in ("iPhone", "Apple"):  # the pool's "The iPhone is produced by -> Apple" would contradict the edit
        assert name not in shots, name
    plain = " ".join(str(m["content"]) for m in editor.build_messages(
        [{"role": "user", "content": "Who makes the iPhone?"}],
        Edit(subject="Orvell X3", prompt="The Orvell X3 is produced by", target_new="Sony", id="o"))[1:-1])
    assert "iPhone" in plain  # the same question about another subject keeps that demonstration


def test_an_answer_editor_rewrites_for_every_edit() -> None:
    r = ReplaceEditor().rewrite_all("Who runs Veltrix and where?", "Elena Veltrix runs it from Madrid.", [CEO, HQ])
    assert r.text == "Priya Raman runs it from Lisbon." and r.changed and r.passes == 2
    with pytest.raises(Exception, match="one or more edits"):
        ReplaceEditor().rewrite_all("q", "a", [])
