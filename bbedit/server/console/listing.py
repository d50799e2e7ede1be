"""The Edits page's table: a snapshot of a namespace's edits, rebuilt only when the memory's version
moves, searched and sorted in memory, served a page at a time (fast with 100k edits: see
``eval/console_bench.py``). Each edit's search text is kept across snapshots, so a write costs the next
view one pass over the list, not a rebuild of every edit's text."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bbedit.types import Edit

SORTS = {"newest": "Newest first", "oldest": "Oldest first", "subject": "Subject (A–Z)", "hits": "Most hits (24 h)"}
PAGE_SIZES = (25, 50, 100, 200)


@dataclass(frozen=True)
class Row:
    """One edit of the table: whether it is in force and, if not, the edit that replaced it."""

    edit: Edit
    active: bool
    superseded_by: str | None


def _haystack(e: Edit) -> str:
    return "\n".join((e.id, e.subject, *e.aliases, e.prompt, e.target_new, e.target_old or "")).casefold()


class _Snapshot:
    def __init__(self, version: int, edits: list[Edit], inactive: dict[str, str | None],
                 texts: dict[str, tuple[Edit, str]]) -> None:
        self.version, self.edits, self.inactive, self._texts = version, edits, inactive, texts
        self._haystacks: list[str] | None = None
        self._by_subject: list[int] | None = None
        self._lock = threading.Lock()

    def row(self, i: int) -> Row:
        e = self.edits[i]
        return Row(e, e.id not in self.inactive, self.inactive.get(e.id))

    def haystacks(self) -> list[str]:
        """Each edit's search text (cached per edit across snapshots)."""
        with self._lock:
            if self._haystacks is None:
                out = []
                texts = self._texts
                for e in self.edits:
                    got = texts.get(e.id)
                    if got is None or (got[0] is not e and got[0] != e):
                        got = texts[e.id] = (e, _haystack(e))
                    out.append(got[1])
                self._haystacks = out
            return self._haystacks

    def by_subject(self) -> list[int]:
        """Row positions in subject order."""
        with self._lock:
            if self._by_subject is None:
                self._by_subject = sorted(range(len(self.edits)), key=lambda i: (self.edits[i].subject.casefold(), i))
            return self._by_subject


class EditTable:
    """Snapshots of the edits of each (memory, superseded or not), keyed by the memory's version."""

    def __init__(self) -> None:
        self._snaps: dict[tuple[str, bool], _Snapshot] = {}
        self._texts: dict[str, dict[str, tuple[Edit, str]]] = {}
        self._lock = threading.Lock()

    def snapshot(self, memory: Any, include_superseded: bool) -> _Snapshot:
        """The current snapshot (call in a worker thread: a rebuild reads the memory)."""
        memory.refresh()  # another process wrote: pick its rows up first
        where = f"{memory.location}#{memory.namespace}"
        key = (where, include_superseded)
        snap = self._snaps.get(key)
        if snap is not None and snap.version == memory.version:
            return snap
        with memory.lock:
            version = memory.version
            active = memory.list()
            inactive: dict[str, str | None] = {}
            if include_superseded:
                edits = memory.list(include_superseded=True)
                live = {e.id for e in active}
                by = {e.supersedes: e.id for e in edits if e.supersedes}
                inactive = {e.id: by.get(e.id) for e in edits if e.id not in live}
            else:
                edits = active
        with self._lock:
            texts = self._texts.setdefault(where, {})
            if len(texts) > 2 * max(len(edits), 1000):  # forget the texts of edits long gone
                texts.clear()
            snap = self._snaps[key] = _Snapshot(version, edits, inactive, texts)
        return snap

    def query(self, memory: Any, *, search: str = "", include_superseded: bool = False, sort: str = "newest",
              page: int = 1, per_page: int = 50, hits: Mapping[str, int] | None = None) -> dict[str, Any]:
        """One page of the table: ``rows``, ``total`` (edits matching), ``page``, ``pages``, ``all``. Every
        whitespace-separated word of ``search`` must occur (any case) in the id, subject, an alias, the
        prompt or a value."""
        snap = self.snapshot(memory, include_superseded)
        hits = hits or {}
        terms = search.casefold().split()
        order: Sequence[int] = snap.by_subject() if sort == "subject" else range(len(snap.edits))
        if terms:
            hay = snap.haystacks()
            for t in sorted(set(terms), key=len, reverse=True):  # the longest (rarest) first: later passes are short
                order = [i for i in order if t in hay[i]]
        if sort == "newest":
            order = order[::-1]
        elif sort == "hits":
            edits = snap.edits
            hit = sorted((i for i in order if edits[i].id in hits), key=lambda i: -hits[edits[i].id])
            taken = set(hit)
            order = hit + [i for i in reversed(order) if i not in taken]
        total = len(order)
        pages = max(1, -(-total // per_page))
        page = min(max(1, page), pages)
        start = (page - 1) * per_page
        return {"rows": [snap.row(i) for i in order[start:start + per_page]], "total": total, "page": page,
                "pages": pages, "all": len(snap.edits)}
