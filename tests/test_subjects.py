import json
from pathlib import Path

from bbedit.memory.aliases import known_aliases
from bbedit.memory.build_aliases import build
from bbedit.memory.subjects import SubjectIndex


def _index() -> SubjectIndex:
    s = SubjectIndex()
    s.add(1, ["Abraham"])
    s.add(2, ["Lyon"])
    s.add(3, ["The Beatles"])
    s.add(4, ["Danielle Darrieux", "Darrieux"])
    s.add(5, ["Zürich"])
    return s


def test_word_boundaries_case_and_accents() -> None:
    s = _index()
    assert [m.row for m in s.match("People in Lyon's twin city speak")] == [2]
    assert s.match("Lyonnaise cooking") == []
    m = s.match("what is DANIELLE darrieux known for")[0]
    assert m.row == 4 and m.n_tokens == 2 and not m.case_exact
    assert [m.row for m in s.match("I flew to Zurich")] == [5]


def test_optional_leading_the_and_proper_extension() -> None:
    s = _index()
    assert [m.row for m in s.match("Who produced Beatles records?")] == [3]
    (m,) = s.match("The native language of Abraham Lincoln is")
    assert m.proper_ext
    (m,) = s.match("Abraham was born in")
    assert not m.proper_ext


def test_remove_and_replace() -> None:
    s = _index()
    s.remove(2)
    assert s.match("Lyon") == []
    s.add(4, ["Someone Else"])
    assert s.match("Darrieux") == []
    assert s.rows_with_name("someone else") == {4}


def test_an_acronym_that_is_a_common_word_is_found_only_as_written() -> None:
    s = SubjectIndex()
    s.add(1, ["World Health Organization", "WHO"])
    s.add(2, ["United States", "US"])
    assert [m.row for m in s.match("What does the WHO recommend?")] == [1]
    assert s.match("Who recommends it?") == [] and s.match("who is it") == []
    assert [m.row for m in s.match("the US president")] == [2] and s.match("tell us") == []
    s.remove(1)
    s.add(3, ["who"])  # a lower-case name is matched as any name is
    assert [m.row for m in s.match("Who is it")] == [3]
    s.add(4, ["Netherlands", "NED", "Holland"], exact=["NED"])  # the alias table's codes: only as written
    assert s.match("Ned Stark's father is") == [] and [m.row for m in s.match("the NED squad")] == [4]
    assert [m.row for m in s.match("holland's capital")] == [4]
    s.remove(4)
    s.add(5, ["Ned Stark"])
    assert [m.row for m in s.match("Ned Stark's father is")] == [5]


def test_the_shipped_table_knows_other_names_both_ways() -> None:
    assert {"UK", "Britain"} <= set(known_aliases(["United Kingdom"]))
    assert "United Kingdom" in known_aliases(["UK"])
    assert "NYC" in known_aliases(["New York City"])
    assert known_aliases(["Veltrix Dynamics"]) == ()
    assert "UK" not in known_aliases(["United Kingdom", "UK"])  # only names not given already


def test_the_alias_table_keeps_only_names_that_come_with_one_answer(tmp_path: Path) -> None:
    def q(answer: str, aliases: list[str]) -> dict[str, object]:
        return {"question": f"In what country is X of {answer}?", "answer": answer, "aliases": aliases}

    recs = [q("Freedonia", ["Freedonia", "FRD", "Fredland", "Can"]) for _ in range(4)]
    recs[0]["aliases"] = ["Freedonia", "FRD", "Can", "Sylvania"]  # "Fredland" with 3 of 4: under 90%
    recs += [q("Sylvania", ["Sylvania", "SYL"]) for _ in range(3)]
    recs += [q("Old Sylvania", ["Old Sylvania", "Sylvania", "Sylvanian Realm"]) for _ in range(3)]  # merged
    recs += [q("Groucho Marx", ["Groucho Marx", "Marx", "Julius Henry Marx"]) for _ in range(3)]  # a bare surname
    recs += [q("Tiny", ["Tiny", "Small One"])]  # one question only
    (tmp_path / "popqa").mkdir()
    (tmp_path / "popqa" / "popqa_test.json").write_text(json.dumps(recs))
    groups = {g[0]: g[1:] for g in build(tmp_path)["groups"]}
    assert groups["Freedonia"] == ["FRD"]  # "Can" is a word, "Fredland" too rare
    assert groups["Sylvania"] == ["SYL"]
    assert "Old Sylvania" not in groups  # its list holds another answer's own name: a merged list
    assert groups["Groucho Marx"] == ["Julius Henry Marx"]
    assert "Tiny" not in groups
    assert "United Kingdom" in groups  # the countries written out

    recs += [q("Old Sylvania", ["Old Sylvania", "SYL"]) for _ in range(3)]  # now "SYL" is half Old Sylvania's
    (tmp_path / "popqa" / "popqa_test.json").write_text(json.dumps(recs))
    assert "Sylvania" not in {g[0] for g in build(tmp_path)["groups"]}  # an alias two answers share is nobody's
