"""Long answers with several edited facts (evaluation only): paragraphs built from PostEdit's recorded
closed-model answers, post-edited for one to three edits at once.

    PYTHONPATH=. python eval/longform.py [--paragraphs 150] [--editors postedit,replace]

Each paragraph answers "Tell me about A, B and C." with, for each of its k facts (k = 1, 2, 3), the
recorded answer to one of that edit's in-scope PostEdit queries (CounterFact's cloze queries are written
out with their prompt, "Andrea Sartoretti, a citizen of Italy, was ..."), and beside it, for CounterFact,
the recorded answer to the same edit's neighbour query: another subject with the same relation and,
usually, the same old value ("The native language of François Bayrou is French."), which must stay as
it is. For zsRE the neighbour is an NQ question's answer. The segments are shuffled and joined into one
paragraph. Segments that do not name their subject are left out: a paragraph about several things names
each of them.

The editors get the paragraph's edits directly (routing is measured by ``eval/scope.py`` and
``eval/conversation.py``) and rewrite for each in turn (``AnswerEditor.rewrite_all``). The edited text
is aligned with the original (difflib, characters); every original sentence gets the edited text
aligned with it. Scores:

- ``fact_success``: per fact, the edited paragraph states the new value and the fact's own sentences
  assert no competing value: neither the old value nor the value the recorded answer gave for it
  (:func:`bbedit.evaluation.metrics.strict_edit_success`);
- ``old_value_absent``: per fact, the fact's sentences no longer name the old value;
- ``untouched_rouge1``: mean ROUGE-1 F1 of each untouched sentence (every neighbour sentence, and each
  fact sentence after the first that names neither the old value nor the recorded value) against what
  it became; ``untouched_identical``: the share that stayed byte for byte.

IKE is not scored here: it writes a new answer instead of editing a recorded one.
"""

from __future__ import annotations

import argparse
import bisect
import difflib
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from bbedit.editors.base import make_editor
from bbedit.editors.postedit.text import (
    asserted_values,
    mentions,
    sentence_spans,
    subject_names,
    target_pattern,
    value_run,
)
from bbedit.errors import InvalidEdit
from bbedit.evaluation.metrics import rouge1_f, strict_edit_success
from bbedit.evaluation.report import DATA_ROOT, md_table, write_results
from bbedit.memory import formats
from bbedit.types import Edit

log = logging.getLogger("longform")
SETS = {"counterfact": DATA_ROOT / "postedit" / "counterfact", "zsre": DATA_ROOT / "postedit" / "zsre"}


@dataclass
class Segment:
    text: str
    edit: Edit | None  # None: a neighbour's answer, to stay untouched
    question: str
    unedited: list[str] = field(default_factory=list)  # the values it gives for its fact


@dataclass
class Paragraph:
    set: str
    query: str
    segments: list[Segment]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)

    @property
    def edits(self) -> list[Edit]:
        return [s.edit for s in self.segments if s.edit is not None]


def _written_out(query: str, response: str) -> str:
    """A recorded answer as a statement: a cloze query's answer continues the query."""
    response = response.strip()
    if query.rstrip().endswith("?"):
        return response
    return f"{query.rstrip()} {response}"


def load_segments(name: str, root: Path) -> tuple[dict[int, list[Segment]], dict[int, list[Segment]]]:
    """In-scope and neighbour segments of one PostEdit set, by edit id."""
    edits = json.loads((root / "edit_data.json").read_text())
    by_id = {}
    for i, r in enumerate(edits):
        try:
            by_id[int(r["edit_id"])] = formats.edit_from_record(r, "postedit", i)
        except InvalidEdit:  # a few zsRE edits have an empty target
            continue
    facts: dict[int, list[Segment]] = defaultdict(list)
    neighbours: dict[int, list[Segment]] = defaultdict(list)
    for r in json.loads((root / "query_data.json").read_text()):
        eid, response = int(r["edit_id"]), str(r["response_before_edit"])
        edit = by_id.get(eid)
        if edit is None or len(response.split()) < 2:
            continue
        text = _written_out(r["query"], response)
        if r["query_type"] == "neighbor":
            neighbours[eid].append(Segment(text, None, r["query"]))
        elif any(mentions(text, n) for n in subject_names(edit)):
            old = edit.target_old or ""
            # what the recorded answer gave for the fact: the old value with what is appended to it
            # ("Paris, France"), else the value it gives where it restates the question
            unedited = value_run(response, old)[1:] if mentions(response, old) else \
                asserted_values(response, [edit.target_new], r["query"], [edit.subject])
            facts[eid].append(Segment(text, edit, r["query"], unedited))
    return facts, neighbours


