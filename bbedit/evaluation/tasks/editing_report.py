"""The ``editing`` task's report: both protocols' tables, PostEdit's per-query-type view, gate and cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bbedit.evaluation.harness import SuiteConfig, system_prefix
from bbedit.evaluation.report import cores_text, md_table
from bbedit.evaluation.tables import SYSTEM_LABELS, bar_plot, protocol_table


def editing_report(cfg: SuiteConfig, out: Mapping[str, Any], folder: Path) -> str:
    h, res = out["headline"], out["results"]
    gen_cols = [c for c in ("reliability", "generalization", "locality", "locality_truth", "portability",
                            "multihop", "fluency") if any(c in r for r in res["generation"].values())]
    post_cols = [c for c in ("lexical_edit", "lexical_retention", "semantic_retention")
                 if any(c in r for r in res["generation"].values())]
    cost_cols = [c for c in ("latency", "routing_ms", "token_overhead") if any(c in r for r in res["generation"].values())]
    gate_cols = ["gate_precision", "gate_recall", "gate_f1", "gate_routed_out_of_scope"]
    rate_cols = [c for c in gen_cols if c != "fluency"]
    bar_plot(folder / "generation.png", res["generation"], rate_cols, f"{cfg.suite}: generation protocol")
    parts = [f"# {cfg.suite}", "", cfg.description.strip(), "",
             f"{h['n_cases']} cases, {h['n_queries']} queries, {h['n_edits_in_memory']} edits in memory; "
             f"model calls made {h['model_calls']}, answered from the cache {h['model_calls_cached']}; "
             f"wall time {h['wall_s']:.0f} s.", "",
             "## Generation protocol (what users see)", "",
             "The query as the only user message, chat template, greedy, natural stop. In scope: the answer "
             "contains a new answer and no old one. Locality: the answer is identical to the unedited "
             "system's; locality_truth: it still contains the ground truth.", "",
             protocol_table(res["generation"], gen_cols), "", "![generation](generation.png)", ""]
    if post_cols:
        parts += ["### PostEdit's style measures (against the answer the system started from)", "",
                  protocol_table(res["generation"], post_cols), ""]
    if out.get("by_query_type"):
        parts += postedit_section(cfg, out, folder)
    if "generation_locality_true_neighbours" in h:
        n_shared = h["n_neighbours_in_scope_of_another_edit"]
        # the PostEdit view above has already said which neighbours these are
        why = "" if out.get("by_query_type") and n_shared else (
            f"{n_shared} of the neighbourhood prompts name a subject that has an edit *of the same relation* among "
            "those in memory (CounterFact reuses subjects), so they are in scope of that edit and a changed answer "
            "is right there. ")
        parts += [why + f"On the true neighbours only, bbedit's locality is "
                  f"{h['generation_locality_true_neighbours']:.3f}; counting routings of those prompts to "
                  f"those edits as right, gate precision is {h['gate_precision_scope_aware']:.3f}.", ""]
    if h.get("n_cases_sharing_subject"):
        parts += [f"{h['n_cases_sharing_subject']} of the {h['n_cases']} cases edit a subject that another edit in "
                  "memory also edits (often the same relation with a conflicting target). Routing a probe to that "
                  "other edit counts as a gate error above; in-scope probes routed to an edit of their own subject: "
                  f"{h.get('gate_routed_to_same_subject', 0):.3f} (gate_recall counts only their own edit).", ""]
    parts += ["### Gate and cost", "", protocol_table({s: r for s, r in res["generation"].items() if s != "none"},
                                                      gate_cols), "",
              protocol_table(res["generation"], cost_cols), "",
              "latency: p50 of one answer over the model calls made in this run, plus amortised routing "
              f"({latency_note(res['generation'])}); "
              "token_overhead: mean extra prompt tokens of an edited query vs. the unedited request. "
              "Fluency is the n-gram entropy of these short answers, so it mostly tracks answer length.", ""]
    if res.get("probability"):
        cols = list(dict.fromkeys(k for r in res["probability"].values() for k in r))
        bar_plot(folder / "probability.png", res["probability"], cols, f"{cfg.suite}: probability protocol")
        parts += ["## Probability protocol (teacher forcing; reported apart, never averaged with generation)", "",
                  f"On the first {cfg.probability.get('n', 'all')} cases, with the same weights loaded in "
                  "transformers. In scope: P(new answer) > P(old answer) on the messages the system sends; "
                  "`*_token_acc`: share of target tokens that are the argmax under teacher forcing (the "
                  "leaky metric most toolkits report). Locality: P(true answer) stays above P(new target).", "",
                  protocol_table(res["probability"]), "", "![probability](probability.png)", ""]
    if out["dataset"].get("skipped"):
        parts += [f"Records skipped as malformed: {len(out['dataset']['skipped'])} "
                  f"({'; '.join(out['dataset']['skipped'][:3])}).", ""]
    parts += ["Every query with each system's answer is in results.json (`records`)."]
    return "\n".join(parts)


def latency_note(by_system: Mapping[str, Mapping[str, float]]) -> str:
    """How many answers each system's latency was measured on (not from the cache)."""
    counts = {s: r["latency_n_measured"] for s, r in by_system.items() if "latency_n_measured" in r}
    if not counts:
        return "a run recorded before cache hits were told apart: its latencies may include replayed ones"
    if not any(counts.values()):
        return "not measured in this run (answers from cache)"
    return "answers measured fresh: " + ", ".join(f"{SYSTEM_LABELS.get(s, s)} {int(n)}" for s, n in counts.items())


