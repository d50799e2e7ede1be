"""End-to-end editing on CounterFact through a served chat model (generation protocol).

Each case is asked three ways, as a user would: its edit prompt (ES), its
paraphrase (PS) and its neighbourhood prompt (NS), each as the only user
message, greedy, natural stop. ES/PS succeed when the answer contains the new
target and not the old one; NS succeeds when the answer is identical to the
unedited model's answer. Systems: no editing, bbedit (gate + IKE), and always
injecting the memory's top hit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bbedit.evaluation.report import DATA_ROOT, md_table, write_results
from bbedit.types import Edit

log = logging.getLogger(__name__)


def contains(answer: str, target: str) -> bool:
    """Whole-word, case-insensitive containment."""
    return re.search(r"(?<!\w)" + re.escape(target.strip().lower()) + r"(?!\w)", answer.lower()) is not None


def success(answer: str, new: str, old: str | None) -> bool:
    return contains(answer, new) and not (old and contains(answer, old))


class CachedGenerator:
    """Greedy calls are deterministic: identical requests are answered once."""

    def __init__(self, backend: Any, **opts: Any) -> None:
        self.backend, self.opts = backend, opts
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self, messages: Sequence[dict[str, Any]]) -> str:
        key = json.dumps(messages, sort_keys=True)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        text = self.backend.generate(list(messages), **self.opts)
        with self._lock:
            self._cache[key] = text
            self.calls += 1
        return text


def _pmap(fn: Callable[[Any], Any], items: Sequence[Any], workers: int, desc: str) -> list[Any]:
    from tqdm import tqdm

    with ThreadPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc))


def run(n_cases: int = 300, n_mode_cases: int = 100, workers: int = 4, max_tokens: int = 48,
        data: Path = DATA_ROOT) -> Path:
    from bbedit.backends.embedded import EmbeddedServer
    from bbedit.backends.openai_backend import OpenAIBackend
    from bbedit.editors.ike import IKEEditor
    from bbedit.memory.memory import EditMemory
    from bbedit.scope.gate import load_gate
    from bbedit.scope.train import labelled_queries

    t_start = time.perf_counter()
    cases = json.loads((data / "counterfact" / "counterfact-edit.json").read_text())
    edits = [Edit(subject=c["subject"], prompt=c["prompt"], target_new=c["target_new"], target_old=c["ground_truth"],
                  id=f"cf-{c['case_id']}") for c in cases]
    memory = EditMemory(None)
    memory.add_many(edits, supersede=False, progress=True)
    gate = load_gate(memory)
    test = list(zip(cases[:n_cases], edits[:n_cases], strict=True))
    # a neighbourhood prompt whose subject has an edit of the same relation in memory is in scope
    # of that edit: changing its answer is right, so NS is also reported without those
    labels = labelled_queries(cases, [e.id for e in edits], synthetic=0.0)
    neighbour_in_scope = {q.text for q in labels if q.kind == "locality" and q.in_scope}
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(EmbeddedServer(n_parallel=workers))
        backend = OpenAIBackend(model=server.model, base_url=server.base_url, timeout=120)
        gen = CachedGenerator(backend, max_tokens=max_tokens, temperature=0.0)
        editors = {"fact": IKEEditor(mode="fact"), "ike": IKEEditor(mode="ike")}

        def user(q: str) -> list[dict[str, Any]]:
            return [{"role": "user", "content": q}]

        # 1. which IKE mode is the better default (oracle routing, ES + PS)
        mode_scores = {}
        for mode, ed in editors.items():
            jobs = [(c, e, q) for c, e in test[:n_mode_cases] for q in (c["prompt"], c["rephrase_prompt"])]
            def ask(j: tuple, ed: Any = ed) -> str:
                return gen(ed.build_messages(user(j[2]), j[1]))

            outs = _pmap(ask, jobs, workers, f"mode {mode}")
            ok = [success(o, j[1].target_new, j[1].target_old) for o, j in zip(outs, jobs, strict=True)]
            mode_scores[mode] = {"es": sum(ok[0::2]) / len(ok[0::2]), "ps": sum(ok[1::2]) / len(ok[1::2])}
        default_mode = max(mode_scores, key=lambda m: mode_scores[m]["es"] + mode_scores[m]["ps"])
        editor = editors[default_mode]

        # 2. the three systems on the three kinds of query
        kinds = {"es": "prompt", "ps": "rephrase_prompt", "ns": "locality_prompt"}
        queries = [(c, e, kind, c[key]) for c, e in test for kind, key in kinds.items()]
        retrievals = memory.retrieve_many([q[3] for q in queries], gate.k)

        def none_answer(j: tuple) -> str:
            return gen(user(j[3]))

        def bbedit_answer(ij: tuple[int, tuple]) -> tuple[str, str | None]:
            i, j = ij
            d = gate.decide(j[3], retrievals[i])
            if d.edit is None:
                return gen(user(j[3])), None
            return gen(editor.build_messages(user(j[3]), d.edit)), d.edit.id

        def inject_answer(ij: tuple[int, tuple]) -> str:
            i, j = ij
            hits = retrievals[i].hits
            return gen(editor.build_messages(user(j[3]), hits[0].edit)) if hits else gen(user(j[3]))

        base = _pmap(none_answer, queries, workers, "no editing")
        ours = _pmap(bbedit_answer, list(enumerate(queries)), workers, "bbedit")
        always = _pmap(inject_answer, list(enumerate(queries)), workers, "always inject")
    wall = time.perf_counter() - t_start

    def score(answers: Sequence[str]) -> dict[str, float]:
        res: dict[str, list[bool]] = {"es": [], "ps": [], "ns": [], "ns_true": []}
        for (_c, e, kind, q), a, b in zip(queries, answers, base, strict=True):
            ok = a.strip() == b.strip() if kind == "ns" else success(a, e.target_new, e.target_old)
            res[kind].append(ok)
            if kind == "ns" and q not in neighbour_in_scope:
                res["ns_true"].append(ok)
        return {k: sum(v) / max(len(v), 1) for k, v in res.items()}

    s_none, s_ours, s_always = score(base), score([a for a, _ in ours]), score(always)
    routed = {k: sum(1 for (c, e, kind, _), (_, eid) in zip(queries, ours, strict=True)
                     if kind == k and eid == e.id) / len(test) for k in ("es", "ps")}
    ns_touched = sum(1 for (c, e, kind, _), (_, eid) in zip(queries, ours, strict=True)
                     if kind == "ns" and eid is not None) / len(test)
    n_true = sum(1 for c, _ in test if c["locality_prompt"] not in neighbour_in_scope)
    ns_true_touched = sum(1 for (c, e, kind, q), (_, eid) in zip(queries, ours, strict=True)
                          if kind == "ns" and eid is not None and q not in neighbour_in_scope) / max(n_true, 1)
    headline = {"es": s_ours["es"], "ps": s_ours["ps"], "ns": s_ours["ns"], "n_cases": len(test),
                "baseline_none_es": s_none["es"], "baseline_none_ps": s_none["ps"], "baseline_none_ns": s_none["ns"],
                "baseline_always_es": s_always["es"], "baseline_always_ps": s_always["ps"],
                "baseline_always_ns": s_always["ns"], "ns_true_neighbours": s_ours["ns_true"],
                "baseline_always_ns_true_neighbours": s_always["ns_true"], "n_true_neighbours": n_true,
                "mode_fact_es": mode_scores["fact"]["es"], "mode_fact_ps": mode_scores["fact"]["ps"],
                "mode_ike_es": mode_scores["ike"]["es"], "mode_ike_ps": mode_scores["ike"]["ps"],
                "gate_routed_es": routed["es"], "gate_routed_ps": routed["ps"], "gate_touched_ns": ns_touched,
                "gate_touched_true_neighbours": ns_true_touched,
                "model_calls": gen.calls, "wall_s": wall}
    records = [{"query": q[3], "kind": q[2], "edit": q[1].id, "target_new": q[1].target_new,
                "target_old": q[1].target_old, "unedited": b, "bbedit": o[0], "edit_applied": o[1], "always": a,
                "neighbour_in_scope_of_another_edit": q[2] == "ns" and q[3] in neighbour_in_scope}
               for q, b, o, a in zip(queries, base, ours, always, strict=True)]
    report = f"""# End-to-end editing on CounterFact through the served SmolLM2-135M-Instruct

