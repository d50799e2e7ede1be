"""Routing in conversations (evaluation only): CounterFact, zsRE and KnowEdit ZsRE cases turned into
two- and three-turn dialogues, each routed by ``Router.route`` on the whole conversation, with the
conversation-aware router beside the last-message-only router (``readings=False``) on the same turns.

    PYTHONPATH=. python eval/conversation.py [--cases 300] [--nq 300]

Turn kinds (the routed turn is always the last user message):

- ``named``: after "I have a question about <subject>", the case's paraphrase naming the subject (in scope);
- ``pronoun``: the same paraphrase with the subject replaced by "it" / "its" (in scope);
- ``pronoun_after_answer``: the edit's own question, an assistant answer, then the pronoun paraphrase (in scope);
- ``other_relation``: KnowEdit's Relation_Specificity prompt of the same subject, with a pronoun (out of scope);
- ``unrelated``: an NQ-open question after the subject's first turn (out of scope);
- ``two_edits``: two cases' questions asked in one message ("Q1 Also, Q2"; both edits in scope).

Then ``--answers`` turns of each kind and set (12 by default) are answered on the embedded model through
``EditedModel`` with each editor (IKE and the post-editor) and judged strictly (:func:`judge`); the
unedited answers and every served-model call go through the call cache in ``eval/.cache``.

zsRE and KnowEdit ZsRE store one fact under several records of a subject, so there any edit of the
turn's subject counts as right (as in ``eval/scope.py``); in CounterFact, any edit of the turn's subject
and relation (CounterFact reuses both: :func:`counterfact_same_fact`). Every set keeps all its edits in
memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bbedit.backends.cache import CallCache
from bbedit.backends.factory import make_backend
from bbedit.evaluation.calls import CachedModel
from bbedit.evaluation.cases import load_dataset
from bbedit.evaluation.metrics import strict_edit_success, unchanged
from bbedit.evaluation.report import DATA_ROOT, md_table, write_results
from bbedit.evaluation.systems import CachedBackend
from bbedit.memory.memory import EditMemory
from bbedit.pipeline import EditedModel
from bbedit.routing import Router
from bbedit.scope.train import relation_clusters, template_of
from bbedit.types import Edit, Message

log = logging.getLogger("conversation")
IN_SCOPE = {"named": True, "pronoun": True, "pronoun_after_answer": True, "other_relation": False,
            "unrelated": False, "two_edits": True}
FOLLOW_UPS = ("pronoun", "pronoun_after_answer", "other_relation", "unrelated")


@dataclass(frozen=True)
class Turn:
    messages: tuple[Message, ...]
    kind: str
    right: frozenset[str]  # edits any one of which is right (in scope); for two_edits, one per edit
    needed: tuple[frozenset[str], ...] = ()  # two_edits: each of these must be reached
    set: str = ""
    edits: tuple[Edit, ...] = ()  # the case's edit (two_edits: both), for judging answers


def pronoun_form(text: str, subject: str) -> str | None:
    """``text`` with its subject replaced by "it" (a possessive by "its"); None when it does not name it."""
    i = text.find(subject)
    if i < 0:
        return None
    rest = text[i + len(subject):]
    if rest.startswith(("'s ", "' ")):
        out = text[:i] + "its" + rest[rest.index(" "):]
    else:
        out = text[:i] + "it" + rest
    return out[:1].upper() + out[1:] if i == 0 else out


def intro(subject: str) -> list[Message]:
    return [{"role": "user", "content": f"I have a question about {subject}."},
            {"role": "assistant", "content": f"Sure, what would you like to know about {subject}?"}]


def _user(text: str) -> Message:
    return {"role": "user", "content": text}


def _question(text: str) -> bool:
    return text.rstrip().endswith("?")


def counterfact_same_fact(path: Path, edits: Sequence[Edit]) -> dict[str, frozenset[str]]:
    """Edit id -> the ids of every stored edit of the same subject and relation. CounterFact reuses subjects
    and relations ("Shanghai is a twin city of" and "What is the twin city of Shanghai? It is" are one
    fact), and ``eval/scope.py`` labels CounterFact the same way (the relation clusters of
    :func:`bbedit.scope.train.relation_clusters`)."""
    cluster = relation_clusters(json.loads(path.read_text(encoding="utf-8")))
    rel = {e.id: cluster.get(template_of({"prompt": e.prompt, "subject": e.subject})) for e in edits}
    facts: dict[tuple[str, str], set[str]] = {}
    for e in edits:
        if (r := rel[e.id]) is not None:
            facts.setdefault((e.subject, r), set()).add(e.id)
    return {e.id: frozenset({e.id} | facts.get((e.subject, rel[e.id] or ""), set())) for e in edits}


def build(name: str, data: Path, n: int, nq: list[str], rng: random.Random) -> tuple[EditMemory, list[Turn]]:
    """The memory of one set and its dialogues."""
    path = {"counterfact": data / "counterfact" / "counterfact-edit.json",
            "zsre": data / "zsre" / "zsre_mend_eval_portability_gpt4.json",
            "knowedit": data / "knowedit" / "ZsRE-test-all.json"}[name]
    ds = load_dataset(path, on_error="skip")
    memory = EditMemory(None)
    memory.add_many(ds.edits(), supersede=False)
    by_subject: dict[str, set[str]] = {}
    for e in ds.edits():
        by_subject.setdefault(e.subject, set()).add(e.id)
    # the edits a turn about an edit may rightly reach: zsRE's records of one subject ask one fact
    right_of = counterfact_same_fact(path, ds.edits()) if name == "counterfact" else \
        {e.id: frozenset(by_subject[e.subject]) for e in ds.edits()}
    cases = rng.sample(ds.cases, min(n, len(ds.cases)))
    turns: list[Turn] = []
    for c in cases:
        e = c.edits[0]
        right = right_of[e.id]
        para = next((p.text for p in c.of_kind("generalization") if e.subject in p.text), None)
        if para is not None:
            turns.append(Turn((*intro(e.subject), _user(para)), "named", right, set=name, edits=(e,)))
            pron = pronoun_form(para, e.subject)
            if pron is not None:
                turns.append(Turn((*intro(e.subject), _user(pron)), "pronoun", right, set=name, edits=(e,)))
                answer = {"role": "assistant", "content": f"{e.prompt.rstrip('?').rstrip()} {e.target_new}."
                          if not _question(e.prompt) else f"It is {e.target_new}."}
                turns.append(Turn((_user(e.prompt), answer, _user(pron)), "pronoun_after_answer", right, set=name,
                                  edits=(e,)))
        for p in c.of_kind("locality"):
            if p.label == "Relation_Specificity" and (pron := pronoun_form(p.text, e.subject)) is not None:
                turns.append(Turn((*intro(e.subject), _user(pron)), "other_relation", frozenset(), set=name,
                                  edits=(e,)))
                break
        turns.append(Turn((*intro(e.subject), _user(rng.choice(nq))), "unrelated", frozenset(), set=name,
                          edits=(e,)))
    questions = [c for c in cases if _question(c.edits[0].prompt)]
    for a, b in zip(questions[0::2], questions[1::2], strict=False):
        ea, eb = a.edits[0], b.edits[0]
        if ea.subject == eb.subject:
            continue
        ra, rb = right_of[ea.id], right_of[eb.id]
        turns.append(Turn((_user(f"{ea.prompt} Also, {eb.prompt}"),), "two_edits", ra | rb, (ra, rb), set=name,
                          edits=(ea, eb)))
    return memory, turns


def score(routes: Sequence[Any], turns: Sequence[Turn]) -> dict[str, Any]:
    """Per kind: share handled right (in scope: the decision is a right edit; out of scope: no edit),
    and for two_edits the share with both edits reached; precision over everything accepted."""
    n: Counter[str] = Counter()
    right: Counter[str] = Counter()
    tp = fp = 0
    follow_tp = follow_fp = 0
    both = 0
    for r, t in zip(routes, turns, strict=True):
        n[t.kind] += 1
        ok = r.edit is not None and r.edit.id in t.right
        if r.edit is not None:
            tp += ok
            fp += not ok
            if t.kind in FOLLOW_UPS:
                follow_tp += ok
                follow_fp += not ok
        if t.kind == "two_edits":
            got = {e.id for e in r.edits}
            reached = all(got & need for need in t.needed)
            both += reached
            right[t.kind] += reached
        elif IN_SCOPE[t.kind]:
            right[t.kind] += ok
        else:
            right[t.kind] += r.edit is None
    kinds = {k: right[k] / n[k] for k in n}
    out_kinds = [k for k in n if not IN_SCOPE[k]]
    untouched = sum(right[k] for k in out_kinds) / max(sum(n[k] for k in out_kinds), 1)
    follow_in = [k for k in ("pronoun", "pronoun_after_answer") if k in n]
    return {"per_kind": kinds, "n": dict(n), "precision": tp / max(tp + fp, 1),
            "followup_recall": sum(right[k] for k in follow_in) / max(sum(n[k] for k in follow_in), 1),
            "followup_precision": follow_tp / max(follow_tp + follow_fp, 1),
            "multi_edit_success": both / max(n["two_edits"], 1), "untouched_rate": untouched}


def judge(turn: Turn, text: str, unedited: str, memory: EditMemory) -> bool:
    """Whether an answer is right for its turn: in scope, strict success (the new value of a right edit,
    and neither the old value nor the value the unedited answer gave; for a two-edit question, each
    edit's new value and not its old one); out of scope, the unedited answer."""
    if not IN_SCOPE[turn.kind]:
        return unchanged(text, unedited)
    question = str(turn.messages[-1]["content"])
    groups = turn.needed or (turn.right,)
    for e, ids in zip(turn.edits, groups, strict=True):
        news = sorted({memory.get(i).target_new for i in ids} | {e.target_new})
        if not strict_edit_success(text, news, [e.target_old] if e.target_old else [],
                                   None if turn.needed else unedited, question, [e.subject, *e.aliases]):
            return False
    return True


def answer_phase(memory: EditMemory, turns: Sequence[Turn], per_kind: int, backend: Any, editors: Sequence[str],
                 rng: random.Random) -> dict[str, Any]:
    """Answers through :class:`EditedModel` with each editor for ``per_kind`` sampled turns of each kind:
    the share judged right (:func:`judge`) per kind, and the sampled turns' texts."""
    by_kind: dict[str, list[Turn]] = {}
    for t in turns:
        by_kind.setdefault(t.kind, []).append(t)
    sample = [t for k in IN_SCOPE for t in rng.sample(by_kind.get(k, []), min(per_kind, len(by_kind.get(k, []))))]
    unedited = [backend.generate(list(t.messages)) for t in sample]
    out: dict[str, Any] = {}
    for name in editors:
        model = EditedModel(backend, memory, editor=name)
        rows = []
        for t, before in zip(sample, unedited, strict=True):
            ans = model.chat(list(t.messages))
            rows.append({"kind": t.kind, "ok": judge(t, ans.text, before, memory),
                         "routed": [e.id for e in ans.route.edits] if ans.route is not None else [],
                         "question": str(t.messages[-1]["content"]), "before": before, "after": ans.text})
        per = {k: sum(r["ok"] for r in rows if r["kind"] == k) / max(sum(r["kind"] == k for r in rows), 1)
               for k in IN_SCOPE if any(r["kind"] == k for r in rows)}
        out[name] = {"per_kind": per, "n": Counter(r["kind"] for r in rows), "rows": rows}
    return out


def main(argv: Sequence[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(DATA_ROOT))
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--sets", default="counterfact,zsre,knowedit")
    ap.add_argument("--out", default=None)
    ap.add_argument("--answers", type=int, default=12,
                    help="turns per kind and set answered on the embedded model with each editor (0: routing only)")
    ap.add_argument("--editors", default="ike,postedit")
    ap.add_argument("--cache", default="eval/.cache/conversation.sqlite", help="call cache for the served model")
    a = ap.parse_args(argv)
    data = Path(a.data)
    rng = random.Random(0)
    nq = [json.loads(line)["question"] for line in (data / "general" / "NQ-open.dev.jsonl").read_text().splitlines()]
    nq = [q[:1].upper() + q[1:] + "?" for q in nq]
    t0 = time.perf_counter()
    sets: dict[str, Any] = {}
    all_turns: list[Turn] = []
    all_routes: dict[str, list[Any]] = {"conversation": [], "last_message": []}
    answers: dict[str, Any] = {}
    stack = contextlib.ExitStack()
    backend = CachedBackend(CachedModel(make_backend(stack=stack), CallCache(Path(a.cache) if a.cache else None),
                                        max_tokens=48, temperature=0.0)) if a.answers else None
    for name in a.sets.split(","):
        memory, turns = build(name, data, a.cases, nq, rng)
        res = {}
        for label, readings in (("conversation", True), ("last_message", False)):
            router = Router(memory, readings=readings, refresh=False)
            ts = time.perf_counter()
            routes = [router.route(list(t.messages)) for t in turns]
            res[label] = {**score(routes, turns), "route_ms": (time.perf_counter() - ts) * 1000 / max(len(turns), 1)}
            all_routes[label] += routes
        sets[name] = {"edits": len(memory), "turns": len(turns), **res}
        if backend is not None:
            answers[name] = answer_phase(memory, turns, a.answers, backend, a.editors.split(","), random.Random(1))
            log.info("%s answers: %s", name, {e: {k: round(v, 2) for k, v in r["per_kind"].items()}
                                               for e, r in answers[name].items()})
        all_turns += turns
        log.info("%s: %d turns; conversation %s; last message %s", name, len(turns),
                 {k: round(v, 3) for k, v in res["conversation"]["per_kind"].items()},
                 {k: round(v, 3) for k, v in res["last_message"]["per_kind"].items()})
        memory.close()
    stack.close()
    overall = {label: score(rs, all_turns) for label, rs in all_routes.items()}
    return _write(a, sets, overall, answers, time.perf_counter() - t0)


def _answer_rates(answers: dict[str, Any], editor: str, kinds: Sequence[str]) -> float:
    """The share of sampled answers judged right over ``kinds`` and every set, for ``editor``."""
    rows = [r for per_set in answers.values() for r in per_set[editor]["rows"] if r["kind"] in kinds]
    return sum(r["ok"] for r in rows) / len(rows) if rows else float("nan")


def _write(a: argparse.Namespace, sets: dict[str, Any], overall: dict[str, Any], answers: dict[str, Any],
           wall: float) -> Path:
    new, old = overall["conversation"], overall["last_message"]
    keys = ("followup_recall", "followup_precision", "multi_edit_success", "untouched_rate")
    headline: dict[str, float] = {k: new[k] for k in keys}
    headline.update({f"{k}_last_message_only": old[k] for k in keys})
    headline["precision"] = new["precision"]
    in_kinds = [k for k, v in IN_SCOPE.items() if v]
    out_kinds = [k for k, v in IN_SCOPE.items() if not v]
    answer_rows = []
    for editor in (a.editors.split(",") if answers else []):
        headline[f"answer_edit_success_{editor}"] = _answer_rates(answers, editor, in_kinds)
        headline[f"answer_untouched_{editor}"] = _answer_rates(answers, editor, out_kinds)
        headline[f"answer_followup_success_{editor}"] = _answer_rates(answers, editor,
                                                                      ["pronoun", "pronoun_after_answer"])
        answer_rows += [[editor, k, f"{_answer_rates(answers, editor, [k]):.3f}"] for k in IN_SCOPE]
    failures = [[e, k, " ".join(r["question"].split())[:90], " ".join(r["after"].split())[:110]]
                for per_set in answers.values() for e, res in per_set.items() for r in res["rows"]
                for k in [r["kind"]] if not r["ok"]][:14]
    headline["turns"] = sum(s["turns"] for s in sets.values())
    headline["wall_s"] = wall
    kinds = list(IN_SCOPE)
    rows = [[name, k, s["conversation"]["n"].get(k, 0), f"{s['conversation']['per_kind'].get(k, float('nan')):.3f}",
             f"{s['last_message']['per_kind'].get(k, float('nan')):.3f}"]
            for name, s in sets.items() for k in kinds if k in s["conversation"]["n"]]
    summary = [[k, f"{new[k]:.3f}", f"{old[k]:.3f}"] for k in (*keys, "precision")]
    lat = [[name, f"{s['conversation']['route_ms']:.1f}", f"{s['last_message']['route_ms']:.1f}", s["edits"]]
           for name, s in sets.items()]
    report = f"""# Routing in conversations: the conversation-aware router vs the last message alone

Evaluation only (nothing here fed training or a threshold). {a.cases} sampled cases per set, turned into
dialogues (`eval/conversation.py` says how); every set keeps all its edits in memory; both routers use
the built-in gate at its threshold and route the same turns with `Router.route`.

{md_table(["", "conversation-aware", "last message only"], summary)}

`followup_recall`: pronoun follow-ups (after an introduction, or after the edit's own question and an
answer) routed to a right edit. `followup_precision`: of the follow-up turns that got an edit (in and
out of scope ones), the share with a right edit. `multi_edit_success`: one message asking two cases'
questions, both edits reached. `untouched_rate`: out-of-scope turns (same subject other relation with a
pronoun; an unrelated NQ question) routed to no edit.

Per set and kind (share handled right):

{md_table(["set", "kind", "n", "conversation-aware", "last message only"], rows)}

Routing time per turn (ms, one conversation at a time, 2 cores):

{md_table(["set", "conversation-aware", "last message only", "edits in memory"], lat)}

## Answers (embedded SmolLM2-135M-Instruct, greedy, 48 tokens)

{a.answers} sampled turns per kind and set ({sum(len(r[next(iter(r))]["rows"]) for r in answers.values()) if answers else 0}
in all) answered through `EditedModel` with each editor. In scope, an answer is right when it states the new value
and neither the old value nor the value the unedited answer gave (strict judging; a two-edit question needs each
edit's new value and not its old one); out of scope, when it is the unedited answer.

{md_table(["editor", "kind", "answers right"], answer_rows) if answer_rows else "Not run (`--answers 0`)."}

Some answers judged wrong:

{md_table(["editor", "kind", "question", "answer"], failures) if failures else "-"}

Wall time: {wall:.0f} s.
"""
    return write_results("conversation", headline, {"sets": sets, "overall": overall, "args": vars(a),
                                                    "answers": answers}, report,
                         "PYTHONPATH=. python eval/conversation.py (make eval-conversation)",
                         root=Path(a.out) if a.out else None)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpx2", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    print(main())
