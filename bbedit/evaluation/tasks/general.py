"""The ``general`` task: what editing costs the model's general abilities.

The unedited model and the edited systems (``options.n_edits`` CounterFact edits in memory)
answer general probes: MMLU (multiple choice), SST-2 (sentiment), BoolQ (reading, yes/no),
NQ-open (closed-book QA) and GSM8K (arithmetic word problems). The report gives each task's
accuracy per system and the difference to the unedited model. ``always`` (apply the top hit to
every query) shows what in-context editing without a scope gate would cost.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bbedit.evaluation import metrics as M
from bbedit.evaluation.cases import load_dataset
from bbedit.evaluation.harness import RunContext, build_memory, make_editor, system_prefix
from bbedit.evaluation.report import md_table
from bbedit.evaluation.systems import Systems, ask, route
from bbedit.evaluation.tasks import FunctionTask
from bbedit.memory import formats

LETTERS = "ABCD"


def _first(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text, flags=re.IGNORECASE)
    return m.group(1).lower() if m else None


def _last_number(text: str) -> str | None:
    after = text.split("####", 1)[1] if "####" in text else text
    nums = re.findall(r"-?\d[\d,]*(?:\.\d+)?", after)
    return nums[-1].replace(",", "").rstrip(".") if nums else None


Probe = tuple[str, Callable[[str], bool]]  # (question, judge of the answer)


def mmlu(r: dict[str, Any]) -> Probe:
    opts = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(r["choices"]))
    q = f"{r['question']}\n{opts}\nAnswer with the letter of the correct option."
    gold = LETTERS[int(r["answer"])].lower()
    return q, lambda a: _first(r"\b([ABCD])\b", a) == gold


def sst2(r: dict[str, Any]) -> Probe:
    q = f"Is the sentiment of this movie review positive or negative?\nReview: {r['sentence'].strip()}\nAnswer with one word."
    gold = "positive" if int(r["label"]) == 1 else "negative"
    return q, lambda a: _first(r"\b(positive|negative)\b", a) == gold


def boolq(r: dict[str, Any]) -> Probe:
    q = f"{r['passage']}\n\nQuestion: {r['question']}?\nAnswer yes or no."
    gold = "yes" if r["answer"] else "no"
    return q, lambda a: _first(r"\b(yes|no)\b", a) == gold


def nq(r: dict[str, Any]) -> Probe:
    q = r["question"].strip()
    q = q[:1].upper() + q[1:] + ("" if q.endswith("?") else "?")
    return q, lambda a: M.contains_any(a, r["answer"])


def gsm8k(r: dict[str, Any]) -> Probe:
    q = f"{r['question']}\nSolve it step by step, then give the final number after '####'."
    gold = _last_number(r["answer"])
    return q, lambda a: _last_number(a) == gold


TASKS: dict[str, tuple[str, Callable[[dict[str, Any]], Probe]]] = {
    "mmlu": ("general/mmlu.json", mmlu), "sst2": ("general/sst2.json", sst2),
    "boolq": ("general/boolq-dev.jsonl", boolq), "nq": ("general/NQ-open.dev.jsonl", nq),
    "gsm8k": ("general/gsm8k-test.jsonl", gsm8k),
}


def run(ctx: RunContext) -> dict[str, Any]:
    cfg, opts = ctx.cfg, ctx.cfg.options
    t0 = time.perf_counter()
    tasks: dict[str, Any] = opts.get("tasks") or {t: {"n": 100} for t in TASKS}
    edits_file = ctx.data_path(cfg.dataset.get("path", "counterfact/counterfact-edit.json"))
    n_edits = int(opts.get("n_edits", 10000))
    edits = [c.edits[0] for c in load_dataset(edits_file, n=n_edits).cases]
    memory = build_memory(edits)
    systems_, editor, base_model, backend = Systems(memory), make_editor(cfg), ctx.model(), ctx.backend()
    systems = list(dict.fromkeys(["none", *cfg.systems]))
    results: dict[str, dict[str, float]] = {s: {} for s in systems}
    touched: dict[str, dict[str, float]] = {s: {} for s in systems if s != "none"}
    records = []
    for task, topts in tasks.items():
        if task not in TASKS:
            raise ValueError(f"unknown general task {task!r}; known: {', '.join(TASKS)}")
        rel, make = TASKS[task]
        rows = [r for _, _, r in formats.records(ctx.data_path(topts.get("path", rel)))][: int(topts.get("n", 100))]
        probes = [make(r) for r in rows]
        qs = [q for q, _ in probes]
        gen_opts = {"max_tokens": int(topts["max_tokens"])} if topts.get("max_tokens") else {}
        for s in systems:
            model = systems_.model(s, backend, editor)
            routes, _ = route(model if s != "none" else None, qs)
            answers = [c.text for c in ask(model, backend, qs, routes, cfg.workers, f"{cfg.suite}: {task} / {s}",
                                           **gen_opts)]
            results[s][task] = sum(judge(a) for a, (_, judge) in zip(answers, probes, strict=True)) / len(probes)
            if s != "none":
                touched[s][task] = sum(r.edit is not None for r in routes) / len(routes)
            records += [{"task": task, "system": s, "question": q[-300:], "answer": a,
                         "edit": r.edit.id if r.edit else None, "correct": judge(a)}
                        for (q, judge), a, r in zip(probes, answers, routes, strict=True)]
    wall = time.perf_counter() - t0
    headline: dict[str, float | int] = {"n_cases": sum(int(t.get("n", 100)) for t in tasks.values()),
                                        "n_edits_in_memory": len(memory), "wall_s": round(wall, 1)}
    for task in tasks:
        headline[f"{task}_unedited"] = results["none"][task]
        for s in systems[1:]:
            prefix = system_prefix(s)
            headline[f"{prefix}{task}_edited"] = results[s][task]
            headline[f"{prefix}{task}_delta"] = results[s][task] - results["none"][task]
            headline[f"{prefix}{task}_queries_edited"] = touched[s][task]
    headline["model_calls"] = base_model.calls
    return {"headline": headline, "results": results, "touched": touched, "records": records}


def report(cfg: Any, out: Mapping[str, Any], folder: Path) -> str:
    from bbedit.evaluation.tables import SYSTEM_LABELS, bar_plot

    res, touched, h = out["results"], out["touched"], out["headline"]
    tasks = list(res["none"])
    bar_plot(folder / "general.png", res, tasks, f"{cfg.suite}: accuracy per task")
    rows = []
    for t in tasks:
        row: list[Any] = [t, res["none"][t]]
        for s in list(res)[1:]:
            row += [res[s][t], res[s][t] - res["none"][t], touched[s][t]]
        rows.append(row)
    heads = ["task", "unedited"]
    for s in list(res)[1:]:
        lab = SYSTEM_LABELS.get(s, s)
        heads += [lab, "Δ", "queries edited"]
    return "\n".join([
        f"# {cfg.suite}", "", cfg.description.strip(), "",
        f"{h['n_edits_in_memory']} CounterFact edits in memory; wall time {h['wall_s']:.0f} s; generation "
        "protocol (greedy).", "", md_table(heads, rows), "", "![general](general.png)", "",
        "Δ is edited minus unedited accuracy; \"queries edited\" is the share of probes the system "
        "changed the request of (the gate's false positives, for bbedit).",
    ])


TASK = FunctionTask("general", run, report)
