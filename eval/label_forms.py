"""Wikidata label forms: does the gate tell two properties of one subject apart when both prompts name
them by their labels ("The place of birth of X is" against the edit "The sex or gender of X is")?

KnowEdit states its recent and counterfactual Wikidata facts this way, and asks about the subject's
other properties the same way. Built from training data only: subjects of counterfact-train, one edit
each in label form, and the same subject asked about another property (out of scope) or the edit's own
property in the other label forms (in scope). Labels come from two pools: ones the gate's training pairs
use (`LABELS`) and Wikidata labels no training file names (the rule does not know them either, so
it leaves them to the model). The gate with its label rule is compared with the model alone.

    PYTHONPATH=. python eval/label_forms.py   (make eval-label-forms)
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bbedit.evaluation.report import DATA_ROOT, RESULTS_ROOT, md_table, write_results
from bbedit.memory.memory import EditMemory
from bbedit.scope.gate import LearnedGate
from bbedit.scope.pair_templates import LABELS
from bbedit.types import Edit

# real Wikidata property labels that neither LABELS nor OTHER_LABELS holds (the rule cannot read them)
UNKNOWN_LABELS = (
    "nominated for", "place of publication", "lyrics by", "executive producer", "narrator", "writing system",
    "home port", "country of registry", "noble title", "military unit", "commander of", "electoral district",
    "candidacy in election", "follows", "followed by", "has part(s)", "replaces", "replaced by", "season", "epoch",
    "occupant", "owner of", "represented by", "translator", "editor", "editor-in-chief", "record held",
    "first appearance", "copyright holder", "mascot",
)
KINDS = (  # (kind, in scope, form: {L} the label, {S} the subject)
    ("other_label", False, "The {L} of {S} is"), ("other_label_name", False, "The name of the {L} of {S} is"),
    ("other_label_short", False, "{S} {L}"),
    ("same_label_name", True, "The name of the {L} of {S} is"), ("same_label_short", True, "{S} {L}"),
)


def build(data: Path, n: int, seed: int) -> tuple[list[Edit], list[dict[str, Any]]]:
    rng = random.Random(seed)
    facts = json.loads((data / "counterfact" / "counterfact-train.json").read_text(encoding="utf-8"))
    subjects = list(dict.fromkeys(f["subject"] for f in facts))
    rng.shuffle(subjects)
    known = sorted({label for labels in LABELS.values() for label in labels})
    edits, probes = [], []
    for i, s in enumerate(subjects[:n]):
        pool = known if i % 2 == 0 else list(UNKNOWN_LABELS)  # half the subjects each
        own, other = rng.sample(pool, 2)
        edit = Edit(subject=s, prompt=f"The {own} of {s} is", target_new=rng.choice(subjects), id=f"lf-{i}")
        edits.append(edit)
        for kind, in_scope, form in KINDS:
            probes.append({"query": form.format(L=own if in_scope else other, S=s), "kind": kind, "in_scope": in_scope,
                           "edit": edit.id, "labels": "known" if pool is known else "unknown"})
    return edits, probes


def main() -> Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA_ROOT)
    ap.add_argument("--n", type=int, default=600, help="subjects (edits), half with known labels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS_ROOT / "label-forms")
    a = ap.parse_args()
    t0 = time.perf_counter()
    edits, probes = build(a.data, a.n, a.seed)
    memory = EditMemory()
    memory.add_many(edits)
    gates = {"with_rule": LearnedGate(memory), "model_alone": LearnedGate(memory, label_rule=False)}
    retrievals = memory.retrieve_many([p["query"] for p in probes], gates["with_rule"].k)
    accepted: dict[str, Counter[tuple[str, str]]] = {g: Counter() for g in gates}
    total: Counter[tuple[str, str]] = Counter()
    examples: list[dict[str, Any]] = []
    for p, r in zip(probes, retrievals, strict=True):
        key = (p["kind"], p["labels"])
        total[key] += 1
        for name, gate in gates.items():
            d = gate.decide(p["query"], r)
            hit = d.edit is not None and d.edit.id == p["edit"]
            accepted[name][key] += hit
            if name == "with_rule" and hit != p["in_scope"] and len(examples) < 20:
                examples.append({"query": p["query"], "edit": d.edit.prompt if d.edit else None,
                                 "score": round(d.score, 3), "kind": p["kind"]})

    def rate(name: str, kinds: tuple[str, ...], labels: str) -> float:
        keys = [(k, labels) for k in kinds]
        return sum(accepted[name][k] for k in keys) / max(sum(total[k] for k in keys), 1)

    neg = tuple(k for k, s, _ in KINDS if not s)
    pos = tuple(k for k, s, _ in KINDS if s)
    headline: dict[str, float] = {}
    for name in gates:
        for labels in ("known", "unknown"):
            headline[f"{name}_other_label_accepted_{labels}"] = rate(name, neg, labels)
            headline[f"{name}_same_label_accepted_{labels}"] = rate(name, pos, labels)
    headline["n_edits"] = len(edits)
    headline["wall_s"] = round(time.perf_counter() - t0, 1)
    rows = [[kind, labels, total[(kind, labels)], *(f"{accepted[g][(kind, labels)] / max(total[(kind, labels)], 1):.3f}"
                                                   for g in gates)]
            for kind, _, _ in KINDS for labels in ("known", "unknown")]
    report = [
        "# Wikidata label forms: one subject, two properties",
        "",
        (__doc__ or "").split("\n\n")[1].replace("\n", " "),
        "",
        f"{len(edits)} edits (one per subject), {len(probes)} queries, threshold {gates['with_rule'].threshold:.2f}. "
        "Share of queries routed to their subject's edit (out of scope: lower is better; in scope: higher):",
        "",
        md_table(["kind", "labels", "queries", "gate with the label rule", "model alone"], rows),
        "",
        "Known labels are the ones the rule reads (`LABELS`, `OTHER_LABELS` and their synonyms from ParaRel and "
        "counterfact-train); unknown ones are real Wikidata labels it does not know, where only the model decides.",
        "",
        "## Decisions the gate (with the rule) gets wrong, first 20",
        "",
        *[f"- {e['kind']}: `{e['query']}` → `{e['edit']}` ({e['score']})" for e in examples],
        "",
        "Reproduce: `PYTHONPATH=. python eval/label_forms.py`",
        "",
    ]
    return write_results("label-forms", headline, {"examples": examples, "labels_unknown": list(UNKNOWN_LABELS)},
                         "\n".join(report), command="PYTHONPATH=. python eval/label_forms.py", root=a.out.parent)


if __name__ == "__main__":
    print(main())
