"""Train/eval overlap: how many subjects and prompts the training files share with the evaluation files.

The scope gate is trained on ``counterfact/counterfact-train.json`` and the post-editor on that file and
``zsre/zsre_mend_train-1k.json``; the suites evaluate them on CounterFact, zsRE, KnowEdit, PostEdit and
MQuAKE files. A subject or a prompt seen in training makes an evaluation figure optimistic, so the
overlap is measured here and every report of a suite on an overlapping file points to it.

Strings are compared lower-cased, with punctuation removed and white space collapsed (as in the data
README's overlap checks). ``python -m bbedit.evaluation.overlap`` writes ``eval/results/overlap/``.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import string
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TRAIN_FILES = ("counterfact/counterfact-train.json", "zsre/zsre_mend_train-1k.json")
EVAL_FILES = ("counterfact/counterfact-edit.json", "zsre/zsre_mend_eval_portability_gpt4.json",
              "knowedit/ZsRE-test-all.json", "postedit/counterfact/edit_data.json",
              "postedit/counterfact/query_data.json", "postedit/zsre/edit_data.json", "postedit/zsre/query_data.json",
              "mquake/MQuAKE-hard.json")
USED_BY = {"counterfact/counterfact-train.json": "the scope gate, on every record, and the post-editor",
           "zsre/zsre_mend_train-1k.json": "the post-editor"}
SUITE = "overlap"
_PUNCT = str.maketrans("", "", string.punctuation)
_WS = re.compile(r"\s+")


def norm(text: str) -> str:
    """Lower case, punctuation removed, white space collapsed."""
    return _WS.sub(" ", text.lower().translate(_PUNCT)).strip()


def _lit(v: Any) -> Any:
    """Some files store lists and dicts as their Python repr."""
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return ast.literal_eval(v)
        except (ValueError, SyntaxError):
            return v
    return v


def _strings(v: Any, key: str) -> Iterable[str]:
    """Every string under ``key`` anywhere in ``v`` (nested lists and dicts)."""
    v = _lit(v)
    if isinstance(v, dict):
        for k, x in v.items():
            if k == key and isinstance(x, str):
                yield x
            else:
                yield from _strings(x, key)
    elif isinstance(v, list):
        for x in v:
            yield from _strings(x, key)


EDIT_PROMPT_KEYS = ("prompt", "src", "requested_rewrite")


def edit_prompts(path: Path) -> set[str]:
    """The normalised edit prompts of a data file (``prompt``, ``src`` or PostEdit's ``requested_rewrite``;
    MQuAKE's rewrites with their subject filled in): the prompt each edit states, without rephrasings,
    neighbourhood or portability prompts.

    Raises :class:`OSError` or :class:`ValueError` for a file that cannot be read as JSON.
    """
    out = set()
    for r in json.loads(path.read_text(encoding="utf-8")):
        for k in EDIT_PROMPT_KEYS:
            v = _lit(r.get(k))
            if isinstance(v, str):
                out.add(v)
            elif isinstance(v, list):
                out.update(str(e.get("prompt", "")).replace("{}", str(e.get("subject", "")))
                           for e in v if isinstance(e, dict))
    return {norm(p) for p in out} - {""}


def subjects_and_prompts(path: Path) -> tuple[set[str], set[str]]:
    """The normalised subjects (empty for files that name none) and every prompt/question of a data file.

    Raises :class:`OSError` or :class:`ValueError` for a file that cannot be read as JSON.
    """
    records = json.loads(path.read_text(encoding="utf-8"))
    subjects: set[str] = set()
    prompts: set[str] = set()
    for r in records:
        if "subject" in r and isinstance(r["subject"], str):
            subjects.add(r["subject"])
        for k in ("prompt", "rephrase_prompt", "locality_prompt", "src", "rephrase", "requested_rewrite", "query"):
            v = r.get(k)
            if isinstance(v, str):
                prompts.add(v.removeprefix("nq question: "))
        if isinstance(r.get("loc"), str):
            prompts.add(r["loc"].removeprefix("nq question: "))
        for k in ("locality", "portability"):  # KnowEdit / zsRE: nested prompt lists
            prompts.update(_strings(r.get(k), "prompt"))
        rw = _lit(r.get("requested_rewrite"))
        if isinstance(rw, list):  # MQuAKE: several rewrites, "{}" for the subject
            for e in rw:
                if isinstance(e, dict) and isinstance(e.get("subject"), str):
                    subjects.add(e["subject"])
                    prompts.add(str(e.get("prompt", "")).replace("{}", e["subject"]))
            qs = _lit(r.get("questions"))
            prompts.update(q for q in (qs if isinstance(qs, list) else []) if isinstance(q, str))
            prompts.update(_strings(r.get("single_hops"), "question"))
            prompts.update(_strings(r.get("single_hops"), "cloze"))
    return {norm(s) for s in subjects} - {""}, {norm(p) for p in prompts} - {""}


def measure(data_root: Path) -> dict[str, Any]:
    """Per (training file, evaluation file) pair present under ``data_root``: the shared subjects and
    prompts, with examples. Files that are missing are listed under ``missing``."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    stated: dict[str, set[str]] = {}
    missing = []
    for rel in (*TRAIN_FILES, *EVAL_FILES):
        p = data_root / rel
        if p.is_file():
            found[rel] = subjects_and_prompts(p)
            stated[rel] = edit_prompts(p)
        else:
            missing.append(rel)
    pairs = []
    for tr in TRAIN_FILES:
        for ev in EVAL_FILES:
            if tr not in found or ev not in found:
                continue
            (ts, tp), (es, ep) = found[tr], found[ev]
            shared_s, shared_p = sorted(ts & es), sorted(tp & ep)
            pairs.append({"train": tr, "eval": ev, "train_subjects": len(ts), "eval_subjects": len(es),
                          "shared_subjects": len(shared_s), "train_prompts": len(tp), "eval_prompts": len(ep),
                          "shared_prompts": len(shared_p), "eval_edit_prompts": len(stated[ev]),
                          "shared_edit_prompts": len(stated[tr] & stated[ev]), "examples_subjects": shared_s[:10],
                          "examples_prompts": shared_p[:10]})
    return {"pairs": pairs, "missing": missing, "used_by": USED_BY}


def _key(rel: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", Path(rel).with_suffix("").as_posix().lower()).strip("_")


def headline(res: Mapping[str, Any]) -> dict[str, int]:
    h: dict[str, int] = {}
    for p in res["pairs"]:
        stem = f"{_key(p['train'])}__{_key(p['eval'])}"
        h[f"{stem}__subjects"] = p["shared_subjects"]
        h[f"{stem}__prompts"] = p["shared_prompts"]
        h[f"{stem}__edit_prompts"] = p["shared_edit_prompts"]
    return h


def report_text(res: Mapping[str, Any]) -> str:
    from bbedit.evaluation.report import md_table

    rows = [[p["train"], p["eval"], f"{p['shared_subjects']} of {p['eval_subjects']}" if p["eval_subjects"] else "–",
             f"{p['shared_prompts']} of {p['eval_prompts']}", f"{p['shared_edit_prompts']} of {p['eval_edit_prompts']}"]
            for p in res["pairs"]]
    pe_shared = next((p["shared_edit_prompts"] for p in res["pairs"] if p["train"] == TRAIN_FILES[0]
                      and p["eval"] == "postedit/counterfact/edit_data.json"), "?")
    lines = ["# overlap", "",
             "Subjects and prompts (questions, rephrasings, neighbourhood and portability prompts, MQuAKE hops) "
             "that a training file shares with an evaluation file, compared lower-cased with punctuation removed. "
             "\"–\": the file names no subjects (PostEdit's files hold prompts only).", "",
             *(f"- `{f}` trains {who}." for f, who in res["used_by"].items()), "",
             md_table(["training file", "evaluation file", "shared subjects (of the eval file's)",
                       "shared prompts, any kind (of the eval file's)", "shared edit prompts (of the eval file's)"],
                      rows), "",
             "Any kind: edit prompts, rephrasings, neighbourhood, locality and portability prompts, questions "
             "(CounterFact's neighbourhood prompts are other cases' prompts by construction, so many are shared). "
             "Edit prompts: the prompt each edit states (`prompt`, `src`, `requested_rewrite`), both sides.", "",
             "Nothing was removed from training: the gate was trained on every record of counterfact-train, so its "
             "figures on CounterFact (counterfact, postedit-counterfact*, scope-counterfact, sequential, "
             "whitebox-compare) are measured partly on subjects and prompts it saw in training (PostEdit's CounterFact "
             f"edits are CounterFact cases: {pe_shared} of their edit prompts are counterfact-train's). The post-editor's "
             "training (models/postedit-smollm2-135m/training.json, `exclude_eval_subjects`) left out training "
             "records whose subject occurs in PostEdit's four evaluation files, but not those whose subject is in "
             "counterfact-edit, zsRE, KnowEdit or MQuAKE; the counts above are per file, before that filter. "
             "Retraining without the overlap is the next step; until then read the affected figures as "
             "optimistic.", ""]
    for p in res["pairs"]:
        if p["shared_subjects"] or p["shared_prompts"]:
            lines += [f"- {p['train']} / {p['eval']}: subjects e.g. {', '.join(p['examples_subjects'][:5]) or '–'}; "
                      f"prompts e.g. {'; '.join(p['examples_prompts'][:3]) or '–'}"]
    if res["missing"]:
        lines += ["", f"Files not found (not measured): {', '.join(res['missing'])}."]
    return "\n".join(lines)


def note(dataset_path: str, root: Path | None = None) -> str:
    """A line for the report of a suite evaluated on ``dataset_path`` (relative to the data root): how
    much of it the training files share, pointing to the overlap report; '' when nothing is shared or
    the overlap was not measured."""
    from bbedit.evaluation.report import RESULTS_ROOT

    path = (root or RESULTS_ROOT) / SUITE / "results.json"
    if not dataset_path or not path.is_file():
        return ""
    try:
        pairs = json.loads(path.read_text())["pairs"]
    except (OSError, ValueError, KeyError):
        return ""
    rel = Path(dataset_path)

    def same_data(ev: str) -> bool:  # the file itself, or its folder's other file (PostEdit: edits + queries)
        return Path(ev) == rel or (Path(ev).parent == rel.parent and rel.parent.as_posix() not in ("", "."))

    hits = [p for p in pairs if same_data(p["eval"]) and (p["shared_subjects"] or p["shared_prompts"])]
    if not hits:
        return ""
    parts = []
    for p in hits:
        subj = f"{p['shared_subjects']} of its {p['eval_subjects']} subjects, " if p["eval_subjects"] else ""
        parts.append(f"`{p['eval']}` shares with `{p['train']}` (which trains "
                     f"{USED_BY.get(p['train'], 'a shipped model')}) {subj}{p.get('shared_edit_prompts', '?')} of its "
                     f"{p.get('eval_edit_prompts', '?')} edit prompts and {p['shared_prompts']} of its "
                     f"{p['eval_prompts']} prompts of any kind")
    return ("**Train/eval overlap.** " + "; ".join(parts) + ". Figures of the gate and the post-editor here are "
            "partly measured on data they were trained on: see [the overlap report](../overlap/report.md).\n")


def main(data_root: Path | None = None, root: Path | None = None) -> Path:
    from bbedit.evaluation.report import DATA_ROOT, write_results

    t0 = time.perf_counter()
    res = measure(data_root or DATA_ROOT)
    h: dict[str, float | int] = {**headline(res), "wall_s": round(time.perf_counter() - t0, 1)}
    return write_results(SUITE, h, res, report_text(res), "python -m bbedit.evaluation.overlap", root=root)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
