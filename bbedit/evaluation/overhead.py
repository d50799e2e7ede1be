"""Overhead of memory + scope gate per query, at 10k and 100k edits, and edits added per second."""

from __future__ import annotations

import json
import logging
import random
import resource
import time
from pathlib import Path

from bbedit.evaluation.manifest import machine_line
from bbedit.evaluation.report import DATA_ROOT, md_table, percentile, write_results
from bbedit.memory.memory import EditMemory
from bbedit.scope.gate import load_gate
from bbedit.types import Edit

log = logging.getLogger(__name__)

_FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Emily", "Paul", "Kimberly", "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Sharon", "Edward", "Laura", "Jeffrey", "Cynthia", "Ryan", "Amy", "Jacob", "Kathleen", "Gary", "Angela", "Nicholas", "Shirley", "Eric", "Anna", "Jonathan", "Brenda", "Stephen", "Pamela", "Larry", "Emma", "Justin", "Nicole", "Scott", "Helen", "Brandon", "Samantha", "Benjamin", "Katherine", "Samuel", "Christine", "Gregory", "Debra", "Alexander", "Rachel", "Patrick", "Carolyn", "Frank", "Janet", "Raymond", "Maria", "Jack", "Olivia", "Dennis", "Heather", "Jerry", "Diane", "Tyler", "Julie", "Aaron", "Joyce"]
_LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez"]
_TEMPLATES = ["The mother tongue of {} is", "{} is a citizen of", "The headquarters of {} is in", "{} plays the",
              "{} was born in", "{} works in the field of", "The capital of {} is", "{} is owned by",
              "{} was developed by", "{} is affiliated with the religion", "{} is located in the continent of",
              "The official language of {} is", "{} holds the position of", "{} premiered on"]
_TARGETS = ["English", "France", "Toyota", "piano", "Tokyo", "physics", "Islam", "Asia", "NBC", "bishop", "Google"]


def synthetic_edits(n: int, seed: int = 0) -> list[Edit]:
    """``n`` edits about made-up people ("Maria K. Lopez") with CounterFact-like relations (unique subjects)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[Edit] = []
    while len(out) < n:
        name = f"{rng.choice(_FIRST)} {chr(65 + rng.randrange(26))}. {rng.choice(_LAST)}"
        if rng.random() < 0.5:
            name = f"{rng.choice(_FIRST)} {chr(65 + rng.randrange(26))}. {chr(65 + rng.randrange(26))}. {rng.choice(_LAST)}"
        if name in seen:
            continue
        seen.add(name)
        out.append(Edit(subject=name, prompt=rng.choice(_TEMPLATES).format(name), target_new=rng.choice(_TARGETS),
                        id=f"syn-{len(out)}"))
    return out


def _time_queries(memory: EditMemory, queries: list[str]) -> list[float]:
    gate = load_gate(memory)
    for q in queries[:20]:  # warm up
        gate.decide(q, memory.retrieve(q, gate.k))
    times = []
    for q in queries:
        t0 = time.perf_counter()
        gate.decide(q, memory.retrieve(q, gate.k))
        times.append((time.perf_counter() - t0) * 1000)
    return times


def run(n_queries: int = 1000, big: int = 100_000, data: Path = DATA_ROOT) -> Path:
    t_start = time.perf_counter()
    cases = json.loads((data / "counterfact" / "counterfact-edit.json").read_text())
    edits = [Edit(subject=c["subject"], prompt=c["prompt"], target_new=c["target_new"], id=f"cf-{c['case_id']}")
             for c in cases]
    nq = [json.loads(x)["question"] for x in (data / "general" / "NQ-open.dev.jsonl").read_text().splitlines()]
    rng = random.Random(0)
    half = n_queries // 2
    in_scope = [c[k] for c in rng.sample(cases, half // 2) for k in ("prompt", "rephrase_prompt")]
    queries = in_scope + rng.sample(nq, n_queries - len(in_scope))
    rng.shuffle(queries)

    memory = EditMemory(None)
    t0 = time.perf_counter()
    memory.add_many(edits, supersede=False, progress=True)
    add10k = len(edits) / (time.perf_counter() - t0)
    t10k = _time_queries(memory, queries)
    kind10k = memory._index.active_kind

    extra = synthetic_edits(big - len(edits))
    t0 = time.perf_counter()
    memory.add_many(extra, supersede=True, progress=True)
    add_s = time.perf_counter() - t0
    adds = len(extra) / add_s
    t0 = time.perf_counter()
    memory.search("warm-up query that builds the index")
    build_s = time.perf_counter() - t0
    t100k = _time_queries(memory, queries)
    kind100k = memory._index.active_kind
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    wall = time.perf_counter() - t_start
    headline = {"p50_ms_10k": percentile(t10k, 50), "p95_ms_10k": percentile(t10k, 95),
                "p50_ms_100k": percentile(t100k, 50), "p95_ms_100k": percentile(t100k, 95),
                "adds_per_s": adds, "adds_per_s_10k": add10k, "index_build_s_100k": build_s,
                "n_edits_big": len(memory), "n_queries": len(queries), "max_rss_gb": rss_gb, "wall_s": wall}
    report = f"""# Overhead of the edit memory + scope gate

Per query: `memory.retrieve` (subject matching, one embedding pass with the packaged MiniLM, FAISS search)
plus `gate.decide` (features and the learned scorer), one query at a time, on {len(queries)} queries
(half CounterFact prompts/paraphrases, half NQ-open questions), after 20 warm-up queries. The model call is
not included. {machine_line()}.

{md_table(["edits in memory", "index", "p50 ms", "p95 ms"], [
        [f"{len(edits):,} (CounterFact)", kind10k, percentile(t10k, 50), percentile(t10k, 95)],
        [f"{len(memory):,} (CounterFact + synthetic)", kind100k, percentile(t100k, 50), percentile(t100k, 95)]])}

Targets: p50 ≤ 10 ms at 100k edits; ≥ 300 edits added per second.

Edits added per second (batched `add_many`, embedding included, durable writes, supersede check on):
{adds:.0f} for the {len(extra):,} synthetic edits, {add10k:.0f} for the first 10,000. Building the
{kind100k} index over {len(memory):,} vectors took {build_s:.1f} s (once, at the first search after the
switch). Peak RSS {rss_gb:.2f} GB. Wall time {wall:.0f} s.
"""
    return write_results("overhead", headline, {"latencies_ms_10k": t10k[:200], "latencies_ms_100k": t100k[:200]},
                         report, "make eval-overhead")
