"""The built-in gate on the cases that broke the CounterFact-only gate (issue: a scope gate that works
on any fact): a user's own edits about a fictional company, and fixed slices of every shared
evaluation set's hardest probe kinds.

Each floor is the rate measured with the shipped gate when it was installed, less a margin, so a
gate that regresses on a kind fails here; the full figures are the scope benchmark's
(`eval/scope.py`, `eval/results/scope/`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bbedit.memory.memory import EditMemory
from bbedit.routing import Router

# A user's edits about an invented company and its people: no old values given.
COMPANY = [
    {"id": "ceo", "subject": "Veltrix Dynamics", "aliases": ["Veltrix"], "prompt": "Who is the CEO of Veltrix Dynamics?",
     "target_new": "Priya Raman"},
    {"id": "cto", "subject": "Veltrix Dynamics", "aliases": ["Veltrix"], "prompt": "Who is the CTO of Veltrix Dynamics?",
     "target_new": "Lena Moreau"},
    {"id": "hq", "subject": "Veltrix Dynamics", "aliases": ["Veltrix"],
     "prompt": "Where is Veltrix Dynamics headquartered?", "target_new": "Lisbon"},
    {"id": "product", "subject": "Veltrix Dynamics", "aliases": ["Veltrix"],
     "prompt": "What is the flagship product of Veltrix Dynamics?", "target_new": "Nimbus Hub"},
    {"id": "price", "subject": "Nimbus Hub", "prompt": "How much does the Nimbus Hub cost?", "target_new": "$349"},
    {"id": "priya", "subject": "Priya Raman", "prompt": "Which company does Priya Raman work for?",
     "target_new": "Veltrix Dynamics"},
    {"id": "omar", "subject": "Omar Haddad", "prompt": "Which company does Omar Haddad work for?",
     "target_new": "Corvane Labs"},
    {"id": "corvane-ceo", "subject": "Corvane Labs", "prompt": "Who is the CEO of Corvane Labs?",
     "target_new": "Omar Haddad"},
    {"id": "corvane-hq", "subject": "Corvane Labs", "prompt": "Where is Corvane Labs based?", "target_new": "Tallinn"},
    {"id": "final", "subject": "2026 Orbis Cup final", "prompt": "Who won the 2026 Orbis Cup final?",
     "target_new": "Lyon"},
]

IN_SCOPE = [  # (question, the edit it must reach)
    ("Who is the CEO of Veltrix Dynamics?", "ceo"),
    ("Who is the chief executive of Veltrix?", "ceo"),
    ("Who runs Veltrix Dynamics?", "ceo"),
    ("Who heads Veltrix?", "ceo"),
    ("Who is the CTO of Veltrix Dynamics?", "cto"),
    ("Who is Veltrix's chief technology officer?", "cto"),
    ("Where is Veltrix Dynamics headquartered?", "hq"),
    ("In which city is Veltrix based?", "hq"),
    ("What is Veltrix Dynamics' flagship product?", "product"),
    ("What is the price of the Nimbus Hub?", "price"),
    ("Who does Priya Raman work for?", "priya"),
    ("Who employs Omar Haddad?", "omar"),
    ("Who is the CEO of Corvane Labs?", "corvane-ceo"),
    ("Where is Corvane Labs headquartered?", "corvane-hq"),
    ("Who won the 2026 Orbis Cup final?", "final"),
]

CONTROLS = [  # same subjects, facts nobody edited
    "How many employees does Veltrix Dynamics have?",
    "When was Veltrix Dynamics founded?",
    "Is Veltrix Dynamics a public company?",
    "What colours is the Nimbus Hub available in?",
    "Where did Priya Raman go to university?",
    "How old is Omar Haddad?",
    "What does Corvane Labs research?",
    "Who founded Corvane Labs?",
    "Where was the 2026 Orbis Cup final played?",
    "What is the capital of Portugal?",
    "Who sang the song Hey Jude?",
]


@pytest.fixture(scope="module")
def company_router(embedder) -> Router:  # type: ignore[no-untyped-def]
    m = EditMemory(None, embedder=embedder)
    m.add_many(COMPANY, supersede=False)
    return Router(m)


@pytest.mark.parametrize(("question", "edit_id"), IN_SCOPE)
def test_a_users_company_questions_reach_their_edit(company_router: Router, question: str, edit_id: str) -> None:
    r = company_router.route_query(question)
    assert r.edit is not None and r.edit.id == edit_id, r.explain()


def test_a_users_company_controls_pass_through(company_router: Router) -> None:
    routed = {q: r.edit.id for q in CONTROLS if (r := company_router.route_query(q)).edit is not None}
    assert len(routed) <= 1, routed  # measured at install: see the module docstring


# A user's edits of facts that change over time, asked about as people do: by another name of the
# subject ("UK", "US"), of its office's past holders (controls), and with the subject left to the memory
# to guess ("Who is the Chancellor of Germany?": the subject is Germany).
CURRENT = [
    ("pm", "Who is the prime minister of the United Kingdom?", "Ada Moreau"),
    ("president", "Who is the president of the United States?", "Sam Ito"),
    ("chancellor", "Who is the Chancellor of Germany?", "Lena Cho"),
    ("acme", "Who is the CEO of Acme Corp?", "Jane Doe"),
]
CURRENT_PROBES = [
    ("As of now, who leads the UK government?", "pm"),
    ("Who is the current US president?", "president"),
    ("Who is Germany's head of government?", "chancellor"),
    ("Who runs Acme Corp these days?", "acme"),
    ("Who was the first prime minister of the United Kingdom?", None),
    ("Who was the first president of the United States?", None),
    ("Who was the former CEO of Acme Corp?", None),
    ("Tell us who the president of France is.", None),
    ("What is the population of the United Kingdom?", None),
]


@pytest.fixture(scope="module")
def current_router(embedder) -> Router:  # type: ignore[no-untyped-def]
    from bbedit.memory.formats import guess_subject

    m = EditMemory(None, embedder=embedder)
    m.add_many([{"id": i, "subject": guess_subject(q), "prompt": q, "target_new": a} for i, q, a in CURRENT],
               supersede=False)
    return Router(m)


@pytest.mark.parametrize(("question", "edit_id"), CURRENT_PROBES)
def test_a_users_current_facts_by_other_names_and_past_holders(current_router: Router, question: str,
                                                                edit_id: str | None) -> None:
    r = current_router.route_query(question)
    assert (r.edit.id if r.edit is not None else None) == edit_id, r.explain()


# -- hard cases of each shared set's kind, one memory ---------------------------------------------------
# Edits shaped like each dataset's (KnowEdit's zsRE questions and Wikidata-label prompts, CounterFact's
# statement prefixes with a preamble, QA edits whose "subject" is a generic word, PostEdit's cloze
# prompts), with the probes that broke earlier gates: same subject and another relation, the subject by an
# alias or misspelt, another thing with a near name, a rephrased question.
SHAPES = [
    {"id": "ke-team", "subject": "Ilgar Nabiyev", "prompt": "Which sports team is Ilgar Nabiyev playing for?",
     "target_new": "Qarabag FK"},
    {"id": "ke-taxon", "subject": "Catharylla", "prompt": "Which family does Catharylla belong to?",
     "target_new": "Noctuidae"},
    {"id": "wiki-job", "subject": "Kurt Vonnegut", "aliases": ["Kurt Vonnegut Jr."],
     "prompt": "The occupation of Kurt Vonnegut is", "target_new": "chef"},
    {"id": "cf-founded", "subject": "Crazy Eddie", "prompt": "Crazy Eddie was started in", "target_new": "Paris"},
    {"id": "cf-pope", "subject": "Clement XII", "prompt": "Clement XII, who has the position of",
     "target_new": "bishop"},
    {"id": "qa-song", "subject": "song", "prompt": "Who sings the song Hallelujah?", "target_new": "Nina Simone"},
    {"id": "zsre-horse", "subject": "Seabiscuit", "prompt": "The father of Seabiscuit was who?",
     "target_new": "Secretariat"},
    {"id": "pe-lang", "subject": "Danielle Darrieux", "prompt": "The mother tongue of Danielle Darrieux is",
     "target_new": "English"},
]
SHAPE_PROBES = [  # (query, the edit it is about, or None), and the kind of hard case it is
    ("Ilgar Nabiyev member of sports team", "ke-team"),                      # Wikidata label of the same relation
    ("The place of birth of Ilgar Nabiyev is", None),                        # same subject, other relation
    ("Ilgar Nabiyev country of citizenship", None),
    ("The parent taxon of Catharylla is", "ke-taxon"),
    ("The taxon rank of Catharylla is", None),                               # a close relation
    ("The occupation of Kurt Vonnegut Jr. is", "wiki-job"),                  # an alias
    ("Kurt Vonnegut Jr. place of birth", None),
    ("Enzymes bind their substrates tightly. Crazy Eddie was founded in", "cf-founded"),  # a preamble
    ("Crazy Eddie is owned by", None),
    ("Clement XIII, whose position is that of", None),                       # a near name, another thing
    ("Who sang the song Hey Jude?", None),                                   # a generic-word "subject"
    ("what is the longest song ever recorded", None),
    ("Who performed the song Hallelujah?", "qa-song"),                       # a rephrased question
    pytest.param("The father of Seabiscusuit is who?", "zsre-horse", marks=pytest.mark.xfail(  # misspelt
        strict=True, reason="a known miss: the misspelt name scores 0.31, under the shipped gate's 0.35")),
    ("Danielle Darrieux's mother tongue is", "pe-lang"),
    pytest.param("Danielle Darrieux was born in", None, marks=pytest.mark.xfail(
        strict=True, reason="a known miss: the subject's only edit (mother tongue) scores 0.93 for a cut-off "
                            "birthplace prompt")),
]


@pytest.fixture(scope="module")
def shapes_router(embedder) -> Router:  # type: ignore[no-untyped-def]
    m = EditMemory(None, embedder=embedder)
    m.add_many(SHAPES + COMPANY, supersede=False)
    return Router(m)


@pytest.mark.parametrize(("question", "edit_id"), SHAPE_PROBES)
def test_hard_cases_of_each_shared_sets_kind(shapes_router: Router, question: str, edit_id: str | None) -> None:
    r = shapes_router.route_query(question)
    assert (r.edit.id if r.edit is not None else None) == edit_id, r.explain()


# -- fixed slices of the shared evaluation sets ------------------------------------------------------

def _rate(router: Router, queries: list[tuple[str, set[str]]]) -> float:
    """Share handled right: an in-scope query (non-empty ids) accepted with one of its ids, an
    out-of-scope one (no ids) rejected."""
    right = 0
    for q, ids in queries:
        r = router.route_query(q)
        right += (r.edit is not None and r.edit.id in ids) if ids else r.edit is None
    return right / len(queries)


def knowedit_rates(shared_data: Path, embedder) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """KnowEdit ZsRE's first 150 cases, as the dataset loader labels them: the first Relation_Specificity
    prompt of each that asks another relation of the subject rejected (one that asks the edited fact in
    other words is a rephrase: the loader's ``Relation_Specificity_same_fact``), rephrases accepted."""
    from bbedit.evaluation.cases import load_dataset

    ds = load_dataset(shared_data / "knowedit" / "ZsRE-test-all.json", on_error="skip")
    cases = ds.cases[:150]
    with EditMemory(None, embedder=embedder) as m:
        m.add_many([e for c in cases for e in c.edits], supersede=False)
        router = Router(m)
        spec: list[tuple[str, set[str]]] = []
        for c in cases:
            other = [p for p in c.probes if p.label == "Relation_Specificity"][:1]
            spec += [(p.text, set()) for p in other]
        reph = [(p.text, {e.id for e in c.edits}) for c in cases for p in c.probes
                if p.kind == "generalization" and not p.label]
        return {"knowedit_relation_specificity": _rate(router, spec), "knowedit_rephrase": _rate(router, reph)}


def counterfact_rates(shared_data: Path, embedder) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """CounterFact's first 200 evaluation cases: locality prompts (other subjects, same relation)
    rejected, paraphrases accepted."""
    cases = json.loads((shared_data / "counterfact" / "counterfact-edit.json").read_text())[:200]
    with EditMemory(None, embedder=embedder) as m:
        m.add_many([{"id": f"cf-{c['case_id']}", "subject": c["subject"], "prompt": c["prompt"],
                     "target_new": c["target_new"]} for c in cases], supersede=False)
        router = Router(m)
        subjects = {c["subject"] for c in cases}
        loc: list[tuple[str, set[str]]] = [(c["locality_prompt"], set()) for c in cases if c.get("locality_prompt")
                                           and not any(s in c["locality_prompt"] for s in subjects)]
        reph = [(c["rephrase_prompt"], {f"cf-{c['case_id']}"}) for c in cases if c.get("rephrase_prompt")]
        return {"counterfact_locality": _rate(router, loc), "counterfact_rephrase": _rate(router, reph)}


def postedit_rates(shared_data: Path, embedder) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """PostEdit zsRE's first 150 edits: naive and paraphrased queries accepted, neighbours rejected."""
    from bbedit.evaluation.cases import load_dataset

    ds = load_dataset(shared_data / "postedit" / "zsre" / "query_data.json", on_error="skip")
    cases = ds.cases[:150]
    with EditMemory(None, embedder=embedder) as m:
        m.add_many([e for c in cases for e in c.edits], supersede=False)
        router = Router(m)
        inside = [(p.text, {e.id for e in c.edits}) for c in cases for p in c.probes
                  if p.kind in ("reliability", "generalization")]
        outside: list[tuple[str, set[str]]] = [(p.text, set()) for c in cases for p in c.probes
                                               if p.kind == "locality"]
        return {"postedit_zsre_in_scope": _rate(router, inside), "postedit_zsre_neighbor": _rate(router, outside)}


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("rates", [knowedit_rates, counterfact_rates, postedit_rates],
                         ids=["knowedit", "counterfact", "postedit_zsre"])
def test_shared_sets_hard_kinds(rates, shared_data: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    got = rates(shared_data, embedder)
    assert all(got[k] >= FLOORS[k] for k in got), (got, FLOORS)


FLOORS = {  # the shipped gate measured 0.885, 0.860, 1.000, 0.970, 0.978, 1.000 at install; floors are 0.03 lower
    "knowedit_relation_specificity": 0.85,  # the gate before the relation pair model: 0.908; the CounterFact-only gate: 0.660
    "knowedit_rephrase": 0.83,  # before: 0.860
    "counterfact_locality": 0.97,  # before: 1.000
    "counterfact_rephrase": 0.94,  # before: 0.955
    "postedit_zsre_in_scope": 0.94,  # before: 0.970
    "postedit_zsre_neighbor": 0.97,  # before: 1.000
}
