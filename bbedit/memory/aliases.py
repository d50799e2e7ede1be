"""Other names of well-known things: "UK" and "Britain" for "United Kingdom", "NYC" for "New York City".

A user writes an edit about "the prime minister of the United Kingdom" and asks "who leads the UK
government?". The subject index (:class:`bbedit.memory.subjects.SubjectIndex`) finds a subject only
by the names the edit carries, so the memory also indexes the other names this table knows for them
(``EditMemory(known_aliases=False)`` turns that off). The edit itself is not changed.

The table (``known_aliases.json``) is built from training data only: PopQA's answers with their alias
lists (``../shared/data/popqa/popqa_test.json``), by ``python -m bbedit.memory.build_aliases``. PopQA
merges the aliases of every accepted answer into one list, so an alias is kept only when it comes with
its answer in at least 90% of that answer's questions (and the answer has at least three), and when at
least 60% of the questions that list it are that answer's. An answer whose list holds another answer's
own name is a merged list and gives no aliases at all ("Austria" under the Holy Roman Empire). Common
words once lower-cased and not written as an acronym ("can" for Canada), codes of two letters or fewer
that are not upper case in text and bare surnames are left out. A few countries whose aliases PopQA
leaves ambiguous are written out (:data:`bbedit.memory.build_aliases.EXTRA`). The table is not free of
noise: a merged list that names no other answer passes ("Delhi Sultanate" under the Tughlaq dynasty).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from bbedit.memory.subjects import name_key

ALIASES_FILE = Path(__file__).with_name("known_aliases.json")


@lru_cache(maxsize=1)
def _table() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Name key -> every name of its group (the shipped table; empty when the file is missing)."""
    try:
        groups = json.loads(ALIASES_FILE.read_text(encoding="utf-8"))["groups"]
    except (OSError, ValueError, KeyError):
        return {}
    out: dict[tuple[str, ...], tuple[str, ...]] = {}
    for group in groups:
        for name in group:
            if key := name_key(name):
                out[key] = tuple(group)
    return out


def known_aliases(names: Iterable[str]) -> tuple[str, ...]:
    """The other names the table knows for any of ``names`` (a subject and its aliases), not already
    among them; ``()`` for names it does not know."""
    names = list(names)
    have = {name_key(n) for n in names}
    table = _table()
    out: dict[tuple[str, ...], str] = {}
    for n in names:
        for other in table.get(name_key(n), ()):
            k = name_key(other)
            if k and k not in have:
                out.setdefault(k, other)
    return tuple(out.values())


__all__ = ["ALIASES_FILE", "known_aliases"]