def build(name: str, root: Path, n: int, rng: random.Random) -> list[Paragraph]:
    facts, neighbours = load_segments(name, root)
    ids = sorted(facts)
    out = []
    for i in range(n):
        k = 1 + i % 3
        chosen: list[int] = []
        for eid in rng.sample(ids, len(ids)):
            subjects = {facts[c][0].edit.subject for c in chosen}  # type: ignore[union-attr]
            if facts[eid][0].edit.subject not in subjects:  # type: ignore[union-attr]
                chosen.append(eid)
            if len(chosen) == k:
                break
        segments = []
        for eid in chosen:
            segments.append(rng.choice(facts[eid]))
            pool = neighbours.get(eid) or neighbours[rng.choice(sorted(neighbours))]
            segments.append(rng.choice(pool))
        rng.shuffle(segments)
        names = [s.edit.subject for s in segments if s.edit is not None]
        query = f"Tell me about {names[0]}." if k == 1 else \
            f"Tell me about {', '.join(names[:-1])} and {names[-1]}."
        out.append(Paragraph(name, query, segments))
    return out


def aligned(original: str, edited: str, spans: Sequence[tuple[int, int]]) -> list[str]:
    """For each span of ``original`` (a partition of it), the edited text aligned with it: equal runs
    split where the spans split, and an inserted or replaced run goes to the span its start falls in."""
    starts = [a for a, _ in spans]
    pieces: list[list[str]] = [[] for _ in spans]

    def owner(i: int) -> int:  # the span ``original[i]`` falls in
        return max(bisect.bisect_right(starts, i) - 1, 0)

    ops = difflib.SequenceMatcher(None, original, edited, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            for k, (a, b) in enumerate(spans):
                lo, hi = max(a, i1), min(b, i2)
                if lo < hi:
                    pieces[k].append(edited[j1 + lo - i1:j1 + hi - i1])
        else:  # an insertion right before a span (after the space that ends the one before) is that span's
            at = i1
            if tag == "insert":
                nxt = next((a for a in starts if a >= i1), None)
                if nxt is not None and not original[i1:nxt].strip():
                    at = nxt
            pieces[owner(min(at, len(original) - 1))].append(edited[j1:j2])
    return ["".join(p) for p in pieces]


def score(p: Paragraph, edited: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-fact and per-untouched-sentence rows for one edited paragraph."""
    original = p.text
    spans, owners, offset = [], [], 0
    for si, seg in enumerate(p.segments):
        for a, b in sentence_spans(seg.text):
            spans.append((offset + a, offset + b))
            owners.append(si)
        offset += len(seg.text) + 1
        if si < len(p.segments) - 1:  # the joining space belongs to the segment before it
            spans[-1] = (spans[-1][0], offset)
    got = aligned(original, edited, spans)
    facts, untouched = [], []
    for si, seg in enumerate(p.segments):
        mine = [k for k, o in enumerate(owners) if o == si]
        now = "".join(got[k] for k in mine)
        if seg.edit is not None:
            e = seg.edit
            # the subject's own name may hold the old value ("Microsoft Plus!"): it is no competing value
            now = target_pattern(e.subject).sub(" ", now) if mentions(e.subject, e.target_old) else now
            ok = strict_edit_success(now, e.target_new, e.target_old or (), None, seg.question) and \
                not any(mentions(now, v) for v in seg.unedited if not mentions(e.target_new, v)) and \
                mentions(edited, e.target_new)
            facts.append({"set": p.set, "k": len(p.edits), "ok": ok,
                          "old_absent": not mentions(now, e.target_old or ""),
                          "subject": e.subject, "new": e.target_new, "old": e.target_old, "before": seg.text,
                          "after": now})
        for n, k in enumerate(mine):
            before = original[spans[k][0]:spans[k][1]]
            if seg.edit is not None and (n == 0 or mentions(before, seg.edit.target_old or "") or
                                         any(mentions(before, v) for v in seg.unedited)):
                continue  # a sentence stating the fact
            untouched.append({"set": p.set, "k": len(p.edits), "rouge1": rouge1_f(got[k], before) if before.strip()
                              else 1.0, "identical": got[k] == before, "before": before, "after": got[k]})
    return facts, untouched


def main(argv: Sequence[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paragraphs", type=int, default=150, help="paragraphs per set (k = 1, 2, 3 in turn)")
    ap.add_argument("--editors", default="postedit,replace")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("eval/results/longform"))
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    rng = random.Random(a.seed)
    paragraphs = [p for name, root in SETS.items() for p in build(name, root, a.paragraphs, rng)]
    results: dict[str, Any] = {}
    for name in a.editors.split(","):
        editor = make_editor(name)
        editor.load()
        facts: list[dict[str, Any]] = []
        untouched: list[dict[str, Any]] = []
        t1 = time.perf_counter()
        for i, p in enumerate(paragraphs):
            edited = editor.rewrite_all(p.query, p.text, p.edits).text  # type: ignore[attr-defined]
            f, u = score(p, edited)
            facts += f
            untouched += u
            if i % 50 == 0:
                log.info("%s: %d/%d paragraphs", name, i, len(paragraphs))
        results[name] = {"facts": facts, "untouched": untouched, "seconds": time.perf_counter() - t1}
    return _write(a, paragraphs, results, time.perf_counter() - t0)


def _rate(rows: Sequence[dict[str, Any]], key: str) -> float:
    return sum(bool(r[key]) for r in rows) / len(rows) if rows else float("nan")


def _write(a: argparse.Namespace, paragraphs: Sequence[Paragraph], results: dict[str, Any], wall: float) -> Path:
    first = a.editors.split(",")[0]
    fr, ur = results[first]["facts"], results[first]["untouched"]
    headline: dict[str, Any] = {"fact_success": _rate(fr, "ok"), "untouched_rouge1": mean(r["rouge1"] for r in ur),
                                "old_value_absent": _rate(fr, "old_absent"),
                                "untouched_identical": _rate(ur, "identical")}
    for name, res in results.items():
        if name != first:
            headline[f"fact_success_{name}"] = _rate(res["facts"], "ok")
            headline[f"untouched_rouge1_{name}"] = mean(r["rouge1"] for r in res["untouched"])
    headline.update(paragraphs=len(paragraphs), facts=len(fr), untouched_sentences=len(ur), wall_s=wall)
    rows = []
    for name, res in results.items():
        for set_name in SETS:
            for k in (1, 2, 3, None):
                f = [r for r in res["facts"] if r["set"] == set_name and (k is None or r["k"] == k)]
                u = [r for r in res["untouched"] if r["set"] == set_name and (k is None or r["k"] == k)]
                rows.append([name, set_name, "all" if k is None else k, len(f), f"{_rate(f, 'ok'):.3f}",
                             f"{_rate(f, 'old_absent'):.3f}", len(u), f"{mean(r['rouge1'] for r in u):.3f}",
                             f"{_rate(u, 'identical'):.3f}"])
    fails = [r for r in fr if not r["ok"]][:8]
    damaged = sorted((r for r in ur if not r["identical"]), key=lambda r: r["rouge1"])[:6]
    report = [
        "# Long answers with several edited facts",
        "",
        f"`{'PYTHONPATH=. python eval/longform.py'}` (`make eval-longform`): {len(paragraphs)} paragraphs built from "
        "PostEdit's recorded closed-model answers (CounterFact and zsRE), each with one to three edited facts "
        "and, beside each, a neighbour's answer that must stay untouched (for CounterFact the same relation "
        "and usually the same old value). The editors get the paragraph's edits directly and rewrite for each "
        "in turn. How the paragraphs are built and scored: the docstring of `eval/longform.py`.",
        "",
        f"Headline ({first}): fact success **{headline['fact_success']:.3f}**, old value absent "
        f"{headline['old_value_absent']:.3f}, ROUGE-1 of the untouched sentences **{headline['untouched_rouge1']:.3f}** "
        f"({headline['untouched_identical']:.3f} byte-identical).",
        "",
        md_table(["editor", "set", "facts per paragraph", "facts", "fact success", "old value absent",
                  "untouched sentences", "untouched ROUGE-1", "byte-identical"], rows),
        "",
        "Time: " + ", ".join(f"{n} {r['seconds']:.0f} s" for n, r in results.items()) + " for all paragraphs.",
        "",
        f"## Facts that did not take ({first}, first {len(fails)})",
        "",
        *[f"- {r['subject']} → {r['new']} (old {r['old']}): before `{r['before'][:160]}` after "
          f"`{r['after'][:160]}`" for r in fails],
        "",
        f"## Untouched sentences that changed most ({first})",
        "",
        *[f"- ROUGE-1 {r['rouge1']:.2f}: `{r['before'][:140]}` → `{r['after'][:140]}`" for r in damaged],
        "",
    ]
    return write_results("longform", headline, {"rows": rows, "results": {
        n: {"facts": r["facts"][:300], "untouched_changed": [u for u in r["untouched"] if not u["identical"]][:200],
            "seconds": r["seconds"]} for n, r in results.items()}},
        "\n".join(report), command="PYTHONPATH=. python eval/longform.py (make eval-longform)", root=a.out.parent)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    print(main())
