"""SQLite rows of an edit memory: the durable source of truth.

Every write is one transaction committed with ``synchronous=FULL`` before the
call returns, so an acknowledged edit survives a crash. Embeddings are stored
next to each row, so the vector index is a cache that can always be rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bbedit.errors import InvalidEdit, MemoryCorrupt
from bbedit.types import Edit

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
DB_NAME = "edits.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS edits (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    superseded_by TEXT,
    emb BLOB NOT NULL,
    ctx BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Row:
    """One stored edit with its embeddings."""

    row: int
    edit: Edit
    active: bool
    superseded_by: str | None
    emb: np.ndarray
    ctx: np.ndarray


class EditStore:
    """The SQLite file of a memory directory, or an in-memory database when ``path`` is None.

    Raises :class:`MemoryCorrupt` when the file is not a readable bbedit database.
    """

    def __init__(self, path: str | os.PathLike[str] | None, dim: int = 0) -> None:
        self.path = Path(path) if path is not None else None
        self.dim = dim  # the embedding size rows must have; set by the memory once known
        # (version before, version after) of this connection's last write: lets the memory tell its own
        # writes from another process's
        self.last_write: tuple[str | None, str | None] = (None, None)
        self.lock = threading.RLock()
        target = ":memory:" if self.path is None else str(self.path)
        try:
            self.conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            if self.path is not None:
                self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(_SCHEMA)
            cols = {r[1] for r in self.conn.execute("PRAGMA table_info(edits)")}
        except sqlite3.DatabaseError as e:
            raise MemoryCorrupt(f"{target} is not a readable edit memory database: {e}") from e
        if not {"row", "id", "data", "active", "emb", "ctx"} <= cols:
            raise MemoryCorrupt(f"{target}: the edits table lacks bbedit's columns (found {sorted(cols)})")
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise MemoryCorrupt(f"{target}: schema version {version}, this bbedit reads {SCHEMA_VERSION}")

    # -- meta -------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self.lock:
            r = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if r is None else str(r[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # -- rows -------------------------------------------------------------------------------------
    @staticmethod
    def _decode_edit(row: int, id_: str, data: str) -> Edit:
        try:
            return Edit.from_dict(json.loads(data))
        except (json.JSONDecodeError, InvalidEdit, TypeError) as e:
            raise MemoryCorrupt(f"row {row} (edit {id_!r}) holds an unreadable edit: {e}") from e

    def _decode(self, r: tuple) -> Row:
        row, id_, data, active, sup_by, emb, ctx = r
        edit = self._decode_edit(row, id_, data)
        e_vec = np.frombuffer(emb, dtype=np.float32)
        c_vec = np.frombuffer(ctx, dtype=np.float32)
        if e_vec.shape != (self.dim,) or c_vec.shape != (self.dim,):
            raise MemoryCorrupt(f"row {row} (edit {id_!r}) has embeddings of the wrong size "
                                f"({e_vec.size}, {c_vec.size}; expected {self.dim})")
        return Row(int(row), edit, bool(active), sup_by, e_vec, c_vec)

    _COLS = "row, id, data, active, superseded_by, emb, ctx"

    def edits(self) -> list[Edit]:
        """Every stored edit, without reading the embeddings (which may be of another size)."""
        with self.lock:
            fetched = self.conn.execute("SELECT row, id, data FROM edits ORDER BY row").fetchall()
        return [self._decode_edit(*r) for r in fetched]

    def listing(self, active_only: bool = True) -> list[tuple[Edit, bool]]:
        """(edit, active) in insertion order, without reading the embeddings (what ``bbedit edits list``
        shows). Raises :class:`MemoryCorrupt` for an unreadable row."""
        q = "SELECT row, id, data, active FROM edits" + (" WHERE active=1" if active_only else "") + " ORDER BY row"
        with self.lock:
            fetched = self.conn.execute(q).fetchall()
        return [(self._decode_edit(r, i, d), bool(a)) for r, i, d, a in fetched]

    def rows(self, active_only: bool = False) -> Iterator[Row]:
        """All rows in insertion order."""
        q = f"SELECT {self._COLS} FROM edits" + (" WHERE active=1" if active_only else "") + " ORDER BY row"
        with self.lock:
            fetched = self.conn.execute(q).fetchall()
        for r in fetched:
            yield self._decode(r)

    def get(self, edit_id: str) -> Row | None:
        with self.lock:
            r = self.conn.execute(f"SELECT {self._COLS} FROM edits WHERE id=?", (edit_id,)).fetchone()
        return None if r is None else self._decode(r)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        with self.lock:
            for i in range(0, len(ids), 500):
                chunk = list(ids[i:i + 500])
                marks = ",".join("?" * len(chunk))
                out |= {r[0] for r in self.conn.execute(f"SELECT id FROM edits WHERE id IN ({marks})", chunk)}
        return out

    def count(self, active_only: bool = True) -> int:
        with self.lock:
            q = "SELECT COUNT(*) FROM edits" + (" WHERE active=1" if active_only else "")
            return int(self.conn.execute(q).fetchone()[0])

    def write(self, inserts: Sequence[tuple[Edit, np.ndarray, np.ndarray]],
              deactivate: Sequence[tuple[str, str]] = (), delete: Sequence[str] = (),
              replace: Sequence[tuple[Edit, np.ndarray, np.ndarray]] = ()) -> list[int]:
        """Apply one atomic change: insert rows, mark (old id, new id) superseded, delete ids,
        replace rows in place. Returns the new rows' numbers. Nothing is written if any step fails."""
        with self.lock:
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                before = cur.execute("SELECT value FROM meta WHERE key='version'").fetchone()
                new_rows = []
                for edit, emb, ctx in inserts:
                    cur.execute(
                        "INSERT INTO edits(id, data, active, emb, ctx) VALUES (?, ?, 1, ?, ?)",
                        (edit.id, json.dumps(edit.to_dict(), ensure_ascii=False),
                         np.asarray(emb, np.float32).tobytes(), np.asarray(ctx, np.float32).tobytes()))
                    new_rows.append(int(cur.lastrowid or 0))
                for old_id, new_id in deactivate:
                    cur.execute("UPDATE edits SET active=0, superseded_by=? WHERE id=?", (new_id, old_id))
                for edit, emb, ctx in replace:
                    cur.execute("UPDATE edits SET data=?, emb=?, ctx=? WHERE id=?",
                                (json.dumps(edit.to_dict(), ensure_ascii=False),
                                 np.asarray(emb, np.float32).tobytes(), np.asarray(ctx, np.float32).tobytes(),
                                 edit.id))
                for edit_id in delete:
                    cur.execute("DELETE FROM edits WHERE id=?", (edit_id,))
                cur.execute("INSERT INTO meta(key, value) VALUES ('version', '1') ON CONFLICT(key) "
                            "DO UPDATE SET value = CAST(value AS INTEGER) + 1")
                after = cur.execute("SELECT value FROM meta WHERE key='version'").fetchone()
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self.last_write = (None if before is None else str(before[0]), str(after[0]))
        return new_rows

    def version(self) -> str | None:
        """The write counter of the database (every committed write, from any process, increments it)."""
        return self.get_meta("version")

    def backup_to(self, path: Path) -> None:
        """Copy the whole database to ``path`` (a consistent snapshot)."""
        with self.lock:
            dst = sqlite3.connect(str(path))
            try:
                self.conn.backup(dst)
            finally:
                dst.close()

    def close(self) -> None:
        with self.lock:
            self.conn.close()
