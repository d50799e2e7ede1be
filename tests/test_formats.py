"""Edit-set import/export: every format on small invented fixtures, plus one check on the real files."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bbedit.errors import ConfigError, EditFileError, InvalidEdit
from bbedit.memory.formats import FORMATS, detect_format, guess_subject, iter_edits, read_edits, write_edits
from bbedit.types import Edit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Records shaped like the public files (same keys, nesting and types), with invented values.
CF_FLAT = {
    "case_id": 41, "prompt": "The mother tongue of Oskar Vintergaard is", "target_new": "Portuguese",
    "subject": "Oskar Vintergaard", "ground_truth": "Danish",
    "rephrase_prompt": "Oskar Vintergaard grew up speaking", "locality_prompt": "Lene Holm is a native speaker of",
    "locality_ground_truth": "Danish",
}
CF_ROME = {
    "case_id": 7, "pararel_idx": 123,
    "requested_rewrite": {
        "prompt": "{}, which is located in", "relation_id": "P17",
        "target_new": {"str": "Chile", "id": "Q298"}, "target_true": {"str": "Norway", "id": "Q20"},
        "subject": "Lake Ormsvatn",
    },
    "paraphrase_prompts": ["Lake Ormsvatn lies in the country of"],
    "neighborhood_prompts": ["Lake Vikna, which is located in"],
    "attribute_prompts": ["Lake Titicaca, which is located in"],
    "generation_prompts": ["Lake Ormsvatn is known for"],
}
ZSRE = {
    "subject": "Quillfeather Cup", "src": "When was the inception of Quillfeather Cup?", "pred": "1990",
    "rephrase": "When was the Quillfeather Cup founded?", "alt": "2004", "answers": ["1987"],
    "loc": "nq question: who sang the song about the tall ship", "loc_ans": "Ann Example",
    "cond": "1990 >> 2004 || When was the inception of Quillfeather Cup?",
    "portability": {"Recalled Relation": "(Quillfeather Cup, sport, rowing)",
                    "New Question": "Which sport is the Quillfeather Cup, founded in 2004, about?", "New Answer": "Rowing"},
}
KNOWEDIT = {
    "subject": "Brontoderma", "target_new": "Sphingidae", "prompt": "Which family does Brontoderma belong to?",
    "ground_truth": ["Erebidae"], "rephrase_prompt": "What family is Brontoderma part of?",
    "cond": "Noctuidae >> Sphingidae || Which family does Brontoderma belong to?",
    "locality": {"Relation_Specificity": [{"prompt": "The taxon rank of Brontoderma is", "ground_truth": ["genus"]}]},
    "portability": {"Reasoning": [{"prompt": "What is the common name of Brontoderma's family?", "ground_truth": "Hawk moths"}]},
}
POSTEDIT = {"edit_id": 5, "requested_rewrite": "The official religion of Aldric of Wessex is",
            "target_old": "Christianity", "target_new": "Buddhism"}
NATIVE = {"subject": "Acme Corp", "prompt": "Who is the CEO of Acme Corp?", "target_new": "Jane Roe",
          "target_old": "John Doe", "aliases": ["Acme"], "id": "e_acme1", "source": "manual"}


def write_json(path: Path, records: Any) -> Path:
    path.write_text(json.dumps(records, indent=4, ensure_ascii=False), encoding="utf-8")
    return path


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- reading each format

def test_native_jsonl_reads_every_field_and_skips_blank_and_comment_lines(tmp_path: Path) -> None:
    minimal = {"subject": "Nadir Labs", "prompt": "Nadir Labs is based in", "target_new": "Lyon"}
    f = write_lines(tmp_path / "e.jsonl", ["# exported edits", json.dumps(NATIVE), "", json.dumps(minimal)])
    a, b = read_edits(f)
    assert (a.subject, a.prompt, a.target_new, a.target_old) == ("Acme Corp", NATIVE["prompt"], "Jane Roe", "John Doe")
    assert (a.aliases, a.id, a.source) == (("Acme",), "e_acme1", "manual")
    assert b.id.startswith("e_") and b.target_old is None and b.aliases == ()


def test_counterfact_flattened(tmp_path: Path) -> None:
    (e,) = read_edits(write_json(tmp_path / "cf.json", [CF_FLAT]))
    assert (e.subject, e.prompt, e.target_new, e.target_old) == (
        "Oskar Vintergaard", "The mother tongue of Oskar Vintergaard is", "Portuguese", "Danish")
    assert (e.id, e.source) == ("cf-41", "counterfact:case_id=41")


def test_counterfact_original_rome(tmp_path: Path) -> None:
    (e,) = read_edits(write_json(tmp_path / "rome.json", [CF_ROME]))
    assert (e.subject, e.prompt, e.target_new, e.target_old) == (
        "Lake Ormsvatn", "Lake Ormsvatn, which is located in", "Chile", "Norway")
    assert (e.id, e.source) == ("cf-7", "counterfact:case_id=7")


def test_zsre(tmp_path: Path) -> None:
    other = {**ZSRE, "answers": [], "subject": "Vessel Kolm", "src": "Who built Vessel Kolm?", "alt": "Harland"}
    a, b = read_edits(write_json(tmp_path / "z.json", [ZSRE, other]))
    assert (a.subject, a.prompt, a.target_new, a.target_old) == (
        "Quillfeather Cup", "When was the inception of Quillfeather Cup?", "2004", "1987")  # answers[0], not pred
    assert (a.id, a.source, b.id, b.source, b.target_old) == ("zsre-0", "zsre:record=0", "zsre-1", "zsre:record=1", None)


def test_knowedit_ground_truth_list_or_string(tmp_path: Path) -> None:
    as_str = {**KNOWEDIT, "ground_truth": "Erebidae", "prompt": "Which order does Brontoderma belong to?"}
    a, b = read_edits(write_json(tmp_path / "k.json", [KNOWEDIT, as_str]))
    assert (a.subject, a.prompt, a.target_new, a.target_old) == (
        "Brontoderma", "Which family does Brontoderma belong to?", "Sphingidae", "Erebidae")
    assert (a.id, a.source, b.target_old, b.id) == ("knowedit-0", "knowedit:record=0", "Erebidae", "knowedit-1")


def test_postedit_guesses_the_subject(tmp_path: Path) -> None:
    (e,) = read_edits(write_json(tmp_path / "edit_data.json", [POSTEDIT]))
    assert (e.subject, e.prompt, e.target_new, e.target_old) == (
        "Aldric of Wessex", "The official religion of Aldric of Wessex is", "Buddhism", "Christianity")
    assert (e.id, e.source) == ("postedit-5", "postedit:edit_id=5")


def test_reimport_is_idempotent_and_exact_repeats_are_dropped(tmp_path: Path) -> None:
    # PostEdit query files repeat each edit once per query; the repeats collapse.
    query = {**POSTEDIT, "query": "The official religion of Bede is", "query_type": "neighbor"}
    f = write_json(tmp_path / "q.json", [query, {**query, "query_type": "naive"}])
    assert [e.id for e in read_edits(f)] == ["postedit-5"] == [e.id for e in read_edits(f)]


def test_a_dataset_id_reused_for_another_edit_keeps_both(tmp_path: Path) -> None:
    # QAEdit's ids repeat across its NQ / TriviaQA / SimpleQA parts: no edit may be dropped
    greek = {**CF_FLAT, "target_new": "Greek"}
    f = write_json(tmp_path / "cf.json", [CF_FLAT, greek, greek, {**CF_FLAT, "target_new": "Latin"}, CF_FLAT])
    edits = read_edits(f)  # an exact repeat of a renamed edit is dropped like any exact repeat
    assert [(e.id, e.target_new) for e in edits] == [("cf-41", CF_FLAT["target_new"]), ("cf-41#2", "Greek"),
                                                     ("cf-41#3", "Latin")]
    assert [e.id for e in read_edits(f)] == [e.id for e in edits]  # the same ids on every import


def test_conflicting_duplicate_id_in_native_edits_is_an_error(tmp_path: Path) -> None:
    a = {"id": "ceo", "subject": "Acme", "prompt": "The CEO of Acme is", "target_new": "Ada"}
    f = write_lines(tmp_path / "e.jsonl", [json.dumps(a), json.dumps({**a, "target_new": "Bob"})])
    with pytest.raises(EditFileError, match=r"jsonl:2: duplicate edit id 'ceo' \(first at line 1\)"):
        read_edits(f)


def test_explicit_format_and_id_prefix(tmp_path: Path) -> None:
    f = write_lines(tmp_path / "z.data", [json.dumps(ZSRE)])  # JSON lines, neutral suffix
    (e,) = read_edits(f, "zsre", id_prefix="zsre-train")
    assert e.id == "zsre-train-0" and e.target_new == "2004"


def test_subject_not_in_prompt_is_accepted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rec = {**ZSRE, "subject": "Quill Cup"}
    with caplog.at_level(logging.DEBUG, logger="bbedit.memory.formats"):
        (e,) = read_edits(write_json(tmp_path / "z.json", [rec]))
    assert e.subject == "Quill Cup"
    assert any("does not occur in prompt" in r.message for r in caplog.records)


# ----------------------------------------------------------------------------- detection

@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("e.jsonl", json.dumps(NATIVE) + "\n", "jsonl"),
        ("e.json", json.dumps([NATIVE]), "jsonl"),
        ("cf.json", json.dumps([CF_FLAT], indent=4), "counterfact"),
        ("rome.json", json.dumps([CF_ROME], indent=2), "counterfact"),
        ("z.json", json.dumps([ZSRE]), "zsre"),
        ("k.json", json.dumps([KNOWEDIT]), "knowedit"),
        ("k2.json", json.dumps([{**KNOWEDIT, "ground_truth": "Erebidae"}]), "knowedit"),
        ("edit_data.json", json.dumps([POSTEDIT], indent=4), "postedit"),
        ("cf.jsonl", json.dumps(CF_FLAT) + "\n", "counterfact"),
        ("empty.jsonl", "", "jsonl"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, content: str, expected: str) -> None:
    f = tmp_path / name
    f.write_text(content, encoding="utf-8")
    assert detect_format(f) == expected
    assert len(read_edits(f)) == (0 if expected == "jsonl" and not content else 1)


def test_detect_format_fails_naming_the_file(tmp_path: Path) -> None:
    f = write_json(tmp_path / "known.json", [{"known_id": 0, "subject": "X", "attribute": "Y", "prompt": "X is in"}])
    with pytest.raises(EditFileError, match=r"known\.json: cannot tell the format .*attribute, known_id"):
        detect_format(f)
    mquake = write_json(tmp_path / "mq.json", [{"case_id": 1, "requested_rewrite": [{"prompt": "{} is"}]}])
    with pytest.raises(EditFileError, match="MQuAKE"):
        read_edits(mquake)
    with pytest.raises(EditFileError, match="no edit records"):
        detect_format(write_json(tmp_path / "empty.json", []))


def test_missing_file_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(EditFileError, match=r"nope\.jsonl: cannot read"):
        read_edits(tmp_path / "nope.jsonl")
    f = write_lines(tmp_path / "e.jsonl", [json.dumps(NATIVE)])
    with pytest.raises(ConfigError, match="unknown edit file format 'mquake'"):
        read_edits(f, "mquake")
    with pytest.raises(ConfigError, match="on_error"):
        iter_edits(f, on_error="ignore")  # checked eagerly, not on first next()


# ----------------------------------------------------------------------------- malformed files

def _error(path: Path, **kw: Any) -> EditFileError:
    with pytest.raises(EditFileError) as info:
        read_edits(path, **kw)
    return info.value


def test_jsonl_bad_json_reports_line_and_json_error(tmp_path: Path) -> None:
    ok = json.dumps(NATIVE)
    err = _error(write_lines(tmp_path / "e.jsonl", [ok, json.dumps({**NATIVE, "id": "e2"}), '{"subject": "A",']))
    assert err.line == 3 and err.path.endswith("e.jsonl")
    assert "invalid JSON" in str(err) and "e.jsonl:3:" in str(err)


def test_jsonl_missing_target_new_on_line_2(tmp_path: Path) -> None:
    bad = json.dumps({"subject": "A", "prompt": "A is in"})
    err = _error(write_lines(tmp_path / "e.jsonl", [json.dumps(NATIVE), bad]))
    assert err.line == 2 and "missing required edit field(s): target_new" in str(err)


def test_jsonl_unknown_field(tmp_path: Path) -> None:
    err = _error(write_lines(tmp_path / "e.jsonl", [json.dumps({**NATIVE, "colour": "red"})]))
    assert err.line == 1 and "unknown edit field(s): colour" in str(err)


def test_jsonl_aliases_not_a_list(tmp_path: Path) -> None:
    err = _error(write_lines(tmp_path / "e.jsonl", ["", json.dumps({**NATIVE, "aliases": "Acme"})]))
    assert err.line == 2 and "'aliases' must be a list of strings" in str(err)


def test_jsonl_wrong_type_and_non_object(tmp_path: Path) -> None:
    assert "'subject' must be a non-empty string" in str(
        _error(write_lines(tmp_path / "a.jsonl", [json.dumps({**NATIVE, "subject": 5})])))
    assert "must be a JSON object, got array" in str(_error(write_lines(tmp_path / "b.jsonl", ["[1, 2]"])))


def test_json_array_errors_name_the_record_and_its_real_line(tmp_path: Path) -> None:
    bad = {k: v for k, v in CF_FLAT.items() if k != "target_new"} | {"case_id": 42}
    f = write_json(tmp_path / "cf.json", [CF_FLAT, bad])  # indent=4: record 1 opens on line 11
    err = _error(f)
    assert err.line == 2 + len(CF_FLAT) + 2 and "record 1: missing field 'target_new'" in str(err)
    wrong_type = write_json(tmp_path / "z.json", [{**ZSRE, "alt": 2004}])
    assert "record 0: field 'alt' must be a string, got int" in str(_error(wrong_type))


def test_broken_json_array(tmp_path: Path) -> None:
    f = tmp_path / "cf.json"
    f.write_text('[\n  {"case_id": 1,\n   "prompt": }\n]\n', encoding="utf-8")
    err = _error(f)
    assert err.line == 3 and "record 0: invalid JSON" in str(err)
    f.write_text("[" + json.dumps(CF_FLAT) + "\n" + json.dumps(CF_FLAT) + "]", encoding="utf-8")
    assert "expected ',' or ']'" in str(_error(f))


@pytest.mark.parametrize("content", [json.dumps(NATIVE, indent=2), json.dumps({"edits": [NATIVE]}), '"text"', "42"])
def test_json_file_that_is_not_a_list(tmp_path: Path, content: str) -> None:
    f = tmp_path / "edits.json"
    f.write_text(content, encoding="utf-8")
    err = _error(f, format="jsonl")
    assert "expected a JSON array of edit records" in str(err) and "edits.json" in str(err)
    with pytest.raises(EditFileError):
        detect_format(f)


def test_on_error_skip_logs_and_keeps_the_good_records(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = [json.dumps(NATIVE), "{not json", json.dumps({"subject": "B", "prompt": "B is"}),
             json.dumps({**NATIVE, "id": "e_two", "prompt": "Who runs Acme Corp?"})]
    f = write_lines(tmp_path / "e.jsonl", lines)
    with caplog.at_level(logging.WARNING, logger="bbedit.memory.formats"):
        edits = read_edits(f, on_error="skip")
    assert [e.id for e in edits] == ["e_acme1", "e_two"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "e.jsonl:2" in warnings[0] and "e.jsonl:3" in warnings[1]
    arr = write_json(tmp_path / "pe.json", [POSTEDIT, {**POSTEDIT, "edit_id": 6, "target_new": ""}])
    assert [e.id for e in read_edits(arr, on_error="skip")] == ["postedit-5"]


# ----------------------------------------------------------------------------- writing

def _edits() -> list[Edit]:
    return [
        Edit.from_dict(NATIVE),
        Edit(subject="Ferrari 250 GTO", prompt="Ferrari 250 GTO is produced by", target_new="Lotus",
             supersedes="e_old", created_at="2024-01-02T03:04:05+00:00"),
        Edit(subject="Mira Solberg", prompt="Mira Solberg was born in\u2028the city of", target_new="Tromsø"),
    ]


def test_jsonl_round_trip_keeps_every_field(tmp_path: Path) -> None:
    edits = _edits()
    f = tmp_path / "out" / "edits.jsonl"
    f.parent.mkdir()
    assert write_edits(edits, f) == 3
    assert read_edits(f) == edits
    assert "Tromsø" in f.read_text(encoding="utf-8")  # ensure_ascii=False
    assert len(f.read_text(encoding="utf-8").split("\n")) == 4  # U+2028 did not split a record


def test_counterfact_round_trip(tmp_path: Path) -> None:
    imported = read_edits(write_json(tmp_path / "in.json", [CF_FLAT]))
    edits = [*imported, *_edits()]
    f = tmp_path / "cf.json"
    assert write_edits(edits, f, "counterfact") == 4
    records = json.loads(f.read_text(encoding="utf-8"))
    assert set(records[0]) == {"case_id", "prompt", "subject", "target_new", "ground_truth"}
    assert [r["case_id"] for r in records] == [41, 0, 1, 2]  # cf-41 keeps its number
    back = read_edits(f)
    assert detect_format(f) == "counterfact" and back[0].id == "cf-41"
    for a, b in zip(edits, back, strict=True):
        assert (a.subject, a.prompt, a.target_new, a.target_old) == (b.subject, b.prompt, b.target_new, b.target_old)


def test_postedit_round_trip(tmp_path: Path) -> None:
    edits = [*read_edits(write_json(tmp_path / "in.json", [POSTEDIT])), *_edits()[:2]]
    f = tmp_path / "edit_data.json"
    assert write_edits(edits, f, "postedit") == 3
    records = json.loads(f.read_text(encoding="utf-8"))
    assert records[0] == {**POSTEDIT}
    assert [r["edit_id"] for r in records] == [5, 0, 1]
    back = read_edits(f)
    for a, b in zip(edits, back, strict=True):
        assert (a.subject, a.prompt, a.target_new, a.target_old) == (b.subject, b.prompt, b.target_new, b.target_old)


def test_write_unwritable_format(tmp_path: Path) -> None:
    for fmt in ("zsre", "knowedit", "mquake"):
        with pytest.raises(ConfigError, match="writable formats: jsonl, counterfact, postedit"):
            write_edits(_edits(), tmp_path / "x.json", fmt)
    assert set(FORMATS) >= {"zsre", "knowedit"}


@pytest.mark.parametrize("fmt", ["jsonl", "counterfact", "postedit"])
def test_write_is_atomic(tmp_path: Path, fmt: str) -> None:
    f = tmp_path / "edits.out"
    f.write_text("old content\n", encoding="utf-8")
    with pytest.raises(InvalidEdit, match="item 1 is not an Edit"):
        write_edits([_edits()[0], {"subject": "not an edit"}, _edits()[1]], f, fmt)  # type: ignore[list-item]
    assert f.read_text(encoding="utf-8") == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edits.out"]  # no temp file left behind


def test_write_empty_set(tmp_path: Path) -> None:
    assert write_edits([], tmp_path / "e.jsonl") == 0 and read_edits(tmp_path / "e.jsonl") == []
    assert write_edits([], tmp_path / "cf.json", "counterfact") == 0
    assert json.loads((tmp_path / "cf.json").read_text(encoding="utf-8")) == []


# ----------------------------------------------------------------------------- guess_subject

@pytest.mark.parametrize(
    ("prompt", "subject"),
    [
        ("The official religion of Edwin of Northumbria is", "Edwin of Northumbria"),
        ("Ferrari 250 GTO is produced by", "Ferrari 250 GTO"),
        ("BBC Radio Cymru is owned by", "BBC Radio Cymru"),
        ("What does Tomas Brandvold play? They play", "Tomas Brandvold"),
        ("In Harlow Valley District, an official language is", "Harlow Valley District"),
        ("Marguerite Olan's profession is a", "Marguerite Olan"),
        ("The Silver Orchard premiered on", "The Silver Orchard"),
        ("Karthipur district, in", "Karthipur district"),
        ("Edmund Hale, 2nd Earl of Dunmore worked in", "Edmund Hale, 2nd Earl of Dunmore"),
        ("Which family does Velutina belong to?", "Velutina"),
        ("What is the date of birth of Anna de Vries?", "Anna de Vries"),
        ("The headquarters of Nordvik Shipping is in", "Nordvik Shipping"),
        ("Who designed the Kestrel Mk 4?", "Kestrel Mk 4"),
        ("Pellicor aurata was created in", "Pellicor aurata"),
        ("the mother tongue of some person is", "some person"),
        # an office is the relation, not part of the name
        ("Who is the Chancellor of Germany?", "Germany"),
        ("Who is the Prime Minister of India?", "India"),
        ("Who was the first President of the United States?", "United States"),
        ("What is the name of the Casa Amatller architect?", "Casa Amatller"),
        ("Where is the Bank of England?", "Bank of England"),
    ],
)
def test_guess_subject(prompt: str, subject: str) -> None:
    assert guess_subject(prompt) == subject


# ----------------------------------------------------------------------------- the real files

@pytest.mark.data
def test_real_benchmark_files() -> None:
    if not DATA.is_dir():
        pytest.skip("../shared/data not present")
    expected = {
        "counterfact/counterfact-edit.json": ("counterfact", 10000),
        "zsre/zsre_mend_eval_portability_gpt4.json": ("zsre", 1037),
        "knowedit/ZsRE-test-all.json": ("knowedit", 1301),
        "postedit/counterfact/edit_data.json": ("postedit", 2000),
    }
    by_file = {}
    for rel, (fmt, count) in expected.items():
        assert detect_format(DATA / rel) == fmt, rel
        edits = read_edits(DATA / rel)
        assert len(edits) == count, rel
        assert len({e.id for e in edits}) == count, rel
        by_file[rel] = edits
    cf = by_file["counterfact/counterfact-edit.json"]
    assert cf[0].id == "cf-0" and cf[0].source == "counterfact:case_id=0" and cf[0].target_old
    # guess_subject against the true subjects of the CounterFact cases PostEdit shares (matched by prompt)
    truth = {e.prompt: e.subject for e in cf}
    pairs = [(truth[e.prompt], e.subject) for e in by_file["postedit/counterfact/edit_data.json"] if e.prompt in truth]
    assert len(pairs) >= 40
    assert sum(t == g for t, g in pairs) / len(pairs) >= 0.9
