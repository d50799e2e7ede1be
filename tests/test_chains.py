"""Multi-hop chains of edits followed through the memory (bbedit.chains), and the follow-up question an
answer editor reads."""

from __future__ import annotations

from typing import Any

from bbedit.chains import chain_messages, first_hop, follow, next_hops, same_fact
from bbedit.editors.base import resolved_question
from bbedit.memory.memory import EditMemory
from bbedit.types import Edit

HOPS = [
    Edit(id="h1", subject="Hey Jude", prompt="Hey Jude was performed by", target_new="Madonna"),
    Edit(id="h2", subject="Madonna", prompt="The director of Madonna is", target_new="Narendra Modi"),
    Edit(id="h3", subject="Narendra Modi", prompt="Narendra Modi is a citizen of", target_new="Australia"),
    Edit(id="h4", subject="Australia", prompt="The official language of Australia is", target_new="Arabic"),
]
OTHERS = [  # other facts about the same objects, and one fact stored twice under two ids
    Edit(id="o1", subject="Madonna", prompt="Madonna was born in", target_new="Paris"),
    Edit(id="o2", subject="Australia", prompt="The capital of Australia is", target_new="Perth"),
    Edit(id="h2-again", subject="Madonna", prompt="The director of Madonna is", target_new="Narendra Modi"),
]
QUESTION = ("What is the official language of the country of citizenship of the director of the performer of "
            "Hey Jude?")


def test_a_chain_is_followed_hop_by_hop(embedder: Any) -> None:
    with EditMemory(None, embedder=embedder) as memory:
        memory.add_many(HOPS + OTHERS, supersede=False)
        first = first_hop(QUESTION, memory)
        assert first is not None and first.id == "h1"  # the subject the question names
        assert {e.id for e in next_hops(HOPS[0], memory)} == {"h2", "o1", "h2-again"}
        chain = follow(QUESTION, memory, first)
        assert [e.prompt for e in chain] == [e.prompt for e in HOPS]  # the relations the question asks
        assert all(same_fact(a, b) for a, b in zip(chain, HOPS, strict=True))
        assert len(follow(QUESTION, memory, first, max_hops=2)) == 2
        assert follow(QUESTION, memory, None) == [] and first_hop("What is 2 + 2?", memory) is None
        assert first_hop(QUESTION, memory, HOPS[1]) is HOPS[1]  # the gate's edit comes first
    assert same_fact(HOPS[1], OTHERS[2]) and not same_fact(HOPS[1], OTHERS[0])


def test_the_chain_request_states_the_facts_and_what_they_imply() -> None:
    msgs = chain_messages(QUESTION, HOPS)
    system = msgs[0]["content"]
    assert "1. Hey Jude was performed by Madonna." in system and "4. The official language of Australia is Arabic." in system
    # the conclusion follows the question (a small model repeats it from there, not from the system message)
    assert msgs[-1] == {"role": "user", "content": QUESTION + "\n(Following the updated facts, the answer is Arabic.)"}
    assert "the answer is" not in system
    read = chain_messages(QUESTION, HOPS, conclude=False)
    assert read[-1] == {"role": "user", "content": QUESTION} and "final entity" in read[0]["content"]
    one = chain_messages(QUESTION, HOPS[:1])  # one hop implies nothing more
    assert one[-1] == {"role": "user", "content": QUESTION} and "the answer is" not in one[0]["content"]
    assert chain_messages(QUESTION, []) == [{"role": "user", "content": QUESTION}]


def test_an_answer_editor_reads_a_follow_up_with_its_subject() -> None:
    ceo = Edit(id="ceo", subject="Acme", prompt="The CEO of Acme is", target_new="Jane Doe")
    talk = [{"role": "user", "content": "Tell me about Acme."}, {"role": "assistant", "content": "It makes tools."},
            {"role": "user", "content": "Who runs it?"}]
    assert resolved_question(talk, ceo) == "Who runs Acme?"
    assert resolved_question([{"role": "user", "content": "Its CEO?"}], [ceo]) == "Acme's CEO?"
    assert resolved_question([{"role": "user", "content": "Who runs Acme now?"}], ceo) == "Who runs Acme now?"
    assert resolved_question([{"role": "user", "content": "Who runs Globex?"}], ceo) == "Who runs Globex?"
