import json
from pathlib import Path

import pytest

from bbedit.errors import ConfigError, MemoryCorrupt
from bbedit.memory.memory import EditMemory
from bbedit.scope.gate import GATE_FILE, LearnedGate, SimilarityGate, load_gate

EDITS = [
    {"id": "darrieux", "subject": "Danielle Darrieux", "prompt": "The mother tongue of Danielle Darrieux is",
     "target_new": "English", "target_old": "French"},
    {"id": "lyon", "subject": "Lyon", "prompt": "The twin city of Lyon is", "target_new": "Manila"},
    {"id": "acme", "subject": "Acme Corporation", "aliases": ["Acme Corp"], "prompt": "Who is the CEO of Acme Corporation?",
     "target_new": "Maria Okafor"},
    {"id": "abraham", "subject": "Abraham", "prompt": "Abraham was born in the city of", "target_new": "Babylon"},
]


@pytest.fixture
def filled(memory: EditMemory) -> EditMemory:
    memory.add_many(EDITS)
    return memory


@pytest.mark.parametrize(("query", "expected"), [
    ("The mother tongue of Danielle Darrieux is", "darrieux"),
    ("Danielle Darrieux is a native speaker of", "darrieux"),
    ("What language did Danielle Darrieux grow up speaking?", "darrieux"),
    ("Who is the CEO of Acme Corp?", "acme"),
    ("Which city is the twin city of Lyon?", "lyon"),
    # same relation, other subject
    ("The mother tongue of Michel Rocard is", None),
    ("The twin city of Trieste is", None),
    # a subject's name inside a longer name
    pytest.param("Abraham Lincoln was born in the city of", None, marks=pytest.mark.xfail(
        strict=True, reason="a known miss: the shipped gate scores the one-word subject 'Abraham' 0.71 here, "
                            "over its 0.35, although the name runs on")),
    # nothing to do with any edit
    ("when was the last time anyone was on the moon", None),
    ("Write a haiku about autumn.", None),
])
def test_gate_routes_queries(filled: EditMemory, query: str, expected: str | None) -> None:
    d = load_gate(filled).decide(query)
    assert (d.edit.id if d.edit else None) == expected, d


def test_gate_rejects_same_subject_other_relation(filled: EditMemory) -> None:
    gate = load_gate(filled)
    for q in ("In which year did Lyon host the Olympic Games?", "What is the population of Lyon?",
              "Lyon is located in the country of", "Danielle Darrieux worked as"):
        assert gate.decide(q).edit is None, q


def test_two_prompts_that_name_different_wikidata_labels_ask_different_things(memory: EditMemory) -> None:
    """KnowEdit's form for Wikidata facts names the property: "The place of birth of X is" is never about
    the edit "The sex or gender of X is" (the model alone accepted 3 to 14% of such pairs on training
    subjects), while the same property in either label form, or by another of its names, still is."""
    from bbedit.routing import Router
    from bbedit.scope.pair_templates import labels_differ

    names = ("Leo Arons",)
    assert labels_differ("The place of birth of Leo Arons is", "The name of the sex or gender of Leo Arons is",
                         names) == ("place of birth", "sex or gender")
    assert labels_differ("Leo Arons place of birth", "The place of birth of Leo Arons is", names) is None
    assert labels_differ("The mother tongue of Leo Arons is", "The native language of Leo Arons is", names) is None
    assert labels_differ("The language of Leo Arons is", "The official language of Leo Arons is", names) is None
    assert labels_differ("Where was Leo Arons born?", "The sex or gender of Leo Arons is", names) is None  # a question
    memory.add_many([
        {"id": "gender", "subject": "Leo Arons", "prompt": "The name of the sex or gender of Leo Arons is",
         "target_new": "female"},
        {"id": "unit", "subject": "Honda Pilot", "prompt": "The military branch of Honda Pilot is", "target_new": "Navy"},
    ])
    gate = load_gate(memory)
    for q, expected in (("The sex or gender of Leo Arons is", "gender"), ("Leo Arons sex or gender", "gender"),
                        ("The place of birth of Leo Arons is", None), ("Leo Arons place of birth", None),
                        ("The military branch of Honda Pilot is", "unit"), ("Honda Pilot military rank", None)):
        d = gate.decide(q)
        assert (d.edit.id if d.edit else None) == expected, (q, d)
    why = {c["id"]: c for c in Router(memory, gate).route_query("The place of birth of Leo Arons is").explain()}
    assert why["gender"]["score"] == 0.0 and why["gender"]["labels_differ"] == ["place of birth", "sex or gender"]
    assert "labels_differ" not in why["unit"]
    from bbedit.cli.ask import explain_text

    route = Router(memory, gate).route_query("The place of birth of Leo Arons is")
    text = explain_text({"threshold": route.threshold, "in_scope": route.in_scope, "candidates": route.explain()})
    assert "other property: 'place of birth', not 'sex or gender'" in text


