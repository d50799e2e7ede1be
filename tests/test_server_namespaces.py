"""Namespaces on one proxy over a real PostgreSQL: a request reaches the memory of its API key or
header, an admin token acts on its own namespace only, every cross-namespace attempt is refused;
history, revert and restore on the admin API; a database outage refuses writes with a 503 while
the chat route goes on routing from the index."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from bbedit.memory.pgstore import split_url  # noqa: E402
from bbedit.server import ServerConfig, create_app  # noqa: E402
from bbedit.server.background import running  # noqa: E402
from bbedit.server.tenants import NamespaceAccess  # noqa: E402
from tests.test_server import Stub  # noqa: E402

HEADER = "X-BBEdit-Namespace"
ACME = {"subject": "Acme", "prompt": "Who is the CEO of Acme?", "target_new": "Maria Okafor"}


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    s = Stub()
    s.mode = "ok"
    yield s
    s.close()


@pytest.fixture
def tenants(pg_url: str, stub: Stub) -> Iterator[dict[str, Any]]:
    """A proxy over one database with namespaces a and b: API keys ka/kb, admin tokens alice/bob."""
    url, _ = split_url(pg_url)
    tag = uuid.uuid4().hex[:8]
    a, b = f"a-{tag}", f"b-{tag}"
    access = NamespaceAccess.from_dict({"header": HEADER, "namespaces": {
        a: {"api_keys": ["ka"], "admin_tokens": {"alice": "tok-a"}},
        b: {"api_keys": ["kb"], "admin_tokens": {"bob": "tok-b"}}}}, default=a)
    cfg = ServerConfig(upstream=stub.url, memory=url, access=access, timeout=2.0, max_retries=0, warm_up=False)
    with running(create_app(cfg)) as base:
        yield {"url": base, "a": a, "b": b}


def tok(t: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}", **extra}


def chat(base: str, key: str, question: str, **headers: str) -> httpx.Response:
    return httpx.post(base + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}",
                                                             "X-BBEdit-Explain": "1", **headers},
                      json={"model": "m", "messages": [{"role": "user", "content": question}]}, timeout=30)


def test_every_cross_namespace_attempt_is_refused(tenants: dict[str, Any]) -> None:
    base, a, b = tenants["url"], tenants["a"], tenants["b"]
    r = httpx.post(base + "/admin/edits", headers=tok("tok-a"), json={**ACME, "id": "acme-ceo"})
    assert r.status_code == 201 and r.json()["active"]
    r = httpx.post(base + "/admin/edits", headers=tok("tok-b"), json={**ACME, "id": "b-only", "target_new": "Bo"})
    assert r.status_code == 201

    attempts = [  # (what, response) -- each must be refused or must not see a's edit
        ("read a's edit with b's token", httpx.get(base + "/admin/edits/acme-ceo", headers=tok("tok-b"))),
        ("read, claiming a by header", httpx.get(base + "/admin/edits/acme-ceo", headers=tok("tok-b", **{HEADER: a}))),
        ("read, claiming a by query", httpx.get(base + f"/admin/edits/acme-ceo?namespace={a}", headers=tok("tok-b"))),
        ("change a's edit", httpx.patch(base + "/admin/edits/acme-ceo", headers=tok("tok-b"), json={"target_new": "X"})),
        ("delete a's edit", httpx.delete(base + "/admin/edits/acme-ceo", headers=tok("tok-b"))),
        ("write into a by header", httpx.post(base + "/admin/edits", headers=tok("tok-b", **{HEADER: a}), json=ACME)),
        ("history of a's edit", httpx.get(base + "/admin/edits/acme-ceo/history", headers=tok("tok-b"))),
        ("revert a's edit", httpx.post(base + "/admin/edits/acme-ceo/revert", headers=tok("tok-b"), json={"to": 0})),
        ("restore a", httpx.post(base + f"/admin/restore?namespace={a}", headers=tok("tok-b"), json={"at": 0})),
        ("list a", httpx.get(base + f"/admin/edits?namespace={a}", headers=tok("tok-b"))),
        ("export a", httpx.get(base + "/admin/edits/export", headers=tok("tok-b", **{HEADER: a}))),
        ("a's history", httpx.get(base + "/admin/history", headers=tok("tok-b", **{HEADER: a}))),
        ("an api key as admin token", httpx.get(base + "/admin/edits", headers=tok("ka"))),
        ("no token", httpx.get(base + "/admin/edits")),
        ("a wrong token", httpx.get(base + "/admin/edits", headers=tok("tok-c"))),
        ("chat with b's key claiming a", chat(base, "kb", "Who is the CEO of Acme?", **{HEADER: a})),
        ("chat with an unknown key", chat(base, "kz", "Who is the CEO of Acme?")),
        ("chat with an unknown key claiming a", chat(base, "kz", "Who is the CEO of Acme?", **{HEADER: a})),
    ]
    for what, r in attempts:
        assert r.status_code in (401, 403, 404), (what, r.status_code, r.text)
        assert "Maria Okafor" not in r.text, what  # nothing of a's edit comes back
    # b's own listing and export hold only b's edit
    listing = httpx.get(base + "/admin/edits", headers=tok("tok-b")).json()
    assert [e["id"] for e in listing["data"]] == ["b-only"] and listing["namespace"] == b
    assert "acme-ceo" not in httpx.get(base + "/admin/edits/export", headers=tok("tok-b")).text
    # and a's edit is untouched
    assert httpx.get(base + "/admin/edits/acme-ceo", headers=tok("tok-a")).json()["target_new"] == "Maria Okafor"
    # each key routes to its own namespace's edit
    ra, rb = chat(base, "ka", "Who is the CEO of Acme?"), chat(base, "kb", "Who is the CEO of Acme?")
    assert ra.status_code == 200 and "acme-ceo" in ra.headers.get("x-bbedit-route", "")
    assert rb.status_code == 200 and "acme-ceo" not in rb.headers.get("x-bbedit-route", "")
    assert "b-only" in rb.headers.get("x-bbedit-route", "")


def test_history_revert_and_restore_on_the_admin_api(tenants: dict[str, Any]) -> None:
    base = tenants["url"]
    h = tok("tok-a")
    assert httpx.post(base + "/admin/edits", headers=h, json={**ACME, "id": "ceo"}).status_code == 201
    then = time.time() + 0.02  # the database runs on this machine: the same clock
    time.sleep(0.1)
    assert httpx.patch(base + "/admin/edits/ceo", headers=h, json={"target_new": "Lena Moreau"}).status_code == 200
    versions = httpx.get(base + "/admin/edits/ceo/history", headers=h).json()["data"]
    assert [(v["version"], v["op"], v["actor"]) for v in versions] == [(1, "create", "alice"), (2, "update", "alice")]
    assert versions[1]["before"]["edit"]["target_new"] == "Maria Okafor"
    r = httpx.post(base + "/admin/edits/ceo/revert", headers=h, json={"to": 1})
    assert r.status_code == 200 and r.json()["edit"]["target_new"] == "Maria Okafor"
    assert httpx.post(base + "/admin/edits/ceo/revert", headers=h, json={"to": "one"}).status_code == 422
    assert httpx.post(base + "/admin/edits/ceo/revert", headers=h, json={"to": 9}).status_code == 422
    httpx.delete(base + "/admin/edits/ceo", headers=h)
    r = httpx.post(base + "/admin/restore", headers=h, json={"at": then})
    assert r.status_code == 200 and r.json()["changed"] == 1
    assert httpx.get(base + "/admin/edits/ceo", headers=h).json()["target_new"] == "Maria Okafor"
    assert httpx.post(base + "/admin/restore", headers=h, json={"at": "yesterday"}).status_code == 422
    ops = [c["op"] for c in httpx.get(base + "/admin/history", headers=h).json()["data"]]
    assert ops == ["create", "update", "revert", "delete", "restore"]


def test_while_postgres_is_down_writes_get_503_and_chat_still_routes(tmp_path: Any, stub: Stub) -> None:
    from bbedit.memory.pglocal import LocalPostgres

    pg = LocalPostgres(tmp_path / "pgdata").start()
    try:
        cfg = ServerConfig(upstream=stub.url, memory=pg.create_database("bbedit"), token="t", timeout=2.0,
                           max_retries=0, warm_up=False)
        with running(create_app(cfg)) as base:
            assert httpx.post(base + "/admin/edits", headers=tok("t"), json={**ACME, "id": "ceo"}).status_code == 201
            pg.stop()
            r = httpx.post(base + "/admin/edits", headers=tok("t"), json={**ACME, "id": "ceo-2", "target_new": "X"})
            assert r.status_code == 503 and r.json()["error"]["code"] == "memory_unavailable"
            assert r.headers.get("retry-after") == "1"
            r = chat(base, "any", "Who is the CEO of Acme?")
            assert r.status_code == 200 and "ceo" in r.headers.get("x-bbedit-route", "")
            pg.start()
            deadline = time.time() + 10
            while time.time() < deadline:
                r = httpx.post(base + "/admin/edits", headers=tok("t"),
                               json={**ACME, "id": "ceo-2", "target_new": "Lena Moreau"})
                if r.status_code == 201:
                    break
                time.sleep(0.2)
            assert r.status_code == 201
            ids = [e["id"] for e in httpx.get(base + "/admin/edits?include_superseded=true",
                                              headers=tok("t")).json()["data"]]
            assert ids == ["ceo", "ceo-2"]
    finally:
        pg.stop()
