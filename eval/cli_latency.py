"""How long the light CLI commands take, as whole processes: a benchmark, not a timed test.

Builds a 10,000-edit memory in a temporary folder (synthetic edits, the real packaged embedder),
then times, each as a fresh ``python -m bbedit.cli`` process:

- ``bbedit --help`` and ``import bbedit.cli`` (with ``-X importtime``: which modules, how long);
- ``bbedit edits list`` on the 10k memory (median of 5);
- ``bbedit edits add`` of one edit into it (median of 3);
- ``bbedit ask --server URL`` against a running ``bbedit serve`` over that memory, in front of the
  embedded llama.cpp SmolLM2 server, beside the upstream's own answer time for the same request
  (median of 5, interleaved): the difference is what the CLI and the proxy add.

Writes ``eval/results/cli/results.json`` (``headline``: plain numbers) and ``report.md``. The load
average of the machine is recorded before and after: on a busy machine every figure is slower.
Run it with ``make eval-cli`` (about two minutes on an idle 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "eval" / "results" / "cli"
HEAVY = ("torch", "transformers", "faiss", "sentence_transformers")
RELATIONS = ("The CEO of {} is", "{} is headquartered in", "The founder of {} is", "{} was founded in the year",
             "The chief scientist of {} is")
OUT_OF_SCOPE = "What is the capital of Japan?"
IN_SCOPE = "Who is the CEO of Company 15?"  # syn-15: "The CEO of Company 15 is"


def cli(*argv: str, env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``python -m bbedit.cli ARGV`` as a fresh process; (seconds, result). Raises on failure."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "bbedit.cli", *argv], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, cwd=ROOT, timeout=600)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"bbedit {' '.join(argv)} failed ({r.returncode}): {r.stderr[-1500:]}")
    return dt, r


def import_profile() -> dict[str, Any]:
    """``python -X importtime -c 'import bbedit.cli'``: total microseconds and any heavy module."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "import bbedit.cli"], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    rows = []
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, cum, name = (x.strip() for x in line[len("import time:"):].split("|"))
        rows.append((name, int(cum)))
    total = next((us for name, us in rows if name == "bbedit.cli"), 0)
    heavy = sorted({name for name, _ in rows if name.split(".")[0] in HEAVY})
    slowest = sorted(((us, name) for name, us in rows if not name.startswith(" ")), reverse=True)[:8]
    return {"bbedit_cli_cumulative_s": total / 1e6, "heavy_modules": heavy,
            "slowest_top_level": [{"module": n, "cumulative_s": us / 1e6} for us, n in slowest]}


def build_memory(path: Path, n: int) -> float:
    """A memory of ``n`` synthetic edits (distinct subjects) embedded with the packaged embedder; seconds."""
    from bbedit.memory.memory import EditMemory
    from bbedit.types import Edit

    edits = [Edit(id=f"syn-{i}", subject=f"Company {i}", prompt=RELATIONS[i % len(RELATIONS)].format(f"Company {i}"),
                  target_new=f"Person {i}", source="benchmark") for i in range(n)]
    t0 = time.perf_counter()
    with EditMemory(path) as m:
        m.add_many(edits)
    return time.perf_counter() - t0


