"""EditMemory: the store of fact updates, searchable by meaning and by subject name.

Slightly over 500 lines: EditMemory is one class whose reads, writes, supersede and reload share a lock
and the in-process index; its helpers already live in retrieval.py, files.py and store.py.
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bbedit.errors import (
    ConfigError,
    DuplicateEdit,
    EditNotFound,
    InvalidEdit,
    MemoryCorrupt,
    StoreUnavailable,
)
from bbedit.memory.aliases import known_aliases
from bbedit.memory.embedder import DEFAULT_EMBEDDER, Embedder, embedder_dim, load_embedder
from bbedit.memory.files import load_index_cache, replace_dir, save_index_cache
from bbedit.memory.index import VectorIndex
from bbedit.memory.relation import builtin_supersede_threshold, relation_similarity
from bbedit.memory.retrieval import Retrieval, subject_span
from bbedit.memory.store import (
    DB_NAME,
    DEFAULT_NAMESPACE,
    Change,
    SQLiteStore,
    State,
    Write,
    is_database_url,
    open_store,
)
from bbedit.memory.subjects import SubjectIndex, name_key
from bbedit.types import Edit, Hit

log = logging.getLogger(__name__)

__all__ = ["EditLike", "EditList", "EditMemory", "Retrieval", "subject_span"]

EditLike = Edit | Mapping[str, Any]
EditList = list[Edit]  # EditMemory.list shadows the builtin inside the class body
NAMESPACE_ENV = "BBEDIT_NAMESPACE"
KNOWN_ALIASES_ENV = "BBEDIT_KNOWN_ALIASES"  # "0": subjects are found by their own names and aliases only
# Above this many active edits a PostgreSQL memory searches with pgvector's HNSW index in the database
# instead of holding a FAISS index in every process (search="auto"). Measured (eval/results/scale, two
# cores): at 100k a FAISS replica took 39 s to start (the HNSW build) and 1.4 GB, a pgvector one 3.8 s
# and 0.8 GB, for a few ms more per route; at 1M, 464 s and 9.8 GB against 29 s and 2.0 GB.
DATABASE_SEARCH_ABOVE = 100_000


def _as_edit(e: EditLike) -> Edit:
    if isinstance(e, Edit):
        return e
    if isinstance(e, Mapping):
        return Edit.from_dict(e)
    raise InvalidEdit(f"expected an Edit or a dict, got {type(e).__name__}")


class EditMemory:
    """Fact updates, embedded for search, kept in SQLite or PostgreSQL.

    ``path`` is a memory directory (created if missing), a PostgreSQL URL
    (``postgresql://user@host/db``, optionally ``?namespace=bot-a``), or None for a memory
    that lives only in this process (save it later with :meth:`save`). ``namespace`` picks one
    memory of the database (default: the URL's, else ``$BBEDIT_NAMESPACE``, else "default");
    ``actor`` names who writes, in the history (each write may name its own).
    ``embedder`` is an :class:`Embedder` or a sentence-transformers model id/path
    (default: the packaged all-MiniLM-L6-v2). A later edit of the same subject
    and relation supersedes the earlier one, which stays readable as history:
    same subject means the same name, same relation means identical prompts or a
    ``relation_similarity`` of the two subject-free prompt embeddings (default: the scope gate's
    learned relation similarity, :func:`bbedit.memory.relation.relation_similarity`) of at least
    ``supersede_threshold`` (default: the one chosen with that projection on its dev pairs,
    :func:`bbedit.memory.relation.builtin_supersede_threshold`). A subject is found in a query by its
    name, its aliases, and (``known_aliases``) the other names :mod:`bbedit.memory.aliases` knows for
    well-known ones ("UK", "Britain" for "United Kingdom"; default on, ``$BBEDIT_KNOWN_ALIASES=0`` turns
    it off for the CLI and the server); so is a superseded subject. Thread-safe.

    ``search`` is where nearest edits are found: "index" (a FAISS index in this process, kept in sync
    with the database), "database" (pgvector's HNSW index, PostgreSQL only) or "auto" (the database
    above ``database_search_above`` active edits). A PostgreSQL memory hears other processes' writes
    as they commit (``listen``) and catches up by version; a SQLite one checks the write counter at
    each :meth:`refresh`.

    Raises :class:`MemoryCorrupt` when ``path`` holds an unreadable memory, :class:`StoreUnavailable`
    when its database server cannot be reached.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, embedder: Embedder | str | None = None,
                 index_kind: str = "auto", hnsw_threshold: int = 50_000, supersede_threshold: float | None = None,
                 relation_similarity: Callable[[np.ndarray, np.ndarray], float] | None = None,
                 namespace: str | None = None, actor: str | None = None, search: str = "auto",
                 database_search_above: int = DATABASE_SEARCH_ABOVE, listen: bool = True,
                 known_aliases: bool | None = None) -> None:
        # the embedder is loaded at the first embedding, so listing or reading edits stays fast
        self._embedder: Embedder | None = embedder if isinstance(embedder, Embedder) else None
        self._embedder_spec = None if isinstance(embedder, Embedder) else embedder
        self.embedder_name = embedder.name if isinstance(embedder, Embedder) else str(embedder or DEFAULT_EMBEDDER)
        if search not in ("auto", "index", "database"):
            raise ConfigError(f"search must be auto, index or database, not {search!r}")
        database = is_database_url(path)
        if search == "database" and not database:
            raise ConfigError("search='database' needs a PostgreSQL memory")
        self.path = Path(path) if path is not None and not database else None
        self.supersede_threshold = supersede_threshold
        self.known_aliases = (os.environ.get(KNOWN_ALIASES_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
                              if known_aliases is None else bool(known_aliases))
        self._relation_similarity = relation_similarity
        self.actor = actor
        if self.path is not None:
            if self.path.exists() and not self.path.is_dir():
                raise MemoryCorrupt(f"{self.path} is a file, not a memory directory")
            self.path.mkdir(parents=True, exist_ok=True)
        self._store = open_store(str(path) if database else self.path,
                                 namespace or os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE)
        self.namespace = self._store.namespace
        stored_dim = self._store.get_meta("dim")
        same_embedder = self._store.get_meta("embedder") in (None, self.embedder_name)
        dim = int(stored_dim) if stored_dim and same_embedder else self._known_dim()
        self._store.dim = dim
        self._lock: threading.RLock = threading.RLock()
        self._index_kind, self._hnsw_threshold = index_kind, hnsw_threshold
        self._version = 0  # the store version the structures below reflect
        self._pending = False  # a change was heard but could not be read yet
        self._vec_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # database search: vectors seen
        self._index = VectorIndex(dim, kind=index_kind, hnsw_threshold=hnsw_threshold)
        self._subjects = SubjectIndex()
        self._edits: dict[int, Edit] = {}
        self._row_of: dict[str, int] = {}
        self._ctx: dict[int, np.ndarray] = {}
        self._in_database = search == "database" or (
            search == "auto" and database and self._store.count() > database_search_above)
        self._load()
        if database and listen:
            self._store.listen(self._heard)

    # -- loading ----------------------------------------------------------------------------------
    def _load(self) -> None:
        stored = self._store.get_meta("embedder")
        if stored is not None and stored != self.embedder_name:
            log.warning("memory %s was embedded with %s; re-embedding its edits with %s",
                        self.path, stored, self.embedder_name)
            self._reembed_all()
        if stored != self.embedder_name or self._store.get_meta("dim") is None:
            self._store.set_meta("embedder", self.embedder_name)
            self._store.set_meta("dim", str(self._store.dim))
        self._reload()
        if self._edits:
            self._load_index_cache()
        log.debug("loaded %d active edits from %s", len(self._edits), self.path or "memory")

    def _reload(self) -> None:
        """Rebuild the in-process structures from the database's active rows, then swap them in."""
        version = self._store.version()  # read first: a write landing meanwhile only causes another reload
        index = VectorIndex(self._store.dim, kind=self._index_kind, hnsw_threshold=self._hnsw_threshold)
        subjects, edits, row_of, ctxs = SubjectIndex(), {}, {}, {}
        rows, embs = [], []
        if self._in_database:  # the database searches: no vectors are read, none kept
            for row, edit in self._store.entries():
                edits[row], row_of[edit.id] = edit, row
                self._index_subject(subjects, row, edit)
            self._store.ensure_ann_index()  # type: ignore[attr-defined]
            self._vec_cache.clear()
        else:
            for r in self._store.rows(active_only=True):
                edits[r.row], row_of[r.edit.id], ctxs[r.row] = r.edit, r.row, r.ctx
                self._index_subject(subjects, r.row, r.edit)
                rows.append(r.row)
                embs.append(r.emb)
        if rows:
            index.add(rows, np.stack(embs))
        with self._lock:
            self._index, self._subjects, self._edits, self._row_of, self._ctx = index, subjects, edits, row_of, ctxs
            self._version = version

    def _wrote(self) -> None:
        """Called after each write of ours: track the store version, and catch up if another
        process had written since we last looked (its rows must not be missed)."""
        before, after = self._store.last_write
        if before != self._version:
            log.info("memory %s was changed by another process; catching up", self.location)
            self._catch_up()
        else:
            self._version = after

    def _catch_up(self) -> int:
        """Apply what changed in the store since the version these structures reflect (rows written,
        rows deleted, by any process); returns how many edits changed. Holds the lock."""
        with self._lock:
            rows, gone, now = self._store.changes_since(self._version)
            for edit_id in gone:
                if edit_id in self._row_of:
                    self._unregister(self._row_of[edit_id])
            add_rows, add_embs = [], []
            for r in rows:
                old = self._row_of.get(r.edit.id)
                if old is not None:
                    self._unregister(old)
                if r.row in self._edits:
                    self._unregister(r.row)
                if r.active:
                    self._register(r.row, r.edit, r.ctx)
                    if self._in_database:
                        self._cache(r.row, r.emb, r.ctx)
                    else:
                        add_rows.append(r.row)
                        add_embs.append(r.emb)
            if add_rows:
                self._index.add(add_rows, np.stack(add_embs))
            self._version = max(self._version, now)
            self._pending = False
        return len(rows) + len(gone)

    def _heard(self, version: int | None) -> None:
        """The change feed's callback (its own thread): catch up now, so that routing sees another
        process's write within moments; if the store cannot be read, the next refresh tries again."""
        if version is not None and version <= self._version:
            return
        try:
            n = self._catch_up()
            if n:
                log.debug("memory %s: %d edits changed by another process", self.location, n)
        except StoreUnavailable as e:
            self._pending = True
            log.warning("could not catch up with %s: %s", self.location, e)

    @property
    def location(self) -> str:
        """Where this memory lives: its directory, its database (password hidden), or "in-process"."""
        return self._store.location if self.path is None and self._store.location != ":memory:" else (
            str(self.path) if self.path is not None else "in-process")

    @property
    def in_database_server(self) -> bool:
        """Whether this memory lives in a database server (PostgreSQL) rather than a directory."""
        return not isinstance(self._store, SQLiteStore)

    def get_setting(self, key: str) -> str | None:
        """A setting kept with this namespace (e.g. the gate's calibration of a database memory)."""
        return self._store.get_meta(f"setting:{key}")

    def set_setting(self, key: str, value: str) -> None:
        self._store.set_meta(f"setting:{key}", value)

    @property
    def version(self) -> int:
        """The store version (count of committed writes to this namespace) these structures reflect."""
        return self._version

    def refresh(self) -> bool:
        """Pick up changes another process (e.g. ``bbedit edits add``, another replica) made to this
        memory's database.

        A PostgreSQL memory that hears the change feed is already current (nothing is read here unless
        a change could not be read when it was heard); otherwise one cheap read of the write counter,
        and when it moved, the changed rows are read and applied. Returns whether anything changed.
        While the database cannot be reached this keeps what it has and returns False (routing goes on
        from the index). Raises :class:`MemoryCorrupt` when the database has become unreadable.
        """
        if self._store.listening and not self._pending:
            return False
        try:
            if self._store.version() == self._version:
                self._pending = False
                return False
            with self._lock:
                n = self._catch_up()
        except StoreUnavailable as e:
            log.warning("memory %s cannot be refreshed now: %s", self.location, e)
            return False
        log.info("memory %s changed in another process: %d edits, %d active now", self.location, n, len(self))
        return bool(n)

    def check_index(self) -> int:
        """Verify that the search structures agree with the database: the same active edits under the
        same rows, the stored vectors, and each edit found first by a search for its own vector.
        Returns the number of active edits. Raises :class:`MemoryCorrupt` on any disagreement."""
        with self._lock:
            stored = list(self._store.rows(active_only=True))
            if self._in_database:
                if {r.row for r in stored} != set(self._edits):
                    raise MemoryCorrupt(f"memory holds {len(self._edits)} edits, the database {len(stored)} active ones")
                for r in stored:
                    if self._edits[r.row] != r.edit:
                        raise MemoryCorrupt(f"edit {r.edit.id!r}: the memory disagrees with its stored row")
                return len(stored)
            if {r.row for r in stored} != set(self._edits) or len(self._index) != len(stored):
                raise MemoryCorrupt(f"index holds {len(self._index)} edits, the database {len(stored)} active ones")
            for r in stored:
                if self._edits[r.row].id != r.edit.id or not np.array_equal(self._index.vector(r.row), r.emb):
                    raise MemoryCorrupt(f"edit {r.edit.id!r}: the index disagrees with its stored row")
            for b in range(0, len(stored), 1024):
                chunk = stored[b:b + 1024]
                found = self._index.search(np.stack([r.emb for r in chunk]), 1)
                for r, f in zip(chunk, found, strict=True):
                    if not f or (f[0][0] != r.row and not np.array_equal(self._index.vector(f[0][0]), r.emb)):
                        raise MemoryCorrupt(f"edit {r.edit.id!r}: a search for its own vector does not find it")
        return len(stored)

    # The HNSW graph is a cache next to the database (bbedit.memory.files), valid only for the store
    # version it was written at; anything else (a crash, another writer) just means it is rebuilt.
    def _load_index_cache(self) -> None:
        if self.path is not None and load_index_cache(self.path, self._index, str(self._version),
                                                      self.embedder_name):
            log.debug("reused the cached %s index", self._index.active_kind)

    def _save_index_cache(self) -> None:
        if self.path is not None:
            with self._lock:
                save_index_cache(self.path, self._index, str(self._version), self.embedder_name, len(self))

    def _reembed_all(self) -> None:
        edits = self._store.edits()
        embs, ctxs = self._embed(edits)
        self._store.write(Write(replace=list(zip(edits, embs, ctxs, strict=True)), actor="re-embedding"))
        self._wrote()

    def _register(self, row: int, edit: Edit, ctx: np.ndarray) -> None:
        self._edits[row] = edit
        self._row_of[edit.id] = row
        if not self._in_database:  # there the relation vectors are read when needed (edit_vectors)
            self._ctx[row] = ctx
        self._index_subject(self._subjects, row, edit)

    def _table_names(self, edit: Edit) -> tuple[str, ...]:
        """With ``known_aliases``, the other names :mod:`bbedit.memory.aliases` knows for the edit's
        subject and aliases ("UK" for "United Kingdom"); else none."""
        return known_aliases(edit.names) if self.known_aliases else ()

    def _index_names(self, edit: Edit) -> tuple[str, ...]:
        """The names a query may use for the edit's subject: its own and :meth:`_table_names`."""
        return (*edit.names, *self._table_names(edit))

    def _index_subject(self, index: SubjectIndex, row: int, edit: Edit) -> None:
        """Index the edit's names; the table's codes written in capitals ("NED", "GER") are found only as
        written ("Ned" is a name, not the Netherlands)."""
        table = self._table_names(edit)
        index.add(row, (*edit.names, *table), exact=[a for a in table if a.isupper()])

    VEC_CACHE = 50_000  # database search: the vectors of this many recently seen edits are kept

    def _cache(self, row: int, emb: np.ndarray, ctx: np.ndarray) -> None:
        if len(self._vec_cache) >= self.VEC_CACHE:
            self._vec_cache.clear()
        self._vec_cache[row] = (emb, ctx)

    def _unregister(self, row: int) -> None:
        edit = self._edits.pop(row)
        self._row_of.pop(edit.id, None)
        self._ctx.pop(row, None)
        self._subjects.remove(row)
        self._index.remove([row])
        self._vec_cache.pop(row, None)

    def _embed(self, edits: Sequence[Edit]) -> tuple[np.ndarray, np.ndarray]:
        spans = []
        for e in edits:
            span = subject_span(e.prompt, e.names)
            if span is None:
                log.debug("edit %s: subject %r not found in its prompt %r", e.id, e.subject, e.prompt)
            spans.append(span)
        return self.embedder.embed_spans([e.prompt for e in edits], spans)

    def _known_dim(self) -> int:
        """The embedder's vector size: from the embedder object, from the model's configuration files,
        or (only when neither says) by loading the embedder."""
        if self._embedder is not None:
            return int(self._embedder.dim)
        return embedder_dim(self._embedder_spec) or self.embedder.dim

    @property
    def embedder(self) -> Embedder:
        """The embedder (loaded on first use). Raises ModelNotFound if it cannot be loaded."""
        if self._embedder is None:
            self._embedder = load_embedder(self._embedder_spec)
            if self._store.dim and self._embedder.dim != self._store.dim:
                raise ConfigError(f"embedder {self.embedder_name} gives {self._embedder.dim}-d vectors but this "
                                  f"memory holds {self._store.dim}-d ones")
        return self._embedder

    # -- reading ----------------------------------------------------------------------------------
    @property
    def lock(self) -> threading.RLock:
        """The lock every write and reload holds: hold it to see one consistent state across several
        reads (a retrieval and the gate's look-ups of the edits it found)."""
        return self._lock

    def __len__(self) -> int:
        return len(self._edits)

    def __contains__(self, edit_id: object) -> bool:
        return edit_id in self._row_of

    def __iter__(self) -> Iterator[Edit]:
        return iter(self.list())

    def get(self, edit_id: str) -> Edit:
        """The edit with this id, active or superseded. Raises :class:`EditNotFound`."""
        row = self._row_of.get(edit_id)
        if row is not None:
            return self._edits[row]
        stored = self._store.get(edit_id)
        if stored is None:
            raise EditNotFound(edit_id)
        return stored.edit

    def is_active(self, edit_id: str) -> bool:
        """Whether the edit is in force (not superseded). Raises :class:`EditNotFound`."""
        if edit_id in self._row_of:
            return True
        if self._store.get(edit_id) is None:
            raise EditNotFound(edit_id)
        return False

    def list(self, include_superseded: bool = False) -> EditList:
        """Active edits in the order they were added (and superseded ones too, if asked)."""
        if include_superseded:
            return [r.edit for r in self._store.rows()]
        with self._lock:
            return [self._edits[r] for r in sorted(self._edits)]

    def history(self, edit_id: str) -> EditList:
        """The edit and the ones it superseded, newest first. Raises :class:`EditNotFound`."""
        chain = [self.get(edit_id)]
        seen = {edit_id}
        while chain[-1].supersedes and chain[-1].supersedes not in seen:
            seen.add(chain[-1].supersedes)
            try:
                chain.append(self.get(chain[-1].supersedes))
            except EditNotFound:
                break
        return chain

    def edit_vectors(self, edit: Edit) -> tuple[np.ndarray, np.ndarray]:
        """The prompt embedding and the subject-excluded (relation) embedding of an active edit."""
        row = self._row_of[edit.id]
        if not self._in_database:
            return self._index.vector(row), self._ctx[row]
        if row not in self._vec_cache:
            for r, (emb, ctx) in self._store.vectors([row]).items():
                self._cache(r, emb, ctx)
        return self._vec_cache[row]

    def search(self, query: str, k: int = 5) -> builtins.list[Hit]:
        """The ``k`` active edits whose prompts are closest in meaning to ``query``."""
        return self.retrieve(query, k).hits

    def retrieve(self, query: str, k: int = 5) -> Retrieval:
        """Nearest edits, subject names found, and the embeddings the scope gate needs.

        Raises :class:`ConfigError` if ``query`` is not a string.
        """
        return self.retrieve_many([query], k)[0]

    def retrieve_many(self, queries: Sequence[str], k: int = 5) -> builtins.list[Retrieval]:
        """:meth:`retrieve` for many queries, with batched embedding and search."""
        for q in queries:
            if not isinstance(q, str):
                raise ConfigError(f"query must be a string, got {type(q).__name__}")
        t0 = time.perf_counter()
        with self._lock:
            all_matches = [self._subjects.match(q) if self._edits else [] for q in queries]
            texts: builtins.list[str] = []
            spans: builtins.list[tuple[int, int] | None] = []
            owners: builtins.list[tuple[int, tuple[int, int] | None]] = []
            for qi, (q, matches) in enumerate(zip(queries, all_matches, strict=True)):
                for sp in [None, *sorted({(m.start, m.end) for m in matches})]:
                    texts.append(q)
                    spans.append(sp)
                    owners.append((qi, sp))
            full, ctx = self.embedder.embed_spans(texts, spans)
            vec_pos = [i for i, (_, sp) in enumerate(owners) if sp is None]
            vecs = full[vec_pos]
            found = self._search(vecs, k) if len(queries) else []
            out = []
            per = (time.perf_counter() - t0) / max(len(queries), 1)
            contexts: builtins.list[dict[tuple[int, int], np.ndarray]] = [{} for _ in queries]
            for i, (qi, sp) in enumerate(owners):
                if sp is not None:
                    contexts[qi][sp] = ctx[i]
            for qi, q in enumerate(queries):
                hits = [Hit(self._edits[row], score) for row, score in found[qi]]
                by_row = {row: self._edits[row] for row, _ in found[qi]}
                by_row.update({m.row: self._edits[m.row] for m in all_matches[qi]})
                out.append(Retrieval(q, vecs[qi], hits, all_matches[qi], contexts[qi], per, by_row))
            if self._in_database:  # the gate reads every candidate's vectors: fetch the missing ones at once
                need = sorted({row for r in out for row in r.edits_by_row} - self._vec_cache.keys())
                for row, (emb, ctx) in self._store.vectors(need).items():
                    self._cache(row, emb, ctx)
        return out

    def _search(self, vecs: np.ndarray, k: int) -> builtins.list[builtins.list[tuple[int, float]]]:
        if not self._in_database:
            return self._index.search(vecs, k)
        found = self._store.search(vecs, k)  # type: ignore[attr-defined]
        # rows a search returns that this process has not caught up with yet are left out; the vectors
        # found with them are kept for the gate's look-ups
        out = []
        for hits in found:
            kept = []
            for r, score, emb, ctx in hits:
                if r in self._edits:
                    self._cache(r, emb, ctx)
                    kept.append((r, score))
            out.append(kept)
        return out

    def subjects_in(self, text: str) -> builtins.list[tuple[str, builtins.list[Edit]]]:
        """The stored subject names (or aliases) ``text`` names, as (the words used, the active edits
        with that name), longest name first; cheap (no embedding). Raises :class:`ConfigError` if
        ``text`` is not a string."""
        if not isinstance(text, str):
            raise ConfigError(f"text must be a string, got {type(text).__name__}")
        with self._lock:
            if not self._edits:
                return []
            spans: dict[tuple[int, int], builtins.list[Edit]] = {}
            for m in self._subjects.match(text):
                spans.setdefault((m.start, m.end), []).append(self._edits[m.row])
        return [(text[a:b], found) for (a, b), found in sorted(spans.items(), key=lambda kv: kv[0][0] - kv[0][1])]

    def row_of(self, edit: Edit) -> int:
        return self._row_of[edit.id]

    # -- writing ----------------------------------------------------------------------------------
    def add(self, edit: EditLike, *, supersede: bool = True, actor: str | None = None) -> Edit:
        """Store one edit durably and return it as stored (with ``supersedes`` set if it replaced one).

        Raises :class:`InvalidEdit` for a malformed edit and :class:`DuplicateEdit` for a taken id.
        """
        return self.add_many([edit], supersede=supersede, actor=actor)[0]

    def add_many(self, edits: Iterable[EditLike], *, supersede: bool = True, batch_size: int = 1024,
                 progress: bool = False, actor: str | None = None) -> EditList:
        """Store many edits; each batch of ``batch_size`` is one durable transaction.

        Every edit is validated before anything is written: a malformed edit or a
        duplicate id raises (:class:`InvalidEdit`, :class:`DuplicateEdit`) with nothing stored.
        ``actor`` (default: the memory's) is recorded in the history.
        """
        items = []
        for n, e in enumerate(edits):
            try:
                items.append(_as_edit(e))
            except InvalidEdit as err:
                raise InvalidEdit(f"edit #{n + 1}: {err}") from err
        ids = [e.id for e in items]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise DuplicateEdit(f"edit id {dup!r} appears twice in this batch")
        with self._lock:
            taken = self._store.existing_ids(ids)
            if taken:
                raise DuplicateEdit(f"edit id(s) already in memory: {', '.join(sorted(taken)[:5])}")
            out: EditList = []
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=len(items), desc="adding edits", unit="edit")
            for b in range(0, len(items), batch_size):
                chunk = items[b:b + batch_size]
                out.extend(self._add_batch(chunk, supersede, actor or self.actor))
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        return out

    def _add_batch(self, chunk: EditList, supersede: bool, actor: str | None) -> EditList:
        embs, ctxs = self._embed(chunk)
        deactivate: builtins.list[tuple[str, str]] = []
        final: EditList = []
        # earlier edits of this batch that are still in force, by each of their names, then id
        pending: dict[tuple[str, ...], dict[str, tuple[Edit, np.ndarray]]] = {}
        for e, ctx in zip(chunk, ctxs, strict=True):
            keys = {k for k in (name_key(n) for n in self._index_names(e)) if k}
            if supersede:
                same_subject = {i: v for k in keys for i, v in pending.get(k, {}).items()}
                old = self._same_fact(e, ctx, list(same_subject.values()))
                if old is not None:
                    deactivate.append((old.id, e.id))
                    if e.supersedes is None:
                        e = e.replace(supersedes=old.id)
                    for k in (name_key(n) for n in self._index_names(old)):
                        pending.get(k, {}).pop(old.id, None)
            final.append(e)
            for k in keys:
                pending.setdefault(k, {})[e.id] = (e, ctx)
        rows = self._store.write(Write(inserts=list(zip(final, embs, ctxs, strict=True)), deactivate=deactivate,
                                       actor=actor))
        before = self._version
        self._wrote()
        if self._store.last_write[0] != before:  # reloaded from the database: our rows are in already
            return final
        gone = {old for old, _ in deactivate}
        for old_id in gone:
            if old_id in self._row_of:
                self._unregister(self._row_of[old_id])
        keep = [(r, e, emb, ctx) for r, e, emb, ctx in zip(rows, final, embs, ctxs, strict=True) if e.id not in gone]
        for r, e, emb, ctx in keep:
            self._register(r, e, ctx)
            if self._in_database:
                self._cache(r, emb, ctx)
        if keep and not self._in_database:
            self._index.add([k[0] for k in keep], np.stack([k[2] for k in keep]))
        return final

    def _same_fact(self, edit: Edit, ctx: np.ndarray, same_subject_pending: Sequence[tuple[Edit, np.ndarray]]
                   ) -> Edit | None:
        """The active edit (stored, or earlier in this batch with the same subject) that ``edit`` replaces."""
        best, best_sim = None, (builtin_supersede_threshold() if self.supersede_threshold is None
                                else self.supersede_threshold)
        prompt_key = name_key(edit.prompt)
        # the same subject by any of its names: "Veltrix" supersedes an edit of "Veltrix Dynamics" (alias Veltrix)
        rows = set().union(*(self._subjects.rows_with_name(n) for n in self._index_names(edit)))
        cands = [(self._edits[r], self.edit_vectors(self._edits[r])[1]) for r in sorted(rows) if r in self._edits]
        cands += same_subject_pending
        if cands and self._relation_similarity is None:
            self._relation_similarity = relation_similarity
        for old, old_ctx in cands:
            if old.id == edit.id:
                continue
            same_prompt = name_key(old.prompt) == prompt_key
            sim = 1.0 if same_prompt else float(self._relation_similarity(old_ctx, ctx))  # type: ignore[misc]
            if sim >= best_sim:
                best, best_sim = old, sim
        return best

    def update(self, edit_id: str, *, actor: str | None = None, **changes: Any) -> Edit:
        """Change fields of an active edit in place (same id); returns the new version.

        Raises :class:`EditNotFound`, and :class:`InvalidEdit` for bad values or a change of ``id``.
        """
        if "id" in changes and changes["id"] != edit_id:
            raise InvalidEdit("an edit's id cannot be changed; add a new edit instead")
        with self._lock:
            row = self._row_of.get(edit_id)
            if row is None:
                self.get(edit_id)  # raises EditNotFound for unknown ids
                raise InvalidEdit(f"edit {edit_id!r} is superseded; update the edit that replaced it")
            new = self._edits[row].replace(**changes)
            embs, ctxs = self._embed([new])
            self._store.write(Write(replace=[(new, embs[0], ctxs[0])], actor=actor or self.actor))
            if self._store.last_write[0] != self._version:
                self._wrote()
                return new
            self._wrote()
            self._unregister(row)
            self._register(row, new, ctxs[0])
            if self._in_database:
                self._cache(row, embs[0], ctxs[0])
            else:
                self._index.add([row], embs[:1])
        return new

    def remove(self, edit_id: str, *, actor: str | None = None) -> Edit:
        """Delete an edit (active or superseded); returns it. Its history stays, so it can be brought
        back with :meth:`revert`. Raises :class:`EditNotFound`."""
        with self._lock:
            edit = self.get(edit_id)
            self._store.write(Write(delete=[edit_id], actor=actor or self.actor))
            if self._store.last_write[0] != self._version:
                self._wrote()
                return edit
            self._wrote()
            row = self._row_of.get(edit_id)
            if row is not None:
                self._unregister(row)
        return edit

    def clear(self, *, actor: str | None = None) -> int:
        """Delete every edit; returns how many active edits there were."""
        with self._lock:
            n = len(self._edits)
            ids = [e.id for e in self._store.edits()]
            self._store.write(Write(delete=ids, actor=actor or self.actor))
            self._wrote()
            for row in list(self._edits):
                self._unregister(row)
        return n

    # -- history ----------------------------------------------------------------------------------
    def audit(self, edit_id: str | None = None, *, limit: int | None = None) -> builtins.list[Change]:
        """The history of one edit (its versions are 1, 2, ... in this order) or of the whole namespace:
        every create, update, supersede, delete, revert and restore, oldest first, with who and when.
        Raises :class:`EditNotFound` for an id the history does not know."""
        changes = self._store.history(edit_id, limit=limit)
        if edit_id is not None and not changes:
            raise EditNotFound(edit_id)
        return changes

    def revert(self, edit_id: str, to: int, *, actor: str | None = None) -> Edit | None:
        """Bring an edit back to what it was after its version ``to`` (see :meth:`audit`; 0 is before it
        existed, so the edit is removed). Reverting an edit that superseded another, to a state where
        it is gone or not in force, brings the superseded edit back into force. Recorded as a "revert".
        Returns the edit as it is now (None if removed). Raises :class:`EditNotFound`, and
        :class:`InvalidEdit` for a version it never had or a state that another active edit replaced.
        """
        changes = self.audit(edit_id)
        if not 0 <= to <= len(changes):
            raise InvalidEdit(f"edit {edit_id!r} has versions 1..{len(changes)}; cannot revert to {to}")
        target = None if to == 0 else changes[to - 1].after
        with self._lock:
            current = self._store.get(edit_id)
            steps: dict[str, State | None] = {edit_id: target}
            if target is not None and target.active:
                for other in self._row_of:
                    if other != edit_id and self._edits[self._row_of[other]].supersedes == edit_id:
                        raise InvalidEdit(f"edit {edit_id!r} was replaced by {other!r}, which is in force; "
                                          f"revert or remove {other!r} first")
            last = changes[-1].after or changes[-1].before
            replaced = next((s.edit for s in (target, current, last) if s is not None), None)
            if (target is None or not target.active) and replaced is not None and replaced.supersedes:
                old = self._store.get(replaced.supersedes)
                if old is not None and not old.active and old.superseded_by == edit_id:
                    steps[old.edit.id] = State(old.edit, True, None)
            self._apply_states(steps, "revert", actor)
        return None if target is None else self.get(edit_id)

    def restore(self, at: float, *, actor: str | None = None) -> int:
        """Put the whole namespace back as it was at Unix time ``at`` (the database's clock): edits made
        since are removed, removed ones come back, changed ones get their old fields and state back.
        Recorded as "restore" changes, so a restore can itself be undone. Returns how many edits changed."""
        with self._lock:
            then = self._store.states_at(at)
            now = {r.edit.id: State(r.edit, r.active, r.superseded_by) for r in self._store.rows()}
            # every row has history (schema 1 rows got a "migrate" row when upgraded), so an edit absent
            # from ``then`` did not exist at ``at``
            steps = {i: s for i, s in then.items() if now.get(i) != s and not (s is None and i not in now)}
            self._apply_states(steps, "restore", actor)
        return len(steps)

    def _apply_states(self, steps: Mapping[str, State | None], op: str, actor: str | None) -> None:
        """Write each edit's target state (None: absent) in one transaction, embedding the ones whose
        fields change or that come back, then catch the in-process structures up."""
        if not steps:
            return
        current = {i: self._store.get(i) for i in steps}
        embed = [s.edit for i, s in steps.items()
                 if s is not None and ((c := current[i]) is None or c.edit != s.edit)]
        vecs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if embed:
            embs, ctxs = self._embed(embed)
            vecs = {e.id: (embs[n], ctxs[n]) for n, e in enumerate(embed)}
        items = []
        for i, s in steps.items():
            emb, ctx = vecs.get(i, (None, None))
            items.append((i, s, emb, ctx))
        self._store.write(Write(restore=items, op=op, actor=actor or self.actor))
        self._catch_up()  # the rows just written are read back by version, like another process's

    def server_time(self) -> float:
        """The store's clock (Unix seconds): the time to give :meth:`restore` for "now"."""
        return self._store.server_time()

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a consistent copy of this memory to directory ``path``, atomically.

        The copy is built in a temporary directory beside ``path`` and renamed over
        it, so readers see the old memory or the new one, never half of either.
        Raises :class:`ConfigError` when ``path`` is this memory's own directory.
        """
        dest = Path(path)
        if self.path is not None and dest.resolve() == self.path.resolve():
            raise ConfigError("this memory already lives in that directory; every write is saved as it happens")
        extras = [self.path / f for f in ("gate.json",)] if self.path is not None else []
        return replace_dir(dest, lambda tmp: self._copy_to(tmp / DB_NAME), extras)

    def _copy_to(self, db: Path) -> None:
        """Write this namespace to a new SQLite file ``db`` (a snapshot, as namespace "default")."""
        if isinstance(self._store, SQLiteStore) and self.namespace == DEFAULT_NAMESPACE:
            self._store.backup_to(db)
            return
        copy = SQLiteStore(db, dim=self._store.dim)
        try:
            with self._lock:
                for key in ("embedder", "dim"):
                    value = self._store.get_meta(key)
                    if value is not None:
                        copy.set_meta(key, value)
                items = [(r.edit.id, State(r.edit, r.active, r.superseded_by), r.emb, r.ctx)
                         for r in self._store.rows()]
            copy.write(Write(restore=items, op="restore", actor=f"copy of {self.location}"))
        finally:
            copy.close()

    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs: Any) -> EditMemory:
        """Open an existing memory directory. Raises :class:`MemoryCorrupt` if it is not one."""
        if is_database_url(path):
            return cls(path, **kwargs)
        p = Path(path)
        if not (p / DB_NAME).is_file():
            raise MemoryCorrupt(f"{p} is not an edit memory (no {DB_NAME} inside)")
        return cls(p, **kwargs)

    def close(self) -> None:
        """Cache the search index next to the database if it is worth it, and close the database
        (the memory cannot be used afterwards)."""
        try:
            self._save_index_cache()
        except (OSError, RuntimeError) as e:  # a cache: never worth failing a close for
            log.warning("could not cache the search index: %s", e)
        self._store.close()

    def __enter__(self) -> EditMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ns = "" if self.namespace == DEFAULT_NAMESPACE else f", namespace={self.namespace!r}"
        return f"EditMemory({self.location!r}{ns}, {len(self)} edits)"
