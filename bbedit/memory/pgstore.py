"""The edit memory's rows in PostgreSQL with pgvector: one database that several processes on several
hosts share, each namespace a memory of its own.

Same tables and guarantees as the SQLite store (:mod:`bbedit.memory.store`), prefixed ``bbedit_`` so
that they can live in an application's database. Every committed write sends
``NOTIFY bbedit_changes, '<namespace>:<version>'``; :meth:`PostgresStore.listen` runs a thread that
hears them (reconnecting after a lost connection, and then asking for a catch-up), so that each
process updates its index within moments of another's write. Embeddings are pgvector ``vector``
columns; :meth:`PostgresStore.search` answers nearest-neighbour queries from an HNSW index in the
database, for memories too large to hold an index in every process.

Needs ``psycopg`` 3 and ``pgvector`` (``pip install 'bbedit[postgres]'``) and a database where the
extension ``vector`` exists or may be created.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from bbedit.errors import ConfigError, DuplicateEdit, MemoryCorrupt, StoreUnavailable
from bbedit.memory.store import DEFAULT_NAMESPACE, SCHEMA_VERSION, SQLStore

log = logging.getLogger(__name__)

CHANNEL = "bbedit_changes"
_LOCK_KEY = 0x6262656469  # the advisory lock migrations take ("bbedi")

_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS bbedit_edits (
    rid BIGSERIAL PRIMARY KEY,
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    superseded_by TEXT,
    emb vector NOT NULL,
    ctx vector NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    UNIQUE (namespace, id)
);
CREATE INDEX IF NOT EXISTS bbedit_edits_version ON bbedit_edits(namespace, version);
CREATE TABLE IF NOT EXISTS bbedit_history (
    seq BIGSERIAL PRIMARY KEY,
    namespace TEXT NOT NULL,
    edit_id TEXT NOT NULL,
    store_version BIGINT NOT NULL,
    op TEXT NOT NULL,
    actor TEXT,
    at DOUBLE PRECISION NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX IF NOT EXISTS bbedit_history_edit ON bbedit_history(namespace, edit_id, seq);
CREATE INDEX IF NOT EXISTS bbedit_history_version ON bbedit_history(namespace, store_version);
CREATE TABLE IF NOT EXISTS bbedit_versions (namespace TEXT PRIMARY KEY, version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS bbedit_meta (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                                        PRIMARY KEY (namespace, key))
"""

# schema version -> the statements that bring the database from the version before to it
MIGRATIONS: dict[int, str] = {2: _SCHEMA}


def _imports() -> tuple[Any, Any]:
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError as e:
        raise ConfigError("a PostgreSQL memory needs psycopg 3 and pgvector: pip install 'bbedit[postgres]'") from e
    return psycopg, register_vector