{len(test)} cases (the first of `counterfact-edit.json`), all {len(memory)} CounterFact edits in memory,
generation protocol: chat template, the question alone as the user message, greedy, natural stop
(at most {max_tokens} tokens). ES/PS: the answer contains the new target and not the old one.
NS: the neighbourhood prompt's answer is identical to the unedited model's.

{md_table(["system", "ES", "PS", "NS", f"NS, true neighbours (n={n_true})"], [
        ["no editing", s_none["es"], s_none["ps"], s_none["ns"], s_none["ns_true"]],
        [f"bbedit (learned gate + IKE `{default_mode}`)", s_ours["es"], s_ours["ps"], s_ours["ns"], s_ours["ns_true"]],
        [f"always inject the top hit (IKE `{default_mode}`)", s_always["es"], s_always["ps"], s_always["ns"],
         s_always["ns_true"]]])}

The gate routed {routed['es']:.3f} of edit prompts and {routed['ps']:.3f} of paraphrases to their own edit,
and applied an edit to {ns_touched:.3f} of neighbourhood prompts. {len(test) - n_true} of the {len(test)}
neighbourhood prompts name a subject that has an edit *of the same relation* among the {len(memory)} in
memory (CounterFact reuses subjects across cases), so they are in scope of that other edit and a changed
answer is right there; "true neighbours" leaves them out. On true neighbours the gate applied an edit to
{ns_true_touched:.3f} of prompts.

Why ES/PS stay far from 1 although routing is right: SmolLM2-135M often ignores the fact in its context
(with the right edit in context for every in-scope query, the "always inject" row shows the same ceiling).
A stronger API model, or the post-editor of a later issue, is what moves ES/PS; the gate's job is the
NS column and the routing rates.

## Choosing the IKE default (oracle routing, first {n_mode_cases} cases)

{md_table(["mode", "ES", "PS"], [[m, v["es"], v["ps"]] for m, v in mode_scores.items()])}

Default kept: `{default_mode}`.

Model calls: {gen.calls} (identical greedy requests are answered once). Wall time: {wall:.0f} s.
Every query with the three answers is in results.json (`records`).
"""
    return write_results("e2e-counterfact", headline, {"modes": mode_scores, "default_mode": default_mode,
                                                       "records": records}, report, "make eval-e2e")
