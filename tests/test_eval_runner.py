"""The suite runner: config validation, the call cache, and whole suites against the real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bbedit.errors import ConfigError
from bbedit.evaluation.calls import CallCache
from bbedit.evaluation.harness import SuiteConfig, list_suites
from tests.conftest import WORK_THREADS
from tests.test_eval_cases import CF_FLAT, MQUAKE, write


def suite_file(tmp_path: Path, **raw: Any) -> Path:
    import yaml

    p = tmp_path / f"{raw.get('suite', 'tiny')}.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_config_validation(tmp_path: Path) -> None:
    ok = {"suite": "s", "dataset": {"path": "x.json"}}
    assert SuiteConfig.from_dict(ok).systems == ["none", "bbedit"]
    for bad, msg in [({"datset": {}}, "unknown key"), ({"task": "train"}, "unknown task"),
                     ({"systems": ["rome"]}, "unknown system"), ({"protocols": ["vibes"]}, "unknown protocol"),
                     ({"n": 0}, "positive integer"), ({"memory": "all"}, "memory must be"),
                     ({"workers": 0}, "workers"), ({"dataset": {}}, "dataset.path")]:
        with pytest.raises(ConfigError, match=msg):
            SuiteConfig.from_dict({**ok, **bad})
    (tmp_path / "broken.yaml").write_text("suite: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        SuiteConfig.load(tmp_path / "broken.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        SuiteConfig.load(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="cannot read suite"):
        SuiteConfig.load(tmp_path / "missing.yaml")
    assert SuiteConfig.load(suite_file(tmp_path, dataset={"path": "x"})).suite == "tiny"  # name from the file


def test_committed_suites_are_valid() -> None:
    folder = Path(__file__).resolve().parents[1] / "eval"
    suites = list_suites(folder)
    names = {SuiteConfig.load(p).suite for p in suites}
    assert {"counterfact", "zsre", "postedit-counterfact", "postedit-zsre", "mquake-hard", "sequential",
            "general"} <= names
    assert (folder / "_embedded.yaml").is_file() and all(not p.name.startswith("_") for p in suites)
    cf = SuiteConfig.load(folder / "counterfact.yaml")
    assert cf.backend == {"kind": "embedded", "n_threads": 2, "n_parallel": 4} and cf.workers == 4
    assert SuiteConfig.load(folder / "general.yaml").generation == {"max_tokens": 32}  # its own key wins


def test_include_merges_the_included_file_under_the_suite(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "_base.yaml").write_text(
        "backend: {kind: openai, base_url: 'http://x', timeout: 5}\ngeneration: {max_tokens: 8, stop: [END]}\n"
        "workers: 2\nsystems: [none, bbedit, always]\n")
    (tmp_path / "shared" / "_more.yaml").write_text("include: _base.yaml\nworkers: 3\noptions: {a: 1}\n")
    p = tmp_path / "suites" / "s.yaml"
    p.parent.mkdir()
    p.write_text("include: ../shared/_more.yaml\ndataset: {path: x.json}\nbackend: {timeout: 60}\n"
                 "generation: {max_tokens: 16}\nsystems: [none]\n")
    cfg = SuiteConfig.load(p)
    assert cfg.suite == "s"  # the including file's name
    assert cfg.backend == {"kind": "openai", "base_url": "http://x", "timeout": 60}  # mappings merge key by key
    assert cfg.generation == {"max_tokens": 16, "stop": ["END"]}
    assert cfg.systems == ["none"] and cfg.workers == 3 and cfg.options == {"a": 1}  # lists are replaced
    p.write_text("include: [../shared/_base.yaml, ../shared/_more.yaml]\ndataset: {path: x.json}\n")
    assert SuiteConfig.load(p).workers == 3  # a list is read in order, later files winning
    assert list_suites(tmp_path / "shared") == []  # shared parts are not suites


def test_include_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("include: b.yaml\ndataset: {path: x}\n")
    (tmp_path / "b.yaml").write_text("include: [a.yaml]\n")
    with pytest.raises(ConfigError, match="include cycle"):
        SuiteConfig.load(tmp_path / "a.yaml")
    (tmp_path / "self.yaml").write_text("include: self.yaml\n")
    with pytest.raises(ConfigError, match="include cycle"):
        SuiteConfig.load(tmp_path / "self.yaml")
    (tmp_path / "_typo.yaml").write_text("wrokers: 2\n")
    (tmp_path / "c.yaml").write_text("include: _typo.yaml\ndataset: {path: x}\n")
    with pytest.raises(ConfigError, match="unknown key"):  # an included file's keys are checked too
        SuiteConfig.load(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("include: missing.yaml\ndataset: {path: x}\n")
    with pytest.raises(ConfigError, match="cannot read suite"):
        SuiteConfig.load(tmp_path / "d.yaml")
    (tmp_path / "e.yaml").write_text("include: {path: b.yaml}\ndataset: {path: x}\n")
    with pytest.raises(ConfigError, match="include must be"):
        SuiteConfig.load(tmp_path / "e.yaml")


def test_task_registry() -> None:
    from bbedit.evaluation.tasks import TASKS, Task, get_task, task_names

    assert task_names() == list(TASKS) and {"editing", "whitebox", "whitebox_sequential"} <= set(TASKS)
    for name in task_names():
        task = get_task(name)
        assert isinstance(task, Task) and task.name == name
    with pytest.raises(ConfigError, match="unknown task"):
        get_task("vibes")
    with pytest.raises(ConfigError, match="unknown task"):
        SuiteConfig.from_dict({"suite": "s", "dataset": {"path": "x"}, "task": "vibes"})


def test_listing_tasks_and_methods_imports_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys\nfrom bbedit.evaluation.harness import SuiteConfig\nfrom bbedit.whitebox.registry import "
            "method_names\nassert method_names()\nSuiteConfig.from_dict({'suite': 's', 'dataset': {'path': 'x'}})\n"
            "print(sorted(m for m in ('torch', 'transformers', 'faiss') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_call_cache_survives_reopening(tmp_path: Path) -> None:
    key = CallCache.key("m", [{"role": "user", "content": "hi"}], {"max_tokens": 4})
    assert key != CallCache.key("m", [{"role": "user", "content": "hi"}], {"max_tokens": 5})
    c = CallCache(tmp_path / "c.sqlite")
    c.put(key, {"text": "hello", "prompt_tokens": 3})
    c.close()
    again = CallCache(tmp_path / "c.sqlite")
    assert again.get(key) == {"text": "hello", "prompt_tokens": 3} and len(again) == 1
    assert again.get("nope") is None


def test_cli_reports_bad_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bbedit.cli import main

    assert main(["eval", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read suite" in capsys.readouterr().err
    p = suite_file(tmp_path, suite="s", dataset={"path": "nowhere.json"}, backend={"kind": "openai",
                                                                                  "base_url": "http://127.0.0.1:9"})
    assert main(["eval", str(p), "--data-root", str(tmp_path), "--out", str(tmp_path / "r"), "--no-cache"]) == 1
    assert "data file not found" in capsys.readouterr().err


# -- whole suites through the real llama.cpp server ---------------------------------------------------

def _server_backend(llama_server: Any) -> dict[str, Any]:
    return {"kind": "openai", "base_url": llama_server.base_url, "model": llama_server.model}


@pytest.mark.slow
def test_editing_suite_runs_and_resumes_from_cache(tmp_path: Path, llama_server: Any) -> None:
    from bbedit.evaluation.runner import run_suite

    recs = [dict(CF_FLAT[0], case_id=0),
            {"case_id": 1, "prompt": "The capital of France is", "target_new": "Rome", "subject": "France",
             "ground_truth": "Paris", "rephrase_prompt": "France's capital city is",
             "locality_prompt": "The capital of Germany is", "locality_ground_truth": "Berlin"}]
    write(tmp_path / "data" / "cf.json", recs)
    p = suite_file(tmp_path, suite="tiny", dataset={"path": "cf.json"}, backend=_server_backend(llama_server),
                   generation={"max_tokens": 24}, workers=2, description="tiny",
                   protocols=["generation", "probability"], probability={"n": 1, "threads": WORK_THREADS})
    kw = {"data_root": tmp_path / "data", "results_root": tmp_path / "res", "cache_dir": tmp_path / "cache"}
    out = run_suite(p, **kw)
    first = json.loads((out / "results.json").read_text())
    h = first["headline"]
    assert h["n_cases"] == 2 and h["n_queries"] == 6 and h["model_calls"] > 0
    for k in ("generation_reliability", "generation_generalization", "generation_locality", "gate_recall",
              "baseline_none_generation_reliability", "wall_s"):
        assert 0 <= h[k] <= (1 if k != "wall_s" else 1e6), k
    assert h["baseline_none_generation_locality"] == 1.0  # the unedited system is its own reference
    assert h["gate_recall"] == 1.0  # both prompts name their subject; two edits in memory
    # teacher forcing ran on the first case only, for both systems, and is reported under its own keys
    assert {"probability_reliability", "probability_generalization", "baseline_none_probability_reliability",
            "probability_reliability_token_acc"} <= set(h)
    assert set(first["results"]["probability"]["bbedit"]) >= {"reliability", "locality"}
    assert (out / "report.md").read_text().startswith("# tiny") and (out / "generation.png").stat().st_size > 0
    assert len(first["records"]) == 6 and first["records"][0]["bbedit_edit"] == "cf-0"
    again = json.loads((run_suite(p, **kw) / "results.json").read_text())["headline"]
    assert again["model_calls"] == 0 and again["model_calls_cached"] == h["model_calls"] + h["model_calls_cached"]
    assert again["generation_reliability"] == h["generation_reliability"]


@pytest.mark.slow
def test_multihop_and_sequential_suites(tmp_path: Path, llama_server: Any) -> None:
    from bbedit.evaluation.runner import run_suite

    write(tmp_path / "data" / "mq.json", MQUAKE)
    recs = [dict(CF_FLAT[0], case_id=i, subject=f"Person {i}", prompt=f"The mother tongue of Person {i} is",
                 rephrase_prompt=f"Person {i} grew up speaking", locality_prompt=f"Somebody {i} speaks")
            for i in range(8)]
    write(tmp_path / "data" / "cf.json", recs)
    kw = {"data_root": tmp_path / "data", "results_root": tmp_path / "res", "cache_dir": None}
    mq = run_suite(suite_file(tmp_path, suite="mq", task="multihop", dataset={"path": "mq.json"},
                              backend=_server_backend(llama_server), generation={"max_tokens": 16}), **kw)
    h = json.loads((mq / "results.json").read_text())["headline"]
    assert h["n_questions"] == 1 and h["full_chain_retrieved"] == 1.0  # Hey Jude -> Madonna -> Australia
    assert (mq / "multihop.png").exists()
    seq = run_suite(suite_file(tmp_path, suite="seq", task="sequential", dataset={"path": "cf.json"},
                               backend=_server_backend(llama_server), generation={"max_tokens": 16},
                               options={"sizes": [1, 4], "probe_edits": 2, "outside": 2, "sample": 4}), **kw)
    res = json.loads((seq / "results.json").read_text())
    assert [r["size"] for r in res["rows"]] == [1, 4]
    assert res["rows"][0]["n_in_scope_probes"] == 2 and res["rows"][1]["n_in_scope_probes"] == 4
    assert (seq / "curve.png").exists()


@pytest.mark.slow
def test_general_suite(tmp_path: Path, llama_server: Any) -> None:
    from bbedit.evaluation.runner import run_suite

    d = tmp_path / "data"
    write(d / "cf.json", [dict(CF_FLAT[0], case_id=0)])
    write(d / "general" / "mmlu.json", [{"question": "What is 2 + 2?", "choices": ["3", "4", "5", "6"], "answer": 1}])
    write(d / "general" / "sst2.json", [{"sentence": "a wonderful, moving film", "label": 1, "idx": 0}])
    write(d / "general" / "NQ-open.dev.jsonl", [{"question": "what is the capital of france", "answer": ["Paris"]}],
          lines=True)
    out = run_suite(suite_file(tmp_path, suite="gen", task="general", dataset={"path": "cf.json"},
                               systems=["none", "bbedit", "always"], backend=_server_backend(llama_server),
                               generation={"max_tokens": 16},
                               options={"n_edits": 1, "tasks": {"mmlu": {"n": 1}, "sst2": {"n": 1}, "nq": {"n": 1}}}),
                    data_root=d, results_root=tmp_path / "res", cache_dir=None)
    h = json.loads((out / "results.json").read_text())["headline"]
    assert h["mmlu_queries_edited"] == 0.0  # the gate leaves unrelated questions alone
    assert h["baseline_always_mmlu_queries_edited"] == 1.0  # without a gate every query is edited
    assert h["mmlu_delta"] == 0.0 and h["nq_delta"] == 0.0  # untouched queries answer as unedited
    assert (out / "general.png").exists()


@pytest.mark.slow
def test_transformers_teacher_forcing_matches_greedy_decoding() -> None:
    from bbedit.backends.transformers_backend import TransformersBackend

    tb = TransformersBackend(threads=WORK_THREADS)
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    reply = tb.complete(msgs, max_tokens=6)
    assert reply.text and reply.prompt_tokens > 5
    first, other = tb.score(msgs, [reply.text, "Zanzibar"])
    assert all(first.argmax_hits)  # the greedy reply is, token by token, the argmax
    assert first.logprob == pytest.approx(sum(first.token_logprobs)) and first.logprob > other.logprob
    assert all(lp <= 0 for lp in first.token_logprobs + other.token_logprobs)
    (cloze,) = tb.score(msgs, [" Paris"], prefix="The capital of France is")
    assert cloze.n_tokens >= 1