def split_url(url: str) -> tuple[str, str | None]:
    """(the connection URL, the ``namespace`` its query names, if any)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ns = [v for k, v in query if k == "namespace"]
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "namespace"], safe="/")
    return urllib.parse.urlunsplit(parts._replace(query=rest)), (ns[-1] if ns else None)


def redact(url: str) -> str:
    """``url`` without its password (for logs and messages)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class PostgresStore(SQLStore):
    """A namespace of a PostgreSQL database. ``url`` is a libpq URL (``postgresql://user@host/db``;
    ``?namespace=`` there, else ``namespace``). Raises :class:`StoreUnavailable` when the server
    cannot be reached, :class:`MemoryCorrupt` for a schema newer than this bbedit."""

    T: ClassVar[dict[str, str]] = {"edits": "bbedit_edits", "history": "bbedit_history", "versions": "bbedit_versions",
                                   "meta": "bbedit_meta"}
    NOW = "EXTRACT(EPOCH FROM clock_timestamp())"
    SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"

    def __init__(self, url: str, namespace: str = DEFAULT_NAMESPACE, dim: int = 0,
                 connect_timeout: float = 5.0) -> None:
        self.url, url_ns = split_url(url)
        super().__init__(url_ns or namespace, dim)
        self.location = redact(url)
        self.connect_timeout = connect_timeout
        self._psycopg, self._register = _imports()
        self._conn: Any = None
        self._used = 0.0  # when the connection was last used (time.monotonic)
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        with self.lock:
            self._migrate()

    # -- connection -------------------------------------------------------------------------------
    def _connect(self, autocommit: bool = True) -> Any:
        try:
            conn = self._psycopg.connect(self.url, autocommit=autocommit,
                                         connect_timeout=max(1, round(self.connect_timeout)))
        except self._psycopg.OperationalError as e:
            raise StoreUnavailable(f"cannot reach the PostgreSQL memory at {self.location}: {e}".strip()) from e
        return conn

    def _live(self) -> Any:
        """The connection, reconnected if it broke. One that sat idle for a while is pinged first: after
        the server restarted, its first statement would fail although the server is back."""
        now = time.monotonic()
        if self._conn is not None and not (self._conn.closed or self._conn.broken) and now - self._used > 1.0:
            try:
                self._conn.execute("SELECT 1")
            except (self._psycopg.OperationalError, self._psycopg.InterfaceError):
                log.info("the connection to %s was lost; reconnecting", self.location)
        self._used = now
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
            conn = self._connect()
            try:
                self._register(conn)
            except self._psycopg.ProgrammingError as e:  # no vector type yet: _migrate creates it, then registers
                log.debug("pgvector not registered yet: %s", e)
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        pg = self._psycopg
        try:
            yield
        except pg.errors.UniqueViolation as e:
            raise DuplicateEdit(f"an edit id is already in namespace {self.namespace!r}: "
                                f"{e.diag.message_detail or e}") from e
        except (pg.OperationalError, pg.InterfaceError) as e:
            if self._conn is not None and (self._conn.closed or self._conn.broken):
                self._conn = None
            raise StoreUnavailable(f"the PostgreSQL memory at {self.location} is unavailable: {e}".strip()) from e

    def _q(self, sql: str) -> str:
        return sql.format(**self.T).replace("?", "%s")

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._errors():
            cur = self._live().execute(sql, tuple(params), binary=True)
            return cur.fetchall() if cur.description else []

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Callable[..., list[tuple]]]:
        with self._errors():
            conn = self._live()
            with conn.transaction(), conn.cursor(binary=True) as cur:
                def ex(sql: str, params: Sequence[Any] = ()) -> list[tuple]:
                    cur.execute(sql, tuple(params))
                    return cur.fetchall() if cur.description else []

                ex.cursor = cur  # type: ignore[attr-defined]
                yield ex

    def _insert_many(self, ex: Any, items: Sequence[tuple[Any, np.ndarray, np.ndarray]], v: int) -> list[int]:
        if not items:
            return []
        cur = ex.cursor
        cur.executemany(self._q(self._INSERT), [self._row_params(s, emb, ctx, v) for s, emb, ctx in items],
                        returning=True)
        out = []
        while True:
            out.append(int(cur.fetchone()[0]))
            if not cur.nextset():
                break
        return out

    def _many(self, ex: Any, sql: str, params: Sequence[tuple]) -> None:
        if params:
            ex.cursor.executemany(sql, list(params))

    def _vec_in(self, v: np.ndarray) -> Any:
        from pgvector import Vector

        return Vector(np.asarray(v, np.float32))

    def _vec_out(self, v: Any) -> np.ndarray:
        if isinstance(v, np.ndarray):
            return v.astype(np.float32, copy=False)
        if hasattr(v, "to_numpy"):
            return np.asarray(v.to_numpy(), np.float32)
        return np.asarray(v, np.float32)

    def _notify(self, ex: Any, version: int) -> None:
        ex("SELECT pg_notify(%s, %s)", (CHANNEL, f"{self.namespace}:{version}"))

    # -- schema -----------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self._errors():
            conn = self._live()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))  # replicas starting at once
                have = conn.execute("SELECT to_regclass('bbedit_meta')").fetchone()[0]
                version = 0
                if have is not None:
                    r = conn.execute("SELECT value FROM bbedit_meta WHERE namespace='' AND key='schema_version'"
                                     ).fetchone()
                    version = int(r[0]) if r else 0
                if version > SCHEMA_VERSION:
                    raise MemoryCorrupt(f"{self.location}: schema version {version}, this bbedit reads up to "
                                        f"{SCHEMA_VERSION}; upgrade bbedit")
                for target in sorted(v for v in MIGRATIONS if v > version):
                    log.info("migrating %s to schema %d", self.location, target)
                    for stmt in MIGRATIONS[target].split(";\n"):
                        if stmt.strip():
                            conn.execute(stmt)
                if version < SCHEMA_VERSION:
                    conn.execute("INSERT INTO bbedit_meta(namespace, key, value) VALUES ('', 'schema_version', %s) "
                                 "ON CONFLICT(namespace, key) DO UPDATE SET value=excluded.value",
                                 (str(SCHEMA_VERSION),))
            self._register(conn)

    # -- search in the database -------------------------------------------------------------------
    def _ann_index(self) -> str:
        return "bbedit_hnsw_" + hashlib.sha1(f"{self.namespace}:{self.dim}".encode()).hexdigest()[:16]

    def ensure_ann_index(self) -> None:
        """Build (once) the HNSW index on this namespace's active embeddings that :meth:`search` uses."""
        if self.dim <= 0:
            raise ConfigError("the memory's embedding size is not known yet")
        ns = self.namespace.replace("'", "''")
        with self.lock, self._errors():
            self._live().execute(
                f"CREATE INDEX IF NOT EXISTS {self._ann_index()} ON bbedit_edits USING hnsw "
                f"((emb::vector({self.dim})) vector_ip_ops) WITH (m = 16, ef_construction = 64) "
                f"WHERE namespace = '{ns}' AND active = 1")

    def search(self, queries: np.ndarray, k: int, ef_search: int = 64
               ) -> list[list[tuple[int, float, np.ndarray, np.ndarray]]]:
        """The ``k`` active rows nearest each query (inner product, i.e. cosine for unit vectors), from
        the database's HNSW index: [(row, score, its prompt embedding, its relation embedding)] per
        query, best first."""
        from pgvector import Vector

        out = []
        sql = (f"SELECT rid, -((emb::vector({self.dim})) <#> %s::vector({self.dim})), emb, ctx FROM bbedit_edits "
               f"WHERE namespace = %s AND active = 1 ORDER BY (emb::vector({self.dim})) <#> %s::vector({self.dim}) "
               f"LIMIT %s")
        with self.lock, self._errors():
            conn = self._live()
            with conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
                for q in np.asarray(queries, np.float32):
                    v = Vector(q)
                    rows = conn.execute(sql, (v, self.namespace, v, int(k)), binary=True).fetchall()
                    out.append([(int(r), float(s), self._vec_out(e), self._vec_out(c)) for r, s, e, c in rows])
        return out

    # -- notifications ----------------------------------------------------------------------------
    def listen(self, on_change: Callable[[int | None], None], poll_s: float = 1.0) -> None:
        """Call ``on_change(version)`` (from a daemon thread) for each committed write to this namespace by
        any process, and ``on_change(None)`` each time the feed (re)connects (catch up: what committed
        before it listened, or while the connection was lost, was not heard). Returns at once; :meth:`close` stops the thread."""
        if self._listener is not None:
            return

        def run() -> None:
            conn = None
            lost = False
            while not self._stop.is_set():
                try:
                    if conn is None:
                        conn = self._psycopg.connect(self.url, autocommit=True,
                                                     connect_timeout=max(1, round(self.connect_timeout)))
                        conn.execute(f"LISTEN {CHANNEL}")
                        if lost:
                            log.info("PostgreSQL memory %s is back; catching up", self.location)
                            lost = False
                        on_change(None)  # whatever committed before LISTEN took effect was not heard
                    for n in conn.notifies(timeout=poll_s):
                        ns, _, v = n.payload.rpartition(":")
                        if ns == self.namespace:
                            on_change(int(v) if v.isdigit() else None)
                        if self._stop.is_set():
                            break
                except Exception as e:  # the server went away (or restarted): retry until stopped
                    if not lost:
                        log.warning("lost the change feed of %s: %s", self.location, e)
                    lost = True
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.close()
                    conn = None
                    self._stop.wait(0.5)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

        self._listener = threading.Thread(target=run, name=f"bbedit-listen-{self.namespace}", daemon=True)
        self._listener.start()

    @property
    def listening(self) -> bool:
        return self._listener is not None and self._listener.is_alive()

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=3)
        with self.lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None

    def drop_ann_index(self) -> None:
        """Drop this namespace's HNSW index (before a bulk load: building it afterwards is faster than
        updating it row by row)."""
        with self.lock, self._errors():
            self._live().execute(f"DROP INDEX IF EXISTS {self._ann_index()}")

    def drop_namespace(self) -> None:
        """Delete every row of this namespace (its edits, history, counter and settings) and its HNSW
        index; for tests and for retiring a bot."""
        if self.dim > 0:
            self.drop_ann_index()
        with self.lock, self._transaction() as ex:
            for t in ("edits", "history", "versions", "meta"):
                ex(self._q(f"DELETE FROM {{{t}}} WHERE namespace=?"), (self.namespace,))


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed; returns its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
