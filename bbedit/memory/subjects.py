"""Finding edit subjects (and their aliases) named in a query.

Matching is on word tokens, case- and accent-insensitive, so "Lyon's twin
city" names "Lyon" and "PARIS" names "Paris", but "Parisian" does not. A
leading "the" is optional ("Beatles" names "The Beatles"). An acronym that is a common word once
lower-cased ("US", "WHO", "IT") is found only as written: "who" and "us" name nothing. Each match also
records whether its case was exact and whether it looks like part of a longer
proper name ("Abraham" inside "Abraham Lincoln"), which the scope gate uses.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

_WORD = re.compile(r"\w+", re.UNICODE)
# Words that an acronym must not be mistaken for once lower-cased ("us" for "US", "it" for "IT").
COMMON_WORDS = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "de", "del", "der", "des", "di", "do", "du", "el",
    "for", "go", "he", "her", "him", "his", "i", "if", "in", "is", "it", "its", "la", "las", "le", "les", "los",
    "me", "my", "no", "of", "on", "or", "our", "she", "so", "than", "that", "the", "their", "them", "they",
    "this", "to", "up", "us", "was", "we", "what", "when", "where", "who", "why", "you"])


def case_bound(name: str) -> bool:
    """Whether ``name`` is an acronym that reads as a common word in lower case ("US", "WHO"): such a
    name is found only as written."""
    return name.isupper() and " ".join(name_key(name)) in COMMON_WORDS


def fold(token: str) -> str:
    """Lower-case and strip accents from one token."""
    t = unicodedata.normalize("NFKD", token.casefold())
    return "".join(c for c in t if not unicodedata.combining(c))


def tokens(text: str) -> list[tuple[str, int, int]]:
    """Word tokens of ``text`` as (folded token, start, end) character spans."""
    return [(fold(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]


def name_key(name: str) -> tuple[str, ...]:
    """The folded token tuple that identifies a subject name."""
    return tuple(t for t, _, _ in tokens(name))


def named_in(text: str, names: Iterable[str]) -> str | None:
    """The first of ``names`` that ``text`` names (the same words, ignoring case and accents; a
    leading "the" is optional, as in :class:`SubjectIndex`), or None."""
    toks = tuple(t for t, _, _ in tokens(text))
    for name in names:
        key = name_key(name)
        keys = (key, key[1:]) if len(key) > 1 and key[0] == "the" else (key,)
        if any(k and any(toks[i:i + len(k)] == k for i in range(len(toks) - len(k) + 1)) for k in keys):
            return name
    return None


def _grams(text: str) -> frozenset[str]:
    padded = f" {text} "
    return frozenset(padded[i:i + 3] for i in range(len(padded) - 2))


_NUMBERED = re.compile(r"\d|^[ivxlcdm]+$")


def _numbers(words: Iterable[str]) -> frozenset[str]:
    """The words that number a name ("II", "643", "A320", "8"): a name that differs in one of them is
    another thing, however alike it is spelt."""
    return frozenset(w for w in words if _NUMBERED.search(w))


class NameSpeller:
    """How closely some run of a query's words spells a name, for names the query does not name exactly
    ("Seabiscusuit" for "Seabiscuit", "Derek Whiteheads" for "Derek Whitehead"): the best Jaccard
    similarity of character trigrams between the folded name and a run of as many words, one fewer or
    one more (0..1), among runs with the same numbering words (0 for "Clement XII" against "Clement XIII",
    "Bundesautobahn 4" against "Bundesautobahn 643"). The runs' trigrams are computed once per query, for
    every name asked about."""

    def __init__(self, text: str) -> None:
        self.words = [t for t, _, _ in tokens(text)]
        self._runs: dict[int, list[tuple[frozenset[str], frozenset[str]]]] = {}

    def _of(self, n: int) -> list[tuple[frozenset[str], frozenset[str]]]:
        if n not in self._runs:
            w = self.words
            self._runs[n] = [(_grams(" ".join(w[i:i + n])), _numbers(w[i:i + n])) for i in range(len(w) - n + 1)]
        return self._runs[n]

    def similarity(self, names: Iterable[str]) -> float:
        best = 0.0
        for name in names:
            key = name_key(name)
            for k in ((key, key[1:]) if len(key) > 1 and key[0] == "the" else (key,)):
                if not k:
                    continue
                g, numbered = _grams(" ".join(k)), _numbers(k)
                for n in {max(1, len(k) - 1), len(k), len(k) + 1}:
                    for run, run_numbered in self._of(n):
                        if run_numbered == numbered:
                            best = max(best, len(g & run) / len(g | run))
        return best


@dataclass(frozen=True)
class SubjectMatch:
    """A subject name of edit row ``row`` found in a query at ``text[start:end]``."""

    row: int
    start: int
    end: int
    n_tokens: int
    case_exact: bool
    proper_ext: bool


class SubjectIndex:
    """A token n-gram table from subject names to the rows of the edits that have them."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, ...], set[int]] = defaultdict(set)
        # row -> (key, name, found only as written) for each of its names
        self._names: dict[int, list[tuple[tuple[str, ...], str, bool]]] = {}
        self._bound: Counter[tuple[str, ...]] = Counter()  # keys of names found only as written ("US")
        self.max_len = 1

    def __len__(self) -> int:
        return len(self._names)

    def _keys(self, name: str) -> list[tuple[str, ...]]:
        key = name_key(name)
        if not key:
            return []
        keys = [key]
        if len(key) > 1 and key[0] == "the":
            keys.append(key[1:])
        return keys

    def add(self, row: int, names: Iterable[str], exact: Iterable[str] = ()) -> None:
        """Index the names of edit ``row`` (replacing any it had). Names also in ``exact`` are found only
        as written, like an acronym that is a common word ("NED" from the alias table is not "Ned")."""
        self.remove(row)
        only_written = frozenset(exact)
        entries = []
        for name in names:
            written = case_bound(name) or name in only_written
            for key in self._keys(name):
                self._rows[key].add(row)
                entries.append((key, name, written))
                if written:
                    self._bound[key] += 1
                self.max_len = max(self.max_len, len(key))
        self._names[row] = entries

    def remove(self, row: int) -> None:
        """Forget edit ``row`` (no error if unknown)."""
        for key, _, written in self._names.pop(row, []):
            if written:
                self._bound[key] -= 1
                if self._bound[key] <= 0:
                    del self._bound[key]
            rows = self._rows.get(key)
            if rows is not None:
                rows.discard(row)
                if not rows:
                    del self._rows[key]

    def rows_with_name(self, name: str) -> set[int]:
        """Rows whose subject or an alias is exactly ``name`` (after folding)."""
        out: set[int] = set()
        for key in self._keys(name):
            out |= self._rows.get(key, set())
        return out

    def match(self, text: str) -> list[SubjectMatch]:
        """Every indexed name found in ``text``; longest match first for each row."""
        toks = tokens(text)
        best: dict[int, SubjectMatch] = {}
        n = len(toks)
        for i in range(n):
            for j in range(i + 1, min(n, i + self.max_len) + 1):
                key = tuple(t for t, _, _ in toks[i:j])
                rows = self._rows.get(key)
                if not rows:
                    continue
                start, end = toks[i][1], toks[j - 1][2]
                surface = text[start:end]
                case_exact = any(_same_words(surface, nm) for row in rows for k, nm, _ in self._names.get(row, ())
                                 if k == key)
                ext = _proper_extension(text, toks, i, j)
                for row in rows:
                    if key in self._bound and not any(k == key and (not written or _same_words(surface, nm))
                                                      for k, nm, written in self._names.get(row, ())):
                        continue  # "us" does not name "US"
                    old = best.get(row)
                    if old is None or j - i > old.n_tokens:
                        best[row] = SubjectMatch(row, start, end, j - i, case_exact, ext)
        return sorted(best.values(), key=lambda m: -m.n_tokens)


