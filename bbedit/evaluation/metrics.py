"""Metrics for editing benchmarks; each says whether higher is better and how it aggregates.

Per-query scores are plain functions (tested on hand-computed examples);
:data:`METRICS` describes every metric a report may carry, and :func:`aggregate`
turns per-query scores into the reported number.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bbedit.editors.postedit.text import asserted_values

# ----------------------------------------------------------------------------- text matching

_WS = re.compile(r"\s+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """SQuAD-style answer normalisation: lower case, no accents, punctuation or articles."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().translate(_PUNCT)
    return _WS.sub(" ", _ARTICLES.sub(" ", text)).strip()


_ABBREV = re.compile(r"(?<![^\W_])((?:[^\W\d_]\.){2,})")  # "U.S." / "U.S.A." / "e.g."
_TOKEN = re.compile(r"[^\W_]+")


def _tokens(text: str) -> list[str]:
    """Words of ``text`` with their case: accents removed (NFKD), dotted abbreviations joined
    ("U.S." -> "US"), every other punctuation mark a word boundary ("Paris." -> "Paris",
    "Jean-Paul" -> "Jean", "Paul", "Bach's" -> "Bach", "s")."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = _ABBREV.sub(lambda m: m.group(1).replace(".", ""), text)
    return _TOKEN.findall(text)


def _is_acronym(word: str) -> bool:
    return len(word) >= 2 and word.isupper() and word.isalpha()


def _word_eq(answer_word: str, target_word: str) -> bool:
    """Case-folded equality, except that an acronym in the target ("US", "UK", "BMW") does not match an
    all-lower-case word, so "US" does not match "let us" (it does match "US", "U.S." and "Bmw")."""
    if answer_word.casefold() != target_word.casefold():
        return False
    return not (_is_acronym(target_word) and answer_word.islower())


_ARTICLE_WORDS = {"a", "an", "the"}
# a target's leading article may be missing from the answer ("The Netherlands" ~ "Netherlands"), except
# where the rest alone is a common word that would match ordinary text ("The Who", "The The", "A Ha")
_FUNCTION_WORDS = {"who", "what", "the", "a", "an", "it", "us", "we", "you", "they", "he", "she", "i", "me",
                   "him", "her", "them", "this", "that", "these", "those", "is", "be", "was", "are", "and", "or",
                   "of", "in", "on", "at", "to", "for", "by", "with", "from", "as", "so", "no", "not", "yes", "ha",
                   "band", "one", "all", "here", "there", "then", "now", "end", "way", "best", "other", "others"}


def _forms(target: str) -> list[list[str]]:
    """The word sequences that spell ``target``: its words, and without a leading article where that
    leaves more than a common word."""
    t = _tokens(target)
    forms = [t] if t else []
    if len(t) >= 2 and t[0].casefold() in _ARTICLE_WORDS and \
            not (len(t) == 2 and t[1].casefold() in _FUNCTION_WORDS):
        forms.append(t[1:])
    return forms


def _spans(words: Sequence[str], target: str) -> list[tuple[int, int]]:
    """Every ``(start, end)`` word span of ``words`` that spells ``target`` (see :func:`_forms`)."""
    out = []
    for t in _forms(target):
        n = len(t)
        out += [(i, i + n) for i in range(len(words) - n + 1) if all(_word_eq(words[i + j], t[j]) for j in range(n))]
    return sorted(set(out))


def _as_list(targets: str | Iterable[str]) -> list[str]:
    return [targets] if isinstance(targets, str) else [t for t in targets if t]


def contains(answer: str, target: str | Iterable[str]) -> bool:
    """``target`` (or any of a list of aliases) occurs in ``answer`` as a run of whole words.

    Matching is on words, not characters: accents are ignored; case is ignored except that an acronym
    (an all-capitals target word of two or more letters, "US") does not match an all-lower-case word
    ("the US", "the U.S." and "Bmw" match, "let us" does not); every punctuation mark is a word
    boundary ("Paris." and "Paris," match "Paris", "French-Canadian" holds "French"; "Rome" does not
    match "Romeo"). Articles in the answer are words like any other. A target's leading article may be
    missing from the answer ("The Netherlands" matches "Netherlands"), unless the rest of the target
    alone is a common word: "The Who" does not match "who is" (give "Who" as an alias where it should).
    An empty target matches nothing.
    """
    words = _tokens(answer)
    return any(_spans(words, t) for t in _as_list(target))


def contains_any(answer: str, targets: Iterable[str]) -> bool:
    """:func:`contains` for any of ``targets``."""
    return contains(answer, list(targets))


def exact_match(answer: str, targets: Iterable[str]) -> bool:
    """The normalised answer equals a normalised target (its first line, up to the first full stop
    that ends a sentence, so "Paris." and "Paris. It is..." both match "Paris")."""
    first = answer.strip().split("\n", 1)[0]
    first = re.split(r"(?<=[a-z0-9\)])\.\s", first, maxsplit=1)[0]
    a = normalize(first)
    return any(a == normalize(t) for t in targets if normalize(t))


def _inside(span: tuple[int, int], others: Sequence[tuple[int, int]]) -> bool:
    return any(o[0] <= span[0] and span[1] <= o[1] and o != span for o in others)


def presence(answer: str, new: str | Iterable[str], old: str | Iterable[str] = (),
             names: Iterable[str] = ()) -> tuple[bool, bool]:
    """Whether a new and whether an old answer occur in ``answer`` (:func:`contains`), where an
    occurrence that lies inside a longer occurrence of the other side does not count: with new
    "Paris" and old "Paris Hilton", "Paris Hilton" holds the old answer only; with new "Paris
    Hilton" and old "Paris", it holds the new answer only. Nor does an old answer inside one of
    ``names`` (the subject's: "Toyota Cresta is developed by BMW" does not assert Toyota)."""
    words = _tokens(answer)
    new_spans = [s for t in _as_list(new) for s in _spans(words, t)]
    old_spans = [s for t in _as_list(old) for s in _spans(words, t)]
    name_spans = [s for t in names if t and t.strip() for s in _spans(words, t)]
    has_new = any(not _inside(s, old_spans) for s in new_spans)
    has_old = any(not _inside(s, new_spans) and not _inside(s, name_spans) for s in old_spans)
    return has_new, has_old


def edit_success(answer: str, new: str | Sequence[str], old: str | Sequence[str] = (),
                 names: Iterable[str] = ()) -> bool:
    """Generation-protocol success for an in-scope query: a new answer (or alias) appears and no old
    one does (outside the subject's ``names``), judged by :func:`presence`."""
    has_new, has_old = presence(answer, new, old, names)
    return has_new and not has_old


def strict_edit_success(answer: str, new: str | Sequence[str], old: str | Sequence[str] = (),
                        unedited: str | None = None, question: str = "", exclude: Iterable[str] = ()) -> bool:
    """Strict success for an in-scope query: a new answer (or alias) appears, and no competing value
    for the same fact does: neither an old answer nor the value the unedited answer gave for it
    (:func:`~bbedit.editors.postedit.text.asserted_values`, leaving out what ``exclude`` and the new
    answers hold; a competing value inside a name ``exclude`` holds, the subject's, does not count).
    "Priya Raman. The CEO of Veltrix is Elena Veltrix." fails when the unedited model said "Elena
    Veltrix", though containment judging (:func:`edit_success`) passes it."""
    new_l = _as_list(new)
    others = list(_as_list(old))
    if unedited:  # the value it gave for this fact (a number for a numeric one, else a name), and its appendages
        others += [v for v in asserted_values(unedited, new_l, question, exclude) if not contains(v, new_l)]
    has_new, has_old = presence(answer, new_l, others, exclude)
    return has_new and not has_old


def unchanged(answer: str, reference: str) -> bool:
    """Locality against the unedited system: the same answer, up to surrounding whitespace."""
    return _WS.sub(" ", answer).strip() == _WS.sub(" ", reference).strip()


# ----------------------------------------------------------------------------- fluency and style

def ngram_entropy(text: str, ns: Sequence[int] = (2, 3), weights: Sequence[float] = (2 / 3, 4 / 3)) -> float:
    """ROME's fluency measure: the weighted mean over n of the entropy (bits) of the text's
    n-gram frequency distribution (whitespace words, lower case). Repetitive text scores low."""
    words = text.lower().split()
    values = []
    for n, w in zip(ns, weights, strict=True):
        grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
        total = sum(grams.values())
        h = -sum(c / total * math.log2(c / total) for c in grams.values()) if total else 0.0
        values.append(w * h)
    return sum(values) / len(values)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def rouge1_f(hypothesis: str, reference: str) -> float:
    """ROUGE-1 F1 between two texts: clipped unigram overlap of lower-cased words."""
    h, r = Counter(_words(hypothesis)), Counter(_words(reference))
    overlap = sum((h & r).values())
    if not overlap:
        return 0.0
    p, rec = overlap / sum(h.values()), overlap / sum(r.values())
    return 2 * p * rec / (p + rec)


def mask(text: str, target: str | None, token: str = "mask") -> str:
    """``text`` lower-cased with every occurrence of ``target`` replaced by ``token`` (PostEdit's masking)."""
    text = text.lower()
    return text.replace(target.lower(), token) if target else text


def lexical_retention(edited: str, original: str, target_new: str | None, target_old: str | None,
                      in_scope: bool) -> float:
    """PostEdit's lexical retention: ROUGE-1 F1 of the edited answer against the original one,
    with the new target masked in the edited and the old one in the original for in-scope queries,
    so that making the edit itself costs nothing."""
    if in_scope:
        return rouge1_f(mask(edited, target_new), mask(original, target_old))
    return rouge1_f(edited.lower(), original.lower())


def lexical_edit_score(answer: str, target_new: str, target_old: str, in_scope: bool) -> float:
    """PostEdit's lexical edit score of one answer: in scope, 1 when it holds the new target and
    not the old, 0.5 with both, 0 without the new; out of scope the same with the roles swapped.
    Occurrences are judged as in :func:`edit_success` (whole words, acronyms by case), not as substrings."""
    has_new, has_old = presence(answer, target_new, target_old)
    want, unwanted = (has_new, has_old) if in_scope else (has_old, has_new)
    return 0.0 if not want else 0.5 if unwanted else 1.0


# ----------------------------------------------------------------------------- gate and aggregation

def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts (0 where undefined)."""
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def hmean(values: Sequence[float]) -> float:
    """Harmonic mean; 0 when any value is 0 (nan for no values)."""
    if not values:
        return float("nan")
    return 0.0 if any(v <= 0 for v in values) else len(values) / sum(1 / v for v in values)


def measured(values: Iterable[float | None]) -> list[float]:
    """The values that were measured: None and NaN (a latency of an answer replayed from the cache,
    which was measured in another run) are left out."""
    return [float(v) for v in values if v is not None and v == v]


def n_measured(values: Iterable[float | None]) -> int:
    """How many of ``values`` were measured (see :func:`measured`)."""
    return len(measured(values))


def _pct(q: float) -> Callable[[Sequence[float]], float]:
    def f(values: Sequence[float]) -> float:
        values = measured(values)
        if not values:
            return float("nan")
        s = sorted(values)
        pos = (len(s) - 1) * q / 100
        lo, hi = math.floor(pos), math.ceil(pos)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    return f


def _mean(values: Sequence[float]) -> float:
    v = measured(values)
    return sum(v) / len(v) if v else float("nan")


# every aggregate skips values that were not measured (NaN); NaN when none was
AGGREGATES: dict[str, Callable[[Sequence[float]], float]] = {
    "mean": _mean,
    "hmean": lambda v: hmean(measured(v)),
    "p50": _pct(50),
    "p95": _pct(95),
    "sum": lambda v: float(sum(measured(v))),
}


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    aggregate: str  # a key of AGGREGATES
    unit: str  # "rate" (0..1), "bits", "ms", "tokens", "f1"
    description: str


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("reliability", True, "mean", "rate", "the edit's own prompt gives the new answer"),
    Metric("generalization", True, "mean", "rate", "a paraphrase of the prompt gives the new answer"),
    Metric("locality", True, "mean", "rate", "an out-of-scope query's answer is unchanged vs. the unedited system"),
    Metric("locality_truth", True, "mean", "rate", "an out-of-scope query still gets its ground-truth answer"),
    Metric("portability", True, "mean", "rate", "a question that follows from the edit gets the implied answer"),
    Metric("multihop", True, "mean", "rate", "a multi-hop question over the edited facts gets the new answer"),
    Metric("fluency", True, "mean", "bits", "weighted 2/3-gram entropy of the answers (ROME)"),
    Metric("lexical_edit", True, "mean", "rate", "PostEdit lexical edit score (1 / 0.5 / 0 per answer)"),
    Metric("lexical_retention", True, "mean", "f1", "PostEdit ROUGE-1 F1 vs. the original answer, targets masked"),
    Metric("semantic_retention", True, "mean", "cosine", "PostEdit SBERT cosine vs. the original answer, targets masked"),
    Metric("gate_precision", True, "mean", "rate", "routed queries that went to a right edit"),
    Metric("gate_recall", True, "mean", "rate", "in-scope queries routed to a right edit"),
    Metric("gate_f1", True, "mean", "f1", "harmonic mean of gate precision and recall"),
    Metric("latency", False, "p50", "ms", "wall time of one answer, end to end"),
    Metric("token_overhead", False, "mean", "tokens", "extra prompt tokens an edited query costs"),
]}


def aggregate(name: str, values: Sequence[float]) -> float:
    """Aggregate per-query values of metric ``name`` the way the metric declares."""
    return AGGREGATES[METRICS[name].aggregate](list(values))
