"""Every evaluation metric on small examples whose values were computed by hand."""

from __future__ import annotations

import math

import pytest

from bbedit.evaluation import metrics as M


def test_contains_whole_words_case_accents_punctuation() -> None:
    assert M.contains("The answer is New York City.", "new york")
    assert not M.contains("It was Newark.", "New")
    assert M.contains("Born in Zürich, Switzerland", "Zurich")
    assert M.contains("It's the U.S.", "US")  # punctuation is dropped on both sides
    assert not M.contains("anything", "")
    assert M.contains_any("piano and guitar", ["violin", "guitar"])


def test_contains_acronyms_articles_and_word_boundaries() -> None:
    assert not M.contains("Let us see.", "US")  # an acronym is matched in capitals
    assert M.contains("It is in the US.", "US") and M.contains("the U.S.A. and Canada", "USA")
    assert M.contains("Bmw.", "BMW") and not M.contains("let us see", "U.S.")
    assert not M.contains("Who is the singer?", "The Who")  # the article is required before a common word
    assert M.contains("A song by The Who.", "The Who") and M.contains("a song by the who", "The Who")
    assert M.contains("It is in Netherlands.", "The Netherlands")  # elsewhere it may be missing
    assert not M.contains("the cat", "The The") and M.contains("by The The", "The The")
    assert M.contains("PARIS", "paris") and M.contains("paris", "Paris")  # case, for ordinary words
    assert M.contains("Paris.", "Paris") and M.contains("Paris, France", "Paris")
    assert M.contains("(Paris)", "Paris") and M.contains("Jean-Paul Sartre", "Sartre")
    assert not M.contains("Romeo and Juliet", "Rome")  # a word inside another word
    assert M.contains("It is Roma.", ["Rome", "Roma"])  # aliases
    assert not M.contains("Rome", []) and not M.contains("Rome", ["", ""])


def test_edit_success_old_target_and_nested_targets() -> None:
    assert not M.edit_success("Paris, not London", ["Paris"], ["London"])  # the old value present
    assert M.edit_success("It is Roma.", ["Rome", "Roma"], ["Milan"])
    assert not M.edit_success("Let us say US", ["USA"], ["US"])
    assert M.edit_success("Let us say USA", ["USA"], ["US"])
    # new inside old: "Paris Hilton" is the old answer, not the new one
    assert not M.edit_success("Paris Hilton", ["Paris"], ["Paris Hilton"])
    assert M.edit_success("Paris", ["Paris"], ["Paris Hilton"])
    # old inside new: "Paris Hilton" is the new answer; its "Paris" is not the old one
    assert M.edit_success("Paris Hilton", ["Paris Hilton"], ["Paris"])
    assert not M.edit_success("Paris Hilton in Paris", ["Paris Hilton"], ["Paris"])
    assert M.edit_success("Romeo lives in Rome", "Rome", "Romeo and Juliet")
    assert M.presence("Let us go", "US", "us") == (False, True)


def test_lexical_edit_score_uses_the_same_matcher() -> None:
    assert M.lexical_edit_score("Romeo", "Rome", "Milan", True) == 0.0  # no substring match
    assert M.lexical_edit_score("let us go", "US", "Canada", True) == 0.0
    assert M.lexical_edit_score("Paris Hilton", "Paris", "Paris Hilton", True) == 0.0
    assert M.lexical_edit_score("Paris Hilton", "Paris", "Paris Hilton", False) == 1.0


def test_exact_match_first_sentence_normalised() -> None:
    assert M.exact_match("Paris. It is the capital.", ["paris"])
    assert M.exact_match("The Paris", ["Paris"])  # articles dropped
    assert not M.exact_match("Paris is nice", ["Paris"])
    assert M.exact_match("3.5", ["3.5"])  # a decimal point is not a sentence end


def test_edit_success_and_unchanged() -> None:
    assert M.edit_success("English", ["English"], ["French"])
    assert not M.edit_success("English or French", ["English"], ["French"])
    assert not M.edit_success("Spanish", ["English"], ["French"])
    assert M.edit_success("AUS it is", ["Australia", "AUS"])
    assert M.unchanged(" a  b\n", "a b") and not M.unchanged("a b", "a c")


def test_ngram_entropy_by_hand() -> None:
    # bigrams of "a b a b": (a,b) x2, (b,a) x1 -> H = 0.918296; trigrams (a,b,a), (b,a,b) -> H = 1
    h2 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert M.ngram_entropy("a b a b") == pytest.approx((2 / 3 * h2 + 4 / 3 * 1.0) / 2)
    assert M.ngram_entropy("x") == 0.0
    assert M.ngram_entropy("the the the the the") == 0.0
    assert M.ngram_entropy("one two three four five") > M.ngram_entropy("one two one two one")


def test_rouge1_by_hand() -> None:
    assert M.rouge1_f("the cat sat", "the cat ran away") == pytest.approx(4 / 7)  # P=2/3, R=2/4
    assert M.rouge1_f("a a b", "a b b") == pytest.approx(2 / 3)  # clipped overlap 2 of 3 each
    assert M.rouge1_f("", "x") == 0.0


def test_postedit_masking_and_scores() -> None:
    assert M.mask("She speaks ENGLISH.", "English") == "she speaks mask."
    # in scope, the edit itself is masked away: same style scores 1
    assert M.lexical_retention("She speaks English fluently", "She speaks French fluently", "English", "French",
                               True) == pytest.approx(1.0)
    assert M.lexical_retention("She speaks English fluently", "She speaks French fluently", "English", "French",
                               False) == pytest.approx(0.75)  # unmasked: 3 of 4 words shared
    assert M.lexical_edit_score("English", "English", "French", True) == 1.0
    assert M.lexical_edit_score("English and French", "English", "French", True) == 0.5
    assert M.lexical_edit_score("Spanish", "English", "French", True) == 0.0
    assert M.lexical_edit_score("French", "English", "French", False) == 1.0
    assert M.lexical_edit_score("French, not English", "English", "French", False) == 0.5
    assert M.lexical_edit_score("German", "English", "French", False) == 0.0


