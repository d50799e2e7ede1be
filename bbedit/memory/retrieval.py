"""What one retrieval from an :class:`~bbedit.memory.memory.EditMemory` returns, and where a subject sits in a text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bbedit.memory.subjects import SubjectMatch, tokens
from bbedit.types import Edit, Hit


def subject_span(text: str, names: Sequence[str]) -> tuple[int, int] | None:
    """Character span of the first of ``names`` found in ``text`` (token-wise, case-insensitive)."""
    toks = tokens(text)
    keys = [tuple(t for t, _, _ in tokens(n)) for n in names]
    for key in keys:
        if not key:
            continue
        for i in range(len(toks) - len(key) + 1):
            if tuple(t for t, _, _ in toks[i:i + len(key)]) == key:
                return toks[i][1], toks[i + len(key) - 1][2]
    return None


@dataclass(frozen=True)
class Retrieval:
    """Everything the memory knows about one query, computed with one embedding call.

    ``hits`` are the nearest edits by meaning; ``matches`` the subject names the
    query contains; ``context`` maps each matched span to the embedding of the
    query without it (what is said *about* the subject); ``seconds`` the time taken.
    """

    query: str
    vector: np.ndarray
    hits: list[Hit]
    matches: list[SubjectMatch]
    context: dict[tuple[int, int], np.ndarray]
    seconds: float = 0.0
    edits_by_row: dict[int, Edit] = field(default_factory=dict)
