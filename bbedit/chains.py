"""Multi-hop questions over chains of edits: "What is the official language of the country of citizenship
of the director of Hey Jude's performer?" needs four facts in a row, each one's object the next one's
subject, and every one of them may be an edit.

The memory follows the chain, not the model: a small model cannot decompose such a question (MeLLo's
approach), but the edits say which fact comes next. The first hop is the edit the gate routes the
question to, else an edit of a subject the question names (the longest name; among its edits, the one
whose prompt is closest in meaning to the question). Each next hop is an edit *about the previous hop's
new object* (the memory's subject names, aliases included), the one whose prompt is closest to the
question, until no edit is about the object or ``max_hops`` is reached. A hop no edit covers ends the
chain there.

The chain is stated to the model in one request (one model call per question, whatever the number of
hops), as facts in order, each object the next subject, and what they imply: the last fact's object is
the answer to the question as far as the edits go. That conclusion is the memory's (the chain ends where
the edits end), so a question whose last hops are facts nobody edited gets the chain's end as its
answer: :func:`chain_messages` says so, and ``conclude=False`` leaves the conclusion to the model. The
conclusion goes after the question, in the user's turn: stated at the end of the system message, the
served SmolLM2-135M repeated it for 6 of 132 MQuAKE-hard questions it had answered wrong (it named an
earlier hop's object), after the question for 86, and kept 59 of 60 it had answered right (the same
questions and chains both ways).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bbedit.memory.subjects import name_key
from bbedit.types import Edit, Message

CHAIN_SYSTEM = ("You answer using these updated facts, which replace what you knew. They form a chain: "
                "each fact's answer is the subject of the next.\n{facts}")
READ = "\nAnswer the question with the final entity only."
"""What the system message asks when the model draws the conclusion itself (``conclude=False``)."""
CONCLUSION = "\n(Following the updated facts, the answer is {answer}.)"
"""What follows the question when the memory states the conclusion."""


def same_fact(a: Edit, b: Edit) -> bool:
    """Whether two edits state the same fact (same subject, prompt and new value), whatever their ids:
    a memory built from MQuAKE holds one fact under several cases' ids."""
    return (name_key(a.subject), a.prompt.strip(), a.target_new.strip()) == \
        (name_key(b.subject), b.prompt.strip(), b.target_new.strip())


def first_hop(question: str, memory: Any, routed: Edit | None = None) -> Edit | None:
    """The chain's first edit: ``routed`` (the gate's) when given, else an edit of the longest stored
    subject name the question names, the one whose prompt is closest to the question; None when the
    question names no stored subject."""
    if routed is not None:
        return routed
    named = memory.subjects_in(question)
    if not named:
        return None
    candidates: list[Edit] = named[0][1]  # longest name first
    return candidates[0] if len(candidates) == 1 else _closest(question, candidates, memory)


def next_hops(edit: Edit, memory: Any) -> list[Edit]:
    """The active edits whose subject is ``edit``'s new object (by any stored name)."""
    key = name_key(edit.target_new)
    return [e for words, found in memory.subjects_in(edit.target_new) if name_key(words) == key for e in found]


def follow(question: str, memory: Any, first: Edit | None, max_hops: int = 4) -> list[Edit]:
    """The chain of edits from ``first``, hop by hop (see the module's docstring); [] without a first hop."""
    if first is None:
        return []
    chain = [first]
    qv = np.asarray(memory.embedder.embed([question]))[0]
    while len(chain) < max_hops:
        nxt = [e for e in next_hops(chain[-1], memory) if not any(same_fact(e, c) for c in chain)]
        if not nxt:
            break
        vecs = np.stack([memory.edit_vectors(e)[0] for e in nxt])  # the stored prompt embeddings
        chain.append(nxt[int(np.argmax(vecs @ qv))])
    return chain


def chain_messages(question: str, chain: Sequence[Edit], conclude: bool = True,
                   history: Sequence[Message] = ()) -> list[Message]:
    """The request that states ``chain`` and asks ``question``: the facts in order in a system message,
    then the question, followed, with ``conclude`` and a chain of two hops or more, by the answer they
    imply (the last object); without ``conclude`` the system message asks the model for the last entity."""
    if not chain:
        return [*history, {"role": "user", "content": question}]
    facts = "\n".join(f"{i + 1}. {e.prompt.rstrip()} {e.target_new}." for i, e in enumerate(chain))
    concluded = conclude and len(chain) > 1
    system = CHAIN_SYSTEM.format(facts=facts) + ("" if concluded else READ)
    asked = question + (CONCLUSION.format(answer=chain[-1].target_new) if concluded else "")
    return [{"role": "system", "content": system}, *history, {"role": "user", "content": asked}]


def _closest(question: str, edits: Sequence[Edit], memory: Any) -> Edit:
    qv = np.asarray(memory.embedder.embed([question]))[0]
    vecs = np.stack([memory.edit_vectors(e)[0] for e in edits])
    return edits[int(np.argmax(vecs @ qv))]


__all__ = ["CHAIN_SYSTEM", "CONCLUSION", "READ", "chain_messages", "first_hop", "follow", "next_hops", "same_fact"]
