"""Other names and other holders: does the gate reach an edit when the user names its subject another way
("UK" for "United Kingdom"), and leave it alone when the question asks about another holder of the
edit's office ("the first prime minister of X" against the edit of X's prime minister)?

Built from training data only. Other names: counterfact-train facts whose subject the alias table knows
(the table comes from PopQA's answers, `python -m bbedit.memory.build_aliases`), asked with the
subject replaced by each of up to two of its other names, in the edit's own prompt and in its rephrase
(in scope), beside the fact's locality prompt (same relation, another subject: out of scope). Offices:
counterfact-train subjects given an edit "Who is the {office} of S?", asked about the present holder in
other words (in scope) and about a past or next holder (out of scope). Each memory also holds 2,000
other counterfact-train facts. Compared: the memory with and without its alias table
(`EditMemory(known_aliases=...)`), and the gate with and without its rules (`LearnedGate(label_rule=...)`).

    PYTHONPATH=. python eval/other_names.py   (make eval-other-names)
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
from bbedit.memory.aliases import known_aliases
from bbedit.memory.memory import EditMemory
from bbedit.scope.gate import LearnedGate
from bbedit.types import Edit

OFFICES = ("president", "prime minister", "CEO", "chairman", "head coach", "mayor", "governor", "director")
PRESENT = ("Who is the current {o} of {S}?", "Who serves as {S}'s {o} now?", "Name the {o} of {S}.")
PAST = ("Who was the first {o} of {S}?", "Who was the former {o} of {S}?", "Who will be the next {o} of {S}?",
        "Who was the second {o} of {S}?")


def build(data: Path, n_offices: int, n_distractors: int, seed: int) -> tuple[list[Edit], list[dict[str, Any]]]:
    rng = random.Random(seed)
    facts = json.loads((data / "counterfact" / "counterfact-train.json").read_text(encoding="utf-8"))
    edits: list[Edit] = []
    probes: list[dict[str, Any]] = []
    used: set[str] = set()
    for f in facts:  # other names
        s = f["subject"]
        others = list(known_aliases([s]))
        if not others or s in used or s not in f["prompt"]:
            continue
        used.add(s)
        e = Edit(subject=s, prompt=f["prompt"], target_new=f["target_new"], id=f"alias-{f['case_id']}")
        edits.append(e)
        for other in rng.sample(others, min(2, len(others))):
            probes.append({"query": f["prompt"].replace(s, other), "kind": "other_name_prompt", "in_scope": True,
                           "edit": e.id})
            if s in f["rephrase_prompt"]:
                probes.append({"query": f["rephrase_prompt"].replace(s, other), "kind": "other_name_rephrase",
                               "in_scope": True, "edit": e.id})
        probes.append({"query": f["locality_prompt"], "kind": "same_relation_other_subject", "in_scope": False,
                       "edit": e.id})
    subjects = [x for x in dict.fromkeys(f["subject"] for f in facts) if x not in used]
    rng.shuffle(subjects)
    for i, s in enumerate(subjects[:n_offices]):  # offices
        o = OFFICES[i % len(OFFICES)]
        e = Edit(subject=s, prompt=f"Who is the {o} of {s}?", target_new=rng.choice(subjects), id=f"office-{i}")
        edits.append(e)
        probes.append({"query": rng.choice(PRESENT).format(o=o, S=s), "kind": "present_holder", "in_scope": True,
                       "edit": e.id})
        probes.append({"query": rng.choice(PAST).format(o=o, S=s), "kind": "another_holder", "in_scope": False,
                       "edit": e.id})
        used.add(s)
    rest = [f for f in facts if f["subject"] not in used]
    for f in rng.sample(rest, min(n_distractors, len(rest))):
        edits.append(Edit(subject=f["subject"], prompt=f["prompt"], target_new=f["target_new"], id=f"cf-{f['case_id']}"))
    return edits, probes


def main() -> Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA_ROOT)
    ap.add_argument("--offices", type=int, default=400, help="subjects given an office edit")
    ap.add_argument("--distractors", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS_ROOT / "other-names")
    a = ap.parse_args()
    t0 = time.perf_counter()
    edits, probes = build(a.data, a.offices, a.distractors, a.seed)
    systems: dict[str, tuple[bool, bool]] = {  # name: (alias table, gate rules)
        "shipped": (True, True), "no_alias_table": (False, True), "no_rules": (True, False),
    }
    memory = EditMemory()
    memory.add_many(edits, supersede=False)
    hits: dict[str, Counter[str]] = {s: Counter() for s in systems}
    total: Counter[str] = Counter()
    wrong: list[dict[str, Any]] = []
    for p in probes:
        total[p["kind"]] += 1
    for name, (table, rules) in systems.items():
        if memory.known_aliases != table:
            memory.known_aliases = table
            memory._reload()  # the subject index is rebuilt with or without the table
        gate = LearnedGate(memory, label_rule=rules)
        rs = memory.retrieve_many([p["query"] for p in probes], gate.k)
        for p, r in zip(probes, rs, strict=True):
            d = gate.decide(p["query"], r)
            hit = d.edit is not None and d.edit.id == p["edit"]
            hits[name][p["kind"]] += hit
            if name == "shipped" and hit != p["in_scope"] and len(wrong) < 20:
                wrong.append({"kind": p["kind"], "query": p["query"], "routed": d.edit.prompt if d.edit else None,
                              "score": round(d.score, 3)})
    kinds = list(total)
    headline: dict[str, float] = {}
    for name in systems:
        for k in kinds:
            headline[f"{name}_{k}_routed"] = hits[name][k] / total[k]
    headline["n_edits"] = len(edits)
    headline["n_queries"] = len(probes)
    headline["wall_s"] = round(time.perf_counter() - t0, 1)
    in_scope = {p["kind"]: p["in_scope"] for p in probes}
    rows = [[k, "in" if in_scope[k] else "out", total[k], *(f"{hits[s][k] / total[k]:.3f}" for s in systems)]
            for k in kinds]
    report = [
        "# Other names and other holders",
        "",
        (__doc__ or "").split("\n\n")[0].replace("\n", " "),
        "",
        (__doc__ or "").split("\n\n")[1].replace("\n", " "),
        "",
        f"{len(edits)} edits in memory, {len(probes)} queries, threshold {LearnedGate(memory).threshold:.2f}. "
        "Share of queries routed to their edit (in scope: higher is better; out of scope: lower):",
        "",
        md_table(["kind", "scope", "queries", "shipped (alias table + rules)", "without the alias table",
                  "without the rules"], rows),
        "",
        "## Decisions the shipped gate gets wrong, first 20",
        "",
        *[f"- {w['kind']}: `{w['query']}` → `{w['routed']}` ({w['score']})" for w in wrong],
        "",
    ]
    return write_results("other-names", headline, {"wrong": wrong, "offices": list(OFFICES)}, "\n".join(report),
                         command="PYTHONPATH=. python eval/other_names.py", root=a.out.parent)


if __name__ == "__main__":
    print(main())
