"""Durability of admin writes: a SIGKILLed server loses no acknowledged edit, and the index agrees with the rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("httpx")
pytest.importorskip("fastapi")


@pytest.mark.slow
def test_kill_9_during_creates_loses_no_acknowledged_edit(llama_server: Any, tmp_path: Path) -> None:
    from bbedit.evaluation.middleware import crash

    r = crash(llama_server.base_url, llama_server.model, tmp_path, n=240, workers=4, seed=3, n_route_checks=5)
    assert 0 < r["acked_before_kill"] < 240
    assert r["lost"] == 0 and r["final_missing"] == 0
    assert r["index_checked"] == r["stored_active"] == 240
    assert r["routed_after_restart"] >= 0.8


def test_stale_hnsw_cache_is_not_used_after_an_unclean_stop(tmp_path: Path, embedder: Any) -> None:
    """The cached HNSW graph is written at close; rows written later by a process that never closed
    (a crash) make it stale, and the next open rebuilds instead of searching a graph that misses them."""
    from bbedit.evaluation.overhead import synthetic_edits
    from bbedit.memory.memory import EditMemory

    edits = synthetic_edits(40, seed=5)
    with EditMemory(tmp_path / "m", embedder=embedder, hnsw_threshold=10) as m:
        m.add_many(edits[:30], supersede=False)
        m.search("warm-up builds the graph")
    assert (tmp_path / "m" / "index.hnsw").exists()
    crashed = EditMemory(tmp_path / "m", embedder=embedder, hnsw_threshold=10)
    crashed.add_many(edits[30:], supersede=False)  # never closed: as if killed here
    with EditMemory(tmp_path / "m", embedder=embedder, hnsw_threshold=10) as m:
        assert m.check_index() == 40
        assert {h.edit.id for h in m.search(edits[35].prompt, 1)} == {edits[35].id}
    crashed._store.close()


def test_check_index_notices_a_disagreement(memory: Any) -> None:
    from bbedit.errors import MemoryCorrupt

    memory.add({"subject": "Acme", "prompt": "The CEO of Acme is", "target_new": "Maria", "id": "a"})
    memory.add({"subject": "Initech", "prompt": "The CEO of Initech is", "target_new": "Bill", "id": "b"})
    assert memory.check_index() == 2
    row = memory.row_of(memory.get("a"))
    memory._index.add([row], np.roll(memory._index.vector(row), 1)[None, :])  # corrupt one vector
    with pytest.raises(MemoryCorrupt, match="'a'"):
        memory.check_index()


def test_refresh_sees_another_writer_and_own_writes_do_not_reload(tmp_path: Path, embedder: Any) -> None:
    from bbedit.memory.memory import EditMemory

    with EditMemory(tmp_path / "m", embedder=embedder) as a, EditMemory(tmp_path / "m", embedder=embedder) as b:
        a.add({"subject": "Acme", "prompt": "The CEO of Acme is", "target_new": "Maria", "id": "x"})
        assert a.refresh() is False and "x" not in b
        assert b.refresh() is True and b.get("x").target_new == "Maria" and b.refresh() is False
        b.update("x", target_new="Ada")
        a.add({"subject": "Initech", "prompt": "The CEO of Initech is", "target_new": "Bill", "id": "y"})
        assert a.get("x").target_new == "Ada"  # a's own write noticed b's update and reloaded
        assert [h.edit.id for h in a.search("Who runs Initech?", 1)] == ["y"]
        b.remove("x")
        assert a.refresh() is True and "x" not in a and len(a) == 1