def median_runs(fn: Any, n: int) -> tuple[float, list[float]]:
    times = [fn(i) for i in range(n)]
    return statistics.median(times), times


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_ask_server(memory: Path, runs: int, max_tokens: int) -> dict[str, Any]:
    """``ask --server`` through a ``bbedit serve`` process vs. a direct request to its upstream."""
    import httpx

    from bbedit.backends.embedded import EmbeddedServer

    out: dict[str, Any] = {}
    with EmbeddedServer(n_parallel=1) as upstream:
        port = free_port()
        serve = subprocess.Popen([sys.executable, "-m", "bbedit.cli", "serve", "--upstream", upstream.base_url,
                                  "--memory", str(memory), "--port", str(port), "--workers", "1"],
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            t0 = time.perf_counter()
            while True:
                try:
                    if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if serve.poll() is not None or time.perf_counter() - t0 > 600:
                    raise RuntimeError(f"bbedit serve did not start: {serve.stderr.read() if serve.stderr else ''}")
                time.sleep(0.2)
            out["serve_start_s"] = time.perf_counter() - t0
            body = {"model": upstream.model, "max_tokens": max_tokens, "temperature": 0.0}
            with httpx.Client(timeout=300) as client:
                for label, question in (("out_of_scope", OUT_OF_SCOPE), ("in_scope", IN_SCOPE)):
                    msgs = [{"role": "user", "content": question}]
                    client.post(upstream.base_url + "/chat/completions", json={**body, "messages": msgs})  # warm
                    direct, via, edited = [], [], None
                    for _ in range(runs):
                        t = time.perf_counter()
                        r = client.post(upstream.base_url + "/chat/completions", json={**body, "messages": msgs})
                        r.raise_for_status()
                        direct.append(time.perf_counter() - t)
                        dt, res = cli("ask", "--server", url, "--model", upstream.model, "--json",
                                      "--max-tokens", str(max_tokens), question)
                        via.append(dt)
                        edited = json.loads(res.stdout)["edit"]
                    out[label] = {"question": question, "edit": edited, "upstream_s": direct, "ask_server_s": via,
                                  "upstream_median_s": statistics.median(direct),
                                  "ask_server_median_s": statistics.median(via),
                                  "overhead_s": statistics.median(via) - statistics.median(direct)}
        finally:
            serve.terminate()
            serve.wait(timeout=60)
    return out


def report(res: dict[str, Any]) -> str:
    h = res["headline"]
    lines = [
        "# CLI latency (whole processes)",
        "",
        f"Machine: {res['machine']['cpus']} CPUs ({res['machine']['cpu_model']}), load average "
        f"{res['machine']['loadavg_before'][0]:.2f} before and {res['machine']['loadavg_after'][0]:.2f} after "
        "(1-minute; above about 0.5 per CPU the machine was busy and every figure is slower than on an idle one).",
        "",
        "| what | seconds | target (issue 15) |",
        "|---|---|---|",
        f"| `import bbedit.cli` (`-X importtime`, cumulative) | {h['import_cli_s']:.3f} | no torch/transformers/faiss: "
        f"{'none imported' if not res['import']['heavy_modules'] else ', '.join(res['import']['heavy_modules'])} |",
        f"| `bbedit --help` (process, median of 5) | {h['help_s']:.3f} | |",
        f"| `bbedit edits list` on {res['n_edits']:,} edits (process, median of 5) | {h['edits_list_s_10k']:.3f} | < 1 |",
        f"| `bbedit edits add` into it (process, median of 3) | {h['edits_add_s']:.3f} | < 3 |",
    ]
    ask = res.get("ask_server")
    if ask:
        for label in ("out_of_scope", "in_scope"):
            a = ask[label]
            lines.append(f"| `bbedit ask --server` {label.replace('_', '-')} ({a['question']!r}, edit: "
                         f"{a['edit'] or 'none'}): process vs. the upstream's own answer | "
                         f"{a['ask_server_median_s']:.3f} vs {a['upstream_median_s']:.3f} "
                         f"(+{a['overhead_s']:.3f}) | + 0.2 |")
    else:
        lines.append(f"| `bbedit ask --server` | not measured | {res.get('ask_server_skipped', '')} |")
    lines += [
        "",
        f"The memory was built once with the real embedder ({res['build_memory_s']:.1f} s for "
        f"{res['n_edits']:,} edits). `edits list` opens the SQLite memory and prints every edit without "
        "loading the embedder or FAISS (it reads the edits from the database without their embeddings); "
        "`edits add` loads only the embedder (its NumPy encoder for a few texts: no torch or transformers import). "
        "`ask --server` uses the standard library's HTTP client; for an in-scope question the upstream times are "
        "for the user's "
        "question as sent, while the proxy sends the IKE prompt (longer), so that difference also holds "
        "the longer generation. Per-run times are in `results.json`.",
    ]
    return "\n".join(lines) + "\n"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state() -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], capture_output=True, text=True, cwd=ROOT, timeout=10).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!eval/results"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="edits in the memory")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--no-server", action="store_true", help="skip the ask --server measurement")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    load_before = os.getloadavg()
    res: dict[str, Any] = {"n_edits": args.n, **git_state(),
                           "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(),
                                       "python": platform.python_version(), "loadavg_before": load_before}}
    res["import"] = import_profile()
    help_s, help_runs = median_runs(lambda i: cli("--help")[0], args.runs)
    with tempfile.TemporaryDirectory(prefix="bbedit-cli-bench-") as tmp:
        mem = Path(tmp) / "memory"
        res["build_memory_s"] = build_memory(mem, args.n)
        list_s, list_runs = median_runs(lambda i: cli("edits", "list", "--memory", str(mem))[0], args.runs)
        add_s, add_runs = median_runs(
            lambda i: cli("edits", "add", "--memory", str(mem), "--subject", f"Bench Firm {i}", "--prompt",
                          f"The CEO of Bench Firm {i} is", "--target-new", f"Bench Person {i}")[0], 3)
        res["runs"] = {"help_s": help_runs, "edits_list_s": list_runs, "edits_add_s": add_runs}
        headline: dict[str, float] = {"import_cli_s": res["import"]["bbedit_cli_cumulative_s"], "help_s": help_s,
                                      "edits_list_s_10k": list_s, "edits_add_s": add_s}
        if args.no_server:
            res["ask_server_skipped"] = "--no-server"
        else:
            try:
                res["ask_server"] = bench_ask_server(mem, args.runs, args.max_tokens)
                headline["ask_server_overhead_s"] = res["ask_server"]["out_of_scope"]["overhead_s"]
                headline["ask_server_s"] = res["ask_server"]["out_of_scope"]["ask_server_median_s"]
                headline["upstream_answer_s"] = res["ask_server"]["out_of_scope"]["upstream_median_s"]
                headline["ask_server_in_scope_overhead_s"] = res["ask_server"]["in_scope"]["overhead_s"]
            except (ImportError, RuntimeError, OSError) as e:
                res["ask_server_skipped"] = f"could not run: {e}"
    load_after = os.getloadavg()
    res["machine"]["loadavg_after"] = load_after
    headline["loadavg_1min_before"] = load_before[0]
    headline["loadavg_1min_after"] = load_after[0]
    res = {"headline": headline, "suite": "cli", "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "command": "python eval/cli_latency.py" + (" --no-server" if args.no_server else ""), **res}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    (args.out / "report.md").write_text(report(res) + f"\nReproduce: `make eval-cli` ({res['command']})\n")
    print(json.dumps(headline, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
