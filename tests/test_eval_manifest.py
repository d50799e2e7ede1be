"""Run provenance: the manifest, fingerprints in cache keys, latencies never replayed, re-rendering
that keeps a run's own provenance, re-judging bookkeeping, adjusted figures beside plain ones, overlap."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bbedit.evaluation import manifest, summary
from bbedit.evaluation import metrics as M
from bbedit.evaluation.calls import CachedModel, CachedScorer, CallCache
from bbedit.evaluation.report import write_results
from bbedit.types import Completion

PACKAGE = Path(manifest.__file__).resolve().parents[1]


def test_manifest_has_every_part() -> None:
    m = manifest.run_manifest()
    assert set(m) >= {"git", "machine", "python", "packages", "fingerprints", "created_at"}
    assert m["machine"]["cpu_count"] >= 1 and m["machine"]["os"]
    assert {"torch", "transformers", "sentence-transformers", "faiss-cpu", "openai", "xllamacpp", "peft", "numpy",
            "bbedit"} <= set(m["packages"])
    fp = m["fingerprints"]
    assert all(len(fp[k]) == 16 for k in ("code", "prompts", "models", "postedit", "whitebox"))
    assert fp["suite"] is None and "CPU cores" in manifest.machine_line(m["machine"])
    json.dumps(m)  # plain JSON


def test_suite_fingerprint_follows_its_file(tmp_path: Path) -> None:
    from bbedit.evaluation.harness import SuiteConfig

    p = tmp_path / "s.yaml"
    p.write_text("suite: s\ndataset: {path: x.json}\n")
    a = manifest.suite_fingerprint(SuiteConfig.load(p))
    p.write_text("suite: s\ndataset: {path: y.json}\n")
    assert a != manifest.suite_fingerprint(SuiteConfig.load(p))
    assert manifest.suite_fingerprint(SuiteConfig.from_dict({"suite": "s", "dataset": {"path": "x"}}))


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_git_state_dirty_flag_and_paths(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-qm", "one")
    clean = manifest.git_state(tmp_path, cached=False)
    assert clean["dirty"] is False and len(clean["commit"]) == 40 and clean["dirty_paths"] == []
    (tmp_path / "a.py").write_text("x = 2\n")
    (tmp_path / "new.py").write_text("")
    dirty = manifest.git_state(tmp_path, cached=False)
    assert dirty["dirty"] is True and dirty["n_dirty"] == 2 and {"a.py", "new.py"} == set(dirty["dirty_paths"])
    assert manifest.git_state(Path("/"), cached=False)["commit"] is None  # not a checkout


def test_fingerprint_changes_with_a_file(tmp_path: Path) -> None:
    copy = tmp_path / "postedit"
    shutil.copytree(PACKAGE / "editors" / "postedit", copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = manifest.fingerprint(copy, cached=False)
    other = tmp_path / "elsewhere" / "postedit"
    shutil.copytree(copy, other)
    assert manifest.fingerprint(other, cached=False) == before  # names are relative to the folder
    assert manifest.fingerprint(copy, cached=True) == before == manifest.fingerprint(copy)  # cached
    (copy / "text.py").write_text((copy / "text.py").read_text() + "\n# changed\n")
    assert manifest.fingerprint(copy) == before  # per process, until cleared
    manifest.clear_cache()
    assert manifest.fingerprint(copy) != before
    (copy / "extra.txt").write_text("x")
    assert manifest.fingerprint(copy, (".py",), cached=False) == manifest.fingerprint(
        copy, (".py",), cached=False)
    assert manifest.fingerprint(tmp_path / "missing", cached=False) != manifest.fingerprint(copy, cached=False)


class FakeBackend:
    model = "fake"

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, messages: list[dict[str, str]], **opts: Any) -> Completion:
        self.calls += 1
        return Completion(text="Paris", prompt_tokens=3, completion_tokens=1, latency_s=0.5)

    def score(self, messages: Any, continuations: Any, prefix: str = "") -> list[Any]:
        from bbedit.backends.transformers_backend import Score

        self.calls += 1
        return [Score(-1.0, (-1.0,), (True,)) for _ in continuations]


def test_cache_key_includes_the_fingerprint() -> None:
    msgs = [{"role": "user", "content": "q"}]
    assert CallCache.key("m", msgs, {}, "a") != CallCache.key("m", msgs, {}, "b")
    assert CallCache.key("m", msgs, {}) == CallCache.key("m", msgs, {}, "")  # keys made without one are kept
    cache = CallCache()
    backend = FakeBackend()
    CachedModel(backend, cache, fingerprint="v1").complete(msgs)
    CachedModel(backend, cache, fingerprint="v1").complete(msgs)
    assert backend.calls == 1
    CachedModel(backend, cache, fingerprint="v2").complete(msgs)  # a changed template: not replayed
    assert backend.calls == 2
    assert CachedModel(backend, cache).fingerprint == manifest.prompts_fingerprint()
    scorer = CachedScorer(backend, cache, fingerprint="v1")
    scorer.score(msgs, ["a"])
    CachedScorer(backend, cache, fingerprint="v1").score(msgs, ["a"])
    assert backend.calls == 3
    CachedScorer(backend, cache, fingerprint="v2").score(msgs, ["a"])
    assert backend.calls == 4


def test_postedit_editor_id_follows_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from bbedit.evaluation.postediting import _editor_id

    class Editor:
        name = "replace"
        config = "cfg"

    first = _editor_id(Editor())
    monkeypatch.setattr(manifest, "postedit_fingerprint", lambda: "code changed")
    assert _editor_id(Editor()) != first
    monkeypatch.undo()
    assert _editor_id(Editor()) == first


def test_cached_answers_carry_no_latency() -> None:
    model = CachedModel(FakeBackend(), CallCache(), fingerprint="x")
    fresh = model.complete([{"role": "user", "content": "q"}])
    again = model.complete([{"role": "user", "content": "q"}])
    assert fresh.latency_s == 0.5 and math.isnan(again.latency_s) and again.text == "Paris"
    lat = [fresh.latency_s * 1000, again.latency_s * 1000]
    assert M.aggregate("latency", lat) == 500 and M.n_measured(lat) == 1
    assert math.isnan(M.aggregate("latency", [float("nan")])) and M.n_measured([None, float("nan")]) == 0


def test_rewrite_latency_counts_only_fresh_rewrites() -> None:
    from bbedit.evaluation.postediting import rewrite_latency

    recs = [{"latency_s": float("nan"), "changed": True, "answer_tokens": 60},
            {"latency_s": 2.0, "changed": True, "answer_tokens": 60}]
    out = rewrite_latency(recs)
    assert out["rewrite_p50_s"] == 2.0 and out["rewrite_n_measured"] == 1 and out["n_rewrites"] == 2
    cached = rewrite_latency(recs[:1])
    assert "rewrite_p50_s" not in cached and "rewrite_p50_s_all" not in cached and cached["rewrite_n_measured"] == 0


def test_report_only_keeps_the_runs_provenance(tmp_path: Path) -> None:
    from bbedit.evaluation.runner import _previous

    folder = write_results("s", {"n_cases": 2, "latency_p50_ms": float("nan")}, {"results": {"x": float("nan")}},
                           "# s", "bbedit eval s.yaml", root=tmp_path)
    first = json.loads((folder / "results.json").read_text())
    assert first["manifest"]["git"] and first["commit"] == first["manifest"]["git"]["short"]
    assert first["not_measured"] == ["latency_p50_ms"] and "latency_p50_ms" not in first["headline"]
    assert first["results"] == {"x": None}  # standard JSON
    out, command, provenance = _previous(folder)
    assert command == "bbedit eval s.yaml" and "manifest" not in out and "finished_at" not in out
    provenance = {**provenance, "finished_at": "2020-01-01T00:00:00+00:00", "commit": "abc1234"}
    write_results("s", out["headline"], {k: v for k, v in out.items() if k != "headline"}, "# again", command,
                  root=tmp_path, provenance=provenance)
    second = json.loads((folder / "results.json").read_text())
    assert second["finished_at"] == "2020-01-01T00:00:00+00:00" and second["commit"] == "abc1234"
    assert second["manifest"] == first["manifest"] and set(second["rendered"]) == {"commit", "dirty", "at"}
    with pytest.raises(TypeError):
        write_results("s", {"bad": "x"}, {}, "", "c", root=tmp_path)  # type: ignore[dict-item]


def test_rejudge_bookkeeping_keeps_the_first_old_value() -> None:
    from bbedit.evaluation import rejudge

    out: dict[str, Any] = {"headline": {"a": 0.5, "b": 0.2, "p": 0.9}}
    ch = rejudge._Changes(out)
    ch.set("a", 0.4)
    ch.set("b", 0.2)
    ch.set("missing", 1.0)
    ch.remove("p", "not applicable")
    assert ch.finish() == [{"key": "a", "old": 0.5, "new": 0.4}] and out["rejudged"]["n_headline_checked"] == 2
    again = rejudge._Changes(out)
    again.set("a", 0.3)
    assert again.finish() == [{"key": "a", "old": 0.5, "new": 0.3}]
    text = rejudge.section(out)
    assert "Changed by the judging fix" in text and "0.500" in text and "not applicable" in text
    assert rejudge.section({}) == ""


def test_adjusted_figures_stand_beside_plain_ones() -> None:
    h = {"locality_at_10000": 0.9, "locality_true_neighbours_at_10000": 0.99, "gate_precision_at_10000": 0.7,
         "gate_precision_scope_aware_at_10000": 0.92, "reliability_at_10000": 0.6}
    keys = summary.with_plain(["reliability_at_10000", "locality_true_neighbours_at_10000",
                               "gate_precision_scope_aware_at_10000"], h)
    assert keys == ["reliability_at_10000", "locality_at_10000", "locality_true_neighbours_at_10000",
                    "gate_precision_at_10000", "gate_precision_scope_aware_at_10000"]
    assert summary.plain_key("neighbor_untouched_true_neighbours") == "neighbor_untouched"
    assert summary.plain_key("gate_recall") is None


def test_overlap_counts_on_small_files(tmp_path: Path) -> None:
    from bbedit.evaluation import overlap

    cf = {"prompt": "The capital of France is", "subject": "France", "target_new": "x", "ground_truth": "y",
          "rephrase_prompt": "France's capital:", "locality_prompt": "Germany's capital is"}
    (tmp_path / "counterfact").mkdir()
    (tmp_path / "counterfact" / "counterfact-train.json").write_text(json.dumps([cf]))
    (tmp_path / "counterfact" / "counterfact-edit.json").write_text(json.dumps(
        [{**cf, "prompt": "the capital of FRANCE is!"}, {**cf, "subject": "Spain", "prompt": "Spain speaks"}]))
    res = overlap.measure(tmp_path)
    pair = next(p for p in res["pairs"] if p["eval"] == "counterfact/counterfact-edit.json")
    assert pair["shared_subjects"] == 1 and pair["shared_edit_prompts"] == 1 and pair["eval_subjects"] == 2
    assert "zsre/zsre_mend_train-1k.json" in res["missing"]
    overlap.main(tmp_path, tmp_path / "results")
    assert "1 of its 2 subjects" in overlap.note("counterfact/counterfact-edit.json", tmp_path / "results")
    assert overlap.note("zsre/other.json", tmp_path / "results") == ""


def test_rejudge_recomputes_an_editing_run_from_its_records(tmp_path: Path) -> None:
    from bbedit.errors import ConfigError
    from bbedit.evaluation import rejudge
    from bbedit.evaluation.harness import RunContext, SuiteConfig
    from bbedit.evaluation.tasks import editing
    from tests.test_eval_cases import CF_FLAT, write

    case = {**CF_FLAT[0], "target_new": "US", "ground_truth": "French"}
    write(tmp_path / "cf.json", [case])
    cfg = SuiteConfig.from_dict({"suite": "tiny", "dataset": {"path": "cf.json"}, "memory": "cases"})
    ctx = RunContext(cfg, data_root=tmp_path)
    data, _ = editing.load(ctx)
    items = [editing.Item(c, p) for c in data.cases for p in c.probes]
    texts = {"reliability": "Let us see.", "generalization": "The US.", "locality": "French."}
    records = [{"case": it.case.id, "kind": it.probe.kind, "query": it.probe.text, "none": "French.",
                "bbedit": texts[it.probe.kind]} for it in items]
    out: dict[str, Any] = {
        "headline": {"generation_reliability": 1.0, "generation_generalization": 1.0, "generation_locality": 1.0},
        "results": {"generation": {"bbedit": {"reliability": 1.0, "generalization": 1.0, "locality": 1.0}}},
        "records": records, "systems": ["none", "bbedit"]}
    changed = rejudge.rejudge(ctx, out)
    assert changed == [{"key": "generation_reliability", "old": 1.0, "new": 0.0}]  # "let us" is not "US"
    assert out["results"]["generation"]["bbedit"]["generalization"] == 1.0
    out["results"]["generation"]["bbedit"]["locality"] = 0.0  # records that do not line up are refused
    with pytest.raises(ConfigError, match="line up"):
        rejudge.rejudge(ctx, out)


def test_run_outputs_do_not_make_the_tree_dirty(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    _git(tmp_path, "init", "-q")
    (tmp_path / "eval" / "results" / "s").mkdir(parents=True)
    (tmp_path / "eval" / "results" / "s" / "results.json").write_text("{}")
    (tmp_path / "eval" / "README.md").write_text("x")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "one")
    (tmp_path / "eval" / "results" / "s" / "results.json").write_text("{1}")
    (tmp_path / "eval" / "results" / "new").mkdir()
    (tmp_path / "eval" / "results" / "new" / "report.md").write_text("")
    assert manifest.git_state(tmp_path, cached=False)["dirty"] is False
