"""Dataset loaders: every format, from small files written here, plus their error paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bbedit.errors import ConfigError, EditFileError
from bbedit.evaluation.cases import Probe, load_dataset
from bbedit.memory.formats import read_edits


def write(path: Path, records: Any, lines: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if lines:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        path.write_text(json.dumps(records, indent=1))
    return path


CF_FLAT = [{"case_id": 7, "prompt": "The mother tongue of Danielle Darrieux is", "target_new": "English",
            "subject": "Danielle Darrieux", "ground_truth": "French",
            "rephrase_prompt": "Where Danielle Darrieux is from, people speak",
            "locality_prompt": "Michel Rocard is a native speaker of", "locality_ground_truth": "French"}]

CF_ROME = [{"case_id": 3, "requested_rewrite": {"prompt": "{} plays the", "subject": "Toko Yasuda",
                                                  "target_new": {"str": "piano"}, "target_true": {"str": "guitar"}},
            "paraphrase_prompts": ["Toko Yasuda is known for the", "Toko Yasuda performs on the"],
            "neighborhood_prompts": ["Jimi Hendrix plays the", "Slash plays the", "B.B. King plays the"],
            "generation_prompts": ["Toko Yasuda is"]}]

ZSRE = [{"subject": "Watts Humphrey", "src": "What university did Watts Humphrey attend?", "pred": "Illinois",
         "rephrase": "Which university did Watts Humphrey go to?", "alt": "University of Michigan",
         "answers": ["Illinois Institute of Technology"], "loc": "nq question: who sings the song hallelujah",
         "loc_ans": "Leonard Cohen", "portability": {"New Question": "In which state did Watts Humphrey study?",
                                                     "New Answer": "Michigan"}}]

KNOWEDIT = [{"subject": "Epaspidoceras", "target_new": "Noctuidae", "prompt": "Which family does Epaspidoceras belong to?",
             "ground_truth": ["Aspidoceratidae"], "rephrase_prompt": "What family are Epaspidoceras?",
             "locality": {"Relation_Specificity": [{"prompt": "The taxon rank of Epaspidoceras is",
                                                    "ground_truth": ["genus"]}]},
             "portability": {"Reasoning": [{"prompt": "What is the common name of that family?",
                                            "ground_truth": "Owlet moths"}],
                             "Subject_Aliasing": [{"prompt": ["Which family does E. belong to?", "E.'s family?"],
                                                   "ground_truth": [["Noctuidae", "owlets"]]}]}}]

KNOWEDIT_WIKIDATA = [{"subject": "Kurt Vonnegut", "prompt": "The occupation of Kurt Vonnegut is", "target_new": "chef",
                      "ground_truth": "writer", "rephrase": "Kurt Vonnegut works as a",
                      "locality": {"Relation_Specificity": [{"prompt": "Kurt Vonnegut was born in",
                                                             "ground_truth": [["Indianapolis"]]}],
                                   "Forgetfulness": [{"prompt": "The occupation of Kurt Vonnegut, which is",
                                                      "ground_truth": ["chef"]}]},
                      "portability": {"Logical_Generalization": [{"prompt": "Does Kurt Vonnegut cook for a living?",
                                                                  "ground_truth": ["yes"]}]}}]

MQUAKE = [{"case_id": 11, "requested_rewrite": [
    {"prompt": "{} was performed by", "subject": "Hey Jude", "target_new": {"str": "Madonna"},
     "target_true": {"str": "The Beatles"}},
    {"prompt": "{} is a citizen of", "subject": "Madonna", "target_new": {"str": "Australia"},
     "target_true": {"str": "United States"}}],
    "questions": ["What country is the performer of Hey Jude a citizen of?", "Hey Jude's performer is a citizen of?"],
    "answer": "United Kingdom", "answer_alias": ["UK"], "new_answer": "Australia", "new_answer_alias": ["AUS"],
    "new_single_hops": [{"question": "Who performed Hey Jude?", "cloze": "Hey Jude was performed by",
                         "answer": "Madonna", "answer_alias": []},
                        {"question": "What is the country of citizenship of Madonna?", "cloze": "Madonna is a citizen of",
                         "answer": "Australia", "answer_alias": ["AUS"]}]}]

QAEDIT = [{"id": 1104, "source": "NQ", "prompt": "who has the most 70 point games in nba history?",
           "target": "Wilt Chamberlain", "subject": "most 70 point games in nba history",
           "rephrase": "Which NBA player has the most 70-point games?",
           "locality": [{"loc": "when did the us host the world cup", "loc_ans": "1994"},
                        {"loc": "who wrote i could fall in love by selena", "loc_ans": "Keith Thomas"}]}]

# WISE's temporal set: an out-of-distribution rephrase and an NQ locality question
WISE = [{"prompt": "Who is the head coach of the Orbit City Comets?", "subject": "Orbit City Comets",
         "target_new": "Mara Lind", "ood_rephrase": "The Comets of Orbit City are coached these days by whom?",
         "locality_prompt": "nq question: who sings the song hallelujah", "locality_ground_truth": "Leonard Cohen"},
        # the hallucination set: no rephrase, no subject
        {"prompt": "This is a Wikipedia passage about Ada Lovelace.", "target_new": "Ada Lovelace was a mathematician.",
         "locality_prompt": "The tallest mountain on Earth is", "locality_ground_truth": "Everest"}]

# KnowEdit's Sanitation set (TriviaQA): one object of named lists, not an array of records
TRIVIA_TRAIN = {"K_F": [{"question": "What is the capital of France?", "ground_truth": "Paris",
                         "target_new": "I don't know.", "subject": "France"},
                        {"question": "Which animal is the national bird of India?", "ground_truth": "peacock",
                         "target_new": "I don't know."}],
                "K_R": [{"question": "Who wrote Hamlet?", "ground_truth": "Shakespeare", "target_new": "Shakespeare"},
                        {"question": "What is 2 + 2?", "ground_truth": "4", "target_new": "4"},
                        {"question": "Which river flows through Vienna?", "ground_truth": "Danube", "target_new": "Danube"}]}
TRIVIA_TEST = {"success": [{"question": "What is the capital of France?", "ground_truth": "Paris",
                            "target_new": "I don't know."}],
               "locality": [{"question": "Who wrote Hamlet?", "ground_truth": "Shakespeare"}]}

POSTEDIT_EDITS = [{"edit_id": 0, "requested_rewrite": "The mother tongue of Danielle Darrieux is",
                   "target_old": "French", "target_new": "English"},
                  {"edit_id": 1, "requested_rewrite": "Apple A5 was created by", "target_old": "Apple",
                   "target_new": "Google"},
                  {"edit_id": 2, "requested_rewrite": "What year was X made?", "target_old": "1950", "target_new": ""}]
POSTEDIT_QUERIES = [
    {**POSTEDIT_EDITS[0], "query": "The native language of Danielle Darrieux is", "query_type": "paraphrase",
     "response_before_edit": "French, as she was born in Bordeaux."},
    {**POSTEDIT_EDITS[1], "query": "Apple A5 was created by", "query_type": "naive",
     "response_before_edit": "Apple Inc."},
    {**POSTEDIT_EDITS[0], "query": "The native language of François Bayrou is", "query_type": "neighbor",
     "response_before_edit": "French."}]


def test_counterfact_flattened(tmp_path: Path) -> None:
    d = load_dataset(write(tmp_path / "cf.json", CF_FLAT))
    assert d.format == "counterfact" and len(d.cases) == 1
    c = d.cases[0]
    assert c.id == "cf-7" and c.edits[0].target_old == "French"
    assert [p.kind for p in c.probes] == ["reliability", "generalization", "locality"]
    assert c.probes[1] == Probe("Where Danielle Darrieux is from, people speak", "generalization",
                                ("English",), ("French",))
    assert c.probes[2].answers == ("French",) and not c.probes[2].in_scope


def test_counterfact_rome_lists(tmp_path: Path) -> None:
    c = load_dataset(write(tmp_path / "rome.json", CF_ROME)).cases[0]
    assert c.edits[0].prompt == "Toko Yasuda plays the" and c.edits[0].target_new == "piano"
    assert len(c.of_kind("generalization")) == 2 and len(c.of_kind("locality")) == 3
    assert c.of_kind("locality")[0].answers == ("guitar",)


def test_zsre_mend(tmp_path: Path) -> None:
    c = load_dataset(write(tmp_path / "z.json", ZSRE)).cases[0]
    rel, gen, loc, port = c.probes
    assert rel.answers == ("University of Michigan",) and rel.old_answers == ("Illinois Institute of Technology",)
    assert gen.text == "Which university did Watts Humphrey go to?"
    assert loc.text == "Who sings the song hallelujah?" and loc.answers == ("Leonard Cohen",)
    assert port.kind == "portability" and port.answers == ("Michigan",)


def test_knowedit_lists_and_nested_answers(tmp_path: Path) -> None:
    c = load_dataset(write(tmp_path / "k.json", KNOWEDIT)).cases[0]
    assert c.edits[0].target_old == "Aspidoceratidae"
    loc = c.of_kind("locality")
    assert loc[0].label == "Relation_Specificity" and loc[0].answers == ("genus",)
    port = c.of_kind("portability")
    # "Which family does E. belong to?" is the edit's prompt with the subject named "E.": it asks the edit
    # itself (and gives the edit that alias); "E.'s family?" is read as the dataset files it
    assert [p.label for p in port] == ["Reasoning", "Subject_Aliasing"]
    assert port[1].answers == ("Noctuidae", "owlets")
    alias = [p for p in c.of_kind("generalization") if p.label == "Subject_Aliasing"]
    assert [p.text for p in alias] == ["Which family does E. belong to?"] and alias[0].answers == ("Noctuidae",)
    assert c.edits[0].aliases == ("E.",)


def test_knowedit_wikidata(tmp_path: Path) -> None:
    c = load_dataset(write(tmp_path / "wiki.json", KNOWEDIT_WIKIDATA)).cases[0]
    assert c.edits[0].target_old == "writer"
    assert c.of_kind("generalization")[0].text == "Kurt Vonnegut works as a"
    loc = c.of_kind("locality")
    assert [p.label for p in loc] == ["Relation_Specificity", "Forgetfulness"]
    assert loc[0].answers == ("Indianapolis",)
    # a Forgetfulness prompt asks the edited relation: its answer must stay, but a gate must route it
    assert [p.should_route for p in loc] == [False, True] and not loc[1].in_scope
    assert c.of_kind("portability")[0].answers == ("yes",)


def test_knowedit_relation_specificity_that_asks_the_edited_fact_is_in_scope(tmp_path: Path) -> None:
    rec = {"subject": "Butterfly Cluster", "prompt": "What constellation is home to Butterfly Cluster?",
           "target_new": "Orion", "ground_truth": ["Scorpius"],
           "locality": {"Relation_Specificity": [
               {"prompt": "The constellation of Butterfly Cluster is", "ground_truth": ["scorpius"]},
               {"prompt": "Butterfly Cluster constellation", "ground_truth": ["Sagittarius"]},  # the same relation
               {"prompt": "Butterfly Cluster distance from Earth", "ground_truth": ["1,600 light years"]}]}}
    c = load_dataset(write(tmp_path / "k.json", [rec])).cases[0]
    same = [p for p in c.of_kind("generalization") if p.label == "Relation_Specificity_same_fact"]
    assert [p.text for p in same] == ["The constellation of Butterfly Cluster is", "Butterfly Cluster constellation"]
    assert same[0].answers == ("Orion",) and same[0].old_answers == ("Scorpius",)
    assert [p.text for p in c.of_kind("locality")] == ["Butterfly Cluster distance from Earth"]


def test_knowedit_aliases_reach_an_imported_edit(tmp_path: Path) -> None:
    rec = {**KNOWEDIT_WIKIDATA[0], "portability": {"Subject_Aliasing": [
        {"prompt": "The occupation of Kurt Vonnegut Jr. is", "ground_truth": ["chef"]},
        {"prompt": "Kurt Vonnegut Jr. works as a", "ground_truth": ["chef"]},  # the rephrase, same alias
        {"prompt": "What does K. V. cook?", "ground_truth": ["food"]}]}}
    edits = read_edits(write(tmp_path / "wiki.json", [rec]))
    assert edits[0].aliases == ("Kurt Vonnegut Jr.",)


def test_mquake_several_edits_per_case(tmp_path: Path) -> None:
    c = load_dataset(write(tmp_path / "mq.json", MQUAKE)).cases[0]
    assert c.id == "mquake-11" and [e.id for e in c.edits] == ["mquake-11-0", "mquake-11-1"]
    assert c.edits[1].prompt == "Madonna is a citizen of" and c.edits[1].target_old == "United States"
    hops = c.of_kind("multihop")
    assert len(hops) == 2 and hops[0].answers == ("Australia", "AUS") and hops[0].old_answers == ("United Kingdom", "UK")
    assert [p.text for p in c.of_kind("reliability")] == ["Who performed Hey Jude?",
                                                         "What is the country of citizenship of Madonna?"]


def test_qaedit(tmp_path: Path) -> None:
    c = load_dataset(write(tmp_path / "qa.json", QAEDIT)).cases[0]
    assert c.id == "qaedit-1104" and c.edits[0].target_new == "Wilt Chamberlain"
    assert [p.kind for p in c.probes] == ["reliability", "generalization", "locality", "locality"]
    assert c.probes[3].answers == ("Keith Thomas",)


def test_qaedit_repeated_ids_keep_every_case(tmp_path: Path) -> None:
    other = {**QAEDIT[0], "source": "TriviaQA", "prompt": "Which planet is the largest?", "target": "Jupiter",
             "subject": "largest planet", "rephrase": "What is the biggest planet?"}
    d = load_dataset(write(tmp_path / "qa.json", [QAEDIT[0], other]))
    assert [c.id for c in d.cases] == ["qaedit-1104", "qaedit-1104#2"]
    assert [e.target_new for e in d.edits()] == ["Wilt Chamberlain", "Jupiter"]  # neither edit merged away


def test_wise_records(tmp_path: Path) -> None:
    d = load_dataset(write(tmp_path / "temporal-edit.json", WISE))
    assert d.format == "wise" and [c.id for c in d.cases] == ["wise-0", "wise-1"]
    first, second = d.cases
    assert [(p.kind, p.text) for p in first.probes] == [
        ("reliability", "Who is the head coach of the Orbit City Comets?"),
        ("generalization", "The Comets of Orbit City are coached these days by whom?"),
        ("locality", "Who sings the song hallelujah?")]  # the NQ prefix becomes a question
    assert first.edits[0].subject == "Orbit City Comets" and first.probes[2].answers == ("Leonard Cohen",)
    assert second.edits[0].subject == "Ada Lovelace"  # guessed from the prompt when the record has none
    assert [p.kind for p in second.probes] == ["reliability", "locality"]
    assert read_edits(tmp_path / "temporal-edit.json")[0].target_new == "Mara Lind"  # and importable as edits


def test_triviaqa_object_form(tmp_path: Path) -> None:
    d = load_dataset(write(tmp_path / "trivia_qa_train.json", TRIVIA_TRAIN))
    assert d.format == "triviaqa" and [c.id for c in d.cases] == ["trivia-0", "trivia-1"]
    assert [e.subject for e in d.edits()] == ["France", "India"]
    assert d.cases[0].edits[0].target_old == "Paris" and d.cases[0].probes[0].old_answers == ("Paris",)
    # the kept questions (K_R) are locality probes, every one of them once
    loc = [p.text for c in d.cases for p in c.of_kind("locality")]
    assert sorted(loc) == sorted(r["question"] for r in TRIVIA_TRAIN["K_R"])
    test = load_dataset(write(tmp_path / "trivia_qa_test.json", TRIVIA_TEST))
    assert [p.kind for p in test.cases[0].probes] == ["reliability", "locality"]
    # as an edit file only the edits are imported, never the questions to keep
    assert [e.prompt for e in read_edits(tmp_path / "trivia_qa_train.json")] == [
        r["question"] for r in TRIVIA_TRAIN["K_F"]]
    with pytest.raises(EditFileError, match=r"K_R\[0\]"):
        load_dataset(write(tmp_path / "bad.json", {"K_F": TRIVIA_TRAIN["K_F"], "K_R": [{"ground_truth": "x"}]}))
    with pytest.raises(EditFileError, match=r"K_F\[1\].*target_new"):
        load_dataset(write(tmp_path / "bad2.json", {"K_F": [TRIVIA_TRAIN["K_F"][0], {"question": "Who?"}]}),
                     format="triviaqa")


def test_postedit_queries_with_sibling_edit_set(tmp_path: Path) -> None:
    write(tmp_path / "cf" / "edit_data.json", POSTEDIT_EDITS)
    with pytest.raises(EditFileError, match=r"empty|non-empty"):  # the empty target is not silently dropped
        load_dataset(write(tmp_path / "cf" / "query_data.json", POSTEDIT_QUERIES))
    d = load_dataset(tmp_path / "cf" / "query_data.json", on_error="skip")
    assert d.format == "postedit" and d.name == "cf-query_data"
    assert [c.id for c in d.cases] == ["postedit-0", "postedit-1"]  # grouped by edit, in first-seen order
    kinds = {p.label: p for c in d.cases for p in c.probes}
    assert kinds["neighbor"].kind == "locality" and kinds["neighbor"].answers == ("French",)
    assert kinds["neighbor"].old_answers == ("English",) and kinds["naive"].reference == "Apple Inc."
    assert [e.id for e in d.extra_edits] == ["postedit-0", "postedit-1"]
    assert len(d.edits()) == 2


def test_jsonl_and_n(tmp_path: Path) -> None:
    recs = [dict(CF_FLAT[0], case_id=i) for i in range(5)]
    d = load_dataset(write(tmp_path / "cf.jsonl", recs, lines=True), n=3)
    assert [c.id for c in d.cases] == ["cf-0", "cf-1", "cf-2"]


def test_forced_format_and_unknown_format(tmp_path: Path) -> None:
    p = write(tmp_path / "z.json", ZSRE)
    assert load_dataset(p, format="zsre").cases[0].id == "zsre-0"
    with pytest.raises(ConfigError, match="unknown dataset format"):
        load_dataset(p, format="squad")
    with pytest.raises(ConfigError, match="on_error"):
        load_dataset(p, on_error="ignore")


def test_bad_records_name_file_and_line(tmp_path: Path) -> None:
    bad = [CF_FLAT[0], {**CF_FLAT[0], "case_id": 8, "target_new": ""}]
    p = write(tmp_path / "cf.json", bad)
    with pytest.raises(EditFileError) as e:
        load_dataset(p)
    assert "cf.json" in str(e.value) and "record 1" in str(e.value) and e.value.line is not None
    d = load_dataset(p, on_error="skip")
    assert len(d.cases) == 1 and len(d.skipped) == 1


def test_unrecognised_records_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(EditFileError, match="cannot tell the dataset format"):
        load_dataset(write(tmp_path / "x.json", [{"foo": 1}]))
    (tmp_path / "broken.json").write_text('[{"prompt": "a",')
    with pytest.raises(EditFileError, match=r"broken\.json"):
        load_dataset(tmp_path / "broken.json")
    with pytest.raises(EditFileError, match="no benchmark cases"):
        load_dataset(write(tmp_path / "empty.json", []))
    with pytest.raises(EditFileError, match="edit_data"):
        load_dataset(write(tmp_path / "edit_data.json", POSTEDIT_EDITS[:2]))
    with pytest.raises(EditFileError, match="cannot read"):
        load_dataset(tmp_path / "missing.json")


def test_probe_validation() -> None:
    from bbedit.errors import InvalidEdit

    with pytest.raises(InvalidEdit, match="probe kind"):
        Probe("q?", "efficacy")
    with pytest.raises(InvalidEdit, match="non-empty"):
        Probe("  ", "locality")


@pytest.mark.data
def test_real_benchmark_files(shared_data: Path) -> None:
    """Every benchmark file in ../shared/data loads, with the counts its README states."""
    from collections import Counter

    expect = {"counterfact/counterfact-edit.json": (10000, {"reliability": 10000, "generalization": 10000,
                                                            "locality": 10000}),
              "zsre/zsre_mend_eval_portability_gpt4.json": (1037, {"portability": 1037}),
              "knowedit/ZsRE-test-all.json": (1301, {"reliability": 1301}),
              "mquake/MQuAKE-hard.json": (429, {"multihop": 1287}),
              "postedit/counterfact/query_data.json": (None, {"reliability": 500, "generalization": 500,
                                                              "locality": 500})}
    for rel, (n_cases, kinds) in expect.items():
        d = load_dataset(shared_data / rel, on_error="skip")
        counts = Counter(p.kind for c in d.cases for p in c.probes)
        assert n_cases is None or len(d.cases) == n_cases, rel
        assert all(counts[k] == v for k, v in kinds.items()), (rel, counts)
    z = load_dataset(shared_data / "postedit/zsre/query_data.json", on_error="skip")
    assert sum(len(c.probes) for c in z.cases) == 1500 and len(z.extra_edits) > 10000