def _same_words(surface: str, name: str) -> bool:
    """Whether the words of ``surface`` are the name's words with the same case (ignoring punctuation
    and spacing, "U.S." vs "U.S"); the name's optional leading "The" may be missing from the surface."""
    said, named = _WORD.findall(surface), _WORD.findall(name)
    return said == named[len(named) - len(said):]


def _capitalised(tok: str) -> bool:
    return tok[:1].isupper()


def _proper_extension(text: str, toks: list[tuple[str, int, int]], i: int, j: int) -> bool:
    """True if the match at tokens i..j is glued to a neighbouring capitalised word, or followed by a
    number.

    "Abraham" in "Abraham Lincoln" is, and "iPhone" in "iPhone 8"; "Lyon" in "Lyon's twin city" and in
    "The mayor of Lyon" is not (a possessive "s" and sentence-initial words
    do not count).
    """
    if j < len(toks):
        nxt = text[toks[j][1]:toks[j][2]]
        gap = text[toks[j - 1][2]:toks[j][1]]
        if gap.strip() == "" and (_capitalised(nxt) or any(c.isdigit() for c in nxt)):  # "iPhone 8"
            return True
    if i > 0:
        prev = text[toks[i - 1][1]:toks[i - 1][2]]
        gap = text[toks[i - 1][2]:toks[i][1]]
        sentence_start = i - 1 == 0 or text[: toks[i - 1][1]].rstrip()[-1:] in (".", "?", "!", ":")
        if gap.strip() == "" and _capitalised(prev) and not sentence_start:
            return True
    return False
