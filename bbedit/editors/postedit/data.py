"""Training data for the post-editor, built only from the training files
(``counterfact/counterfact-train.json`` and ``zsre/zsre_mend_train-1k.json``).

Each example is the editor's input (:func:`~bbedit.editors.postedit.editor.render_prompt`)
and the output it should write:

- in scope (the edit's own prompt or its paraphrase): " edit", a newline and the edit script
  that rewrites the answer minimally ("<old value as written> => <new>", or "= <fact>" /
  "+ <fact>" for an answer that does not name the old value);
- out of scope (CounterFact's neighbourhood prompts: another subject with the same relation and
  usually the same old answer; zsRE's unrelated NQ questions; another edit's question): " keep".

Original answers are realistic: half come from the served model, asked the question with the
true (old) fact in its system message so that it states it in its own words and length; half
from varied sentence templates. A served answer that does not name the old target becomes an
example of an answer the rewrite must state the new fact in.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bbedit.editors.ike import fact_sentence
from bbedit.editors.postedit.editor import EDIT, KEEP, render_prompt
from bbedit.editors.postedit.text import mentions, script_for
from bbedit.errors import EditFileError
from bbedit.types import Edit, Message

log = logging.getLogger(__name__)

TRAIN_FILES = {"counterfact": "counterfact/counterfact-train.json", "zsre": "zsre/zsre_mend_train-1k.json"}


@dataclass(frozen=True)
class Fact:
    """One training record: the edit, a paraphrase of its prompt, and an out-of-scope question with
    its true answer."""

    edit: Edit
    rephrase: str
    other_query: str
    other_answer: str
    dataset: str


@dataclass(frozen=True)
class Example:
    """One training pair. ``kind``: "edit" or "keep"; ``origin``: where the original answer came from."""

    prompt: str
    target: str
    kind: str
    origin: str
    dataset: str


def read_facts(data_root: Path, exclude_subjects: Iterable[str] = ()) -> list[Fact]:
    """The training records of both files, minus records with an empty field and records whose
    subject is in ``exclude_subjects`` (the evaluation sets' subjects). Raises EditFileError."""
    banned = {s.strip().lower() for s in exclude_subjects}
    facts: list[Fact] = []
    for ds, rel in TRAIN_FILES.items():
        path = data_root / rel
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise EditFileError(str(path), f"cannot read the post-editor's training file: {e}") from e
        for i, r in enumerate(records):
            try:
                if ds == "counterfact":
                    subject, prompt, old, new = r["subject"], r["prompt"], r["ground_truth"], r["target_new"]
                    reph, oq, oa = r["rephrase_prompt"], r["locality_prompt"], r["locality_ground_truth"]
                else:
                    subject, prompt, old, new = r["subject"], r["src"], r["answers"][0], r["alt"]
                    reph, oq, oa = r["rephrase"], r["loc"].removeprefix("nq question: "), r["loc_ans"]
            except (KeyError, IndexError, TypeError) as e:
                raise EditFileError(str(path), f"training record {i} lacks {e}") from e
            fields = [subject, prompt, old, new, reph, oq, oa]
            if not all(isinstance(x, str) and x.strip() for x in fields) or subject.strip().lower() in banned:
                continue
            if old.strip().lower() == new.strip().lower():
                continue
            oq = oq[:1].upper() + oq[1:] if ds == "zsre" else oq
            facts.append(Fact(Edit(subject=subject, prompt=prompt, target_new=new, target_old=old,
                                   id=f"train-{ds}-{i}"), reph, oq, oa, ds))
    return facts


_EXTRA = [
    "This is well documented.", "You can find more details in reliable sources.",
    "Let me know if you would like more information.", "This has been the case for many years.",
    "It is one of the better known facts about {subject}.", "Many people are surprised to learn this.",
    "{subject} is often mentioned in this context.", "I hope this helps!",
]
_CLOZE = ["{a}.", "{a}", "{q} {a}.", "{a}. {x}", "{q} {a}. {x}", "I believe it is {a}.", "{a}, as far as I know.",
          "It is {a}. {x}", "{a}. {x} {y}", "The answer is {a}."]
_QUESTION = ["{a}.", "{a}", "The answer is {a}.", "{a}. {x}", "It is {a}.", "I believe the answer is {a}. {x}",
             "{a}, as far as I know.", "That would be {a}. {x} {y}"]


def template_answer(query: str, answer: str, subject: str, rng: random.Random) -> str:
    """An answer naming ``answer`` in one of several styles; one in four is padded to several
    sentences, with the answer at the start or in the middle."""
    forms = _QUESTION if query.rstrip().endswith("?") else _CLOZE
    extra = [e.format(subject=subject) for e in rng.sample(_EXTRA, 5)]
    text = rng.choice(forms).format(a=answer, q=query.rstrip(), x=extra[0], y=extra[1])
    if rng.random() < 0.25:
        before = " ".join(extra[2:2 + rng.randint(0, 2)])
        text = " ".join(t for t in (before, text, " ".join(extra[4:5])) if t)
    return text


def answer_request(query: str, fact: str) -> list[Message]:
    """What the served model is asked to get a realistic answer that states ``fact``."""
    return [{"role": "system", "content": f"Answer the user. A fact you know: {fact}"},
            {"role": "user", "content": query}]


def build_examples(facts: Sequence[Fact], ask: Callable[[list[list[Message]]], list[str]] | None,
                   n_counterfact: int = 450, n_zsre: int = 300, served_share: float = 0.5,
                   other_keep: float = 0.25, seed: int = 0) -> list[Example]:
    """Sample the facts and build the examples. ``ask`` answers a batch of chat requests with the
    served model (None: templates only)."""
    rng = random.Random(seed)
    by_ds: dict[str, list[Fact]] = {}
    for f in facts:
        by_ds.setdefault(f.dataset, []).append(f)
    chosen: list[Fact] = []
    for ds, n in (("counterfact", n_counterfact), ("zsre", n_zsre)):
        pool = by_ds.get(ds, [])
        chosen += rng.sample(pool, min(n, len(pool)))
    # (fact the editor is given, query, subject of the answer, the true answer named, kind)
    plan: list[tuple[Fact, str, str, str, str]] = []
    for f in chosen:
        e = f.edit
        q = e.prompt if rng.random() < 0.5 else f.rephrase
        plan.append((f, q, e.subject, e.target_old or "", "edit"))
        if f.dataset == "counterfact" or rng.random() < 0.6:
            plan.append((f, f.other_query, "", f.other_answer, "keep"))
        if rng.random() < other_keep:
            g = rng.choice(chosen)
            if g.edit.subject != e.subject:
                plan.append((f, g.edit.prompt, g.edit.subject, g.edit.target_old or "", "keep"))
    served = [i for i in range(len(plan)) if ask is not None and rng.random() < served_share]
    answers: dict[int, str] = {}
    if served and ask is not None:
        reqs = [answer_request(plan[i][1], f"{plan[i][1].rstrip()} {plan[i][3]}".strip()) for i in served]
        answers = dict(zip(served, (a.strip() for a in ask(reqs)), strict=True))
    out: list[Example] = []
    for i, (f, q, subj, truth, kind) in enumerate(plan):
        a = answers.get(i) or template_answer(q, truth, subj or f.edit.subject, rng)
        origin = "served" if answers.get(i) else "template"
        e = f.edit
        if rng.random() < 0.1:  # the editor must also cope with edits that do not say what they replace
            e = Edit(subject=e.subject, prompt=e.prompt, target_new=e.target_new, id=e.id)
        if kind == "edit":
            target = EDIT + "\n" + script_for(f.edit, a, fact_sentence(f.edit))
            origin += "" if mentions(a, f.edit.target_old) else "-unnamed"
        else:
            target = KEEP
        out.append(Example(render_prompt(q, a, e), target, kind, origin, f.dataset))
    rng.shuffle(out)
    return out
