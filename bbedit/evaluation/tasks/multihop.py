"""The ``multihop`` task: MQuAKE questions whose answer changes only if several edits are chained.

Every edit of every case is in one memory. Systems:

- ``none``: the question as asked;
- ``bbedit``: the gate picks one edit (the first hop, at best) and IKE applies it;
- ``chain``: retrieval per hop. The first hop is the gate's edit for the question, else the edit
  whose subject the question names (longest name; a multi-hop question names its first subject but
  asks another relation, which the gate rightly declines); each next hop is an edit *about the
  previous hop's new object* (subject-name lookup in the memory), the one
  whose prompt is closest in meaning to the question; at most ``max_hops``. The chained facts go
  into the system message, in order, and the model answers the question. The memory does the hop
  following, the model only reads it: a small model cannot decompose questions (MeLLo), and a hop
  that no edit covers ends the chain there.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bbedit.evaluation import metrics as M
from bbedit.evaluation.calls import pmap
from bbedit.evaluation.cases import Case, load_dataset
from bbedit.evaluation.harness import RunContext, build_memory, make_editor
from bbedit.evaluation.report import md_table
from bbedit.evaluation.systems import Systems, chat_all, completions, route, user
from bbedit.evaluation.tasks import FunctionTask
from bbedit.memory.subjects import name_key
from bbedit.types import Edit, Message

CHAIN_SYSTEM = ("You answer using these updated facts, which replace what you knew. They form a chain: "
                "each fact's answer is the subject of the next.\n{facts}\n"
                "Answer the question with the final entity only.")


def chain_edits(question: str, first: Edit | None, by_subject: dict[tuple[str, ...], list[Edit]], memory: Any,
                max_hops: int) -> list[Edit]:
    """Follow edited objects from ``first``: hop i+1 is an edit whose subject is hop i's new target."""
    if first is None:
        return []
    import numpy as np

    chain, seen = [first], {first.id}
    qv = np.asarray(memory.embedder.embed([question]))[0]
    while len(chain) < max_hops:
        nxt = [e for e in by_subject.get(name_key(chain[-1].target_new), []) if e.id not in seen]
        if not nxt:
            break
        vecs = np.stack([memory.edit_vectors(e)[0] for e in nxt])  # the stored prompt embeddings
        best = nxt[int(np.argmax(vecs @ qv))]
        chain.append(best)
        seen.add(best.id)
    return chain


def first_hop(question: str, routed: Edit | None, edits: Sequence[Edit], memory: Any) -> Edit | None:
    """The gate's edit, else the edit whose subject the question names (longest name, then closest prompt)."""
    if routed is not None:
        return routed
    import re

    import numpy as np

    q = question.lower()
    named = [e for e in edits if re.search(r"(?<!\w)" + re.escape(e.subject.lower()) + r"(?!\w)", q)]
    if not named:
        return None
    longest = max(len(e.subject) for e in named)
    named = [e for e in named if len(e.subject) == longest]
    if len(named) == 1:
        return named[0]
    vecs = np.asarray(memory.embedder.embed([question] + [e.prompt for e in named]))
    return named[int(np.argmax(vecs[1:] @ vecs[0]))]