def measured_note(h: Mapping[str, Any], prefixes: Sequence[str]) -> str:
    """"(rewrites measured fresh: 120 of 300, ...)" from the headline's ``rewrite_n_measured``."""
    parts = [f"{h[p + 'rewrite_n_measured']:.0f}" + (f" of {h[p + 'n_rewrites']:.0f}" if p + "n_rewrites" in h else "")
             for p in prefixes if p + "rewrite_n_measured" in h]
    return f" (measured fresh: {', '.join(parts)})" if parts else ""


def postedit_section(cfg: SuiteConfig, out: Mapping[str, Any], folder: Path) -> list[str]:
    """PostEdit's table: per system and query type, edit success, PostEdit's lexical edit score, answers
    left untouched, ROUGE-1 and SBERT retention; then rewrite latency."""
    h, table = out["headline"], out["by_query_type"]
    primary = str(out.get("primary", "bbedit"))
    labels = dict(SYSTEM_LABELS, bbedit="bbedit, IKE on the served model")
    original = cfg.options.get("original", "model")
    cols = ["edit_success", "lexical_edit", "untouched", "untouched_true_neighbours", "rouge1_retention",
            "sbert_retention"]
    rows: list[list[Any]] = []
    for s, t in table.items():
        for qt in ("naive", "paraphrase", "neighbor", "overall"):
            if qt in t:
                rows.append([labels.get(s, s), qt, *(t[qt].get(c, "–") for c in cols)])
    start = ("the recorded answer (`response_before_edit`, the API model's own answer)" if original == "reference"
             else "the unedited served model's answer")
    lines = ["## PostEdit view: per query type", "",
             f"Post-editors rewrite {start}; IKE (and no editing) are the served SmolLM2's own answers, measured "
             "against its unedited answer. edit_success: the new target in the answer and the old one out (naive "
             "and paraphrase queries); lexical_edit: PostEdit's score (1 new only, 0.5 both, 0 no new; for "
             "neighbours the roles swap); untouched: the answer is exactly the one the system started from; "
             "rouge1_retention / sbert_retention: ROUGE-1 F1 and MiniLM cosine against that answer, with the "
             "targets masked in scope.", "",
             md_table(["system", "query type", *cols], rows), ""]
    if out.get("postedit_gate_threshold") is not None:
        lines += [f"The learned post-editor is routed at gate threshold {out['postedit_gate_threshold']} instead of "
                  f"the gate's {out.get('gate_threshold')}: its own keep decision filters what the gate lets "
                  "through. The rule-based baseline has no such filter and IKE none either; both run at the "
                  "gate's threshold.", ""]
    if h.get("n_neighbours_in_scope_of_another_edit"):
        lines += [f"{h['n_neighbours_in_scope_of_another_edit']} of the neighbour queries name the subject of "
                  "another edit *of the same relation* among those in memory (CounterFact reuses subjects: "
                  "\"Mehmed the Conqueror is affiliated with the religion\" is a neighbour of one edit and the "
                  "prompt of another), so changing their answer is right. untouched_true_neighbours leaves them "
                  "out; `neighbor_untouched` counts every neighbour as the dataset labels it.", ""]
    keys = ["edit_success_naive", "edit_success_paraphrase", "neighbor_untouched", "rouge1_retention"]
    plot = {s: {k: h.get(system_prefix(s, primary) + k, float("nan")) for k in keys} for s in table if s != "none"}
    bar_plot(folder / "postedit.png", plot, keys, f"{cfg.suite}: PostEdit view")
    lines += ["![postedit](postedit.png)", ""]
    lat = []
    for s in table:
        pre = system_prefix(s, primary)
        if f"{pre}rewrite_p50_s_all" in h:
            lat.append([labels.get(s, s), h.get(f"{pre}rewrite_p50_s", "–"), h.get(f"{pre}rewrite_p95_s", "–"),
                        h[f"{pre}rewrite_p50_s_all"]])
    if lat:
        lines += [f"### Edit latency (seconds, {cores_text(out)})", "",
                  md_table(["system", "p50, ~60-token answers", "p95, ~60-token answers", "p50, every routed query"],
                           lat), "",
                  "Post-editors: the rewrite of an answer of 45 to 75 tokens that the editor changed (reading "
                  "the answer, deciding, writing the edit script and applying it; the answer itself comes from "
                  "the API model first). IKE: the served model's whole edited answer, every routed "
                  "query (in-context editing replaces the call instead of rewriting; its answers are capped at the "
                  "suite's max_tokens, and were measured with the suite's concurrent requests sharing the cores). Times count "
                  "only rewrites and answers made in this run, never ones from the cache"
                  f"{measured_note(h, [system_prefix(x, primary) for x in table])}.", ""]
    else:
        lines += ["### Edit latency", "", "Not measured in this run (answers from cache).", ""]
    return lines
