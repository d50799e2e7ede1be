"""The scale benchmark's edits and their embeddings, computed once with the real embedder and cached.

Embedding a million prompts with MiniLM takes most of an hour on two cores; the cache
(``eval/.cache/scale/``, float32 memory maps) lets the benchmark's other phases and reruns measure
the stores and the search, not the embedder again. The first ``n`` edits of a larger cache are the
``n`` edits of a smaller run (the generator is seeded), so one cache serves 10k, 100k and 1M.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bbedit.evaluation.overhead import synthetic_edits
from bbedit.memory.embedder import Embedder, load_embedder
from bbedit.memory.retrieval import subject_span
from bbedit.types import Edit

log = logging.getLogger(__name__)

CACHE = Path(__file__).resolve().parents[2] / "eval" / ".cache" / "scale"


def cached_vectors(n: int, cache: Path = CACHE, batch: int = 4096) -> tuple[list[Edit], np.ndarray, np.ndarray]:
    """The ``n`` synthetic edits and their (prompt, relation) embeddings, from the cache or computed
    (resuming where an interrupted run stopped)."""
    edits = synthetic_edits(n)
    cache.mkdir(parents=True, exist_ok=True)
    have = sorted((int(p.stem.split("-")[1]) for p in cache.glob("emb-*.npy")), reverse=True)
    size = next((h for h in have if h >= n), n)
    emb = np.lib.format.open_memmap(cache / f"emb-{size}.npy", mode="r+" if (cache / f"emb-{size}.npy").exists()
                                    else "w+", dtype=np.float32, shape=(size, 384))
    ctx = np.lib.format.open_memmap(cache / f"ctx-{size}.npy", mode="r+" if (cache / f"ctx-{size}.npy").exists()
                                    else "w+", dtype=np.float32, shape=(size, 384))
    done_file = cache / f"done-{size}.txt"
    done = int(done_file.read_text()) if done_file.exists() else 0
    if done < n:
        embedder = load_embedder()
        all_edits = edits if size == n else synthetic_edits(size)
        t0 = time.perf_counter()
        for b in range(done, n, batch):
            chunk = all_edits[b:b + batch]
            e, c = embed(embedder, chunk)
            emb[b:b + len(chunk)], ctx[b:b + len(chunk)] = e, c
            emb.flush()
            ctx.flush()
            done_file.write_text(str(b + len(chunk)))
            rate = (b + len(chunk) - done) / (time.perf_counter() - t0)
            log.info("embedded %d/%d scale edits (%.0f/s)", b + len(chunk), n, rate)
    return edits, np.asarray(emb[:n]), np.asarray(ctx[:n])


def embed(embedder: Embedder, edits: Sequence[Edit]) -> tuple[np.ndarray, np.ndarray]:
    """What :class:`EditMemory` stores for these edits: the prompt and the subject-excluded embeddings."""
    return embedder.embed_spans([e.prompt for e in edits], [subject_span(e.prompt, e.names) for e in edits])


class LookupEmbedder:
    """The real embedder, answering from precomputed vectors for the texts it was given (the bulk load
    of the benchmark) and embedding anything else; same name and size, so a memory written with it is
    a memory of the real embedder."""

    def __init__(self, real: Embedder, edits: Sequence[Edit], emb: np.ndarray, ctx: np.ndarray) -> None:
        self.real, self.name, self.dim = real, real.name, real.dim
        self._at = {e.prompt: i for i, e in enumerate(edits)}
        self._emb, self._ctx = emb, ctx

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.real.embed(texts)

    def embed_spans(self, texts: Sequence[str], spans: Sequence[tuple[int, int] | None]) -> tuple[np.ndarray, np.ndarray]:
        idx = [self._at.get(t) for t in texts]
        if all(i is not None for i in idx):
            rows = np.asarray(idx)
            return self._emb[rows], self._ctx[rows]
        return self.real.embed_spans(texts, spans)  # type: ignore[arg-type]
