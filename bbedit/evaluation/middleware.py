"""The middleware benchmark: exactness, proxy overhead, load, fuzzing and a crash test of ``bbedit serve``.

Every proxy here is a real ``bbedit serve`` process (``python -m bbedit.cli serve``) in front of the
embedded llama.cpp server with SmolLM2, driven over HTTP; the crash test kills it with SIGKILL.

Over 500 lines on purpose: the five phases share one set of running servers, clients and timing helpers,
and each phase is a short function next to the others; split, they would pass that state around.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from bbedit.evaluation.report import DATA_ROOT, percentile

log = logging.getLogger(__name__)

TOKEN = "bench-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SYSTEMS = [None, "You are a helpful assistant.", "Answer in one short sentence.", "Reply in French.",
           "You are a pirate. Stay in character."]
FALLBACK_QUESTIONS = [f"{q} {x}?" for q in ("What is the capital of", "Who is the president of",
                                            "What language is spoken in", "What is the currency of")
                      for x in ("France", "Japan", "Brazil", "Kenya", "Canada", "Norway", "Peru", "India")]


class CpuMeter:
    """How busy other processes kept the machine during a phase: all cores' busy time (/proc/stat) minus
    the CPU time of ``pids`` (this benchmark, its model server, its proxy), in cores. Other jobs on the
    machine slow every figure here; this says how much of that there was."""

    def __init__(self, *pids: int) -> None:
        self.pids = [os.getpid(), *pids]
        self.tick = os.sysconf("SC_CLK_TCK")
        self.marks: dict[str, float] = {}

    def _busy(self) -> float:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return (sum(v) - v[3] - v[4]) / self.tick  # all but idle and iowait

    def _ours(self) -> float:
        total = 0.0
        for pid in self.pids:
            with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / self.tick
        return total

    def start(self) -> None:
        self.marks = {"t": time.perf_counter(), "busy": self._busy(), "ours": self._ours()}

    def others(self) -> float:
        """Cores used by other processes on average since :meth:`start`."""
        dt = time.perf_counter() - self.marks["t"]
        other = (self._busy() - self.marks["busy"]) - (self._ours() - self.marks["ours"])
        return max(other, 0.0) / max(dt, 1e-9)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def questions(n: int, seed: int = 0, data: Path = DATA_ROOT) -> list[str]:
    """``n`` varied questions: NQ-open when the benchmark data is there, else built-in ones."""
    path = data / "general" / "NQ-open.dev.jsonl"
    pool = ([json.loads(x)["question"] for x in path.read_text().splitlines() if x.strip()]
            if path.is_file() else FALLBACK_QUESTIONS)
    rng = random.Random(seed)
    return [rng.choice(pool) for _ in range(n)]


@contextlib.contextmanager
def proxy_process(upstream: str, memory_dir: Path, log_path: Path, *, timeout: float = 30.0,
                  editor: str = "ike") -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ``bbedit serve`` process on a free port; yields (root URL, process) once /healthz answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "bbedit.cli", "serve", "--upstream", upstream, "--memory", str(memory_dir),
           "--port", str(port), "--token", TOKEN, "--timeout", str(timeout), "--editor", editor]
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bbedit serve exited with {proc.returncode}; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"bbedit serve did not become healthy; see {log_path}")
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


DIRECT_RETRIES = {"n": 0}


def post_direct(client: httpx.Client, url: str, body: dict[str, Any]) -> httpx.Response:
    """POST straight to llama.cpp, once more if it dropped the connection without an answer (it
    sometimes does on a reused keep-alive connection; counted in ``DIRECT_RETRIES``). The proxy gets
    no such help: it must cope with the same upstream itself."""
    try:
        return client.post(url, json=body)
    except httpx.RemoteProtocolError:
        DIRECT_RETRIES["n"] += 1
        return client.post(url, json=body)


# -- exactness -----------------------------------------------------------------------------------------
def exactness_requests(model: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` varied greedy chat requests: system prompts, multi-turn, stops, n=2, streaming, sampling fields."""
    rng = random.Random(seed)
    qs = questions(2 * n, seed)
    out = []
    for i in range(n):
        msgs: list[dict[str, Any]] = []
        system = rng.choice(SYSTEMS)
        if system:
            msgs.append({"role": "system", "content": system})
        if rng.random() < 0.3:
            msgs += [{"role": "user", "content": qs[n + i]}, {"role": "assistant", "content": "I am not sure."}]
        msgs.append({"role": "user", "content": qs[i]})
        body: dict[str, Any] = {"model": model, "messages": msgs, "max_tokens": rng.randint(4, 32),
                                "temperature": 0, "cache_prompt": False}
        if rng.random() < 0.25:
            body["stream"] = True
        if rng.random() < 0.15:
            body["stop"] = ["."]
        if rng.random() < 0.1 and not body.get("stream"):
            body["n"] = 2
        if rng.random() < 0.2:
            body.update(seed=rng.randint(0, 999), top_p=0.9, top_k=40)
        out.append(body)
    return out


