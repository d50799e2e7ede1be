import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bbedit.errors import DuplicateEdit, EditNotFound, InvalidEdit, MemoryCorrupt
from bbedit.memory.memory import EditMemory
from bbedit.types import Edit

CEO = {"subject": "Acme", "prompt": "The CEO of Acme is", "target_new": "Jane Doe", "target_old": "John Roe"}


def test_add_get_list_search(memory: EditMemory) -> None:
    a = memory.add(CEO)
    b = memory.add(Edit(subject="Lyon", prompt="The twin city of Lyon is", target_new="Manila"))
    assert memory.get(a.id) == a and len(memory) == 2 and a.id in memory
    assert [e.id for e in memory.list()] == [a.id, b.id]
    hits = memory.search("Who runs Acme these days?", k=2)
    assert hits[0].edit.id == a.id and hits[0].score > hits[1].score
    r = memory.retrieve("Who is the CEO of Acme?")
    assert [m.row for m in r.matches] == [memory.row_of(a)]
    assert set(r.context) == {(r.matches[0].start, r.matches[0].end)}
    assert r.vector.dtype == np.float32 and abs(float(np.linalg.norm(r.vector)) - 1) < 1e-5


def test_unknown_ids_and_duplicates(memory: EditMemory) -> None:
    with pytest.raises(EditNotFound, match="no edit with id 'nope'"):
        memory.get("nope")
    with pytest.raises(EditNotFound):
        memory.remove("nope")
    memory.add({**CEO, "id": "x1"})
    with pytest.raises(DuplicateEdit):
        memory.add({**CEO, "id": "x1", "prompt": "Acme's boss is"})
    with pytest.raises(DuplicateEdit):
        memory.add_many([{**CEO, "id": "y"}, {**CEO, "id": "y"}])


def test_batch_is_validated_before_anything_is_stored(memory: EditMemory) -> None:
    good = [{**CEO, "id": f"g{i}", "subject": f"Acme {i}", "prompt": f"The CEO of Acme {i} is"} for i in range(3)]
    with pytest.raises(InvalidEdit, match="edit #3"):
        memory.add_many([*good[:2], {"subject": "x", "prompt": "y"}])
    assert len(memory) == 0


def test_supersede_keeps_history(memory: EditMemory) -> None:
    first = memory.add(CEO)
    second = memory.add({**CEO, "target_new": "Maria Okafor"})
    other = memory.add({"subject": "Acme", "prompt": "Acme was founded in the year", "target_new": "1999"})
    assert second.supersedes == first.id
    assert other.supersedes is None
    assert [e.id for e in memory.list()] == [second.id, other.id]
    assert not memory.is_active(first.id) and memory.get(first.id).target_new == "Jane Doe"
    assert [e.id for e in memory.history(second.id)] == [second.id, first.id]
    assert {e.id for e in memory.list(include_superseded=True)} == {first.id, second.id, other.id}
    assert all(h.edit.id != first.id for h in memory.search("CEO of Acme", k=5))


def test_update_and_remove(memory: EditMemory) -> None:
    e = memory.add(CEO)
    new = memory.update(e.id, target_new="Ann Lee", aliases=("Acme Inc",))
    assert memory.get(e.id).target_new == "Ann Lee"
    assert [m.row for m in memory.retrieve("Acme Inc's CEO").matches] == [memory.row_of(new)]
    with pytest.raises(InvalidEdit):
        memory.update(e.id, id="other")
    memory.remove(e.id)
    assert len(memory) == 0 and memory.search("Acme CEO") == []


