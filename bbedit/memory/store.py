"""The rows of an edit memory, the durable source of truth, behind one storage seam.

Two stores implement it: :class:`SQLiteStore` (a file in the memory directory, the embedded default)
and :class:`bbedit.memory.pgstore.PostgresStore` (a PostgreSQL database that several processes on
several hosts share). Both keep the same tables:

- ``edits``: one row per edit of a namespace (its JSON, active flag, embeddings, and the store version
  that last changed it);
- ``history``: an append-only audit row per change (create, update, supersede, delete, revert,
  restore): who, when (the database's clock), the edit's state before and after;
- ``versions``: each namespace's write counter. Every committed write increments it, so a process
  tells its own writes from another's and catches up by reading what changed since the version it saw;
- ``meta``: settings per namespace (embedder, dimension) and the schema version.

Every write is one transaction, committed before the call returns, so an acknowledged edit survives a
crash. Embeddings are stored next to each row, so the search index is a cache that can be rebuilt.
The schema is versioned; a database written by an older bbedit is migrated when it is opened.
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
from typing import Any, ClassVar

import numpy as np

from bbedit.errors import ConfigError, InvalidEdit, MemoryCorrupt
from bbedit.types import Edit

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
DB_NAME = "edits.sqlite"
DEFAULT_NAMESPACE = "default"
OPS = ("create", "update", "supersede", "delete", "revert", "restore", "migrate")


def check_namespace(namespace: str) -> str:
    """``namespace`` if it is a usable name (1-64 letters, digits, ``-``, ``_``, ``.``); else ConfigError."""
    ok = isinstance(namespace, str) and 0 < len(namespace) <= 64 and all(
        c.isascii() and (c.isalnum() or c in "-_.") for c in namespace)
    if not ok:
        raise ConfigError(f"a namespace is 1-64 letters, digits, '-', '_' or '.', got {namespace!r}")
    return namespace


@dataclass(frozen=True)
class Row:
    """One stored edit with its embeddings."""

    row: int
    edit: Edit
    active: bool
    superseded_by: str | None
    emb: np.ndarray
    ctx: np.ndarray


@dataclass(frozen=True)
class State:
    """What an edit was at one moment: its fields, whether it was in force, what superseded it."""

    edit: Edit
    active: bool = True
    superseded_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"edit": self.edit.to_dict(), "active": self.active, "superseded_by": self.superseded_by}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> State:
        return State(Edit.from_dict(d["edit"]), bool(d["active"]), d.get("superseded_by"))


@dataclass(frozen=True)
class Change:
    """One audit row: ``op`` by ``actor`` at ``at`` (Unix seconds, the database's clock), committed as
    store version ``store_version``; ``before``/``after`` are None where the edit did not exist."""

    seq: int
    edit_id: str
    store_version: int
    op: str
    actor: str | None
    at: float
    before: State | None
    after: State | None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "edit_id": self.edit_id, "store_version": self.store_version, "op": self.op,
                "actor": self.actor, "at": self.at,
                "before": None if self.before is None else self.before.to_dict(),
                "after": None if self.after is None else self.after.to_dict()}


@dataclass
class Write:
    """One atomic change of a namespace.

    ``inserts``: new rows (edit, emb, ctx); ``deactivate``: (old id, new id) superseded;
    ``replace``: rows changed in place (edit, emb, ctx), recorded as updates unless the edit is
    unchanged (a re-embedding); ``delete``: ids; ``restore``: (id, state or None for absent, emb, ctx)
    set as given, recorded with ``op`` (revert or restore). ``actor`` names who asked.
    """

    inserts: Sequence[tuple[Edit, np.ndarray, np.ndarray]] = ()
    deactivate: Sequence[tuple[str, str]] = ()
    delete: Sequence[str] = ()
    replace: Sequence[tuple[Edit, np.ndarray, np.ndarray]] = ()
    restore: Sequence[tuple[str, State | None, np.ndarray | None, np.ndarray | None]] = ()
    op: str = "restore"
    actor: str | None = None


def _dump(edit: Edit) -> str:
    return json.dumps(edit.to_dict(), ensure_ascii=False)


class SQLStore:
    """The storage logic both databases share, written once; subclasses give the connection, the
    parameter style, the vector columns, the clock and the schema. Thread-safe (one lock per store).

    ``namespace`` picks one memory of the database; ``dim`` is the embedding size rows must have
    (set by the memory once known). ``last_write`` is (version before, version after) of this
    store's last write: the memory compares it with the version it reflects to tell whether another
    process wrote in between.
    """

    T: ClassVar[dict[str, str]] = {"edits": "edits", "history": "history", "versions": "versions", "meta": "meta"}
    NOW = "0"
    SNAPSHOT = ""  # the statement that makes a transaction's reads one snapshot, where it takes one
    location = ""

    def __init__(self, namespace: str = DEFAULT_NAMESPACE, dim: int = 0) -> None:
        self.namespace = check_namespace(namespace)
        self.dim = dim
        self.last_write: tuple[int, int] = (0, 0)
        self.lock = threading.RLock()

    # -- what subclasses provide ------------------------------------------------------------------
    def _q(self, sql: str) -> str:
        """``sql`` with its ``{edits}``-style table names filled in (and, for PostgreSQL, ``%s`` marks)."""
        return sql.format(**self.T)

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def _transaction(self) -> Any:
        """A context manager yielding a cursor-like ``execute(sql, params) -> rows`` callable, one
        transaction that commits on exit and rolls back on an exception."""
        raise NotImplementedError

    def _vec_in(self, v: np.ndarray) -> Any:
        return np.asarray(v, np.float32).tobytes()

    def _vec_out(self, v: Any) -> np.ndarray:
        return np.frombuffer(v, dtype=np.float32)

    # -- meta -------------------------------------------------------------------------------------
    def get_meta(self, key: str, namespace: str | None = None) -> str | None:
        ns = self.namespace if namespace is None else namespace
        with self.lock:
            r = self._fetch(self._q("SELECT value FROM {meta} WHERE namespace=? AND key=?"), (ns, key))
        return None if not r else str(r[0][0])

    def set_meta(self, key: str, value: str, namespace: str | None = None) -> None:
        ns = self.namespace if namespace is None else namespace
        with self.lock, self._transaction() as ex:
            ex(self._q("INSERT INTO {meta}(namespace, key, value) VALUES (?, ?, ?) "
                       "ON CONFLICT(namespace, key) DO UPDATE SET value=excluded.value"), (ns, key, value))

    def namespaces(self) -> list[str]:
        """Every namespace this database holds edits or settings for."""
        with self.lock:
            rows = self._fetch(self._q("SELECT DISTINCT namespace FROM {meta} WHERE namespace <> '' "
                                       "UNION SELECT DISTINCT namespace FROM {edits}"))
        return sorted(str(r[0]) for r in rows)

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
        e_vec, c_vec = self._vec_out(emb), self._vec_out(ctx)
        if e_vec.shape != (self.dim,) or c_vec.shape != (self.dim,):
            raise MemoryCorrupt(f"row {row} (edit {id_!r}) has embeddings of the wrong size "
                                f"({e_vec.size}, {c_vec.size}; expected {self.dim})")
        return Row(int(row), edit, bool(active), sup_by, e_vec, c_vec)

    _COLS = "rid, id, data, active, superseded_by, emb, ctx"

    def edits(self) -> list[Edit]:
        """Every stored edit, without reading the embeddings (which may be of another size)."""
        with self.lock:
            fetched = self._fetch(self._q("SELECT rid, id, data FROM {edits} WHERE namespace=? ORDER BY rid"),
                                  (self.namespace,))
        return [self._decode_edit(*r) for r in fetched]

    def listing(self, active_only: bool = True) -> list[tuple[Edit, bool]]:
        """(edit, active) in insertion order, without reading the embeddings (what ``bbedit edits list``
        shows). Raises :class:`MemoryCorrupt` for an unreadable row."""
        q = "SELECT rid, id, data, active FROM {edits} WHERE namespace=?" + (
            " AND active=1" if active_only else "") + " ORDER BY rid"
        with self.lock:
            fetched = self._fetch(self._q(q), (self.namespace,))
        return [(self._decode_edit(r, i, d), bool(a)) for r, i, d, a in fetched]

    def entries(self, active_only: bool = True) -> list[tuple[int, Edit]]:
        """(row, edit) in insertion order, without the embeddings."""
        q = "SELECT rid, id, data FROM {edits} WHERE namespace=?" + (" AND active=1" if active_only else "") + \
            " ORDER BY rid"
        with self.lock:
            fetched = self._fetch(self._q(q), (self.namespace,))
        return [(int(r), self._decode_edit(r, i, d)) for r, i, d in fetched]

    def rows(self, active_only: bool = False) -> Iterator[Row]:
        """All rows in insertion order."""
        q = f"SELECT {self._COLS} FROM {{edits}} WHERE namespace=?" + (
            " AND active=1" if active_only else "") + " ORDER BY rid"
        with self.lock:
            fetched = self._fetch(self._q(q), (self.namespace,))
        for r in fetched:
            yield self._decode(r)

    def get(self, edit_id: str) -> Row | None:
        with self.lock:
            r = self._fetch(self._q(f"SELECT {self._COLS} FROM {{edits}} WHERE namespace=? AND id=?"),
                            (self.namespace, edit_id))
        return None if not r else self._decode(r[0])

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        with self.lock:
            for i in range(0, len(ids), 500):
                chunk = list(ids[i:i + 500])
                marks = ",".join("?" * len(chunk))
                out |= {r[0] for r in self._fetch(
                    self._q(f"SELECT id FROM {{edits}} WHERE namespace=? AND id IN ({marks})"),
                    (self.namespace, *chunk))}
        return out

    def count(self, active_only: bool = True) -> int:
        q = "SELECT COUNT(*) FROM {edits} WHERE namespace=?" + (" AND active=1" if active_only else "")
        with self.lock:
            return int(self._fetch(self._q(q), (self.namespace,))[0][0])

    def version(self) -> int:
        """The namespace's write counter (every committed write, from any process, increments it)."""
        with self.lock:
            r = self._fetch(self._q("SELECT version FROM {versions} WHERE namespace=?"), (self.namespace,))
        return int(r[0][0]) if r else 0

    def changes_since(self, version: int) -> tuple[list[Row], list[str], int]:
        """What changed after store version ``version``: (the rows written since, in their current state;
        the ids deleted since and not written again; the version read at). One consistent snapshot."""
        with self.lock, self._transaction() as ex:
            if self.SNAPSHOT:
                ex(self.SNAPSHOT)
            now = ex(self._q("SELECT version FROM {versions} WHERE namespace=?"), (self.namespace,))
            rows = ex(self._q(f"SELECT {self._COLS} FROM {{edits}} WHERE namespace=? AND version>? ORDER BY rid"),
                      (self.namespace, version))
            gone = ex(self._q("SELECT DISTINCT edit_id FROM {history} WHERE namespace=? AND store_version>? "
                              "AND after IS NULL"), (self.namespace, version))
        decoded = [self._decode(r) for r in rows]
        present = {r.edit.id for r in decoded}
        return decoded, sorted(str(g[0]) for g in gone if g[0] not in present), int(now[0][0]) if now else 0

    # -- writing ----------------------------------------------------------------------------------
    def _state(self, ex: Any, edit_id: str) -> tuple[int, State] | None:
        r = ex(self._q("SELECT rid, data, active, superseded_by FROM {edits} WHERE namespace=? AND id=?"),
               (self.namespace, edit_id))
        if not r:
            return None
        rid, data, active, sup = r[0]
        return int(rid), State(self._decode_edit(rid, edit_id, data), bool(active), sup)

    def write(self, change: Write) -> list[int]:
        """Apply one atomic change (see :class:`Write`) and record each step in the history.
        Returns the inserted rows' numbers. Nothing is written if any step fails."""
        with self.lock, self._transaction() as ex:
            # the counter row is locked until commit, so writes commit in version order and the version
            # before this write is exactly v - 1 (a read before the increment could miss a write
            # committing in between)
            v = int(ex(self._q("INSERT INTO {versions}(namespace, version) VALUES (?, 1) ON CONFLICT(namespace) "
                               "DO UPDATE SET version={versions}.version+1 RETURNING version"),
                       (self.namespace,))[0][0])
            audit: list[tuple[str, str, State | None, State | None]] = []
            new_rows = self._insert_many(ex, [(State(e), emb, ctx) for e, emb, ctx in change.inserts], v)
            audit += [(e.id, "create", None, State(e)) for e, _, _ in change.inserts]
            for old_id, new_id in change.deactivate:
                old = self._state(ex, old_id)
                ex(self._q("UPDATE {edits} SET active=0, superseded_by=?, version=? WHERE namespace=? AND id=?"),
                   (new_id, v, self.namespace, old_id))
                if old is not None:
                    audit.append((old_id, "supersede", old[1], State(old[1].edit, False, new_id)))
            for edit, emb, ctx in change.replace:
                old = self._state(ex, edit.id)
                ex(self._q("UPDATE {edits} SET data=?, emb=?, ctx=?, version=? WHERE namespace=? AND id=?"),
                   (_dump(edit), self._vec_in(emb), self._vec_in(ctx), v, self.namespace, edit.id))
                if old is not None and old[1].edit != edit:
                    audit.append((edit.id, "update", old[1], State(edit, old[1].active, old[1].superseded_by)))
            for edit_id in change.delete:
                old = self._state(ex, edit_id)
                ex(self._q("DELETE FROM {edits} WHERE namespace=? AND id=?"), (self.namespace, edit_id))
                if old is not None:
                    audit.append((edit_id, "delete", old[1], None))
            for edit_id, state, r_emb, r_ctx in change.restore:
                old = self._state(ex, edit_id)
                if state is None:
                    ex(self._q("DELETE FROM {edits} WHERE namespace=? AND id=?"), (self.namespace, edit_id))
                elif old is None or r_emb is not None:
                    if old is not None:
                        ex(self._q("DELETE FROM {edits} WHERE namespace=? AND id=?"), (self.namespace, edit_id))
                    if r_emb is None or r_ctx is None:
                        raise ValueError(f"restoring edit {edit_id!r} needs its embeddings")
                    new_rows.append(self._insert(ex, state, r_emb, r_ctx, v))
                else:
                    ex(self._q("UPDATE {edits} SET active=?, superseded_by=?, version=? WHERE namespace=? AND id=?"),
                       (int(state.active), state.superseded_by, v, self.namespace, edit_id))
                audit.append((edit_id, change.op, None if old is None else old[1], state))
            self._many(ex, self._q(f"INSERT INTO {{history}}(namespace, edit_id, store_version, op, actor, at, before, "
                                   f"after) VALUES (?, ?, ?, ?, ?, {self.NOW}, ?, ?)"),
                       [(self.namespace, edit_id, v, op, change.actor,
                         None if before is None else json.dumps(before.to_dict(), ensure_ascii=False),
                         None if after is None else json.dumps(after.to_dict(), ensure_ascii=False))
                        for edit_id, op, before, after in audit])
            self._notify(ex, v)
        self.last_write = (v - 1, v)
        return new_rows

    _INSERT = ("INSERT INTO {edits}(namespace, id, data, active, superseded_by, emb, ctx, version) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING rid")

    def _row_params(self, state: State, emb: np.ndarray, ctx: np.ndarray, v: int) -> tuple:
        return (self.namespace, state.edit.id, _dump(state.edit), int(state.active), state.superseded_by,
                self._vec_in(emb), self._vec_in(ctx), v)

    def _insert(self, ex: Any, state: State, emb: np.ndarray, ctx: np.ndarray, v: int) -> int:
        return int(ex(self._q(self._INSERT), self._row_params(state, emb, ctx, v))[0][0])

    def _insert_many(self, ex: Any, items: Sequence[tuple[State, np.ndarray, np.ndarray]], v: int) -> list[int]:
        """Insert rows, returning their numbers in order (one statement per row here; PostgreSQL
        pipelines them)."""
        return [self._insert(ex, s, emb, ctx, v) for s, emb, ctx in items]

    def _many(self, ex: Any, sql: str, params: Sequence[tuple]) -> None:
        for p in params:
            ex(sql, p)

    def _notify(self, ex: Any, version: int) -> None:
        """Tell other processes about a committed write (PostgreSQL); nothing for SQLite."""

    # -- history ----------------------------------------------------------------------------------
    def _change(self, r: tuple) -> Change:
        seq, edit_id, sv, op, actor, at, before, after = r
        try:
            b = None if before is None else State.from_dict(json.loads(before))
            a = None if after is None else State.from_dict(json.loads(after))
        except (json.JSONDecodeError, InvalidEdit, KeyError, TypeError) as e:
            raise MemoryCorrupt(f"history row {seq} (edit {edit_id!r}) is unreadable: {e}") from e
        return Change(int(seq), str(edit_id), int(sv), str(op), actor, float(at), b, a)

    _HCOLS = "seq, edit_id, store_version, op, actor, at, before, after"

    def history(self, edit_id: str | None = None, *, limit: int | None = None) -> list[Change]:
        """The audit rows of one edit (or of the whole namespace), oldest first."""
        q = f"SELECT {self._HCOLS} FROM {{history}} WHERE namespace=?"
        params: list[Any] = [self.namespace]
        if edit_id is not None:
            q += " AND edit_id=?"
            params.append(edit_id)
        if limit:  # the last ``limit`` only, newest first along an index: (namespace, edit_id, seq) for one edit;
            # for the namespace (namespace, store_version) (versions grow with seq), not a sort of the whole history
            q += (" ORDER BY seq DESC" if edit_id is not None else " ORDER BY store_version DESC, seq DESC") + " LIMIT ?"
            params.append(int(limit))
        else:
            q += " ORDER BY seq"
        with self.lock:
            fetched = self._fetch(self._q(q), params)
        out = [self._change(r) for r in fetched]
        return out[::-1] if limit else out

    def states_at(self, at: float) -> dict[str, State | None]:
        """Every edit the history knows, as it was at Unix time ``at`` (None: it did not exist then)."""
        with self.lock:
            fetched = self._fetch(self._q(
                f"SELECT {self._HCOLS} FROM {{history}} h WHERE namespace=? AND seq = (SELECT MAX(seq) FROM "
                "{history} WHERE namespace=h.namespace AND edit_id=h.edit_id AND at<=?)"), (self.namespace, at))
            ids = self._fetch(self._q("SELECT DISTINCT edit_id FROM {history} WHERE namespace=?"),
                              (self.namespace,))
        out: dict[str, State | None] = {str(r[0]): None for r in ids}
        for r in fetched:
            c = self._change(r)
            out[c.edit_id] = c.after
        return out

    def vectors(self, rows: Sequence[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """(prompt embedding, relation embedding) of these rows."""
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        with self.lock:
            for i in range(0, len(rows), 500):
                chunk = [int(r) for r in rows[i:i + 500]]
                marks = ",".join("?" * len(chunk))
                for rid, emb, ctx in self._fetch(self._q(f"SELECT rid, emb, ctx FROM {{edits}} WHERE rid IN ({marks})"),
                                                 chunk):
                    out[int(rid)] = (self._vec_out(emb), self._vec_out(ctx))
        return out

    def server_time(self) -> float:
        """The database's clock, in Unix seconds (what history rows are stamped with)."""
        with self.lock:
            return float(self._fetch(f"SELECT {self.NOW}")[0][0])

    def listen(self, on_change: Any, poll_s: float = 1.0) -> None:
        """Hear other processes' writes as they commit; SQLite has no such feed (a memory polls the
        write counter instead), so this does nothing here."""

    @property
    def listening(self) -> bool:
        return False

    def close(self) -> None:
        raise NotImplementedError


# -- SQLite ---------------------------------------------------------------------------------------
_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS edits (
    rid INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    superseded_by TEXT,
    emb BLOB NOT NULL,
    ctx BLOB NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    UNIQUE (namespace, id)
);
CREATE INDEX IF NOT EXISTS edits_version ON edits(namespace, version);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    edit_id TEXT NOT NULL,
    store_version INTEGER NOT NULL,
    op TEXT NOT NULL,
    actor TEXT,
    at REAL NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX IF NOT EXISTS history_edit ON history(namespace, edit_id, seq);
CREATE INDEX IF NOT EXISTS history_version ON history(namespace, store_version);
CREATE TABLE IF NOT EXISTS versions (namespace TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                                 PRIMARY KEY (namespace, key));
"""

# schema 1 (bbedit 0.1): edits(row, id UNIQUE, data, active, superseded_by, emb, ctx), meta(key, value)
# with the write counter as meta 'version'. Its edits become namespace 'default', each with one
# 'migrate' history row holding its state when it was migrated.
_SQLITE_FROM_1 = """
ALTER TABLE edits RENAME TO edits_v1;
ALTER TABLE meta RENAME TO meta_v1;
""" + _SQLITE_SCHEMA + """
INSERT INTO edits(rid, namespace, id, data, active, superseded_by, emb, ctx, version)
    SELECT row, 'default', id, data, active, superseded_by, emb, ctx,
           COALESCE((SELECT CAST(value AS INTEGER) FROM meta_v1 WHERE key='version'), 0) FROM edits_v1;
INSERT INTO versions(namespace, version)
    SELECT 'default', CAST(value AS INTEGER) FROM meta_v1 WHERE key='version';
INSERT INTO meta(namespace, key, value)
    SELECT 'default', key, value FROM meta_v1 WHERE key NOT IN ('version', 'schema_version');
INSERT INTO history(namespace, edit_id, store_version, op, actor, at, before, after)
    SELECT 'default', id, version, 'migrate', 'migration', (julianday('now') - 2440587.5) * 86400.0, NULL,
           json_object('edit', json(data), 'active', json(CASE WHEN active THEN 'true' ELSE 'false' END),
                       'superseded_by', superseded_by)
    FROM edits ORDER BY rid;
DROP TABLE edits_v1;
DROP TABLE meta_v1;
"""


class SQLiteStore(SQLStore):
    """The SQLite file of a memory directory (WAL, ``synchronous=FULL``), or an in-memory database
    when ``path`` is None. Raises :class:`MemoryCorrupt` when the file is not a readable bbedit
    database or was written by a newer bbedit."""

    NOW = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: str | os.PathLike[str] | None, dim: int = 0, namespace: str = DEFAULT_NAMESPACE) -> None:
        super().__init__(namespace, dim)
        self.path = Path(path) if path is not None else None
        target = ":memory:" if self.path is None else str(self.path)
        self.location = target
        try:
            self.conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            if self.path is not None:
                self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA busy_timeout=10000")
            self._migrate(target)
        except sqlite3.DatabaseError as e:
            raise MemoryCorrupt(f"{target} is not a readable edit memory database: {e}") from e

    def _migrate(self, target: str) -> None:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if "edits" not in tables:
                self._script(_SQLITE_SCHEMA)
                self._set_schema(SCHEMA_VERSION)
            else:
                version = self._schema_version(tables)
                if version > SCHEMA_VERSION:
                    raise MemoryCorrupt(f"{target}: schema version {version}, this bbedit reads up to "
                                        f"{SCHEMA_VERSION}; upgrade bbedit")
                if version == 1:
                    cols = {r[1] for r in self.conn.execute("PRAGMA table_info(edits)")}
                    if not {"row", "id", "data", "active", "emb", "ctx"} <= cols:
                        raise MemoryCorrupt(f"{target}: the edits table lacks bbedit's columns (found {sorted(cols)})")
                    log.info("migrating %s from schema 1 to %d", target, SCHEMA_VERSION)
                    self._script(_SQLITE_FROM_1)
                    self._set_schema(SCHEMA_VERSION)
                cols = {r[1] for r in self.conn.execute("PRAGMA table_info(edits)")}
                if not {"rid", "namespace", "id", "data", "active", "emb", "ctx", "version"} <= cols:
                    raise MemoryCorrupt(f"{target}: the edits table lacks bbedit's columns (found {sorted(cols)})")
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def _script(self, script: str) -> None:
        """Run ``script``'s statements inside the open transaction (``executescript`` would commit it)."""
        for stmt in script.split(";\n"):
            if stmt.strip():
                self.conn.execute(stmt)

    def _schema_version(self, tables: set[str]) -> int:
        if "versions" not in tables:  # schema 1 kept everything in a two-column meta table
            r = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() \
                if "meta" in tables else None
            return int(r[0]) if r else 1
        r = self.conn.execute("SELECT value FROM meta WHERE namespace='' AND key='schema_version'").fetchone()
        return int(r[0]) if r else SCHEMA_VERSION

    def _set_schema(self, version: int) -> None:
        self.conn.execute("INSERT INTO meta(namespace, key, value) VALUES ('', 'schema_version', ?) "
                          "ON CONFLICT(namespace, key) DO UPDATE SET value=excluded.value", (str(version),))

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> Any:
            self.cur = self.conn.cursor()
            self.cur.execute("BEGIN IMMEDIATE")
            return lambda sql, params=(): self.cur.execute(sql, tuple(params)).fetchall()

        def __exit__(self, exc_type: Any, *rest: Any) -> None:
            self.cur.execute("ROLLBACK" if exc_type is not None else "COMMIT")

    def _transaction(self) -> Any:
        return SQLiteStore._Tx(self.conn)

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


EditStore = SQLiteStore  # the name bbedit 0.1 used


def is_database_url(location: object) -> bool:
    """Whether a memory location names a database server rather than a directory."""
    return isinstance(location, str) and location.split("://", 1)[0].lower() in ("postgresql", "postgres")


def open_store(location: str | os.PathLike[str] | None, namespace: str = DEFAULT_NAMESPACE) -> SQLStore:
    """The store of a memory location: ``postgresql://...`` (a database server; ``?namespace=`` may pick
    the namespace) or a memory directory (its SQLite file), or None (SQLite in this process only)."""
    if is_database_url(location):
        from bbedit.memory.pgstore import PostgresStore

        return PostgresStore(str(location), namespace=namespace)
    return SQLiteStore(None if location is None else Path(location) / DB_NAME, namespace=namespace)
