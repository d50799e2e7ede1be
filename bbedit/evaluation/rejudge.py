"""Re-judging a finished run: the judged figures recomputed from its stored answers, no model called.

``bbedit eval <suite> --report-only --rejudge`` loads the suite's cases again (the stored records keep
only three aliases per answer, the dataset all of them), pairs them with the stored records (same
order, same query text) and recomputes every figure that judges an answer's text: edit success
(reliability, generalization, multihop), portability, locality against the ground truth, PostEdit's
lexical edit score and edit success per query type. Figures that compare answers with each other
(locality: unchanged vs. the unedited answer, retention) do not depend on the judge; they are
recomputed as a check that records and cases line up. Post-editor answers whose text the run did not
store (``<system>_changed`` only) keep their figures.

Each headline value that changed is listed in ``out["rejudged"]["changed"]`` with its old and new
value (a second re-judge keeps the first old value), and :func:`section` renders that table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bbedit.errors import ConfigError
from bbedit.evaluation import metrics as M
from bbedit.types import Completion

log = logging.getLogger(__name__)

JUDGING = ("whole-word containment on word tokens (an acronym does not match a lower-case word, punctuation "
           "marks are word boundaries, a target's leading article is required only before a common word), any "
           "alias, old answer absent (bbedit.evaluation.metrics.contains / edit_success)")
JUDGED = ("reliability", "generalization", "multihop", "portability", "locality_truth", "lexical_edit")
_EPS = 1e-12


class _Changes:
    """Headline updates with their old values."""

    def __init__(self, out: dict[str, Any]) -> None:
        self.out = out
        prev = out.get("rejudged") or {}
        self.first_old = {c["key"]: c["old"] for c in prev.get("changed", [])}
        self.checked = 0
        self.kept: list[str] = list(prev.get("kept_systems", []))
        self.removed: list[dict[str, Any]] = list(prev.get("removed", []))

    def set(self, key: str, new: float) -> None:
        h = self.out["headline"]
        if key not in h:
            return
        self.checked += 1
        old = h[key]
        if abs(float(old) - new) > _EPS:
            self.first_old.setdefault(key, old)
        h[key] = new

    def remove(self, key: str, why: str) -> None:
        """Drop headline ``key`` (a figure that does not apply), keeping its old value for the report."""
        if key in self.out["headline"]:
            self.removed.append({"key": key, "old": self.out["headline"].pop(key), "why": why})

    def finish(self) -> list[dict[str, Any]]:
        h = self.out["headline"]
        changed = [{"key": k, "old": v, "new": h[k]} for k, v in self.first_old.items()
                   if k in h and abs(float(v) - float(h[k])) > _EPS]
        from bbedit.types import utc_now

        self.out["rejudged"] = {"judging": JUDGING, "at": utc_now(), "n_headline_checked": self.checked,
                                "changed": changed, "kept_systems": sorted(set(self.kept)),
                                "removed": self.removed}
        return changed


def _check_aligned(records: Sequence[Mapping[str, Any]], queries: Sequence[str], suite: str) -> None:
    if len(records) != len(queries) or any(r.get("query", r.get("question")) != q
                                           for r, q in zip(records, queries, strict=False)):
        raise ConfigError(f"suite {suite!r}: the stored records do not line up with the dataset's cases "
                          f"({len(records)} records, {len(queries)} queries); cannot re-judge")


def _check_same(name: str, stored: float | None, recomputed: float | None, suite: str) -> None:
    if stored is not None and recomputed is not None and abs(stored - recomputed) > 1e-9:
        raise ConfigError(f"suite {suite!r}: {name} recomputed from the records is {recomputed}, stored "
                          f"{stored}: records and cases do not line up; cannot re-judge")


def _editing(ctx: Any, out: dict[str, Any], ch: _Changes) -> None:
    from bbedit.evaluation import postediting
    from bbedit.evaluation.tasks import editing

    data, _ = editing.load(ctx)
    items = [editing.Item(c, p) for c in data.cases for p in c.probes]
    records = out["records"]
    _check_aligned(records, [it.probe.text for it in items], ctx.cfg.suite)
    primary = str(out.get("primary", "bbedit"))
    base = [Completion(r["none"]) for r in records]
    gen = out["results"]["generation"]
    for s in out.get("systems", []):
        if not all(isinstance(r.get(s), str) for r in records):
            ch.kept.append(s)  # a post-editor whose rewritten text was not stored: kept as run
            continue
        answers = [Completion(r[s]) for r in records]
        summary = editing.summarise(editing.score_generation(items, answers, base))
        _check_same(f"{s} locality", gen.get(s, {}).get("locality"), summary.get("locality"), ctx.cfg.suite)
        for k in JUDGED:
            if k in summary and k in gen.get(s, {}):
                gen[s][k] = summary[k]
                ch.set(editing.headline_key(s, "generation", k, primary), summary[k])
        table = out.get("by_query_type", {}).get(s)
        if table is None:
            continue
        fresh = postediting.by_query_type(items, answers, base, None)
        pre = postediting.system_prefix(s, primary)
        for qt, row in fresh.items():
            for k in ("edit_success", "lexical_edit"):
                if k in row and k in table.get(qt, {}):
                    table[qt][k] = row[k]
        for qt in ("naive", "paraphrase"):
            if "edit_success" in fresh.get(qt, {}):
                ch.set(f"{pre}edit_success_{qt}", fresh[qt]["edit_success"])
        for qt, suffix in (("overall", ""), ("in_scope", "_in_scope")):
            if "lexical_edit" in fresh.get(qt, {}):
                ch.set(f"{pre}lexical_edit{suffix}", fresh[qt]["lexical_edit"])


def _multihop(ctx: Any, out: dict[str, Any], ch: _Changes) -> None:
    from bbedit.evaluation.cases import load_dataset

    cfg = ctx.cfg
    data = load_dataset(ctx.data_path(cfg.dataset["path"]), cfg.dataset.get("format", "auto"))
    cases = data.cases[:cfg.n] if cfg.n else data.cases
    per_case = int(cfg.options.get("questions_per_case", 1))
    probes = [p for c in cases for p in c.of_kind("multihop")[:per_case]]
    records = out["records"]
    _check_aligned(records, [p.text for p in probes], cfg.suite)
    keys = {"chain": ("multihop_accuracy_chain", "old_answer_rate_chain"),
            "bbedit": ("multihop_accuracy_bbedit", None),
            "none": ("baseline_none_multihop_accuracy", "baseline_none_old_answer_rate")}
    for s, res in out["results"].items():
        texts = [r[s] for r in records]
        new = [M.edit_success(a, p.answers, p.old_answers) for a, p in zip(texts, probes, strict=True)]
        old = [M.contains_any(a, p.old_answers) for a, p in zip(texts, probes, strict=True)]
        res["multihop"], res["old_answer"] = sum(new) / len(new), sum(old) / len(old)
        acc_key, old_key = keys.get(s, (None, None))
        if acc_key:
            ch.set(acc_key, res["multihop"])
        if old_key:
            ch.set(old_key, res["old_answer"])


def _whitebox(ctx: Any, out: dict[str, Any], ch: _Changes) -> None:
    from bbedit.evaluation.tasks import editing

    data, _ = editing.load(ctx)
    items = [editing.Item(c, p) for c in data.cases for p in c.probes]
    records = out["records"]
    _check_aligned(records, [it.probe.text for it in items], ctx.cfg.suite)
    short = {"reliability": "es", "generalization": "ps"}
    if out["results"].get("probability", {}).pop("postedit", None) is not None:
        for k in ("es", "ps", "ns"):  # it was the post-editor's own keep/edit decision at p_keep < 0.5
            ch.remove(f"postedit_{k}_prob", "the post-editor does not change the model's probabilities: the "
                      "figure was its own keep/edit decision (p_keep < 0.5), counted even when routed to the wrong edit")
    gen = out["results"]["generation"]
    for s, res in gen.items():
        if not all(isinstance(r.get(s), str) for r in records):
            ch.kept.append(s)
            continue
        ref = "none_served" if s in ("ike", "none_served", "postedit") else "none_local"
        summary = editing.summarise(editing.score_generation(
            items, [Completion(r[s]) for r in records], [Completion(r[ref]) for r in records]))
        _check_same(f"{s} locality", res.get("locality"), summary.get("locality"), ctx.cfg.suite)
        for k in JUDGED:
            if k in summary and k in res:
                res[k] = summary[k]
                if k in short:
                    ch.set(f"{s}_{short[k]}_gen", summary[k])


def _general(ctx: Any, out: dict[str, Any], ch: _Changes) -> None:
    """General-ability probes: each stored answer judged again with its task's judge (NQ-open's is
    containment of any gold answer; the others read a label or a number and do not change)."""
    from bbedit.evaluation.harness import system_prefix
    from bbedit.evaluation.tasks import general
    from bbedit.memory import formats

    opts = ctx.cfg.options
    tasks: dict[str, Any] = opts.get("tasks") or {t: {"n": 100} for t in general.TASKS}
    records = out["records"]
    systems = list(out["results"])
    pos = 0
    for task, topts in tasks.items():
        rel, make = general.TASKS[task]
        rows = [r for _, _, r in formats.records(ctx.data_path(topts.get("path", rel)))][: int(topts.get("n", 100))]
        probes = [make(r) for r in rows]
        for s in systems:
            part = records[pos:pos + len(probes)]
            pos += len(probes)
            if len(part) != len(probes) or any(r["task"] != task or r["system"] != s or r["question"] != q[-300:]
                                               for r, (q, _) in zip(part, probes, strict=False)):
                raise ConfigError(f"suite {ctx.cfg.suite!r}: the stored records do not line up with the {task} "
                                  "probes; cannot re-judge")
            for r, (_, judge) in zip(part, probes, strict=True):
                r["correct"] = bool(judge(r["answer"]))
            out["results"][s][task] = sum(r["correct"] for r in part) / len(part)
    for task in tasks:
        ch.set(f"{task}_unedited", out["results"]["none"][task])
        for s in systems[1:]:
            prefix = system_prefix(s)
            ch.set(f"{prefix}{task}_edited", out["results"][s][task])
            ch.set(f"{prefix}{task}_delta", out["results"][s][task] - out["results"]["none"][task])


TASKS = {"editing": _editing, "multihop": _multihop, "whitebox": _whitebox, "general": _general}


def rejudge(ctx: Any, out: dict[str, Any]) -> list[dict[str, Any]]:
    """Recompute ``out``'s judged figures (in place) from its stored answers; returns the headline values
    that changed (``key``, ``old``, ``new``). A task without stored answers to judge returns [].

    Raises :class:`ConfigError` when the stored records do not line up with the dataset's cases, or the
    dataset is missing.
    """
    fn = TASKS.get(ctx.cfg.task)
    if fn is None or not out.get("records"):
        log.info("suite %s: nothing to re-judge (task %s)", ctx.cfg.suite, ctx.cfg.task)
        return []
    ch = _Changes(out)
    fn(ctx, out, ch)
    changed = ch.finish()
    log.info("suite %s: re-judged, %d of %d headline values changed", ctx.cfg.suite, len(changed), ch.checked)
    return changed


def section(out: Mapping[str, Any]) -> str:
    """The report's "changed by the judging fix" table ('' for a run that was never re-judged)."""
    from bbedit.evaluation.report import md_table

    rj = out.get("rejudged")
    if not rj:
        return ""
    lines = ["## Changed by the judging fix", "",
             f"Re-judged on {rj['at'][:10]} from the stored answers, no model called: {rj['judging']}. "
             "Before the fix containment dropped articles and case (\"US\" matched \"let us\", \"The Who\" matched "
             "\"who\", \"Bangkok's\" hid \"Bangkok\") and PostEdit's lexical edit score was a substring test."]
    if rj.get("kept_systems"):
        lines += ["", f"Not re-judged (the run stored whether their answer changed, not its text; their figures are "
                      f"the run's, judged the old way): {', '.join(rj['kept_systems'])}."]
    if rj["changed"]:
        lines += ["", md_table(["key", "old", "new"], [[c["key"], float(c["old"]), float(c["new"])]
                                                      for c in rj["changed"]])]
    else:
        lines += ["", f"None of the {rj['n_headline_checked']} judged headline values changed."]
    if rj.get("removed"):
        lines += ["", "Removed as not applicable:", "",
                  md_table(["key", "old", "why"], [[r["key"], float(r["old"]), r["why"]] for r in rj["removed"]])]
    return "\n".join(lines) + "\n"