def chain_messages(question: str, chain: Sequence[Edit]) -> list[Message]:
    if not chain:
        return user(question)
    facts = "\n".join(f"{i + 1}. {e.prompt} {e.target_new}." for i, e in enumerate(chain))
    return [{"role": "system", "content": CHAIN_SYSTEM.format(facts=facts)}, *user(question)]


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
    by_subject: dict[tuple[str, ...], list[Edit]] = defaultdict(list)
    for e in edits:
        by_subject[name_key(e.subject)].append(e)
    questions = [p.text for _, p in items]
    backend = ctx.backend()
    bbedit = systems_.model("bbedit", backend, editor)
    none_routes, _ = route(None, questions)
    routes, _ = route(bbedit, questions)
    chains = [chain_edits(q, first_hop(q, r.edit, edits, memory), by_subject, memory, max_hops)
              for q, r in zip(questions, routes, strict=True)]
    # none and bbedit answer through EditedModel.chat; the chain system is this task's own prompt (the
    # memory follows the hops, see chain_messages), sent to the same backend
    got = chat_all([(bbedit, q, r) for q, r in zip(questions, none_routes, strict=True)]
                   + [(bbedit, q, r) for q, r in zip(questions, routes, strict=True)], cfg.workers,
                   f"{cfg.suite}: {2 * len(questions)} questions")
    n = len(questions)
    chained = pmap(backend.complete, [chain_messages(q, ch) for q, ch in zip(questions, chains, strict=True)],
                   cfg.workers, f"{cfg.suite}: {n} chains")
    answers = {"none": [c.text for c in completions(bbedit, backend, questions, none_routes, got[:n])],
               "bbedit": [c.text for c in completions(bbedit, backend, questions, routes, got[n:])],
               "chain": [c.text for c in chained]}
    model = ctx.model()
    results: dict[str, dict[str, float]] = {}
    for s, outs in answers.items():
        new = [M.edit_success(a, p.answers, p.old_answers) for a, (_, p) in zip(outs, items, strict=True)]
        old = [M.contains_any(a, p.old_answers) for a, (_, p) in zip(outs, items, strict=True)]
        results[s] = {"multihop": sum(new) / len(new), "old_answer": sum(old) / len(old)}
    right_first = [r.edit is not None and r.edit.id in {e.id for e in c.edits}
                   for r, (c, _) in zip(routes, items, strict=True)]
    chain_first = [bool(ch) and ch[0].id == c.edits[0].id for ch, (c, _) in zip(chains, items, strict=True)]
    full = [len(ch) == len(c.edits) and all(e.id in {x.id for x in c.edits} for e in ch)
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
        "model_calls": model.calls, "model_calls_cached": model.hits}
    records = [{"case": c.id, "question": p.text, "answers": list(p.answers[:3]), "old": list(p.old_answers[:3]),
                "chain": [e.id for e in ch], **{s: answers[s][i] for s in answers}}
               for i, ((c, p), ch) in enumerate(zip(items, chains, strict=True))]
    return {"headline": headline, "results": results, "records": records}


def report(cfg: Any, out: Mapping[str, Any], folder: Path) -> str:
    from bbedit.evaluation.tables import bar_plot

    h, res = out["headline"], out["results"]
    bar_plot(folder / "multihop.png", res, ["multihop", "old_answer"], f"{cfg.suite}: multi-hop accuracy")
    labels = {"none": "no editing", "bbedit": "bbedit, one edit (gate + IKE)", "chain": "bbedit, retrieval per hop"}
    return "\n".join([
        f"# {cfg.suite}", "", cfg.description.strip(), "",
        f"{h['n_questions']} questions ({h['n_cases']} cases, first question of each), all {h['n_edits_in_memory']} "
        f"edits of the file in memory; wall time {h['wall_s']:.0f} s; generation protocol.", "",
        md_table(["system", "new answer (accuracy) ↑", "old answer still given ↓"],
                 [[labels[s], r["multihop"], r["old_answer"]] for s, r in res.items()]), "",
        f"The gate routed {h['gate_routed_to_case_edit']:.3f} of questions to one of their case's edits (a multi-hop "
        "question names its first subject but asks another relation, so the gate mostly declines). Retrieval per "
        f"hop found the first hop for {h['first_hop_retrieved']:.3f} and the case's whole chain for "
        f"{h['full_chain_retrieved']:.3f}.", "",
        "![multihop](multihop.png)", "",
        "This is reported apart from single-hop editing. A wrong answer with the full chain retrieved is the "
        "model failing to read the chain; a missing chain is retrieval failing.",
    ])


TASK = FunctionTask("multihop", run, report)
