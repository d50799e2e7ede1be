"""The scope-pair generator, the cross-encoder gate's save/load, and the trained model on hard cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bbedit.errors import MemoryCorrupt
from bbedit.memory.memory import EditMemory
from bbedit.scope.gate import GATE_FILE, CrossEncoderGate, load_gate
from bbedit.scope.pairs import NEGATIVE_KINDS, POSITIVE_KINDS, eval_keys, generate, norm

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "scope-cross"


def _write(path: Path, obj: object, jsonl: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if jsonl:
        path.write_text("".join(json.dumps(x) + "\n" for x in obj))  # type: ignore[attr-defined]
    else:
        path.write_text(json.dumps(obj))


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """A miniature ../shared/data: every training file, and one evaluation file sharing a subject."""
    d = tmp_path / "data"
    cf = [{"case_id": i, "subject": s, "prompt": f"{s} was born in", "target_new": "Rome", "ground_truth": "Oslo",
           "rephrase_prompt": f"Some text. {s} is originally from", "locality_prompt": f"{o} was born in",
           "locality_ground_truth": "Oslo"}
          for i, (s, o) in enumerate([("Toko Yasuda", "John Lennon"), ("Marta Quorell", "Ed Brim"),
                                      ("Jonas Velder", "Ana Lum")])]
    cf.append({"case_id": 9, "subject": "Leaked Person", "prompt": "Leaked Person was born in", "target_new": "X",
               "ground_truth": "Y", "rephrase_prompt": "Leaked Person is originally from",
               "locality_prompt": "Ana Lum was born in", "locality_ground_truth": "Y"})
    _write(d / "counterfact" / "counterfact-train.json", cf)
    _write(d / "counterfact" / "counterfact-edit.json",
           [{"case_id": 100, "subject": "Leaked Person", "prompt": "Leaked Person works as", "target_new": "a",
             "ground_truth": "b", "rephrase_prompt": "x", "locality_prompt": "y"}])
    _write(d / "zsre" / "zsre_mend_train-1k.json",
           [{"subject": "UniFirst", "src": "What is the product made by UniFirst?", "rephrase": "What does UniFirst make?",
             "alt": "drones", "loc": "nq question: who sang the song hey jude", "loc_ans": "x"},
            {"subject": "Gorvex", "src": "What is the product made by Gorvex?", "rephrase": "What does Gorvex make?",
             "alt": "tea", "loc": "nq question: who wrote the song yesterday", "loc_ans": "x"}])
    (d / "zsre" / "zsre_mend_train_en_10000.txt").write_text(
        "What is the product made by Kestrel Foods?\ttea\nWhich song made the i list?\tx\n")
    _write(d / "pararel" / "graphs_json" / "P19.jsonl",
           [{"pattern": "[X] was born in [Y].", "lemma": "born"}, {"pattern": "[X] is originally from [Y].",
                                                                  "lemma": "from"}], jsonl=True)
    _write(d / "pararel" / "graphs_json" / "P20.jsonl", [{"pattern": "[X] died in [Y].", "lemma": "die"}], jsonl=True)
    _write(d / "popqa" / "popqa_test.json", [{"question": "What is George Rankin's occupation?", "answer": "politician",
                                              "aliases": []},
                                             {"question": "Who was the director of Mud?", "answer": "x", "aliases": []}])
    _write(d / "popqa" / "popqa_longtail.jsonl", [{"question": "In what city was Kensho Ono born?", "answers": ["x"],
                                                   "prop": "place of birth"}], jsonl=True)
    _write(d / "popqa" / "popqa_neuropath_1000.json",
           [{"subj": "George Rankin", "prop": "occupation", "s_aliases": "[\"George James Rankin\"]",
             "question": "What is George Rankin's occupation?"}])
    return d


def test_pairs_remove_evaluation_overlap(tiny_data: Path) -> None:
    ps = generate(tiny_data, n_generic_subject=10)
    subjects, _ = eval_keys(tiny_data)
    assert "leaked person" in subjects
    assert ps.stats["facts_removed_eval_subject"].get("counterfact") == 1
    assert ps.stats["facts_removed_total"] >= 1
    assert not any(norm(p.subject) == "leaked person" for p in ps.pairs)
    assert not any("leaked person" in norm(p.query) or "leaked person" in norm(p.prompt) for p in ps.pairs)
    assert {p.split for p in ps.pairs} <= {"train", "dev"}


def test_pairs_label_hard_cases(tiny_data: Path) -> None:
    ps = generate(tiny_data, n_generic_subject=20)
    for p in ps.pairs:
        assert p.label == (1 if p.kind in POSITIVE_KINDS else 0), p
        assert p.kind in POSITIVE_KINDS + NEGATIVE_KINDS
    # same subject, other relation -> negative (died in vs born in)
    other = [p for p in ps.pairs if p.kind in ("other_relation", "close_relation") and p.subject == "Toko Yasuda"]
    assert other and all(p.label == 0 and "Toko Yasuda" in p.query for p in other)
    # an alias of the subject, same relation -> positive
    alias = [p for p in ps.pairs if p.kind == "alias"]
    assert alias and all(p.label == 1 for p in alias)
    assert any("George James Rankin" in p.query for p in alias)
    # a generic one-word "subject" ("song"): another question with that word -> negative
    generic = [p for p in ps.pairs if p.kind == "generic_subject"]
    assert generic and all(p.label == 0 and p.query != p.prompt for p in generic)
    # lowercase queries are about as common among positives as among same-subject negatives, so
    # that case is no cue for being in scope
    def lower_share(pairs: list) -> float:  # type: ignore[type-arg]
        return sum(p.query == p.query.lower() for p in pairs) / len(pairs)

    same_subject = [p for p in ps.pairs if p.kind in ("close_relation", "other_relation", "named_question",
                                                       "similar_subject", "other_subject")]
    pos_share = lower_share([p for p in ps.pairs if p.label == 1])
    assert 0.5 * pos_share <= lower_share(same_subject) <= 2 * pos_share
    # a split by subject: no subject is in both splits
    by_split: dict[str, set[str]] = {"train": set(), "dev": set()}
    for p in ps.pairs:
        by_split[p.split].add(norm(p.subject))
    assert not by_split["train"] & by_split["dev"]


def test_cross_gate_saves_and_loads(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "training.json").write_text(json.dumps({"threshold": 0.42}))
    mem = EditMemory(None)
    gate = CrossEncoderGate(mem, model=model, max_candidates=6)
    assert gate.threshold == pytest.approx(0.42)
    gate.set_threshold(0.5)
    gate.save(tmp_path / "mem")
    loaded = load_gate(mem, tmp_path / "mem")
    assert isinstance(loaded, CrossEncoderGate)
    assert loaded.threshold == pytest.approx(0.5) and loaded.max_candidates == 6
    assert loaded.model_dir == model
    d = json.loads((tmp_path / "mem" / GATE_FILE).read_text())
    d["model"] = str(tmp_path / "nowhere")
    del d["threshold"]
    (tmp_path / "mem" / GATE_FILE).write_text(json.dumps(d))
    with pytest.raises(MemoryCorrupt):
        load_gate(mem, tmp_path / "mem")


def test_import_scope_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, bbedit.scope, bbedit.scope.gate; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- the trained model -----------------------------------------------------------------------------

HARD = [
    # (query, edit prompt, subject, aliases, in scope?)
    ("Who is the CTO of Veltrix Dynamics?", "The CEO of Veltrix Dynamics is", "Veltrix Dynamics", (), False),
    ("Who runs Veltrix Dynamics?", "Who is the CEO of Veltrix Dynamics?", "Veltrix Dynamics", (), True),
    ("Who is the CEO of Veltrix?", "The CEO of Veltrix Dynamics is", "Veltrix Dynamics", ("Veltrix",), True),
    ("How many employees does Veltrix Dynamics have?", "The CEO of Veltrix Dynamics is", "Veltrix Dynamics", (), False),
    ("Where did Toko Yasuda die?", "Toko Yasuda was born in", "Toko Yasuda", (), False),
    ("Where was Toko Yasuda born?", "Toko Yasuda was born in", "Toko Yasuda", (), True),
    ("Who starred in Mud?", "Who was the director of Mud?", "Mud", (), False),
    ("who sang the song hey jude", "who wrote the song yesterday", "song", (), False),
]


@pytest.mark.slow
def test_trained_gate_on_hard_cases() -> None:
    if not (MODEL_DIR / "head.safetensors").exists():
        pytest.skip("models/scope-cross is not trained")
    from bbedit.scope.cross import CrossScorer, edit_text

    scorer = CrossScorer.load(MODEL_DIR)
    t = float(scorer.meta["threshold"])
    p = scorer.score([h[0] for h in HARD], [edit_text(h[1], h[2], h[3]) for h in HARD])
    right = [(s >= t) == h[4] for s, h in zip(p, HARD, strict=True)]
    assert sum(right) >= len(HARD) - 1, list(zip([h[0] for h in HARD], p.tolist(), strict=True))


@pytest.mark.slow
def test_trained_gate_on_training_derived_dev_pairs(shared_data: Path) -> None:
    if not (MODEL_DIR / "head.safetensors").exists():
        pytest.skip("models/scope-cross is not trained")
    from bbedit.scope.cross import CrossScorer, edit_text

    ps = generate(shared_data)
    dev = ps.split("dev")
    picked = []
    for kind in ("paraphrase", "alias", "close_relation", "other_relation", "similar_subject", "generic_subject"):
        picked += [p for p in dev if p.kind == kind][:25]
    scorer = CrossScorer.load(MODEL_DIR)
    t = float(scorer.meta["threshold"])
    s = scorer.score([p.query for p in picked], [edit_text(p.prompt, p.subject, p.aliases) for p in picked])
    acc = sum((x >= t) == bool(p.label) for x, p in zip(s, picked, strict=True)) / len(picked)
    assert acc >= 0.85


@pytest.mark.slow
def test_train_from_pairs_fits_a_gate_that_loads(tiny_data: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """The multi-relation trainer on a miniature data folder: a model JSON the gate loads, a
    threshold chosen on dev subjects only, and a relation projection that tells same from other relation."""
    from bbedit.errors import ConfigError
    from bbedit.scope.features import FEATURES
    from bbedit.scope.gate import LearnedGate
    from bbedit.scope.model import PairScorer
    from bbedit.scope.train_pairs import THRESHOLDS, train_from_pairs

    out = tmp_path / "gate_model.json"
    s = train_from_pairs(tiny_data, out, n_train=1000, n_dev=1000, embedder=embedder, epochs=60, dev_fraction=0.5)
    d = json.loads(out.read_text())
    assert d["recommended_threshold"] == s["threshold"] and s["threshold"] in THRESHOLDS
    scorer = PairScorer.from_dict(d, FEATURES)
    assert scorer.relation_proj is not None
    assert s["train_pairs"] > 0 and s["dev_pairs"] > 0
    assert s["data"]["facts_removed_total"] >= 1, "the fact sharing a subject with the evaluation file is removed"
    assert {c["threshold"] for c in s["curve"]} == set(THRESHOLDS)
    with EditMemory(None, embedder=embedder) as m:
        assert LearnedGate(m, scorer, s["threshold"]).threshold == s["threshold"]
    with pytest.raises(ConfigError, match="dev pairs"):
        train_from_pairs(tiny_data, None, n_train=1000, n_dev=0, embedder=embedder, epochs=5)


def test_named_questions_name_the_subject_and_ask_something_else() -> None:
    """Generic questions become "same subject, other question" negatives only when they name the
    whole subject (a leading "the" optional) and share no content word with the edit's prompt."""
    import random

    from bbedit.scope.pairs import _Generator

    generic = ["what was the economic system of the soviet union", "where is the soviet union located",
               "who wrote the union song", "when did the union jack change"]
    g = _Generator([], {}, generic, random.Random(0))
    assert g.named_questions("Soviet Union", "Soviet Union is located in") == [generic[0]]
    assert g.named_questions("The Soviet Union", "The Soviet Union is located in") == [generic[0]]
    assert g.named_questions("Atlantis", "Atlantis is located in") == []