def test_another_holder_of_the_edits_office_is_another_fact(memory: EditMemory) -> None:
    """"Who was the first prime minister of the UK?" is not about the edit of the prime minister of the
    UK (the model alone scored it 0.95: the relation reads the same), nor the former CEO about the CEO;
    the present holder, asked in other words, still is."""
    from bbedit.cli.ask import explain_text
    from bbedit.routing import Router
    from bbedit.scope.pair_templates import roles_differ

    assert roles_differ("Who was the first prime minister of Britain?", "Who is the prime minister of Britain?"
                        ) == ("first prime minister", "prime minister")
    assert roles_differ("Who is the first female prime minister of India?", "Who is the prime minister of India?"
                        ) == ("first prime minister", "prime minister")
    assert roles_differ("Who was the former CEO of Acme?", "Who is the 2nd CEO of Acme?") == ("former ceo", "2nd ceo")
    assert roles_differ("Who is the current prime minister?", "Who is the prime minister?") is None
    assert roles_differ("The original language of X is", "The language of X is") is None  # not an office
    assert roles_differ("Who founded Next Corp?", "Who is the CEO of Next Corp?", ("Next Corp",)) is None
    memory.add_many([
        {"id": "pm", "subject": "United Kingdom", "prompt": "Who is the prime minister of the United Kingdom?",
         "target_new": "Ada Moreau"},
        {"id": "ceo", "subject": "Acme Corp", "prompt": "Who is the CEO of Acme Corp?", "target_new": "Jane Doe"},
    ])
    gate = load_gate(memory)
    for q, expected in (("Who was the first prime minister of the United Kingdom?", None),
                        ("Who was the former CEO of Acme Corp?", None),
                        ("Who is the current prime minister of the United Kingdom?", "pm"),
                        ("Who is Acme Corp's chief executive?", "ceo")):
        d = gate.decide(q)
        assert (d.edit.id if d.edit else None) == expected, (q, d)
    route = Router(memory, gate).route_query("Who was the first prime minister of the United Kingdom?")
    why = {c["id"]: c for c in route.explain()}
    assert why["pm"]["score"] == 0.0 and why["pm"]["roles_differ"] == ["first prime minister", "prime minister"]
    text = explain_text({"threshold": route.threshold, "in_scope": route.in_scope, "candidates": route.explain()})
    assert "other holder: 'first prime minister', not 'prime minister'" in text


def test_similarity_baseline_cannot_tell_neighbours(filled: EditMemory) -> None:
    """The plain cosine gate accepts a different subject's fact: why bbedit does not use it."""
    d = SimilarityGate(filled, threshold=0.5).decide("The mother tongue of Michel Rocard is")
    assert d.edit is not None and d.edit.id == "darrieux"