def test_persistence_reopen_and_atomic_save(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "mem"
    with EditMemory(d, embedder=embedder) as m:
        a = m.add(CEO)
        b = m.add({**CEO, "target_new": "Maria"})
    with EditMemory.load(d, embedder=embedder) as m:
        assert [e.id for e in m.list()] == [b.id]
        assert m.get(a.id).target_new == "Jane Doe"
        assert m.search("Acme CEO")[0].edit.id == b.id
        copy = m.save(tmp_path / "copy")
    with EditMemory.load(copy, embedder=embedder) as m2:
        assert [e.id for e in m2.list()] == [b.id]
    # saving over an existing directory replaces it whole
    with EditMemory(None, embedder=embedder) as fresh:
        fresh.add({"subject": "Lyon", "prompt": "The twin city of Lyon is", "target_new": "Manila"})
        fresh.save(copy)
    with EditMemory.load(copy, embedder=embedder) as m3:
        assert [e.subject for e in m3.list()] == ["Lyon"]
    assert not any(p.name.startswith(".copy") for p in tmp_path.iterdir())


def test_corrupt_directories(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "edits.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(MemoryCorrupt, match="not a readable edit memory"):
        EditMemory(bad, embedder=embedder)
    with pytest.raises(MemoryCorrupt, match="not an edit memory"):
        EditMemory.load(tmp_path / "missing", embedder=embedder)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(MemoryCorrupt, match="is a file"):
        EditMemory(f, embedder=embedder)
    # a row whose JSON was damaged on disk is reported with its id
    good = tmp_path / "good"
    with EditMemory(good, embedder=embedder) as m:
        m.add({**CEO, "id": "hurt"})
    con = sqlite3.connect(good / "edits.sqlite")
    con.execute("UPDATE edits SET data='{broken' WHERE id='hurt'")
    con.commit()
    con.close()
    with pytest.raises(MemoryCorrupt, match="hurt"):
        EditMemory(good, embedder=embedder)


@pytest.mark.slow
def test_acknowledged_edits_survive_kill_9(tmp_path: Path) -> None:
    """A writer is killed mid-stream; every edit it acknowledged is there afterwards."""
    d = tmp_path / "crash"
    acks = tmp_path / "acks.txt"
    script = textwrap.dedent(f"""
        import sys
        from bbedit.memory.memory import EditMemory
        m = EditMemory({str(d)!r})
        with open({str(acks)!r}, "a") as log:
            for i in range(100000):
                e = m.add({{"subject": f"Company {{i}}", "prompt": f"The CEO of Company {{i}} is",
                            "target_new": f"Person {{i}}", "id": f"c{{i}}"}})
                log.write(e.id + "\\n"); log.flush()
    """)
    p = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "HF_HUB_OFFLINE": "1"})
    import time

    deadline = time.time() + 120
    while time.time() < deadline and (not acks.exists() or len(acks.read_text().split()) < 40):
        time.sleep(0.2)
    p.kill()
    p.wait()
    acked = acks.read_text().split()
    assert len(acked) >= 40
    with EditMemory.load(d) as m:
        ids = {e.id for e in m.list()}
        assert set(acked) <= ids
        assert len(m._index) == len(ids)  # the index agrees with the stored rows


def test_a_paraphrased_update_of_the_same_fact_supersedes(memory: EditMemory) -> None:
    first = memory.add({"subject": "Danielle Darrieux", "prompt": "The mother tongue of Danielle Darrieux is",
                        "target_new": "English"})
    second = memory.add({"subject": "Danielle Darrieux", "prompt": "Danielle Darrieux's mother tongue is",
                         "target_new": "German"})
    other = memory.add({"subject": "Danielle Darrieux", "prompt": "Danielle Darrieux was born in",
                        "target_new": "Rome"})
    assert second.supersedes == first.id and other.supersedes is None
    assert [e.id for e in memory.list()] == [second.id, other.id]
    # supersede=False keeps both (e.g. importing a benchmark whose cases repeat a fact)
    third = memory.add({"subject": "Danielle Darrieux", "prompt": "Danielle Darrieux was born in",
                        "target_new": "Oslo"}, supersede=False)
    assert third.supersedes is None and len(memory) == 3


def test_a_reworded_update_of_the_same_fact_supersedes(memory: EditMemory) -> None:
    first = memory.add({"subject": "Danielle Darrieux", "prompt": "The mother tongue of Danielle Darrieux is",
                        "target_new": "English"})
    second = memory.add({"subject": "Danielle Darrieux", "prompt": "Danielle Darrieux is a native speaker of",
                         "target_new": "German"})
    assert second.supersedes == first.id


def test_an_update_naming_the_subject_by_an_alias_supersedes(memory: EditMemory) -> None:
    first = memory.add({"subject": "Veltrix Dynamics", "aliases": ["Veltrix"], "target_new": "Ada Moreau",
                        "prompt": "Who is the CEO of Veltrix Dynamics?"})
    cto = memory.add({"subject": "Veltrix Dynamics", "aliases": ["Veltrix"], "target_new": "Lena Moreau",
                      "prompt": "Who is the CTO of Veltrix Dynamics?"})
    second = memory.add({"subject": "Veltrix", "prompt": "Who is the CEO of Veltrix?", "target_new": "Sam Ito"})
    assert second.supersedes == first.id and cto.supersedes is None
    assert {e.id for e in memory.list()} == {cto.id, second.id}
    # the same within one batch, the alias on the later edit this time
    a, b = memory.add_many([{"subject": "Orbit Labs", "prompt": "The headquarters of Orbit Labs is in", "target_new": "Oslo"},
                            {"subject": "Orbit Laboratories", "aliases": ["Orbit Labs"], "target_new": "Lima",
                             "prompt": "The headquarters of Orbit Laboratories is in"}])
    assert b.supersedes == a.id