def test_choose_threshold_best_f1_or_a_precision_target() -> None:
    from bbedit.scope.train_pairs import choose_threshold, pr_at

    curve = [{"threshold": 0.2, "precision": 0.6, "recall": 0.99}, {"threshold": 0.5, "precision": 0.9, "recall": 0.9},
             {"threshold": 0.8, "precision": 0.99, "recall": 0.5}]
    assert choose_threshold(curve) == 0.5
    assert choose_threshold(curve, target_precision=0.95) == 0.8
    assert choose_threshold(curve, target_precision=0.999) == 0.8  # unreachable: the strictest one
    import numpy as np

    best = np.array([0.9, 0.7, 0.3, 0.95, -1.0])
    label = np.array([1.0, 0.0, 1.0, -1.0, -2.0])  # right, wrong, right but low, unknown, no candidate
    prec, rec = pr_at(best, label, np.array([True, False, True, True, False]), 0.5)
    assert (prec, rec) == (0.5, 1 / 3)  # the unknown accepted row counts neither way


def test_other_edits_of_the_subject_are_labelled_by_relation(embedder) -> None:  # type: ignore[no-untyped-def]
    """On training rows, "Who runs Veltrix?" is in scope of Veltrix's CEO edit and out of scope of its
    CTO edit; without relations that CTO row's label is unknown (-1)."""
    from bbedit.scope.pairs import Pair
    from bbedit.scope.train_pairs import _fact_key, featurise_pairs
    from bbedit.types import Edit

    pair = Pair("Who runs Veltrix?", "Who is the CEO of Veltrix?", "Veltrix", 1, "paraphrase", "synthetic",
                relation="ceo")
    other = Pair("Who leads Veltrix's engineering?", "Who is the CTO of Veltrix?", "Veltrix", 1, "paraphrase",
                 "synthetic", relation="cto")
    with EditMemory(None, embedder=embedder) as m:
        edits = m.add_many([{"subject": p.subject, "prompt": p.prompt, "target_new": "x"} for p in (pair, other)],
                           supersede=False)
        edit_of: dict[tuple[str, str, tuple[str, ...]], Edit] = {
            _fact_key(p): e for p, e in zip((pair, other), edits, strict=True)}
        relation_of = {edits[0].id: "ceo", edits[1].id: "cto"}
        by_rel = featurise_pairs(m, [pair], edit_of, relation_of=relation_of)
        plain = featurise_pairs(m, [pair], edit_of)
    assert sorted(by_rel.y.tolist()) == [0.0, 1.0]
    assert sorted(plain.y.tolist()) == [-1.0, 1.0]


def test_supersede_threshold_is_the_lowest_with_the_precision() -> None:
    import numpy as np

    from bbedit.scope.train_pairs import SUPERSEDE_GRID, choose_supersede_threshold

    cos = np.array([0.95, 0.9, 0.8, 0.78, 0.6, 0.3])
    same = np.array([True, True, True, False, True, False])
    assert choose_supersede_threshold(cos, same, target_precision=0.98) == 0.79
    assert choose_supersede_threshold(cos, same, target_precision=0.75) == 0.5  # 4 of the 5 from 0.50 up
    assert choose_supersede_threshold(cos, np.zeros(6, bool)) == SUPERSEDE_GRID[-1]