def test_calibrate_save_load(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    with EditMemory(tmp_path / "m", embedder=embedder) as m:
        m.add_many(EDITS)
        gate = LearnedGate(m)
        res = gate.calibrate(["Danielle Darrieux is a native speaker of", "Who is the CEO of Acme Corp?",
                              "The twin city of Trieste is", "Write a haiku"],
                             ["darrieux", "acme", None, None], target_precision=1.0)
        assert res["precision"] == 1.0 and res["recall"] == 1.0
        gate.save()
        loaded = load_gate(m)
        assert isinstance(loaded, LearnedGate) and loaded.threshold == pytest.approx(gate.threshold)
        with pytest.raises(ConfigError):
            gate.calibrate(["a"], [None])
        (tmp_path / "m" / GATE_FILE).write_text("{not json")
        with pytest.raises(MemoryCorrupt, match="gate calibration"):
            load_gate(m)
        (tmp_path / "m" / GATE_FILE).write_text(json.dumps({"kind": "similarity", "threshold": 0.7}))
        assert isinstance(load_gate(m), SimilarityGate)


@pytest.mark.slow
@pytest.mark.data
def test_gate_on_real_counterfact_cases(shared_data: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """A regression guard on 600 real CounterFact cases (the full benchmark is eval/scope.py)."""
    from bbedit.evaluation.scope_bench import judge, metrics
    from bbedit.scope.train import labelled_queries
    from bbedit.types import Edit

    cases = json.loads((shared_data / "counterfact" / "counterfact-edit.json").read_text())[:600]
    with EditMemory(None, embedder=embedder) as m:
        edits = [Edit(subject=c["subject"], prompt=c["prompt"], target_new=c["target_new"], id=f"cf-{c['case_id']}")
                 for c in cases]
        m.add_many(edits, supersede=False)
        queries = labelled_queries(cases, [e.id for e in edits], synthetic=0.0)
        gate = load_gate(m)
        res = metrics(judge(gate, m, queries), queries, gate.threshold)
    # the multi-relation gate measured 0.999 / 0.902 here (the CounterFact-only gate before it >= 0.95
    # recall): rejecting same-subject, other-relation queries costs CounterFact rephrases some recall
    assert res["precision"] >= 0.98 and res["recall"] >= 0.88, res


def test_a_scorer_trained_before_a_feature_was_added_reads_its_own_columns() -> None:
    """A saved learned gate (``gate.json`` with its model) keeps working when bbedit computes more
    features than it was trained on; one that needs a feature no longer computed is refused clearly."""
    import numpy as np

    from bbedit.scope.features import FEATURES
    from bbedit.scope.model import PairScorer

    rng = np.random.default_rng(0)
    x = rng.random((200, len(FEATURES))).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.float32)
    old = list(FEATURES[:-1])
    small = PairScorer.fit(old, x[:, :-1], y, epochs=30)
    again = PairScorer.from_dict(small.to_dict(), FEATURES)
    assert np.allclose(again.score(x), small.score(x[:, :-1]), atol=1e-6)
    with pytest.raises(ConfigError, match="no_such_feature"):
        PairScorer.from_dict({**small.to_dict(), "features": [*old, "no_such_feature"]}, FEATURES)


def test_relation_pair_model_tells_unseen_relations_apart_and_round_trips() -> None:
    """The pair model learns "same relation" from the two subject-free embeddings in a way that carries
    over to relations it never saw (new relation vectors), and a saved scorer gives the same values."""
    import numpy as np

    from bbedit.scope.features import FEATURES
    from bbedit.scope.model import PairScorer

    rng = np.random.default_rng(0)

    def sample(n_rel: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rel = rng.normal(size=(n_rel, 16))
        a = rng.integers(0, n_rel, n)
        same = rng.random(n) < 0.5
        b = np.where(same, a, (a + rng.integers(1, n_rel, n)) % n_rel)
        q = rel[a] + 0.3 * rng.normal(size=(n, 16))
        e = rel[b] + 0.3 * rng.normal(size=(n, 16))
        unit = lambda v: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
        return unit(q), unit(e), (a == b).astype(np.float32)

    q, e, y = sample(40, 6000)
    mlp = PairScorer.fit_relation_pair(q, e, y, hidden=(32, 8), epochs=6, batch=256)
    scorer = PairScorer(FEATURES, np.zeros(1), np.ones(1), np.zeros((1, 1)), np.zeros(1), np.zeros(1), 0.0,
                        relation_mlp=mlp)
    q2, e2, y2 = sample(40, 2000)  # 40 relations it never saw
    p = scorer.relation_pair(q2, e2)
    assert p.shape == (2000,) and ((p >= 0) & (p <= 1)).all()
    assert p[y2 == 1].mean() > p[y2 == 0].mean() + 0.5
    again = PairScorer.from_dict(scorer.to_dict(), FEATURES)
    assert np.allclose(again.relation_pair(q2, e2), p, atol=1e-4)
    assert PairScorer.from_dict({**scorer.to_dict(), "relation_mlp": None}, FEATURES).pair_model is None
    broken = scorer.to_dict()
    del broken["relation_mlp"]["w3"]
    with pytest.raises(ConfigError, match="w3"):
        PairScorer.from_dict(broken, FEATURES)


def test_auc_matches_the_pairwise_count() -> None:
    import numpy as np

    from bbedit.scope.train_pairs import _auc

    rng = np.random.default_rng(1)
    s = rng.integers(0, 5, 300).astype(float)  # many ties
    y = (rng.random(300) < 0.4).astype(float)
    pos, neg = s[y == 1], s[y == 0]
    pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    assert _auc(s, y) == pytest.approx(pairwise)
    assert _auc(s, np.ones(300)) == 0.5


def test_the_pair_model_fills_its_feature_for_every_candidate(filled: EditMemory) -> None:
    import numpy as np

    from bbedit.scope.features import PAIR, candidates

    r = filled.retrieve("Who is the CEO of Acme Corp?", 5)
    calls = []

    def pair(q: np.ndarray, e: np.ndarray) -> np.ndarray:
        calls.append(len(q))
        return np.linspace(0.1, 0.9, len(q)).astype(np.float32)

    with_model = candidates(filled, r, relation_pair=pair)
    without = candidates(filled, r)
    assert calls == [len(with_model)] and len(with_model) >= 2
    assert [c.features[PAIR] for c in with_model] == pytest.approx(list(np.linspace(0.1, 0.9, len(with_model))))
    assert all(c.features[PAIR] == 0.0 for c in without)
