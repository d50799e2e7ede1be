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
