"""``bbedit gate eval``: a dataset's probes through the gate and the cosine baseline, per probe kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bbedit.cli import main
from bbedit.errors import EditFileError
from bbedit.evaluation.gate_eval import read_questions

QA = [{"id": 7, "source": "NQ", "prompt": "Who is the CEO of Veltrix Dynamics?", "target": "Ada Moreau",
       "subject": "Veltrix Dynamics", "rephrase": "Who runs Veltrix Dynamics as chief executive?",
       "locality": [{"loc": "How many moons does Mars have?", "loc_ans": "2"}]},
      # the same id in another part of the file (QAEdit repeats ids across NQ / TriviaQA / SimpleQA)
      {"id": 7, "source": "TriviaQA", "prompt": "Which city hosts the Orbit Labs headquarters?", "target": "Lima",
       "subject": "Orbit Labs", "rephrase": "Where is Orbit Labs headquartered?",
       "locality": [{"loc": "What is the boiling point of water in Celsius?", "loc_ans": "100"}]}]


def test_gate_eval_scores_every_case_and_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "qa.json"
    data.write_text(json.dumps(QA))
    nq = tmp_path / "nq.jsonl"
    nq.write_text("\n".join(json.dumps({"question": q}) for q in ["who wrote the song yesterday", "what is a song"]))
    assert main(["gate", "eval", str(data), "--nq", str(nq), "--out", str(tmp_path / "out")]) == 0
    res = json.loads((tmp_path / "out" / "qa" / "results.json").read_text())
    h = res["headline"]
    assert h["edits_in_memory"] == 2 and h["probes"] == 6  # neither edit dropped for its repeated id
    for name in ("gate", "cosine"):
        kinds = res["gates"][name]["per_kind"]
        assert set(kinds) == {"reliability", "generalization", "locality"}
        assert kinds["reliability"]["handled_right"] == 1.0  # an edit's own prompt reaches it
        assert kinds["locality"]["false_trigger"] == 0.0
        assert 0.0 <= h[f"{name}_nq_false_trigger_rate"] <= 1.0
    assert h["gate_recall"] >= 0.5 and h["gate_precision"] == 1.0
    assert "cosine" in capsys.readouterr().out  # the report, with the baseline beside the gate


def test_questions_files_in_every_form_and_bad_ones(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("who is it?\n\n what is it? \n")
    (tmp_path / "b.json").write_text(json.dumps(["q1", {"question": "q2"}]))
    assert read_questions(tmp_path / "a.txt") == ["who is it?", "what is it?"]
    assert read_questions(tmp_path / "b.json") == ["q1", "q2"]
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(EditFileError, match="a question must be"):
        read_questions(tmp_path / "c.json")
    (tmp_path / "d.txt").write_text("\n")
    with pytest.raises(EditFileError, match="no questions"):
        read_questions(tmp_path / "d.txt")
    with pytest.raises(EditFileError, match="cannot read"):
        read_questions(tmp_path / "missing.txt")


def test_the_threshold_curve_is_computed_from_the_routing_decisions(tmp_path: Path) -> None:
    data = tmp_path / "qa.json"
    data.write_text(json.dumps(QA))
    assert main(["gate", "eval", str(data), "--out", str(tmp_path / "out")]) == 0
    res = json.loads((tmp_path / "out" / "qa" / "results.json").read_text())
    for name in ("gate", "cosine"):
        c = res["gates"][name]["curve"]
        recalls = [p["recall"] for p in c]
        assert recalls == sorted(recalls, reverse=True)  # a higher threshold never accepts more
        at = min(c, key=lambda p: abs(p["threshold"] - res["gates"][name]["threshold"]))
        if abs(at["threshold"] - res["gates"][name]["threshold"]) < 1e-9:
            assert at["recall"] == res["headline"][f"{name}_recall"]
    assert "against the threshold" in (tmp_path / "out" / "qa" / "report.md").read_text()


def test_a_fact_stored_twice_is_right_either_way_and_same_subject_mixups_are_counted(tmp_path: Path) -> None:
    # two records of one fact (zsRE repeats facts under several records); a question about the other
    # relation of that subject has its own edit, and applying the CEO edit to it is counted apart
    cf = [{"case_id": 1, "prompt": "The CEO of Veltrix Dynamics is", "subject": "Veltrix Dynamics",
           "target_new": "Ada Moreau", "ground_truth": "Elena Veltrix",
           "rephrase_prompt": "Veltrix Dynamics is led by its chief executive,",
           "locality_prompt": "The CEO of Orbit Labs is", "locality_ground_truth": "Sam Ito"},
          {"case_id": 2, "prompt": "The CEO of Veltrix Dynamics is", "subject": "Veltrix Dynamics",
           "target_new": "Ada Moreau", "ground_truth": "Elena Veltrix",
           "rephrase_prompt": "The chief executive officer of Veltrix Dynamics is",
           "locality_prompt": "The CEO of Nimbus Hub is", "locality_ground_truth": "Raj Patel"}]
    data = tmp_path / "cf.json"
    data.write_text(json.dumps(cf))
    assert main(["gate", "eval", str(data), "--out", str(tmp_path / "out")]) == 0
    res = json.loads((tmp_path / "out" / "cf" / "results.json").read_text())
    gate = res["gates"]["gate"]
    # each prompt reaches one of the two records: right for both cases, never a false positive
    assert gate["per_kind"]["reliability"]["handled_right"] == 1.0
    assert gate["per_kind"]["reliability"]["other_edit_same_subject"] == 0.0
    assert gate["precision"] == 1.0
    assert "other_edit_same_subject" in (tmp_path / "out" / "cf" / "report.md").read_text()


def test_applying_another_edit_of_the_same_subject_is_a_false_positive_counted_apart() -> None:
    from bbedit.evaluation.gate_eval import _score
    from bbedit.routing import Route
    from bbedit.scope.train import LabelledQuery
    from bbedit.types import Edit, GateDecision

    ceo = Edit(subject="Veltrix", prompt="The CEO of Veltrix is", target_new="Ada", id="ceo")
    cto = Edit(subject="Veltrix", prompt="The CTO of Veltrix is", target_new="Lena", id="cto")
    hq = Edit(subject="Orbit Labs", prompt="Orbit Labs is based in", target_new="Lima", id="hq")
    probes = [LabelledQuery("Who runs Veltrix?", frozenset({"ceo"}), "generalization", 0),
              LabelledQuery("Who heads Veltrix?", frozenset({"ceo"}), "generalization", 0),
              LabelledQuery("Where is Veltrix based?", frozenset({"ceo"}), "generalization", 0)]
    routes = [Route("q", GateDecision(cto, 0.9, ((cto, 0.9), (ceo, 0.8)))),
              Route("q", GateDecision(ceo, 0.9, ((ceo, 0.9),))),
              Route("q", GateDecision(hq, 0.7, ((hq, 0.7),)))]
    res = _score(routes, probes, {"ceo": "veltrix", "cto": "veltrix", "hq": "orbit labs"})
    row = res["per_kind"]["generalization"]
    assert row["handled_right"] == 1 / 3 and row["other_edit_same_subject"] == 1 / 3
    assert res["precision"] == 1 / 3 and res["recall"] == 1 / 3