def test_prf_hmean_percentiles() -> None:
    p, r, f = M.prf(3, 1, 2)
    assert (p, r) == (0.75, 0.6) and f == pytest.approx(2 / 3)
    assert M.prf(0, 0, 0) == (0.0, 0.0, 0.0)
    assert M.hmean([0.5, 1.0]) == pytest.approx(2 / 3)
    assert M.hmean([0.0, 1.0]) == 0.0 and math.isnan(M.hmean([]))
    assert M.AGGREGATES["p50"]([1, 2, 3, 4]) == 2.5
    assert M.AGGREGATES["p95"](list(range(101))) == pytest.approx(95)
    assert M.aggregate("latency", [10, 30, 20]) == 20  # latency aggregates as p50
    assert M.aggregate("reliability", [1, 0, 1, 1]) == 0.75


def test_every_metric_declares_direction_and_aggregation() -> None:
    for m in M.METRICS.values():
        assert m.aggregate in M.AGGREGATES and m.description
    assert not M.METRICS["latency"].higher_is_better and not M.METRICS["token_overhead"].higher_is_better
    assert M.METRICS["locality"].higher_is_better


def test_gate_counts_by_hand() -> None:
    from bbedit.evaluation.cases import Case, Probe
    from bbedit.evaluation.tasks.editing import Item, gate_counts
    from bbedit.routing import Route
    from bbedit.types import Edit, GateDecision

    a = Edit(subject="A", prompt="A is in", target_new="X", id="a")
    b = Edit(subject="B", prompt="B is in", target_new="Y", id="b")
    case = Case("a", (a,), ())
    items = [Item(case, Probe("A is in", "reliability")), Item(case, Probe("A lies in", "generalization")),
             Item(case, Probe("Where is A?", "generalization")), Item(case, Probe("C is in", "locality"))]
    routes = [Route(it.probe.text, GateDecision(e, 1.0 if e else 0.0, ())) for it, e in zip(items, [a, b, None, b], strict=True)]
    # 1 right, 1 wrong edit, 1 missed, 1 false alarm
    g = gate_counts(items, routes)
    assert g["gate_precision"] == pytest.approx(1 / 3) and g["gate_recall"] == pytest.approx(1 / 3)
    assert g["gate_f1"] == pytest.approx(1 / 3) and g["gate_routed_out_of_scope"] == 1.0


def test_semantic_retention_masks_targets(embedder) -> None:  # type: ignore[no-untyped-def]
    from bbedit.evaluation.cases import Case, Probe
    from bbedit.evaluation.tasks.editing import Item, semantic_retention
    from bbedit.types import Completion, Edit

    e = Edit(subject="Danielle Darrieux", prompt="The mother tongue of Danielle Darrieux is", target_new="English",
             target_old="French", id="e")
    case = Case("e", (e,), ())
    items = [Item(case, Probe("q", "reliability")), Item(case, Probe("q2", "locality"))]
    edited = [Completion("Her mother tongue is English."), Completion("He speaks Italian.")]
    original = [Completion("Her mother tongue is French."), Completion("The weather is cold today.")]
    same, other = semantic_retention(items, edited, original)
    assert same == pytest.approx(1.0, abs=1e-4)  # only the masked targets differed
    assert other < 0.5


def test_strict_success_refuses_an_answer_that_keeps_the_unedited_value() -> None:
    q = "Who is the CEO of Veltrix Dynamics?"
    unedited = "The CEO of Veltrix Dynamics is Elena Veltrix."
    both = "Priya Raman. The CEO of Veltrix Dynamics is Elena Veltrix."
    assert M.edit_success(both, "Priya Raman")  # containment judging passes it
    assert not M.strict_edit_success(both, "Priya Raman", (), unedited, q, ["Veltrix Dynamics"])
    assert M.strict_edit_success("The CEO of Veltrix Dynamics is Priya Raman.", "Priya Raman", (), unedited, q,
                                 ["Veltrix Dynamics"])
    assert not M.strict_edit_success("Rome, France.", "Rome", "Paris", "The Eiffel Tower is in Paris, France.",
                                     "Where is the Eiffel Tower?", ["Eiffel Tower"])
    # a number is no rival to a name: "born in 1879" keeps a country edit right
    assert M.strict_edit_success("Einstein was born in Canada in 1879.", "Canada", "Germany",
                                 "Einstein was born in Germany in 1879.", "Where was Einstein born?", ["Einstein"])
    assert not M.strict_edit_success("No idea.", "Canada", "Germany")


def test_an_old_value_inside_the_subjects_name_is_not_asserted() -> None:
    answer = "The Toyota Cresta is developed by BMW."
    assert not M.edit_success(answer, "BMW", "Toyota")  # without the subject's name: Toyota counts
    assert M.edit_success(answer, "BMW", "Toyota", ["Toyota Cresta"])
    assert not M.edit_success(answer + " Toyota built it.", "BMW", "Toyota", ["Toyota Cresta"])  # outside it
    assert M.strict_edit_success(answer, "BMW", "Toyota", None, "", ["Toyota Cresta"])
    assert not M.edit_success("Turkey.", "Romania", "Turkey", ["Turkey"])  # the name itself is the old value
