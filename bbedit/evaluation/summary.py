"""Regenerate ``eval/README.md``: the headline table of every suite and the command behind each number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bbedit.evaluation.report import RESULTS_ROOT

# the few numbers per suite that go in the top table (all keys are listed further down)
HEADLINE_KEYS: dict[str, list[str]] = {
    "counterfact": ["generation_reliability", "generation_generalization", "generation_locality",
                    "generation_locality_true_neighbours", "probability_reliability", "probability_generalization", "gate_precision", "gate_recall"],
    "zsre": ["generation_reliability", "generation_generalization", "generation_locality", "generation_portability",
             "probability_reliability", "gate_precision", "gate_recall"],
    "postedit-counterfact": ["edit_success_naive", "edit_success_paraphrase", "neighbor_untouched",
                             "neighbor_untouched_true_neighbours", "rouge1_retention", "rewrite_p50_s",
                             "baseline_edit_success_paraphrase", "baseline_neighbor_untouched",
                             "ike_edit_success_naive", "ike_rouge1_retention"],
    "postedit-zsre": ["edit_success_naive", "edit_success_paraphrase", "neighbor_untouched", "rouge1_retention",
                      "rewrite_p50_s", "baseline_edit_success_paraphrase", "baseline_neighbor_untouched",
                      "ike_edit_success_naive", "ike_rouge1_retention"],
    "postedit-counterfact-model-scripts": ["edit_success_naive", "edit_success_paraphrase", "neighbor_untouched",
                                           "rouge1_retention", "rewrite_p50_s", "baseline_edit_success_naive"],
    "postedit-counterfact-old-unknown": ["edit_success_naive", "edit_success_paraphrase", "rouge1_retention",
                                         "rewrite_p50_s", "baseline_edit_success_naive", "baseline_rouge1_retention"],
    "mquake-hard": ["multihop_accuracy_chain", "multihop_accuracy_bbedit", "baseline_none_multihop_accuracy",
                    "full_chain_retrieved"],
    "scope-counterfact": ["precision", "recall"],
    "scope": ["counterfact_precision", "counterfact_recall", "zsre_precision", "zsre_recall", "knowedit_precision",
              "knowedit_recall", "postedit_zsre_precision", "postedit_zsre_recall", "mquake_precision",
              "mquake_recall", "nq_false_trigger_rate", "route_p50_ms_100k"],
    "sequential": ["reliability_at_10", "reliability_at_10000", "generalization_at_10000",
                   "locality_true_neighbours_at_10000", "gate_precision_scope_aware_at_10000",
                   "gate_recall_sample_at_10000"],
    "middleware": ["exact_match_rate", "load_requests", "load_errors", "overhead_p50_ms", "overhead_p95_ms",
                   "fuzz_requests", "fuzz_5xx", "crash_acked", "crash_lost"],
    "whitebox-compare": ["ike_es_gen", "ike_ps_gen", "ike_ns_gen", "postedit_es_gen", "rome_es_gen", "rome_ps_gen",
                         "rome_ns_gen", "memit_es_gen", "alphaedit_es_gen", "alphaedit_blue_es_gen", "ft_es_gen",
                         "rome_es_prob", "rome_edit_s", "stats_s"],
    "whitebox-sequential": ["n_edits_max", "rome_es_prob_at_1000", "memit_es_prob_at_1000",
                            "alphaedit_es_prob_at_1000", "alphaedit_blue_es_prob_at_1000", "ike_es_prob_at_1000",
                            "rome_general_drop_at_1000", "alphaedit_general_drop_at_1000", "ike_general_drop_at_1000",
                            "ft_ppl_ratio_at_1000", "rome_ppl_ratio_at_1000", "memit_ppl_ratio_at_1000",
                            "alphaedit_ppl_ratio_at_1000", "alphaedit_blue_ppl_ratio_at_1000"],
    "whitebox-sequential-fresh": ["rome_es_prob_at_100", "rome_ns_prob_at_100", "memit_es_prob_at_100",
                                  "memit_ns_prob_at_100", "rome_s_per_edit", "memit_s_per_edit"],
    "overlap": ["counterfact_counterfact_train__counterfact_counterfact_edit__subjects",
                "counterfact_counterfact_train__counterfact_counterfact_edit__edit_prompts",
                "counterfact_counterfact_train__postedit_counterfact_edit_data__edit_prompts",
                "counterfact_counterfact_train__mquake_mquake_hard__subjects"],
    "general": ["mmlu_delta", "sst2_delta", "boolq_delta", "nq_delta", "gsm8k_delta", "baseline_always_mmlu_delta",
                "baseline_always_sst2_delta"],
}


# a key holding one of these is an adjusted (or subset) figure; its plain counterpart is the key without it
ADJUSTED = ("_true_neighbours", "_scope_aware", "_truth", "_sample")


def plain_key(key: str) -> str | None:
    """The plain counterpart of an adjusted key (``locality_true_neighbours_at_10000`` ->
    ``locality_at_10000``), None for a plain key."""
    for m in ADJUSTED:
        if m in key:
            return key.replace(m, "", 1)
    return None


def with_plain(keys: list[str], headline: dict[str, Any]) -> list[str]:
    """``keys`` with each adjusted figure's plain counterpart (where the run has it) right before it."""
    out: list[str] = []
    for k in keys:
        p = plain_key(k)
        if p is not None and p in headline and p not in out:
            out.append(p)  # (if listed on its own further on, it moves here)
        if k not in out:
            out.append(k)
    return out


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def render(root: Path = RESULTS_ROOT) -> str:
    found = [(f, json.loads(f.read_text())) for f in sorted(root.glob("*/results.json"))]
    parts = ["# Benchmarks", "",
             "Generated by `python -m bbedit.evaluation.summary` from `eval/results/*/results.json`; every number",
             "below was produced by running the command shown (never typed in). Rates are fractions in 0..1.",
             "Generation-protocol and probability-protocol (teacher-forced) numbers are separate keys and are",
             "never averaged together. `baseline_*` keys are the comparison systems of the same run (in the",
             "postedit suites the learned post-editor is the bare keys, `baseline_` the rule-based post-editor",
             "and `ike_` in-context editing on the served model). An adjusted figure (`*_true_neighbours`: neighbours",
             "that no edit in memory is about; `*_scope_aware`: routing such a neighbour to the edit it is about counted",
             "as right; `*_truth`: the ground truth still said; `*_sample`: on a sample) always stands right after its",
             "plain counterpart. Reports note where a training file overlaps the evaluation data",
             "([overlap](results/overlap/report.md)).", "",
             "| suite | headline | cases | wall (s) | command |", "|---|---|---|---|---|"]
    for f, d in found:
        h = d["headline"]
        keys = [k for k in HEADLINE_KEYS.get(d.get("suite", ""), []) if k in h]
        if not keys:
            keys = [k for k in h if k not in ("wall_s", "n_cases")][:5]
        keys = with_plain(keys, h)
        shown = ", ".join(f"{k} {_fmt(h[k])}" for k in keys)
        parts.append(f"| [{d.get('suite', f.parent.name)}](results/{f.parent.name}/report.md) | {shown} | "
                     f"{h.get('n_cases', '–')} | {_fmt(h.get('wall_s', '–'))} | `{d.get('command', '?')}` |")
    parts.append("")
    for f, d in found:
        parts += [f"## {d.get('suite', f.parent.name)}", "",
                  f"Command: `{d.get('command', '?')}` · finished {d.get('finished_at', '?')} · "
                  f"commit {d.get('commit') or '?'}{_dirty(d)}{_rendered(d)} · [report](results/{f.parent.name}/report.md)", "",
                  "| key | value |", "|---|---|"]
        parts += [f"| {k} | {_fmt(v)} |" for k, v in d["headline"].items()]
        parts.append("")
    return "\n".join(parts)


def _dirty(d: dict[str, Any]) -> str:
    g = (d.get("manifest") or {}).get("git") or {}
    return f" (with {g.get('n_dirty')} uncommitted changes)" if g.get("dirty") else ""


def _rendered(d: dict[str, Any]) -> str:
    r, j = d.get("rendered"), d.get("rejudged")
    out = f" · report re-rendered at {r.get('commit')} on {str(r.get('at', '?'))[:10]}" if r else ""
    if j:
        out += (f" · re-judged from stored answers: {len(j.get('changed', []))} headline values changed, "
                f"{len(j.get('removed', []))} removed (old and new in the report)")
    return out


def main() -> None:
    (RESULTS_ROOT.parent / "README.md").write_text(render())


if __name__ == "__main__":
    main()
