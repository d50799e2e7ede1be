"""A memory's files besides its database: the atomic copy of a directory (:meth:`EditMemory.save`)
and the cached HNSW graph beside the database."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from bbedit.memory.index import VectorIndex

INDEX_FILE = "index.hnsw"
INDEX_META = "index.json"


def replace_dir(dest: Path, fill: Callable[[Path], None], extras: Sequence[Path] = ()) -> Path:
    """Build a new directory with ``fill(tmp)`` plus copies of the ``extras`` that exist, beside
    ``dest``, and rename it over ``dest``: readers see the old directory or the new one, never half of
    either. Returns ``dest``. Whatever ``fill`` or the file system raises (``OSError``...) propagates,
    with the temporary directory removed and ``dest`` untouched."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        fill(tmp)
        for extra in extras:
            if extra.exists():
                shutil.copy2(extra, tmp / extra.name)
        fsync_dir(tmp)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries to disk, where the platform allows it (errors are ignored)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_index_cache(folder: Path, index: VectorIndex, version: str | None, embedder: str) -> bool:
    """Give ``index`` the graph cached in ``folder`` if it was written at this database ``version``
    with this ``embedder``; returns whether it was used (False for anything stale or unreadable)."""
    meta_file = folder / INDEX_META
    if not meta_file.exists():
        return False
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError):
        return False
    if meta.get("version") != version or meta.get("embedder") != embedder:
        return False
    return index.load_structure(str(folder / INDEX_FILE))


def save_index_cache(folder: Path, index: VectorIndex, version: str | None, embedder: str, n: int) -> bool:
    """Cache ``index``'s graph in ``folder`` (when it has one worth caching), stamped with the
    database ``version`` and ``embedder``; returns whether it wrote. Raises ``OSError``/``RuntimeError``
    from the file system or FAISS."""
    if not index.save_structure(str(folder / INDEX_FILE)):
        return False
    tmp = (folder / INDEX_META).with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": version, "embedder": embedder, "n": n}))
    os.replace(tmp, folder / INDEX_META)
    return True