def test_well_known_subjects_are_found_by_their_other_names(embedder) -> None:  # type: ignore[no-untyped-def]
    m = EditMemory(None, embedder=embedder)
    uk = m.add({"subject": "United Kingdom", "prompt": "Who is the prime minister of the United Kingdom?",
                "target_new": "Ada Moreau"})
    us = m.add({"subject": "United States", "prompt": "Who is the president of the United States?",
                "target_new": "Sam Ito"})
    assert uk.aliases == ()  # the edit itself is not changed
    assert [e.id for _, es in m.subjects_in("Who leads the UK government?") for e in es] == [uk.id]
    assert [e.id for _, es in m.subjects_in("Who is the current US president?") for e in es] == [us.id]
    assert m.subjects_in("Tell us who the president is") == []  # "us" is not "US"
    nl = m.add({"subject": "Netherlands", "prompt": "The capital of the Netherlands is", "target_new": "Utrecht"})
    assert m.subjects_in("Who is Ned Stark's father?") == []  # the table's "NED" only as written
    assert [e.id for _, es in m.subjects_in("What is the capital of Holland?") for e in es] == [nl.id]
    # an update naming the subject by another name supersedes
    again = m.add({"subject": "Britain", "prompt": "Who is the prime minister of Britain?", "target_new": "Lena Cho"})
    assert again.supersedes == uk.id
    plain = EditMemory(None, embedder=embedder, known_aliases=False)
    plain.add({"subject": "United Kingdom", "prompt": "Who is the prime minister of the United Kingdom?",
               "target_new": "Ada Moreau"})
    assert plain.subjects_in("Who leads the UK government?") == []
    with pytest.MonkeyPatch.context() as mp:  # the CLI's and the server's switch
        mp.setenv("BBEDIT_KNOWN_ALIASES", "0")
        assert EditMemory(None, embedder=embedder).known_aliases is False
    assert EditMemory(None, embedder=embedder).known_aliases is True


def test_hnsw_graph_is_cached_and_invalidated(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "big"
    edits = [{"id": f"f{i}", "subject": f"Firm {i}", "prompt": f"The CEO of Firm {i} is", "target_new": f"P{i}"}
             for i in range(60)]
    with EditMemory(d, embedder=embedder, hnsw_threshold=50) as m:
        m.add_many(edits)
        assert m._index.active_kind == "hnsw" and m.search("CEO of Firm 7")[0].edit.id == "f7"
    assert (d / "index.hnsw").exists()
    with EditMemory(d, embedder=embedder, hnsw_threshold=50) as m:
        assert m._index._faiss is not None  # loaded, not rebuilt
        assert m.search("CEO of Firm 7")[0].edit.id == "f7"
        m.add({"id": "late", "subject": "Latecomer", "prompt": "The CEO of Latecomer is", "target_new": "Q"})
    # a damaged cache file is ignored and the graph rebuilt
    (d / "index.hnsw").write_bytes(b"junk")
    with EditMemory(d, embedder=embedder, hnsw_threshold=50) as m:
        assert len(m) == 61 and m.search("The CEO of Latecomer is")[0].edit.id == "late"
    # a cache written at another store version is ignored too
    stale = (d / "index.json").read_text().replace('"version": "', '"version": "0')
    (d / "index.json").write_text(stale)
    with EditMemory(d, embedder=embedder, hnsw_threshold=50) as m:
        assert m._index._faiss is None and m.search("The CEO of Firm 3 is")[0].edit.id == "f3"


def test_reading_needs_no_embedder_and_a_new_embedder_reembeds(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "m"
    with EditMemory(d, embedder=embedder) as m:
        m.add({**CEO, "id": "a"})

    class Tiny:
        """A different (toy, 8-d) embedder: the memory must re-embed its rows for it."""

        name, dim = "tiny-test-embedder", 8

        def embed(self, texts):  # type: ignore[no-untyped-def]
            return self.embed_spans(texts, [None] * len(texts))[0]

        def embed_spans(self, texts, spans):  # type: ignore[no-untyped-def]
            v = np.ones((len(texts), 8), np.float32) / np.sqrt(8)
            return v, v.copy()

    with EditMemory(d) as lazy:  # default embedder, not loaded for reading
        assert lazy._embedder is None and lazy.get("a").target_new == "Jane Doe" and lazy._embedder is None
    with EditMemory(d, embedder=Tiny()) as m2:
        assert m2.search("anything")[0].edit.id == "a"
    with EditMemory(d, embedder=embedder) as m3:  # and back again
        assert m3.search("Who is the CEO of Acme?")[0].score > 0.5
