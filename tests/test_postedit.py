"""The post-editors: text rules, the baseline, training data, the learned editor's decoding, training
and the pipeline with a real llama.cpp server."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest

from bbedit.editors.base import make_editor
from bbedit.editors.base import word_chunks as _chunks
from bbedit.editors.postedit import PostEditConfig, PostEditor, ReplaceEditor, render_prompt
from bbedit.editors.postedit.data import build_examples, read_facts, template_answer
from bbedit.editors.postedit.editor import EDIT, KEEP
from bbedit.editors.postedit.text import apply_script, mentions, replace_target, script_for
from bbedit.errors import ConfigError, EditFileError, ModelNotFound
from bbedit.types import Edit
from tests.conftest import WORK_THREADS
from tests.test_eval_cases import POSTEDIT_EDITS, POSTEDIT_QUERIES, write

CEO = Edit(subject="Acme", prompt="The CEO of Acme is", target_new="Jane Doe", target_old="John Smith", id="e1")


# -- text rules and the baseline ----------------------------------------------------------------------

def test_replace_target_is_minimal() -> None:
    assert replace_target("John Smith runs Acme; john smith joined in 2019.", "John Smith", "Jane Doe") == \
        "Jane Doe runs Acme; Jane Doe joined in 2019."
    assert replace_target("He is an actor and a voice actor.", "actor", "pianist") == \
        "He is a pianist and a voice pianist."
    assert replace_target("A jazz musician.", "jazz", "opera") == "An opera musician."
    assert replace_target("french. French fries are French.", "French", "english") == \
        "english. English fries are English."  # a capitalised mention gets a capitalised replacement
    assert replace_target("Applesauce from Apple.", "Apple", "Google") == "Applesauce from Google."
    assert mentions("Made by Apple Inc.", "apple") and not mentions("Applesauce", "Apple")
    assert not mentions("anything", None) and not mentions("anything", " ")


def test_replace_baseline() -> None:
    base = ReplaceEditor()
    r = base.rewrite("Who runs Acme?", "Acme is run by John Smith.", CEO)
    assert r.text == "Acme is run by Jane Doe." and r.changed
    r = base.rewrite("Who runs Acme?", "I do not know.", CEO)
    assert r.text == "The CEO of Acme is Jane Doe." and r.changed  # no old target: the template
    assert make_editor("replace").name == "replace"


def test_render_prompt_and_keep_edit_tokens() -> None:
    p = render_prompt("Who runs Acme? ", "John Smith.\n", CEO)
    assert p == ("Fact: The CEO of Acme is Jane Doe. (was: John Smith)\nQuestion: Who runs Acme?\n"
                 "Answer: John Smith.\nEdited:")
    no_old = Edit(subject="Acme", prompt="Who leads Acme?", target_new="Jane Doe")
    assert "(was: unknown)" in render_prompt("q", "a", no_old) and "Who leads Acme? Jane Doe." in \
        render_prompt("q", "a", no_old)
    assert KEEP.startswith(" ") and EDIT.startswith(" ")


def test_edit_scripts() -> None:
    fact = "The CEO of Acme is Jane Doe."
    assert script_for(CEO, "Acme is led by john smith.", fact) == "john smith => Jane Doe"
    assert script_for(CEO, "No idea.", fact) == "= " + fact
    assert script_for(CEO, "I am not sure who leads the company these days.", fact) == "+ " + fact
    assert apply_script("Acme is led by john smith. John Smith joined in 2019.", "John Smith => Jane Doe", fact) == \
        "Acme is led by Jane Doe. Jane Doe joined in 2019."
    assert apply_script("No idea.", "= " + fact, fact) == fact
    assert apply_script("Long answer here.", "+ " + fact, fact) == fact  # eight words or fewer: short
    assert apply_script("No idea.", "= The CEO of Jane Doe is", fact) == fact  # the fact, not the decoded text
    assert apply_script("No idea.", "+", fact) == fact  # a short answer is replaced, whichever the model chose
    # an answer that goes on from the prompt gives its value in its opening sentence: that sentence goes
    long = "a former football executive who ran the company until 2019. He studied law in Boston."
    assert apply_script(long, "+", fact) == fact + " He studied law in Boston."
    assert apply_script("1947 by a group of musicians in Winnipeg, Manitoba, Canada.", "+", fact) == fact
    assert apply_script("Long answer here, with more words than a short one has.", "+", fact) == \
        fact + " Long answer here, with more words than a short one has."
    # a span the answer does not contain is ignored; with nothing applied, the fact is stated
    assert apply_script("Bob Jones runs it.", "John Smith => Jane Doe", fact) == fact
    # a decoded span may write a hyphen as a space, or a space as a hyphen
    assert apply_script("Acme is led by John-Smith, since 2019.", "John Smith => Jane Doe", fact) == \
        "Acme is led by Jane Doe, since 2019."
    assert apply_script("Bob Jones runs it.", "gibberish", fact) == fact
    assert apply_script("John Smith, Bob Jones.", "John Smith => Jane Doe\nBob Jones => Ann Lee", fact) == \
        "Jane Doe, Ann Lee."
    chunks = list(_chunks("The CEO of Acme  is Jane Doe,\nsince 2024."))
    assert len(chunks) > 1 and "".join(chunks) == "The CEO of Acme  is Jane Doe,\nsince 2024."


def test_config_and_adapter_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="keep_threshold"):
        PostEditConfig(keep_threshold=1.5)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        PostEditConfig(max_new_tokens=0)
    with pytest.raises(ModelNotFound, match="no post-editor adapter"):
        PostEditor(adapter=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="unknown editor"):
        make_editor("rome")


# -- training data --------------------------------------------------------------------------------------

CF_TRAIN = [{"case_id": i, "prompt": f"The mother tongue of Person {i} is", "target_new": "English",
             "subject": f"Person {i}", "ground_truth": "French", "rephrase_prompt": f"Person {i} speaks",
             "locality_prompt": f"The native language of Other {i} is", "locality_ground_truth": "French"}
            for i in range(12)]
ZSRE_TRAIN = [{"subject": f"Thing {i}", "src": f"Who made Thing {i}?", "pred": "x", "rephrase": f"Thing {i} was made by?",
               "alt": "Google", "answers": ["Apple"], "loc": f"nq question: who sang song {i}", "loc_ans": "Adele"}
              for i in range(8)]


def _train_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write(root / "counterfact" / "counterfact-train.json", CF_TRAIN)
    write(root / "zsre" / "zsre_mend_train-1k.json", [*ZSRE_TRAIN, dict(ZSRE_TRAIN[0], alt="")])
    return root


def test_training_examples(tmp_path: Path) -> None:
    root = _train_root(tmp_path)
    facts = read_facts(root, exclude_subjects=["Person 0"])
    assert len(facts) == 11 + 8  # the excluded subject and the record with an empty target are left out
    assert {f.dataset for f in facts} == {"counterfact", "zsre"}
    z = next(f for f in facts if f.dataset == "zsre")
    assert z.other_query.startswith("Who sang") and z.edit.target_old == "Apple"

    asked: list[Any] = []

    def ask(reqs: list[Any]) -> list[str]:  # stands in for the served model: it echoes the fact it was given
        asked.extend(reqs)
        return [r[0]["content"].split("A fact you know: ")[1] for r in reqs]

    ex = build_examples(facts, ask, n_counterfact=11, n_zsre=8, served_share=0.5, seed=1)
    assert asked and all(r[0]["role"] == "system" and r[1]["role"] == "user" for r in asked)
    edits = [e for e in ex if e.kind == "edit"]
    keeps = [e for e in ex if e.kind == "keep"]
    assert len(edits) == 19 and len(keeps) >= 11  # every fact in scope once; every CounterFact neighbour kept
    assert all(e.target == KEEP for e in keeps)
    for e in edits:
        assert e.target.startswith(EDIT + "\n")
        answer = e.prompt.split("\nAnswer: ")[1].rsplit("\nEdited:", 1)[0]
        script = e.target.split("\n", 1)[1]
        old, target = ("French", "English") if "Person" in e.prompt else ("Apple", "Google")
        fact = e.prompt.split("Fact: ")[1].split(" (was: ")[0]
        new = apply_script(answer, script, fact)
        assert mentions(new, target) and not mentions(new, old), (answer, new)
        if mentions(answer, old):  # minimal: the answer with only the target changed
            assert script == f"{old} => {target}" and new == replace_target(answer, old, target)
    assert {e.origin.split("-")[0] for e in ex} == {"served", "template"}
    assert build_examples(facts, None, 11, 8, seed=1)[0].origin.startswith("template")


def test_rewrite_target_and_templates() -> None:
    fact = "The CEO of Acme is Jane Doe."

    def rewrite_target(edit: Edit, answer: str) -> str:  # the minimal rewrite the training scripts produce
        return apply_script(answer, script_for(edit, answer, fact), fact)

    assert rewrite_target(CEO, "John Smith, since 2019.") == "Jane Doe, since 2019."
    assert rewrite_target(CEO, "No idea.") == "The CEO of Acme is Jane Doe."
    long = "I am not sure who currently leads the company, it changes often."
    assert rewrite_target(CEO, long) == "The CEO of Acme is Jane Doe. " + long
    rng = random.Random(0)
    for q in ("The CEO of Acme is", "Who runs Acme?"):
        for _ in range(20):
            assert "John Smith" in template_answer(q, "John Smith", "Acme", rng)


def test_broken_training_file(tmp_path: Path) -> None:
    root = _train_root(tmp_path)
    (root / "zsre" / "zsre_mend_train-1k.json").write_text("{not json")
    with pytest.raises(EditFileError, match="cannot read the post-editor's training file"):
        read_facts(root)
    write(root / "zsre" / "zsre_mend_train-1k.json", [{"subject": "x"}])
    with pytest.raises(EditFileError, match="lacks"):
        read_facts(root)


def test_prefixes_for_the_postedit_suites() -> None:
    from bbedit.evaluation.harness import system_prefix

    assert system_prefix("bbedit") == "" and system_prefix("none") == "baseline_none_"
    assert system_prefix("postedit", "postedit") == ""
    assert system_prefix("bbedit", "postedit") == "ike_" and system_prefix("replace", "postedit") == "baseline_"
    assert system_prefix("none", "postedit") == "baseline_none_"


# -- the learned post-editor (slow: loads SmolLM2 with the shipped adapter) -----------------------------

@pytest.fixture(scope="module")
def post_editor() -> PostEditor:
    pe = PostEditor(threads=WORK_THREADS)
    pe.load()
    return pe


@pytest.mark.slow
def test_learned_editor_rewrites_in_scope_and_keeps_the_rest(post_editor: PostEditor) -> None:
    answer = "The CEO of Acme is John Smith, who took over in 2019."
    r = post_editor.rewrite("Who is the CEO of Acme?", answer, CEO)
    assert r.changed and r.text == "The CEO of Acme is Jane Doe, who took over in 2019.", r  # only the fact
    assert r.script == "John Smith => Jane Doe" and r.tokens == 0  # named verbatim: the exact script, no decoding
    lang = Edit(subject="Danielle Darrieux", prompt="The mother tongue of Danielle Darrieux is",
                target_new="English", target_old="French")
    kept = post_editor.rewrite("The native language of François Bayrou is", "French.", lang)
    assert not kept.changed and kept.text == "French." and kept.p_keep >= 0.5, kept
    chunks = list(post_editor.rewrite_stream("Who is the CEO of Acme?", answer, CEO))
    assert len(chunks) > 1 and "".join(chunks) == r.text
    assert "".join(post_editor.rewrite_stream("The native language of François Bayrou is", "French.", lang)) == "French."
    # an edit that does not say what it replaces: the answer restates the question, so the rule finds
    # the value it gives and replaces only that
    no_old = Edit(subject="Acme", prompt="The CEO of Acme is", target_new="Jane Doe")
    r = post_editor.rewrite("Who is the CEO of Acme?", answer, no_old)
    assert r.text == "The CEO of Acme is Jane Doe, who took over in 2019." and r.tokens == 0, r
    model_only = PostEditor(post_editor.config, rule_spans=False)
    model_only._lm, model_only._tok = post_editor._lm, post_editor._tok
    model_only._keep_id, model_only._edit_id, model_only._nl_id = (post_editor._keep_id, post_editor._edit_id,
                                                                    post_editor._nl_id)
    r = model_only.rewrite("Who is the CEO of Acme?", answer, CEO)
    assert r.tokens > 0 and r.text == "The CEO of Acme is Jane Doe, who took over in 2019.", r
    r = model_only.rewrite("Who is the CEO of Acme?", answer, no_old)
    assert r.changed and mentions(r.text, "Jane Doe") and r.tokens > 0, r  # the model writes a script itself


@pytest.mark.slow
def test_pipeline_with_the_post_editor(backend: Any, memory: Any, post_editor: PostEditor) -> None:
    from bbedit.pipeline import EditedModel

    memory.add(Edit(subject="Eiffel Tower", prompt="The Eiffel Tower is located in", target_new="Rome",
                    target_old="Paris", id="eiffel"))

    served = backend

    class Once:
        """The real server, each distinct request answered once: llama.cpp's prompt cache can change a
        greedy answer between a first and a repeated prompt, and the comparisons below are about bbedit."""

        name = served.name

        def __init__(self) -> None:
            self.seen: dict[str, str] = {}

        def generate(self, messages: Any, **opts: Any) -> str:
            key = json.dumps([messages, opts], sort_keys=True)
            if key not in self.seen:
                self.seen[key] = served.generate(messages, **opts)
            return self.seen[key]

    backend = Once()
    model = EditedModel(backend, memory, editor=post_editor)
    ans = model.ask("Which city is the Eiffel Tower located in?", max_tokens=40, temperature=0)
    assert ans.edit is not None and ans.edit.id == "eiffel"
    assert ans.original_text and ans.text != ans.original_text and mentions(ans.text, "Rome"), ans
    plain = backend.generate([{"role": "user", "content": "What is the boiling point of water?"}], max_tokens=24,
                             temperature=0)
    out = model.ask("What is the boiling point of water?", max_tokens=24, temperature=0)
    assert out.edit is None and out.text == plain  # out of scope: untouched
    decision, chunks = model.stream([{"role": "user", "content": "Which city is the Eiffel Tower located in?"}],
                                    max_tokens=40, temperature=0)
    assert decision.edit is not None and "".join(chunks).strip() == ans.text


@pytest.mark.slow
def test_training_writes_a_small_adapter_that_loads(tmp_path: Path) -> None:
    from bbedit.editors.postedit.train import TrainConfig, train

    root = _train_root(tmp_path)
    out = tmp_path / "adapter"
    s = train(TrainConfig(out=str(out), data_root=str(root), n_counterfact=6, n_zsre=4, served_answers=False,
                          batch_size=4, threads=WORK_THREADS, exclude_eval_subjects=False), progress=False)
    assert (out / "adapter_model.safetensors").stat().st_size < 6_000_000
    saved = json.loads((out / "training.json").read_text())
    assert saved["examples"] == s["examples"] > 0 and saved["steps"] >= 1 and saved["loss_curve"]
    assert 0 <= saved["validation"]["decision_accuracy"] <= 1 and saved["train_files"][0].startswith("counterfact")
    pe = PostEditor(adapter=str(out), threads=WORK_THREADS)
    r = pe.rewrite("Who runs Acme?", "John Smith.", CEO)
    assert isinstance(r.text, str) and 0 <= r.p_keep <= 1


@pytest.mark.slow
def test_postedit_suite_reports_the_postedit_keys(tmp_path: Path, llama_server: Any) -> None:
    from bbedit.evaluation.runner import run_suite
    from tests.test_eval_runner import _server_backend, suite_file

    write(tmp_path / "data" / "pe" / "edit_data.json", POSTEDIT_EDITS[:2])
    write(tmp_path / "data" / "pe" / "query_data.json", POSTEDIT_QUERIES)
    p = suite_file(tmp_path, suite="tiny-pe", dataset={"path": "pe/query_data.json"},
                   backend=_server_backend(llama_server), generation={"max_tokens": 24}, workers=2,
                   systems=["none", "bbedit", "postedit", "replace"],
                   options={"primary": "postedit", "original": "reference", "postedit": {"threads": WORK_THREADS}})
    out = run_suite(p, data_root=tmp_path / "data", results_root=tmp_path / "res", cache_dir=tmp_path / "cache")
    res = json.loads((out / "results.json").read_text())
    h = res["headline"]
    for pre in ("", "ike_", "baseline_"):
        for k in ("edit_success_naive", "edit_success_paraphrase", "neighbor_untouched", "rouge1_retention"):
            assert 0 <= h[pre + k] <= 1, pre + k
    assert h["baseline_rewrite_p50_s_all"] >= 0 and "rewrite_p50_s_all" in h
    rec = {r["query"]: r for r in res["records"]}
    first = rec[POSTEDIT_QUERIES[0]["query"]]
    # the recorded answers are the dataset's text: records keep whether they changed, not the text
    assert "original" not in first and "postedit" not in first and "replace" not in first
    assert first["replace_changed"] and first["postedit_changed"] and first["postedit_p_keep"] < 0.5
    assert first["postedit_script"] == "French => English"
    assert res["by_query_type"]["postedit"]["paraphrase"]["edit_success"] == 1.0
    assert res["by_query_type"]["postedit"]["paraphrase"]["rouge1_retention"] == 1.0  # only the target changed
    assert "PostEdit view" in (out / "report.md").read_text() and (out / "postedit.png").stat().st_size > 0


def test_postedit_table_and_headline() -> None:
    from bbedit.evaluation import postediting as P
    from bbedit.evaluation.cases import Case, Probe
    from bbedit.evaluation.tasks.editing import Item
    from bbedit.types import Completion

    lang = Edit(subject="D", prompt="The mother tongue of D is", target_new="English", target_old="French", id="p0")
    case = Case("p0", (lang,), ())
    probes = [Probe("The mother tongue of D is", "reliability", ("English",), ("French",), label="naive"),
              Probe("D speaks", "generalization", ("English",), ("French",), label="paraphrase"),
              Probe("B speaks", "locality", ("French",), ("English",), label="neighbor")]
    items = [Item(case, p) for p in probes]
    base = [Completion("French, of course."), Completion("French."), Completion("French.")]
    edited = [Completion("English, of course."), Completion("French."), Completion("English.")]
    t = P.by_query_type(items, edited, base, [1.0, 1.0, 0.5])
    assert t["naive"]["edit_success"] == 1.0 and t["paraphrase"]["edit_success"] == 0.0
    assert t["neighbor"]["untouched"] == 0.0 and t["naive"]["untouched"] == 0.0 and t["paraphrase"]["untouched"] == 1.0
    assert t["naive"]["rouge1_retention"] == 1.0  # only the target changed: masked, nothing lost
    assert t["overall"]["sbert_retention"] == pytest.approx(2.5 / 3) and t["in_scope"]["edit_success"] == 0.5
    assert P.true_neighbour_untouched(items, edited, base, {"B speaks": {"x"}}) is None  # its only neighbour is shared
    h = P.headline({"postedit": t, "replace": t, "bbedit": t, "none": t},
                   {"postedit": {"rewrite_p50_s": 0.2}}, "postedit")
    assert h["edit_success_naive"] == 1.0 and h["baseline_edit_success_naive"] == 1.0
    assert h["ike_neighbor_untouched"] == 0.0 and h["rewrite_p50_s"] == 0.2 and not any(k.startswith("baseline_none")
                                                                                          for k in h)
    recs = [{"latency_s": s, "changed": True, "answer_tokens": n} for s, n in [(0.1, 50), (0.3, 60), (9.0, 300)]]
    lat = P.rewrite_latency(recs)
    assert lat["rewrite_p50_s"] == pytest.approx(0.2) and lat["rewrite_p50_s_all"] == 0.3 and lat["n_rewrites"] == 3


def test_a_post_editor_routes_at_its_own_lower_threshold() -> None:
    from bbedit.scope.gate import GateBase

    class FixedGate(GateBase):  # the shared threshold logic over a scorer whose best candidate scores 0.4
        def _ranked(self, query: str, retrieval: Any) -> list[tuple[Any, float]]:
            return [(CEO, 0.4)]

    gate = FixedGate(None, threshold=0.65)  # type: ignore[arg-type]
    assert gate.decide("q").edit is None and gate.decide("q", None, 0.9).edit is None  # never above the gate's
    assert gate.decide("q", None, 0.3).edit == CEO and gate.decide("q", None, 0.5).edit is None
    assert PostEditor.gate_threshold is None and ReplaceEditor().gate_threshold is None  # declared: the gate's own
    assert PostEditConfig().gate_threshold == 0.3
    with pytest.raises(ConfigError, match="gate_threshold"):
        PostEditConfig(gate_threshold=2.0)


def test_without_the_old_value_the_rule_replaces_the_value_the_answer_gives() -> None:
    from bbedit.editors.postedit.text import asserted_values, replace_value, value_run, value_span

    ceo = Edit(subject="Acme Corporation", aliases=("Acme Corp", "Acme"), prompt="Who is the CEO of Acme Corporation?",
               target_new="Maria Okafor", id="ceo")
    answer = "The CEO of Acme Corp is Elon Musk. He has led it since 2002."
    assert value_span(answer, ceo, "Who is the CEO of Acme Corp?") == "Elon Musk"
    assert replace_value(answer, ceo, "Who is the CEO of Acme Corp?") == \
        "The CEO of Acme Corp is Maria Okafor. He has led it since 2002."  # every other sentence as it was
    born = Edit(subject="Albert Einstein", aliases=("Einstein",), prompt="Albert Einstein was born in the country of",
                target_new="Canada", id="born")
    assert replace_value("Einstein was born in the United States, USA.", born, "In which country was Einstein born?") \
        == "Einstein was born in Canada."  # the value appended by a comma goes with it, and the "the"
    # a parenthesis after the value goes with it
    bbc = Edit(subject="BBC One", prompt="Who owns BBC One?", target_new="Google", id="b")
    assert replace_value("The owner of BBC One is the British Broadcasting Corporation (BBC).", bbc,
                         "Who owns BBC One?") == "The owner of BBC One is Google."
    # so does another name for it, and neither is a value of its own
    region = Edit(subject="Al Madinah Region", prompt="Al Madinah Region's capital is", target_new="London", id="r")
    assert replace_value("Al Madinah Al Munawwarah, also known as Medina.", region, region.prompt) == "London."
    assert value_run("NPR (National Public Radio).", "NPR") == ["NPR", "National Public Radio"]
    assert asserted_values("The owner of BBC One is the British Broadcasting Corporation (BBC).", ["Google"],
                           "Who owns BBC One?") == ["British Broadcasting Corporation", "BBC"]  # no ")"
    # a cloze prompt's answer that goes on from it with a value and a stop gives that value (with what is
    # appended to it); one that opens otherwise, or a question's answer that does not restate it, gives none
    made = Edit(subject="RSM-56 Bulava", prompt="RSM-56 Bulava was created in", target_new="France", id="m")
    assert value_span("Russia.\n\nIt is a missile.", made, "RSM-56 Bulava was created in") == "Russia"
    assert replace_value("Orlando, Florida, USA. It opened in 1989.", made, "RSM-56 Bulava was created in") == \
        "France. It opened in 1989."
    # ... also after a few words that describe it, but not inside a longer name or a sentence that goes on
    part = Edit(subject="Gilli Smyth", prompt="Gilli Smyth is a part of the", target_new="FIFA", id="g")
    assert value_span("music group Gong. She sang.", part, part.prompt) == "Gong"
    assert replace_value("the city of Moscow, Russia. It is old. Moscow is big. Russia is bigger.", made,
                         made.prompt) == "the city of France. It is old. France is big. France is bigger."
    assert value_span("the Union of European Football Associations (UEFA).", part, part.prompt) == \
        "Union of European Football Associations (UEFA)"  # one name, not "European ..." described as a "Union of"
    assert value_span("the football body Union of European Football Associations.", part, part.prompt) == \
        "Union of European Football Associations"
    assert value_span("the German automobile maker BMW in the late 1930s.", made, made.prompt) is None
    assert value_span("St. Eutrope Church in Arles.", made, made.prompt) is None  # an abbreviation
    assert value_span("RSM-56 Bulava, a missile.", made, "RSM-56 Bulava was created in") is None  # the subject
    # a value inside the subject's name counts when the answer gives it alone; its later mentions change
    # with it, the subject's own name never
    car = Edit(subject="Ferrari Daytona", prompt="Ferrari Daytona, developed by", target_new="Nokia", id="c")
    assert replace_value("the Italian car manufacturer Ferrari, was a grand tourer. The Ferrari Daytona won after "
                         "Ferrari's success.", car, car.prompt) == \
        "the Italian car manufacturer Nokia, was a grand tourer. The Ferrari Daytona won after Nokia's success."
    assert value_span("Ferrari Daytona, a grand tourer.", car, car.prompt) is None  # the whole name: no value
    snow = Edit(subject="Percy Snow", prompt="Percy Snow plays as", target_new="goaltender", id="p")
    assert value_span("the American player Snow, a linebacker.", snow, snow.prompt) is None  # his surname: no value
    # a parenthesis followed by a stop goes with the value; one followed by more of the sentence does not
    radio = Edit(subject="Carl Kasell", prompt="Carl Kasell is employed by", target_new="IBM", id="k")
    assert replace_value("NPR (National Public Radio).", radio, radio.prompt) == "IBM."
    assert value_span("NPR (National Public Radio) and the BBC.", radio, radio.prompt) is None
    # the stop of an abbreviation that ends the value goes with it, a sentence's stop stays
    chip = Edit(subject="Apple A5", prompt="Apple A5 was created by", target_new="Google", id="a5")
    assert replace_value("Apple Inc., specifically its chip team.", chip, chip.prompt) == \
        "Google, specifically its chip team."
    assert replace_value("Apple Inc. It designs chips.", chip, chip.prompt) == "Google. It designs chips."
    assert value_span("1968, in Moscow.", made, "RSM-56 Bulava was created in") is None  # a number, for a place
    assert value_span("the 13th century, is a popular Marathi play.", made, "Where was RSM-56 Bulava created?") is None
    assert ReplaceEditor().rewrite("Who is the CEO of Acme Corp?", answer, ceo).text.startswith(
        "The CEO of Acme Corp is Maria Okafor.")
    # with the old value known, its first mention is replaced with what is appended to it
    eiffel = Edit(subject="Eiffel Tower", prompt="The Eiffel Tower is in", target_new="Rome", target_old="Paris", id="e")
    assert ReplaceEditor().rewrite("Where is it?", "It is in Paris, France. Paris is lovely.", eiffel).text == \
        "It is in Rome. Rome is lovely."


# -- long answers about several things ----------------------------------------------------------------------
TONGUE = Edit(subject="Danielle Darrieux", prompt="The mother tongue of Danielle Darrieux is", target_new="English",
              target_old="French", id="tongue")
CITIZEN = Edit(subject="Andrea Sartoretti", prompt="Andrea Sartoretti, a citizen of", target_new="Denmark",
               target_old="Italy", id="citizen")
PARAGRAPH = ("The mother tongue of Danielle Darrieux is French. She was a French actress who starred in Mr. Smith's "
             "films. The native language of François Bayrou is French. Thuringia, located in central Italy, is "
             "green. Andrea Sartoretti, a citizen of Italy, was a basketball player. Sartoretti retired in 2007.")


def test_sentences_and_the_sentences_an_edit_may_change() -> None:
    from bbedit.editors.postedit.text import editable_sentences, replace_value, sentence_spans

    spans = sentence_spans(PARAGRAPH)
    assert "".join(PARAGRAPH[a:b] for a, b in spans) == PARAGRAPH  # a partition of the text
    assert [PARAGRAPH[a:b].strip() for a, b in spans][1] == "She was a French actress who starred in Mr. Smith's films."
    assert len(spans) == 6 and sentence_spans("F.W. Murnau directed it. It was 1922.")[0] == (0, 25)
    assert sentence_spans("Line one\nLine two") == [(0, 9), (9, 17)]
    # about Darrieux: her sentence and the pronoun one after it; the others name someone or something else
    assert [ok for _, _, ok in editable_sentences(PARAGRAPH, TONGUE)] == [True, True, False, False, False, False]
    assert [ok for _, _, ok in editable_sentences("Paris. It is lovely. Some say so.", TONGUE)] == [True] * 3
    # a sentence that opens on a quantifier names nothing: its mentions of the value change as well
    law = Edit(subject="Gibraltar", prompt="The law in Gibraltar declares the language", target_new="Finnish")
    answer = "of the territory as English. All official documents are in English. Spain is next door."
    assert [ok for _, _, ok in editable_sentences(answer, law, law.prompt)] == [True, True, False]
    assert replace_value(answer, dataclasses.replace(law, target_old="English"), law.prompt) == \
        "of the territory as Finnish. All official documents are in Finnish. Spain is next door."


def test_a_long_answer_changes_only_where_it_is_about_the_edit() -> None:
    from bbedit.editors.postedit.text import replace_value

    out = replace_value(PARAGRAPH, TONGUE, "Tell me about Danielle Darrieux and Andrea Sartoretti.")
    assert out == PARAGRAPH.replace("is French. She was a French", "is English. She was an English")
    out = ReplaceEditor().rewrite_all("Tell me about them.", PARAGRAPH, [TONGUE, CITIZEN]).text
    assert "François Bayrou is French." in out and "central Italy" in out  # the neighbours stay byte for byte
    assert "a citizen of Denmark, was" in out and "Darrieux is English." in out
    # the subject's own name is never changed, though it holds the old value
    district = Edit(subject="Mumbai City district", prompt="Mumbai City district is located in", target_new="Rome",
                    target_old="Mumbai", id="d")
    assert replace_value("Mumbai City district's capital is Mumbai. Mumbai City district is big.", district) == \
        "Mumbai City district's capital is Rome. Mumbai City district is big."


def test_a_fact_is_stated_where_the_answer_turns_to_its_subject() -> None:
    from bbedit.editors.postedit.text import focus, insert_fact, query_about

    text = "I am an AI language model. The native language of François Bayrou is French. Danielle Darrieux acted."
    fact = "The mother tongue of Danielle Darrieux is English."
    assert insert_fact(text, fact, TONGUE) == text.replace("Danielle Darrieux acted.", fact + " Danielle Darrieux acted.")
    assert ReplaceEditor().rewrite("Tell me about her.", text, TONGUE).text == fact  # the baseline replaces it
    assert insert_fact("Dunno.", fact, TONGUE) == fact  # a short answer is replaced
    lo, hi = focus(PARAGRAPH, CITIZEN, "Tell me about Danielle Darrieux and Andrea Sartoretti.")
    assert PARAGRAPH[lo:hi] == "Andrea Sartoretti, a citizen of Italy, was a basketball player. Sartoretti retired in 2007."
    assert focus("Italy.", CITIZEN) == (0, 6) and focus(PARAGRAPH, CITIZEN)[0] == 0  # asked of it alone: from the top
    assert query_about("Tell me about Danielle Darrieux, Bayrou and Andrea Sartoretti.", CITIZEN) == \
        "Tell me about Andrea Sartoretti."
    assert query_about("Who is Bayrou? Where is Andrea Sartoretti from?", CITIZEN) == "Where is Andrea Sartoretti from?"
    assert query_about("Where is Andrea Sartoretti from?", CITIZEN) == "Where is Andrea Sartoretti from?"


def test_without_the_old_value_the_value_found_changes_everywhere_it_is_about_the_edit() -> None:
    from bbedit.editors.postedit.text import replace_value

    galata = Edit(subject="Galata", prompt="Galata is in", target_new="Naples", id="g")  # no old value
    assert replace_value("Istanbul, Turkey. It faces the historic centre of Istanbul.", galata, "Galata is in") == \
        "Naples. It faces the historic centre of Naples."
    chip = Edit(subject="Sandy Bridge", prompt="Sandy Bridge was a product of", target_new="Apple", id="c")
    assert replace_value("Intel Corporation, designed by Intel's group.", chip, "Sandy Bridge was a product of") == \
        "Apple, designed by Apple's group."  # the short name of the value found changes too


def test_an_edit_without_an_old_value_finds_the_value_of_the_new_values_kind(embedder: Any) -> None:
    """No rule finds what these answers give (they do not restate the question, nor open with a value);
    the candidate most like the new value in kind does: a car maker named alone inside the subject's
    name, the first of "Florence, Italy" (a city for a city), the CEO the model invented."""
    from bbedit.editors.postedit.text import replace_value
    from bbedit.editors.postedit.typed import DEFAULT_MINIMUM, TypedValues, candidates

    assert PostEditConfig().typed_minimum == DEFAULT_MINIMUM  # the editor uses the chosen minimum
    typed = TypedValues(embedder)
    car = Edit(subject="Nissan Laurel", prompt="Nissan Laurel is created by", target_new="Honda")
    answer = "the Japanese automaker Nissan from 1968 to 2002. The Nissan Laurel is a mid-sized sedan."
    assert candidates(answer, car, car.prompt) == ["Japanese", "Nissan"]
    assert replace_value(answer, car, car.prompt) is None  # the rules alone find nothing
    assert replace_value(answer, car, car.prompt, typed) == \
        "the Japanese automaker Honda from 1968 to 2002. The Nissan Laurel is a mid-sized sedan."
    # (when the value ends the answer's opening, the rules find it: "the Japanese automaker Nissan.")
    assert replace_value("the Japanese automaker Nissan. The Nissan Laurel is a sedan.", car, car.prompt) == \
        "the Japanese automaker Honda. The Nissan Laurel is a sedan."
    died = Edit(subject="Maso da San Friano", prompt="Maso da San Friano passed away at", target_new="Vienna")
    answer = "an unknown date in the late 16th century, likely in Florence, Italy where he worked as an artist."
    assert replace_value(answer, died, died.prompt, typed) == \
        "an unknown date in the late 16th century, likely in Vienna where he worked as an artist."
    ceo = Edit(subject="Veltrix Dynamics", prompt="Who is the CEO of Veltrix Dynamics?", target_new="Maria Okafor")
    answer = "Priya Raman. The CEO of Veltrix Dynamics is Elena Veltrix, who founded it in 2009."
    assert replace_value(answer, ceo, ceo.prompt, typed) == \
        "Priya Raman. The CEO of Veltrix Dynamics is Maria Okafor, who founded it in 2009."
    # nothing of the new value's kind: no value, and the editor states the fact instead
    lang = Edit(subject="Danielle Darrieux", prompt="The mother tongue of Danielle Darrieux is", target_new="English")
    answer = "a question many ask: she starred in films by Max Ophüls and Billy Wilder over eight decades."
    assert typed(answer, lang, lang.prompt) is None
    # a new value in lower case replaces a common word, never a name: no candidate
    spot = Edit(subject="John Navarre", prompt="John Navarre plays as", target_new="linebacker")
    played = "a quarterback for Michigan. Navarre then played in the NFL and made the Pro Bowl."
    assert candidates(played, spot, spot.prompt) and typed.scored(played, spot, spot.prompt) == []
    assert typed(played, spot, spot.prompt) is None
    assert script_for(lang, answer, "The mother tongue of Danielle Darrieux is English.", lang.prompt,
                      typed).startswith("+ ")
