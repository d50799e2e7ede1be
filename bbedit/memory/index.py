"""The one FAISS wrapper: inner-product search over unit vectors, keyed by integer row ids.

Exact (flat) search below ``hnsw_threshold`` vectors, HNSW above it, chosen
automatically; removals are tombstones that searches skip, compacted when they
pile up. The vectors themselves are kept so the index can be rebuilt or switched
at any time without re-embedding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from bbedit.errors import ConfigError

log = logging.getLogger(__name__)


class VectorIndex:
    """Cosine search over L2-normalised float32 vectors, each with an integer id.

    ``kind`` is "auto" (flat under ``hnsw_threshold`` vectors, HNSW above),
    "flat" or "hnsw". Raises :class:`ConfigError` on wrong shapes or kinds.
    """

    def __init__(self, dim: int, *, kind: str = "auto", hnsw_threshold: int = 50_000,
                 hnsw_m: int = 32, ef_search: int = 64) -> None:
        if kind not in ("auto", "flat", "hnsw"):
            raise ConfigError(f"index kind must be auto, flat or hnsw, not {kind!r}")
        self.dim = dim
        self.kind = kind
        self.hnsw_threshold = hnsw_threshold
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self._vecs = np.zeros((0, dim), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._n = 0
        self._alive: dict[int, int] = {}  # id -> position in _vecs
        self._dead = 0
        self._faiss: Any = None
        self._faiss_kind = ""

    def __len__(self) -> int:
        return len(self._alive)

    def __contains__(self, item_id: int) -> bool:
        return item_id in self._alive

    @property
    def active_kind(self) -> str:
        """The structure in use now: "flat" or "hnsw"."""
        if self.kind != "auto":
            return self.kind
        return "hnsw" if len(self._alive) >= self.hnsw_threshold else "flat"

    def vector(self, item_id: int) -> np.ndarray:
        """The stored vector of ``item_id``; raises KeyError if absent."""
        return self._vecs[self._alive[item_id]]

    def add(self, ids: Sequence[int], vecs: np.ndarray) -> None:
        """Add vectors (rows of ``vecs``) under ``ids``; an id already present is replaced."""
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[1] != self.dim or len(ids) != len(vecs):
            raise ConfigError(f"expected {len(ids)} vectors of dim {self.dim}, got shape {vecs.shape}")
        for i in ids:
            if int(i) in self._alive:
                self.remove([int(i)])
        need = self._n + len(vecs)
        if need > len(self._vecs):
            cap = max(need, 2 * len(self._vecs), 1024)
            grown = np.zeros((cap, self.dim), np.float32)
            grown[: self._n] = self._vecs[: self._n]
            self._vecs = grown
            ids_grown = np.full(cap, -1, np.int64)
            ids_grown[: self._n] = self._ids[: self._n]
            self._ids = ids_grown
        start = self._n
        self._vecs[start:need] = vecs
        self._ids[start:need] = np.asarray(ids, np.int64)
        for k, i in enumerate(ids):
            self._alive[int(i)] = start + k
        self._n = need
        if self._faiss is not None and self._faiss_kind == self.active_kind:
            self._faiss.add(vecs)
        else:
            self._faiss = None  # rebuilt lazily at the next search

    def remove(self, ids: Sequence[int]) -> None:
        """Forget ``ids`` (missing ids are ignored)."""
        for i in ids:
            pos = self._alive.pop(int(i), None)
            if pos is not None:
                self._ids[pos] = -1
                self._dead += 1
        if self._dead > 1024 and self._dead > len(self._alive):
            self._compact()

    def _compact(self) -> None:
        keep = self._ids[: self._n] >= 0
        self._vecs = np.ascontiguousarray(self._vecs[: self._n][keep])
        self._ids = self._ids[: self._n][keep].copy()
        self._n = len(self._ids)
        self._alive = {int(i): p for p, i in enumerate(self._ids)}
        self._dead = 0
        self._faiss = None

    def _build(self) -> None:
        import faiss

        kind = self.active_kind
        index: Any
        if kind == "flat":
            index = faiss.IndexFlatIP(self.dim)
        else:
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = self.ef_search
            log.info("building an HNSW index over %d vectors", self._n)
        if self._n:
            index.add(self._vecs[: self._n])
        self._faiss = index
        self._faiss_kind = kind

    def save_structure(self, path: str) -> bool:
        """Write the built HNSW graph to ``path`` (atomically) so a later process can skip
        rebuilding it; returns False (and writes nothing) when there is nothing worth caching."""
        if self._faiss is None or self._faiss_kind != "hnsw" or self._dead:
            return False
        import os

        import faiss

        tmp = path + ".tmp"
        faiss.write_index(self._faiss, tmp)
        os.replace(tmp, path)
        return True

    def load_structure(self, path: str) -> bool:
        """Use a graph written by :meth:`save_structure` for the vectors added so far, in the
        same order. Returns False (keeping the lazy rebuild) when it does not fit."""
        if self.active_kind != "hnsw" or self._dead:
            return False
        import faiss

        index: Any
        try:
            index = faiss.read_index(path)
        except RuntimeError as e:
            log.warning("ignoring the cached index %s: %s", path, e)
            return False
        if index.ntotal != self._n or index.d != self.dim:
            return False
        index.hnsw.efSearch = self.ef_search
        self._faiss, self._faiss_kind = index, "hnsw"
        return True

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-``k`` (id, cosine) pairs for each query row, best first."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ConfigError(f"query dim {queries.shape[1]} != index dim {self.dim}")
        if not self._alive or k <= 0:
            return [[] for _ in range(len(queries))]
        if self._faiss is None or self._faiss_kind != self.active_kind:
            self._build()
        assert self._faiss is not None
        want = min(self._n, k + min(self._dead, 4 * k) + (8 if self._dead else 0))
        scores, pos = self._faiss.search(queries, want)
        out = []
        for srow, prow in zip(scores, pos, strict=True):
            hits = []
            for s, p in zip(srow, prow, strict=True):
                if p < 0:
                    continue
                item = int(self._ids[p])
                if item >= 0:
                    hits.append((item, float(s)))
                    if len(hits) == k:
                        break
            out.append(hits)
        return out