def _contents(r: httpx.Response, stream: bool) -> list[tuple[str, str | None]]:
    """(content, finish_reason) per choice of a completion or of an SSE stream."""
    if not stream:
        return [(c["message"].get("content") or "", c.get("finish_reason")) for c in r.json()["choices"]]
    texts: dict[int, list[str]] = {}
    finish: dict[int, str | None] = {}
    for line in r.text.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        for c in json.loads(line[6:]).get("choices", []):
            texts.setdefault(c["index"], []).append((c.get("delta") or {}).get("content") or "")
            if c.get("finish_reason"):
                finish[c["index"]] = c["finish_reason"]
    return [("".join(texts[i]), finish.get(i)) for i in sorted(texts)]


def exactness(proxy: str, direct: str, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """Send each request straight to the upstream and through the (empty-memory) proxy; compare answers."""
    same, mismatches = 0, []
    with httpx.Client(timeout=120) as c:
        for i, body in enumerate(bodies):
            order = [(proxy + "/v1", "proxy"), (direct, "direct")]
            if i % 2:
                order.reverse()
            got = {name: (c.post(base + "/chat/completions", json=body) if name == "proxy" else
                          post_direct(c, base + "/chat/completions", body)) for base, name in order}
            if any(r.status_code != 200 for r in got.values()):
                mismatches.append({"i": i, "status": {k: r.status_code for k, r in got.items()}})
                continue
            a, b = (_contents(got[k], bool(body.get("stream"))) for k in ("proxy", "direct"))
            if a == b:
                same += 1
            else:
                mismatches.append({"i": i, "proxy": a, "direct": b})
    return {"n": len(bodies), "same": same, "rate": same / max(len(bodies), 1), "mismatches": mismatches[:20]}


# -- the Responses API and plain completions --------------------------------------------------------------
API_PATHS = {"responses": "/responses", "completions": "/completions"}


def api_requests(model: str, n: int, seed: int = 3) -> list[tuple[str, dict[str, Any]]]:
    """``n`` greedy out-of-scope requests for each of the Responses API and plain completions (half of
    them streamed): Responses with a string input or a list of items, with and without instructions,
    sometimes after an earlier turn; completions on a question or a sentence to go on with."""
    rng = random.Random(seed)
    qs = questions(2 * n, seed)
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(n):
        body: dict[str, Any] = {"model": model, "max_output_tokens": rng.randint(4, 24), "temperature": 0,
                                "cache_prompt": False, "stream": i % 2 == 1}
        if rng.random() < 0.5:
            body["input"] = qs[i]
        else:
            items: list[dict[str, Any]] = []
            if rng.random() < 0.3:
                items += [{"role": "user", "content": qs[n + i]},
                          {"type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                                                "text": "I am not sure."}]}]
            items.append({"role": "user", "content": [{"type": "input_text", "text": qs[i]}]})
            body["input"] = items
        if system := rng.choice(SYSTEMS):
            body["instructions"] = system
        out.append(("responses", body))
        prompt = f"Question: {qs[i]}\nAnswer:" if i % 3 else qs[i].rstrip("?") + " is"
        out.append(("completions", {"model": model, "prompt": prompt, "max_tokens": rng.randint(4, 24),
                                    "temperature": 0, "cache_prompt": False, "stream": i % 2 == 1}))
    return out


def api_text(api: str, r: httpx.Response, stream: bool) -> tuple[str, bool]:
    """The answer's text from a Responses or completions answer (whole or streamed), and whether it was
    complete (a ``response.completed`` event, or ``[DONE]``)."""
    if not stream:
        data = r.json()
        if api == "completions":
            return "".join(c.get("text") or "" for c in data["choices"]), True
        parts = [p.get("text") or "" for item in data.get("output") or [] if item.get("type") == "message"
                 for p in item.get("content") or [] if p.get("type") == "output_text"]
        return "".join(parts), data.get("status") == "completed"
    text, done = [], False
    for line in r.text.splitlines():
        if not line.startswith("data: "):
            continue
        if line == "data: [DONE]":
            done = True
            continue
        ev = json.loads(line[6:])
        if api == "completions":
            text += [c.get("text") or "" for c in ev.get("choices", [])]
        elif ev.get("type") == "response.output_text.delta":
            text.append(ev.get("delta") or "")
        elif ev.get("type") == "response.completed":
            done = True
    return "".join(text), done


def api_exactness(proxy: str, direct: str, reqs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Each request straight to llama.cpp and through the proxy (empty memory): the same text, per API
    and stream flag."""
    tally: dict[str, list[int]] = {}
    mismatches = []
    with httpx.Client(timeout=120) as c:
        for i, (api, body) in enumerate(reqs):
            key = f"{api}{'_stream' if body.get('stream') else ''}"
            got = {"proxy": c.post(proxy + "/v1" + API_PATHS[api], json=body),
                   "direct": post_direct(c, direct + API_PATHS[api], body)}
            row = tally.setdefault(key, [0, 0])
            row[1] += 1
            if any(r.status_code != 200 for r in got.values()):
                mismatches.append({"i": i, "api": key, "status": {k: r.status_code for k, r in got.items()}})
                continue
            a, b = (api_text(api, got[k], bool(body.get("stream"))) for k in ("proxy", "direct"))
            if a == b and "x-bbedit-edit" not in got["proxy"].headers:
                row[0] += 1
            else:
                mismatches.append({"i": i, "api": key, "proxy": a, "direct": b})
    same = sum(v[0] for v in tally.values())
    return {"n": len(reqs), "same": same, "rate": same / max(len(reqs), 1),
            "per_api": {k: {"same": v[0], "n": v[1]} for k, v in sorted(tally.items())}, "mismatches": mismatches[:20]}


def api_edits(url: str, model: str) -> dict[str, Any]:
    """The demo's edits through the admin API, then its questions through each API (whole and streamed):
    a question about an edit must come back routed to it (``x-bbedit-edit``) with the new value stated
    (strict judging against the edit's old value); a control question must come back unrouted. The
    demo edits are deleted afterwards."""
    from bbedit.evaluation.metrics import strict_edit_success
    from bbedit.memory.formats import read_edits
    from bbedit.prompts import data_dir, demo_questions

    edits = {e.id: e for e in read_edits(data_dir("memory") / "demo.jsonl")}
    qs = demo_questions()
    rows = []
    with httpx.Client(timeout=120) as c:
        for e in edits.values():
            c.post(url + "/admin/edits", json=e.to_dict(), headers=AUTH).raise_for_status()
        for q in qs:
            for api in API_PATHS:
                for stream in (False, True):
                    body: dict[str, Any] = {"model": model, "temperature": 0, "cache_prompt": False, "stream": stream}
                    if api == "responses":
                        body.update(input=q["question"], max_output_tokens=48,
                                    instructions="Answer in one short sentence.")
                    else:
                        body.update(prompt=f"Question: {q['question']}\nAnswer:", max_tokens=32, stop=["\n"])
                    r = c.post(url + "/v1" + API_PATHS[api], json=body)
                    text, done = api_text(api, r, stream) if r.status_code == 200 else ("", False)
                    routed = r.headers.get("x-bbedit-edit")
                    about = edits.get(q["edit"] or "")
                    ok = r.status_code == 200 and done and (
                        routed == about.id and strict_edit_success(text, about.target_new, about.target_old or (),
                                                                   None, q["question"], [about.subject, *about.aliases])
                        if about is not None else routed is None)
                    rows.append({"api": api, "stream": stream, "question": q["question"], "edit": q["edit"],
                                 "routed": routed, "ok": ok, "status": r.status_code, "text": text})
        for e in edits.values():
            c.delete(url + f"/admin/edits/{e.id}", headers=AUTH).raise_for_status()
    in_scope = [r for r in rows if r["edit"]]
    controls = [r for r in rows if not r["edit"]]
    return {"rows": rows, "routed_rate": sum(r["routed"] == r["edit"] for r in in_scope) / max(len(in_scope), 1),
            "edit_success": sum(r["ok"] for r in in_scope) / max(len(in_scope), 1),
            "controls_untouched": sum(r["ok"] for r in controls) / max(len(controls), 1)}


# -- overhead and load -----------------------------------------------------------------------------------
def _server_timing(r: httpx.Response, name: str = "bbedit") -> float | None:
    for part in r.headers.get("server-timing", "").split(","):
        key, _, dur = part.strip().partition(";dur=")
        if key == name:
            return float(dur)
    return None


def paired_overhead(proxy: str, direct: str, model: str, n: int = 300, seed: int = 1) -> dict[str, Any]:
    """Alternating identical requests, one at a time, direct and through the proxy (out-of-scope questions,
    4 tokens, greedy): the proxy's added latency per pair, in ms."""
    diffs, own, lat_p, lat_d = [], [], [], []
    with httpx.Client(timeout=60) as cp, httpx.Client(timeout=60) as cd:
        for i, q in enumerate(questions(n + 10, seed)):
            body = {"model": model, "messages": [{"role": "user", "content": q}], "max_tokens": 4, "temperature": 0,
                    "cache_prompt": False}
            times = {}
            for name in (("proxy", "direct") if i % 2 else ("direct", "proxy")):
                client, url = (cp, proxy + "/v1") if name == "proxy" else (cd, direct)
                t0 = time.perf_counter()
                r = (client.post(url + "/chat/completions", json=body) if name == "proxy" else
                     post_direct(client, url + "/chat/completions", body))
                times[name] = (time.perf_counter() - t0) * 1000
                r.raise_for_status()
                if name == "proxy" and (s := _server_timing(r)) is not None and i >= 10:
                    own.append(s)
            if i >= 10:  # the first pairs warm up both paths
                diffs.append(times["proxy"] - times["direct"])
                lat_p.append(times["proxy"])
                lat_d.append(times["direct"])
    return {"n": len(diffs), "diff_ms": diffs, "own_ms": own, "proxy_ms": lat_p, "direct_ms": lat_d}


async def _load(url: str | Sequence[str], bodies: list[dict[str, Any]], clients: int, seconds: float, *,
                headers: dict[str, str] | None = None, stop: threading.Event | None = None) -> list[dict[str, Any]]:
    """``clients`` concurrent clients posting ``bodies`` in turn to ``url``'s chat route (or spread over
    several ``url`` roots with ``/v1``) for ``seconds`` or until ``stop``; one row per request."""
    urls = [url] if isinstance(url, str) else list(url)
    rows: list[dict[str, Any]] = []
    end = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with httpx.AsyncClient(timeout=120, limits=limits, headers=headers) as c:
        async def worker(w: int) -> None:
            k = 0
            while time.perf_counter() < end and not (stop is not None and stop.is_set()):
                body = bodies[(w * 7919 + k * 31) % len(bodies)]
                target = urls[(w + k) % len(urls)]
                k += 1
                t0 = time.perf_counter()
                row: dict[str, Any] = {"t": t0, "wall": time.time(), "url": target}
                try:
                    r = await c.post(target + "/chat/completions", json=body)
                    row.update(status=r.status_code, own_ms=_server_timing(r),
                               edited="x-bbedit-edit" in r.headers)
                    if r.status_code != 200:
                        row["error"] = r.text[:200]
                except httpx.HTTPError as e:
                    row.update(status=-1, error=f"{type(e).__name__}: {e}")
                row["ms"] = (time.perf_counter() - t0) * 1000
                rows.append(row)

        await asyncio.gather(*(worker(w) for w in range(clients)))
    return rows


def load(url: str, bodies: list[dict[str, Any]], clients: int = 50, seconds: float = 120) -> list[dict[str, Any]]:
    """``clients`` concurrent clients sending ``bodies`` in turn for ``seconds``; one row per request."""
    return asyncio.run(_load(url, bodies, clients, seconds))


# -- crash ---------------------------------------------------------------------------------------------
def _create_all(url: str, edits: list[dict[str, Any]], workers: int, acked: set[str],
                stop_after: int | None = None) -> dict[str, int]:
    """POST each edit to /admin/edits from ``workers`` threads; the ids answered 201 go to ``acked``.
    A thread stops at its first connection failure (the server is gone)."""
    queue = list(reversed(edits))
    lock = threading.Lock()
    counts = {"conflict": 0, "failed": 0}

    def run() -> None:
        with httpx.Client(timeout=60) as c:
            while True:
                with lock:
                    if not queue:
                        return
                    e = queue.pop()
                try:
                    r = c.post(url + "/admin/edits", json=e, headers=AUTH)
                except httpx.HTTPError:
                    with lock:
                        counts["failed"] += 1
                    return
                with lock:
                    if r.status_code == 201:
                        acked.add(e["id"])
                    elif r.status_code == 409:
                        counts["conflict"] += 1
                    else:
                        counts["failed"] += 1

    threads = [threading.Thread(target=run, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def _listed_ids(url: str) -> set[str]:
    ids: set[str] = set()
    offset: int | None = 0
    with httpx.Client(timeout=60) as c:
        while offset is not None:
            page = c.get(url + f"/admin/edits?limit=1000&offset={offset}", headers=AUTH).json()
            ids |= {e["id"] for e in page["data"]}
            offset = page["next_offset"]
    return ids


def crash(upstream: str, model: str, workdir: Path, n: int = 5000, workers: int = 8, seed: int = 0,
          kill_range: tuple[float, float] = (0.4, 0.8), n_route_checks: int = 20) -> dict[str, Any]:
    """Create ``n`` edits through the admin API and SIGKILL the server part-way; restart it on the same
    directory and check that every acknowledged edit is there; create the rest; check that the search
    index agrees with the stored rows (:meth:`EditMemory.check_index`) and that the restarted server
    routes questions to edits acknowledged before the kill."""
    from bbedit.evaluation.overhead import synthetic_edits
    from bbedit.memory.memory import EditMemory

    rng = random.Random(seed)
    edits = [e.to_dict() for e in synthetic_edits(n, seed=seed + 7)]
    for e in edits:
        e["id"] = "crash-" + e["id"]
    mem_dir = workdir / "crash-memory"
    logp = workdir / "crash-serve.log"
    kill_at = int(n * rng.uniform(*kill_range))
    acked: set[str] = set()
    t0 = time.perf_counter()
    with proxy_process(upstream, mem_dir, logp) as (url, proc):
        def killer() -> None:
            while len(acked) < kill_at and proc.poll() is None:
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)

        k = threading.Thread(target=killer, daemon=True)
        k.start()
        _create_all(url, edits, workers, acked)
        k.join()
        proc.wait()
    acked_before = set(acked)
    create_s = time.perf_counter() - t0
    with proxy_process(upstream, mem_dir, logp) as (url, _):
        present = _listed_ids(url)
        lost = sorted(acked_before - present)
        in_flight = present - acked_before  # committed, but the answer never reached the client
        rest = [e for e in edits if e["id"] not in present]
        counts = _create_all(url, rest, workers, acked)
        sample = rng.sample(sorted(acked_before), min(n_route_checks, len(acked_before)))
        by_id = {e["id"]: e for e in edits}
        routed = 0
        with httpx.Client(timeout=60) as c:
            for eid in sample:
                r = c.post(url + "/v1/chat/completions", json={
                    "model": model, "max_tokens": 1, "messages": [{"role": "user", "content": by_id[eid]["prompt"]}]})
                routed += r.headers.get("x-bbedit-edit") == eid
        final_present = _listed_ids(url)
    with EditMemory(mem_dir) as memory:
        checked = memory.check_index()
        stored = memory._store.count(active_only=True)
    return {"n": n, "kill_at": kill_at, "acked_before_kill": len(acked_before), "lost": len(lost),
            "lost_ids": lost[:20], "in_flight_committed": len(in_flight), "created_after_restart": len(rest),
            "create_conflicts_after_restart": counts["conflict"], "final_present": len(final_present),
            "final_missing": len(set(by_id) - final_present), "index_checked": checked, "stored_active": stored,
            "routed_after_restart": routed / max(len(sample), 1), "n_route_checks": len(sample),
            "create_s_before_kill": create_s}


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="bbedit-middleware-"))


# -- the suite -----------------------------------------------------------------------------------------
def _plot(load_proxy: list[float], load_direct: list[float], diffs: list[float], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    hi = percentile(load_proxy + load_direct, 99)
    ax[0].hist([load_direct, load_proxy], bins=60, range=(0, hi), label=["direct", "through the proxy"],
               histtype="step")
    ax[0].set(title="latency under load (50 clients, same questions)", xlabel="ms", ylabel="requests")
    ax[0].legend()
    d = sorted(diffs)
    ax[1].plot(d, [i / len(d) for i in range(len(d))])
    ax[1].set(title="added latency per request, one at a time", xlabel="proxy − direct (ms)", ylabel="CDF")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def run(n_exact: int = 200, load_s: float = 120, direct_s: float = 60, clients: int = 50, n_pairs: int = 300,
        n_fuzz: int = 1500, n_crash: int = 5000, n_edits: int = 1000, slots: int = 4, n_api: int = 60,
        root: Path | None = None) -> Path:
    """Run every phase and write ``<root>/middleware`` (default root: eval/results); returns the folder."""
    from bbedit.backends.embedded import EmbeddedServer
    from bbedit.evaluation.fuzz import fuzz
    from bbedit.evaluation.manifest import cpu_count, machine_line
    from bbedit.evaluation.overhead import synthetic_edits
    from bbedit.evaluation.report import RESULTS_ROOT, md_table, write_results

    t_start = time.perf_counter()
    work = tmpdir()
    out = (root or RESULTS_ROOT) / "middleware"
    out.mkdir(parents=True, exist_ok=True)
    with EmbeddedServer(n_parallel=slots) as llama:
        direct, model = llama.base_url, llama.model
        with proxy_process(direct, work / "memory", work / "serve.log") as (url, proc):
            meter, busy = CpuMeter(*(p for p in (llama.pid, proc.pid) if p is not None)), {}
            log.info("exactness: %d requests", n_exact)
            exact = exactness(url, direct, exactness_requests(model, n_exact))
            log.info("apis: %d Responses and %d completions requests", n_api, n_api)
            apis = api_exactness(url, direct, api_requests(model, n_api))
            api_edit = api_edits(url, model)
            edits = [e.to_dict() for e in synthetic_edits(n_edits, seed=11)]
            t0 = time.perf_counter()
            r = httpx.post(url + "/admin/edits/batch", json=edits, headers=AUTH, timeout=600)
            r.raise_for_status()
            batch_s = time.perf_counter() - t0
            log.info("overhead: %d pairs", n_pairs)
            meter.start()
            pairs = paired_overhead(url, direct, model, n_pairs)
            busy["overhead"] = meter.others()
            rng = random.Random(2)
            qs = questions(900, seed=5)
            bodies = [{"model": model, "max_tokens": 8, "temperature": 0,
                       "messages": [{"role": "user", "content": rng.choice(edits)["prompt"] if i % 20 == 0 else q}]}
                      for i, q in enumerate(qs)]
            log.info("load: %d clients for %.0f s through the proxy", clients, load_s)
            meter.start()
            rows = load(url + "/v1", bodies, clients, load_s)
            busy["load"] = meter.others()
            # the same work both ways: out-of-scope questions only, through the proxy and direct
            plain = [b for i, b in enumerate(bodies) if i % 20]
            log.info("load: %d clients for %.0f s through the proxy, out-of-scope questions only", clients, direct_s)
            meter.start()
            rows_plain = load(url + "/v1", plain, clients, direct_s)
            busy["load_plain"] = meter.others()
            log.info("load: %d clients for %.0f s direct, the same questions", clients, direct_s)
            meter.start()
            rows_direct = load(direct, plain, clients, direct_s)
            busy["load_direct"] = meter.others()
            log.info("fuzz: %d requests", n_fuzz)
            fz = fuzz(url, n_fuzz, TOKEN, seed=0)
            alive = proc.poll() is None and httpx.get(url + "/healthz", timeout=10).status_code == 200
        log.info("apis: the demo's questions with the post-editor")
        with proxy_process(direct, work / "memory-postedit", work / "serve-postedit.log", editor="postedit") as (u2, _):
            api_edit_pe = api_edits(u2, model)
        log.info("crash: %d edits", n_crash)
        cr = crash(direct, model, work, n=n_crash)
    ok = [r for r in rows if r["status"] == 200]
    errors = [r for r in rows if r["status"] != 200]
    ok_d = [r for r in rows_direct if r["status"] == 200]
    ok_p = [r for r in rows_plain if r["status"] == 200]
    lat_plain = [r["ms"] for r in ok_p]
    own = [r["own_ms"] for r in ok if r.get("own_ms") is not None]
    lat_p, lat_d = [r["ms"] for r in ok], [r["ms"] for r in ok_d]
    fuzz_4xx = sum(v for k, v in fz.statuses.items() if 400 <= k < 500)
    headline = {
        "exact_match_rate": exact["rate"], "load_requests": len(rows), "load_errors": len(errors),
        "api_exact_match_rate": apis["rate"], "api_exact_n": apis["n"],
        **{f"api_exact_match_rate_{k}": v["same"] / max(v["n"], 1) for k, v in apis["per_api"].items()},
        "api_edit_routed_rate": api_edit["routed_rate"], "api_edit_success": api_edit["edit_success"],
        "api_controls_untouched": api_edit["controls_untouched"],
        "api_edit_success_postedit": api_edit_pe["edit_success"],
        "api_controls_untouched_postedit": api_edit_pe["controls_untouched"],
        "overhead_p50_ms": percentile(pairs["diff_ms"], 50), "overhead_p95_ms": percentile(pairs["diff_ms"], 95),
        "fuzz_requests": fz.total, "fuzz_5xx": len(fz.server_errors),
        "crash_acked": cr["acked_before_kill"], "crash_lost": cr["lost"],
        "exact_n": exact["n"], "load_clients": clients, "load_s": load_s, "load_rps": len(rows) / load_s,
        "load_proxy_p50_ms": percentile(lat_p, 50), "load_proxy_p95_ms": percentile(lat_p, 95),
        "load_plain_requests": len(rows_plain), "load_plain_errors": len(rows_plain) - len(ok_p),
        "load_plain_p50_ms": percentile(lat_plain, 50), "load_plain_p95_ms": percentile(lat_plain, 95),
        "load_direct_requests": len(rows_direct), "load_direct_errors": len(rows_direct) - len(ok_d),
        "load_direct_p50_ms": percentile(lat_d, 50), "load_direct_p95_ms": percentile(lat_d, 95),
        "load_own_p50_ms": percentile(own, 50), "load_own_p95_ms": percentile(own, 95),
        "load_edited_share": sum(r.get("edited", False) for r in ok) / max(len(ok), 1),
        "load_proxy_passthrough_p50_ms": percentile([r["ms"] for r in ok if not r.get("edited")], 50),
        "load_proxy_edited_p50_ms": percentile([r["ms"] for r in ok if r.get("edited")], 50),
        "overhead_own_p50_ms": percentile(pairs["own_ms"], 50), "overhead_own_p95_ms": percentile(pairs["own_ms"], 95),
        "direct_p50_ms": percentile(pairs["direct_ms"], 50), "overhead_pairs": pairs["n"],
        "fuzz_distinct_requests": len(fz.distinct), "fuzz_upstream_5xx": fz.upstream_errors, "fuzz_4xx": fuzz_4xx, "fuzz_transport_errors": len(fz.transport_errors),
        "fuzz_server_alive": int(alive), "crash_edits": cr["n"], "crash_in_flight_committed": cr["in_flight_committed"],
        "crash_final_missing": cr["final_missing"], "crash_index_checked": cr["index_checked"],
        "crash_routed_after_restart": cr["routed_after_restart"], "memory_edits": n_edits,
        "batch_create_per_s": n_edits / batch_s, "direct_connection_retries": DIRECT_RETRIES["n"],
        "other_processes_cores_overhead": busy["overhead"], "other_processes_cores_load": busy["load"],
        "other_processes_cores_load_plain": busy["load_plain"], "other_processes_cores_load_direct": busy["load_direct"],
        "wall_s": time.perf_counter() - t_start,
    }
    plotted = _plot(lat_plain, lat_d, pairs["diff_ms"], out / "latency.png")
    h = headline
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(fz.statuses.items()))
    report = f"""# Middleware: `bbedit serve` in front of the served SmolLM2

Every figure below comes from one run of `make eval-middleware` on this machine ({machine_line()}, shared by
the llama.cpp server with {slots} slots, the proxy process and the load generator). The proxy is a real
`bbedit serve` process (IKE editor, learned scope gate, {n_edits:,} synthetic edits in memory for the
overhead and load phases), driven over HTTP; the upstream is the embedded llama.cpp server.

## Exactness (empty memory)

{h['exact_n']} varied greedy requests (NQ-open questions, five system prompts, 30% multi-turn, 4–32 tokens,
25% streamed, some with stops, `n`=2, seeds and sampling fields), each sent straight to llama.cpp and
through the proxy, in alternating order: **{exact['same']}/{exact['n']}** returned the same content and finish
reasons (`exact_match_rate` {h['exact_match_rate']:.3f}). Requests carry llama.cpp's `cache_prompt: false`
(passed through like any unknown field): with its prompt cache on, llama.cpp itself answers a repeated
greedy prompt slightly differently from the first time, proxy or not.

## The Responses API and plain completions

{apis['n']} greedy out-of-scope requests with the same empty memory, half to `POST /v1/responses` (a string
input or a list of items, instructions, earlier turns) and half to `POST /v1/completions`, each half streamed
(typed `response.*` events; completion chunks): **{apis['same']}/{apis['n']}** came back with the same text as
straight from llama.cpp and without an edit header (`api_exact_match_rate` {h['api_exact_match_rate']:.3f}).

{md_table(["API", "same text", "requests"], [[k, v["same"], v["n"]] for k, v in apis["per_api"].items()])}

Then the demo's {sum(1 for r in api_edit["rows"] if r["edit"]) // 4} questions about its edits and
{sum(1 for r in api_edit["rows"] if not r["edit"]) // 4} control questions (`memory/demo_questions.jsonl`, the demo
edits added through the admin API) through both APIs, whole and streamed (IKE): routed to their edit
{h['api_edit_routed_rate']:.3f}, edit taking effect (new value stated, old value absent, whole answer or stream
complete) {h['api_edit_success']:.3f}, controls passed through unrouted {h['api_controls_untouched']:.3f}. The same
through a second proxy with the post-editor: edit taking effect {h['api_edit_success_postedit']:.3f}, controls
{h['api_controls_untouched_postedit']:.3f}.

{md_table(["editor", "API", "stream", "question", "routed to", "answer", "right"],
          [[name, r["api"], r["stream"], r["question"], r["routed"] or "-", " ".join(r["text"].split())[:80], r["ok"]]
           for name, res in (("ike", api_edit), ("postedit", api_edit_pe)) for r in res["rows"] if r["edit"]])}

## Overhead

{pairs['n']} pairs of identical requests (an out-of-scope question, 4 tokens), one at a time, direct then
proxied or the reverse: the proxy adds **{h['overhead_p50_ms']:.1f} ms** at the median and
**{h['overhead_p95_ms']:.1f} ms** at p95 (per-pair differences; the direct call takes {h['direct_p50_ms']:.0f} ms
at the median). The proxy's own time, from its `Server-Timing` header (everything but waiting for the
upstream: reading the body, memory retrieval + gate over {n_edits:,} edits, forwarding), is
{h['overhead_own_p50_ms']:.1f} / {h['overhead_own_p95_ms']:.1f} ms (p50/p95).

## Load

{clients} concurrent clients for {load_s:.0f} s through the proxy, 8-token answers, 5% of questions about an
edit (routed to IKE): **{h['load_requests']} requests, {h['load_errors']} errors** ({h['load_rps']:.1f} requests/s;
{h['load_edited_share']:.1%} edited).

{md_table([f"{clients} clients", "seconds", "requests", "errors", "requests/s", "p50 ms", "p95 ms"], [
        ["through the proxy, 5% edited", load_s, h['load_requests'], h['load_errors'], f"{h['load_rps']:.2f}",
         round(h['load_proxy_p50_ms']), round(h['load_proxy_p95_ms'])],
        ["through the proxy, none edited", direct_s, h['load_plain_requests'], h['load_plain_errors'],
         f"{h['load_plain_requests'] / direct_s:.2f}", round(h['load_plain_p50_ms']), round(h['load_plain_p95_ms'])],
        ["direct, the same questions", direct_s, h['load_direct_requests'], h['load_direct_errors'],
         f"{h['load_direct_requests'] / direct_s:.2f}", round(h['load_direct_p50_ms']), round(h['load_direct_p95_ms'])]])}

Under load the latency is mostly the queue in front of llama.cpp's {slots} slots. The last two rows ask
llama.cpp for the same work (out-of-scope questions only), so their difference is what the proxy costs
under load: {h['load_plain_p50_ms'] - h['load_direct_p50_ms']:.0f} ms at the median,
{h['load_plain_p95_ms'] - h['load_direct_p95_ms']:.0f} ms at p95. In the first row the edited 5% carry the
IKE prompt (the fact and demonstrations, a few hundred more prompt tokens each; median
{h['load_proxy_edited_p50_ms']:.0f} ms for edited requests, {h['load_proxy_passthrough_p50_ms']:.0f} ms for the
others). The proxy's own time per request in the first row (Server-Timing: everything but the upstream
wait, including waiting for a routing thread) was {h['load_own_p50_ms']:.1f} ms p50, {h['load_own_p95_ms']:.1f} ms p95.
{"" if not plotted else chr(10) + "![latency](latency.png)" + chr(10)}
## Bad input

{h['fuzz_requests']} requests ({h['fuzz_distinct_requests']} distinct) generated with hypothesis
(`bbedit/evaluation/fuzz.py`), aimed mostly at the routes clients use, some at every other route and method:
random bytes, random JSON, chat requests and edits whose fields have random types and values (lone
surrogates, deep nesting, NaN, huge numbers), right/wrong/missing admin tokens. Statuses: {statuses}.
**{h['fuzz_5xx']} answers were 5xx errors of the proxy itself**; {h['fuzz_upstream_5xx']} were upstream errors
passed on as documented (502/504 with `"type": "upstream_error"`: requests the proxy accepted and
llama.cpp failed on; {"; ".join(sorted({a[:160] for _, _, a in fz.upstream_samples[:5]})) or "none"}). The server
was up afterwards: {bool(alive)}.

## Crash

{n_crash:,} edits created through `POST /admin/edits` by 8 concurrent clients; the server got SIGKILL after
{cr['kill_at']:,} acknowledgements. **{h['crash_acked']} edits had been acknowledged; after a restart on the
same directory {h['crash_lost']} of them were missing** ({cr['in_flight_committed']} more were committed
whose answers never reached a client). The restarted server then created the remaining
{cr['created_after_restart']:,}; {cr['final_missing']} of the {n_crash:,} were missing at the end, and
`EditMemory.check_index()` found the search index in agreement with all {cr['index_checked']:,} stored rows
(same rows, same vectors, each found by its own vector). {cr['routed_after_restart']:.0%} of
{cr['n_route_checks']} edits acknowledged before the kill were routed by the restarted server when asked
their own prompt.

## Other load on the machine

The machine's {cpu_count()} cores are shared with whatever else runs. Busy time of processes other than this
benchmark, its llama.cpp server and its proxy, in cores on average: {h['other_processes_cores_overhead']:.2f}
during the overhead pairs, {h['other_processes_cores_load']:.2f} / {h['other_processes_cores_load_plain']:.2f}
during the two proxied loads and {h['other_processes_cores_load_direct']:.2f} during the direct load (0 means the
figures above had the machine to themselves).

Wall time {h['wall_s']:.0f} s.
"""
    details = {"exactness": exact, "api_exactness": apis, "api_edits": api_edit,
               "api_edits_postedit": api_edit_pe, "fuzz_server_errors": [
        {"method": q.method, "path": q.path, "status": s, "body": q.body[:300].decode("utf-8", "replace"), "answer": a}
        for q, s, a in fz.server_errors[:20]], "fuzz_upstream_errors": [
        {"method": q.method, "path": q.path, "status": s, "body": q.body[:300].decode("utf-8", "replace"), "answer": a}
        for q, s, a in fz.upstream_samples[:20]], "fuzz_statuses": dict(fz.statuses),
        "load_errors": [r.get("error") for r in errors[:20]], "crash": cr,
        "overhead_diff_ms": pairs["diff_ms"], "load_proxy_ms_sample": lat_p[:500]}
    return write_results("middleware", headline, details, report, "make eval-middleware", root=root)
