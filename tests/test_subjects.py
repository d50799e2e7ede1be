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
