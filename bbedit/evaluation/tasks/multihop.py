"""The ``multihop`` task: MQuAKE questions whose answer changes only if several edits are chained.

Every edit of every case is in one memory. Systems:

- ``none``: the question as asked;
- ``bbedit``: the gate picks one edit (the first hop, at best) and IKE applies it;
- ``chain``: the memory follows the chain (:mod:`bbedit.chains`: the gate's edit or an edit of the
  subject the question names, then each hop an edit about the previous hop's new object) and one
  request states the facts in order with the answer they imply; one model call per question;
- ``chain_read``: the same chain without the implied answer: the model must read the chain itself.

A chain is judged retrieved by its facts, not by ids: MQuAKE stores one fact under several cases' ids.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bbedit.chains import chain_messages, first_hop, follow, same_fact
from bbedit.evaluation import metrics as M
from bbedit.evaluation.calls import pmap
from bbedit.evaluation.cases import Case, load_dataset
from bbedit.evaluation.harness import RunContext, build_memory, make_editor
from bbedit.evaluation.report import md_table
from bbedit.evaluation.systems import Systems, chat_all, completions, route
from bbedit.evaluation.tasks import FunctionTask


def run(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.cfg
    t0 = time.perf_counter()
    data = load_dataset(ctx.data_path(cfg.dataset["path"]), cfg.dataset.get("format", "auto"))
    edits = data.edits()
    cases: list[Case] = data.cases[:cfg.n] if cfg.n else data.cases
    per_case = int(cfg.options.get("questions_per_case", 1))
    max_hops = int(cfg.options.get("max_hops", 4))
    items = [(c, p) for c in cases for p in c.of_kind("multihop")[:per_case]]
    memory = build_memory(edits)
    systems_ = Systems(memory)
    editor = make_editor(cfg)
    questions = [p.text for _, p in items]
    backend = ctx.backend()
    bbedit = systems_.model("bbedit", backend, editor)
    none_routes, _ = route(None, questions)
    routes, _ = route(bbedit, questions)
    chains = [follow(q, memory, first_hop(q, memory, r.edit), max_hops) for q, r in zip(questions, routes, strict=True)]
    # none and bbedit answer through EditedModel.chat; the chain systems send bbedit.chains' request
    got = chat_all([(bbedit, q, r) for q, r in zip(questions, none_routes, strict=True)]
                   + [(bbedit, q, r) for q, r in zip(questions, routes, strict=True)], cfg.workers,
                   f"{cfg.suite}: {2 * len(questions)} questions")
    n = len(questions)
    chained = pmap(backend.complete, [chain_messages(q, ch) for q, ch in zip(questions, chains, strict=True)]
                   + [chain_messages(q, ch, conclude=False) for q, ch in zip(questions, chains, strict=True)],
                   cfg.workers, f"{cfg.suite}: {2 * n} chains")
    answers = {"none": [c.text for c in completions(bbedit, backend, questions, none_routes, got[:n])],
               "bbedit": [c.text for c in completions(bbedit, backend, questions, routes, got[n:])],
               "chain": [c.text for c in chained[:n]], "chain_read": [c.text for c in chained[n:]]}
    model = ctx.model()
    results: dict[str, dict[str, float]] = {}
    for s, outs in answers.items():
        new = [M.edit_success(a, p.answers, p.old_answers) for a, (_, p) in zip(outs, items, strict=True)]
        old = [M.contains_any(a, p.old_answers) for a, (_, p) in zip(outs, items, strict=True)]
        results[s] = {"multihop": sum(new) / len(new), "old_answer": sum(old) / len(old)}
    right_first = [r.edit is not None and r.edit.id in {e.id for e in c.edits}
                   for r, (c, _) in zip(routes, items, strict=True)]
    chain_first = [bool(ch) and same_fact(ch[0], c.edits[0]) for ch, (c, _) in zip(chains, items, strict=True)]
    full = [len(ch) == len(c.edits) and all(same_fact(a, b) for a, b in zip(ch, c.edits, strict=True))
            for ch, (c, _) in zip(chains, items, strict=True)]
    full_by_id = [len(ch) == len(c.edits) and all(e.id in {x.id for x in c.edits} for e in ch)
                  for ch, (c, _) in zip(chains, items, strict=True)]
    wall = time.perf_counter() - t0
    headline: dict[str, float | int] = {
        "n_cases": len(cases), "n_questions": len(items), "n_edits_in_memory": len(memory), "wall_s": round(wall, 1),
        "multihop_accuracy_chain": results["chain"]["multihop"], "multihop_accuracy_bbedit": results["bbedit"]["multihop"],
        "baseline_none_multihop_accuracy": results["none"]["multihop"],
        "old_answer_rate_chain": results["chain"]["old_answer"],
        "baseline_none_old_answer_rate": results["none"]["old_answer"],
        "gate_routed_to_case_edit": sum(right_first) / len(items),
        "first_hop_retrieved": sum(chain_first) / len(items), "full_chain_retrieved": sum(full) / len(items),
        "full_chain_retrieved_same_ids": sum(full_by_id) / len(items),
        "multihop_accuracy_chain_read": results["chain_read"]["multihop"],
        "old_answer_rate_chain_read": results["chain_read"]["old_answer"],
        "model_calls_per_question_chain": 1,
        "model_calls": model.calls, "model_calls_cached": model.hits}
    records = [{"case": c.id, "question": p.text, "answers": list(p.answers[:3]), "old": list(p.old_answers[:3]),
                "chain_ids": [e.id for e in ch], "chain_facts": [f"{e.prompt} {e.target_new}" for e in ch],
                **{s: answers[s][i] for s in answers}}
               for i, ((c, p), ch) in enumerate(zip(items, chains, strict=True))]
    return {"headline": headline, "results": results, "records": records}


def report(cfg: Any, out: Mapping[str, Any], folder: Path) -> str:
    from bbedit.evaluation.tables import bar_plot

    h, res = out["headline"], out["results"]
    bar_plot(folder / "multihop.png", res, ["multihop", "old_answer"], f"{cfg.suite}: multi-hop accuracy")
    labels = {"none": "no editing", "bbedit": "bbedit, one edit (gate + IKE)",
              "chain": "bbedit, chain followed by the memory, implied answer stated",
              "chain_read": "bbedit, chain followed by the memory, the model reads it",
              }
    return "\n".join([
        f"# {cfg.suite}", "", cfg.description.strip(), "",
        f"{h['n_questions']} questions ({h['n_cases']} cases, first question of each), all {h['n_edits_in_memory']} "
        f"edits of the file in memory; wall time {h['wall_s']:.0f} s; generation protocol.", "",
        md_table(["system", "new answer (accuracy) ↑", "old answer still given ↓"],
                 [[labels[s], r["multihop"], r["old_answer"]] for s, r in res.items()]), "",
        f"The gate routed {h['gate_routed_to_case_edit']:.3f} of questions to one of their case's edits (a multi-hop "
        "question names its first subject but asks another relation, so the gate mostly declines). Retrieval per "
        f"hop found the first hop for {h['first_hop_retrieved']:.3f} and the case's whole chain for "
        f"{h['full_chain_retrieved']:.3f} (judged by facts; {h.get('full_chain_retrieved_same_ids', float('nan')):.3f} "
        "with the case's own ids: MQuAKE stores one fact under several cases' ids, and an earlier report "
        "counted only those). Every chain system makes one model call per question.", "",
        "![multihop](multihop.png)", "",
        "This is reported apart from single-hop editing. A wrong answer with the full chain retrieved is the "
        "model failing to read the chain; a missing chain is retrieval failing.",
    ])


TASK = FunctionTask("multihop", run, report)
