"""Labelled (query, candidate edit) pairs for training a scope model, from training data only.

A pair is in scope (label 1) when the query asks the edit's question: the same subject
(by any of its names) and the same relation, in any phrasing. Sources, all training
files of ``../shared/data`` (see its README): counterfact-train, the zsRE training
questions (MEND 1k with subjects and rephrases, the 10,000-question pool), ParaRel's
patterns (39 Wikidata relations), PopQA's questions (16 templates: subject and relation
are recovered from the template), plus hand-written relation phrasings
(:mod:`bbedit.scope.pair_templates`) and invented companies, people and plans for the
shape of user edits.

Kinds of pairs: ``paraphrase``, ``alias``, ``case``, ``spelling`` (the subject misspelt) (positives);
``other_relation``, ``close_relation``, ``other_label`` (KnowEdit's form of a Wikidata property no relation
here holds: "{} legal form"), ``other_subject``, ``similar_subject``, ``generic``,
``generic_subject``, ``named_question`` (a real question naming the subject that asks something
else) (negatives). Every fact whose subject, and every pair whose query or
prompt, occurs in an evaluation file (compared lower-cased without punctuation) is
removed and counted. Pairs are split into train/dev by subject.
"""

from __future__ import annotations

import json
import logging
import random
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bbedit.errors import ConfigError
from bbedit.scope import pair_templates as T

log = logging.getLogger(__name__)

TRAINING_FILES = (
    "counterfact/counterfact-train.json", "zsre/zsre_mend_train-1k.json", "zsre/zsre_mend_train_en_10000.txt",
    "pararel/graphs_json", "popqa/popqa_test.json", "popqa/popqa_longtail.jsonl", "popqa/popqa_neuropath_1000.json",
)
EVALUATION_FILES = (
    "counterfact/counterfact-edit.json", "zsre/zsre_mend_eval_portability_gpt4.json", "knowedit/ZsRE-test-all.json",
    "postedit/counterfact/edit_data.json", "postedit/counterfact/query_data.json", "postedit/zsre/edit_data.json",
    "postedit/zsre/query_data.json", "mquake/MQuAKE-hard.json", "general/NQ-open.dev.jsonl",
)
POSITIVE_KINDS = ("paraphrase", "alias", "case", "spelling")
NEGATIVE_KINDS = ("other_relation", "close_relation", "other_label", "other_subject", "similar_subject", "generic",
                  "generic_subject", "named_question")
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_STOP = frozenset(["the", "of", "a", "an", "and", "in", "on", "at", "to", "for", "is", "was", "de", "la", "le", "von", "van", "da", "di", "del", "du", "st"])


def norm(text: str) -> str:
    """Lower-cased, punctuation removed, spaces collapsed: the key for overlap checks."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


@dataclass(frozen=True)
class Pair:
    """One labelled (query, candidate edit) pair."""

    query: str
    prompt: str
    subject: str
    label: int
    kind: str
    source: str
    aliases: tuple[str, ...] = ()
    split: str = "train"
    relation: str = ""  # the edit's relation (an id of its source; "" when not known)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Pair:
        return cls(**{**d, "aliases": tuple(d.get("aliases") or ())})


@dataclass
class Fact:
    """A subject with one relation: the forms that ask it, and given in-scope/out-of-scope prompts."""

    subject: str
    relation: str
    source: str
    aliases: tuple[str, ...] = ()
    prompts: list[str] = field(default_factory=list)      # given phrasings (the dataset's prompt, rephrase)
    negatives: list[str] = field(default_factory=list)    # given out-of-scope prompts (CF locality)


@dataclass
class PairSet:
    """The generated pairs and what was counted on the way."""

    pairs: list[Pair]
    stats: dict[str, Any]

    def split(self, name: str) -> list[Pair]:
        return [p for p in self.pairs if p.split == name]


# ----------------------------------------------------------------------------- reading

def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e


def _jsonl(path: Path) -> list[Any]:
    try:
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e


def relation_forms(data: Path) -> dict[str, list[str]]:
    """Every relation's phrasings: the hand-written forms, the two forms of its Wikidata label
    (:func:`~bbedit.scope.pair_templates.label_forms`) and ParaRel's patterns whose object comes last (as
    statement prefixes, "[X] was born in" -> "{} was born in")."""
    forms = {r: [*f, *(x for x in T.label_forms(r) if x not in f)] for r, (_, f) in T.RELATIONS.items()}
    folder = data / "pararel" / "graphs_json"
    for f in sorted(folder.glob("P*.jsonl")):
        rel = f.stem
        for rec in _jsonl(f):
            pat = " ".join(str(rec["pattern"]).split())
            head, _, tail = pat.partition("[Y]")
            if "[X]" not in head or tail.strip(" .") or not head.strip():
                continue
            form = head.strip().replace("[X]", "{}")
            forms.setdefault(rel, [])
            if form not in forms[rel]:
                forms[rel].append(form)
    return forms


def eval_keys(data: Path) -> tuple[set[str], set[str]]:
    """Normalised subjects and prompts of every evaluation file (those present)."""
    from bbedit.memory.formats import guess_subject

    subjects: set[str] = set()
    prompts: set[str] = set()

    def add_p(*texts: Any) -> None:
        for t in texts:
            if isinstance(t, str) and t.strip():
                prompts.add(norm(t.removeprefix("nq question:")))

    p = data / "counterfact" / "counterfact-edit.json"
    if p.exists():
        for r in _json(p):
            subjects.add(norm(r["subject"]))
            add_p(r.get("prompt"), r.get("rephrase_prompt"), r.get("locality_prompt"))
    p = data / "zsre" / "zsre_mend_eval_portability_gpt4.json"
    if p.exists():
        for r in _json(p):
            subjects.add(norm(r["subject"]))
            add_p(r.get("src"), r.get("rephrase"), r.get("loc"), (r.get("portability") or {}).get("New Question"))
    p = data / "knowedit" / "ZsRE-test-all.json"
    if p.exists():
        for r in _json(p):
            subjects.add(norm(r["subject"]))
            add_p(r.get("prompt"), r.get("rephrase_prompt"))
            for group in [*(r.get("locality") or {}).values(), *(r.get("portability") or {}).values()]:
                for x in group or []:
                    add_p(x.get("prompt"))
    for name in ("counterfact", "zsre"):
        for fname in ("edit_data.json", "query_data.json"):
            p = data / "postedit" / name / fname
            if p.exists():
                for r in _json(p):
                    add_p(r.get("requested_rewrite"), r.get("query"))
                    if fname == "edit_data.json" and r.get("requested_rewrite"):
                        subjects.add(norm(guess_subject(r["requested_rewrite"])))
    p = data / "mquake" / "MQuAKE-hard.json"
    if p.exists():
        for r in _json(p):
            for rw in r.get("requested_rewrite") or []:
                subjects.add(norm(rw["subject"]))
                add_p(rw.get("question"), rw.get("prompt", "").replace("{}", rw["subject"]))
            add_p(*(r.get("questions") or []))
            for hop in [*(r.get("single_hops") or []), *(r.get("new_single_hops") or [])]:
                add_p(hop.get("question"), hop.get("cloze"))
    p = data / "general" / "NQ-open.dev.jsonl"
    if p.exists():
        add_p(*(r["question"] for r in _jsonl(p)))
    subjects.discard("")
    return subjects, prompts


def _template_index(forms: dict[str, list[str]], rels: Iterable[str]) -> dict[str, str]:
    """Filled-prompt prefix template (``"{} was born in"``) -> relation, for matching CF prompts."""
    out: dict[str, str] = {}
    for r in rels:
        for f in forms.get(r, []):
            out.setdefault(norm(f.replace("{}", "XSUBJX")), r)
    return out


def read_facts(data: Path, forms: dict[str, list[str]], rng: random.Random) -> tuple[list[Fact], Counter[str]]:
    """Facts from every training file, plus invented ones. Returns the facts and per-source counts.
    Raises ConfigError when a training file is missing or unreadable."""
    for rel in TRAINING_FILES:
        if not (data / rel).exists():
            raise ConfigError(f"training file {data / rel} is missing")
    facts: list[Fact] = []
    pararel = [r for r in forms if r.startswith("P")]
    tindex = _template_index(forms, pararel)
    # counterfact-train: relation recovered from ParaRel's patterns where possible
    for r in _json(data / "counterfact" / "counterfact-train.json"):
        s, prompt = r["subject"], r["prompt"]
        key = norm(prompt.replace(s, "XSUBJX")) if s in prompt else ""
        rel = tindex.get(key, "cf:" + key)
        facts.append(Fact(s, rel, "counterfact", (), [prompt, r["rephrase_prompt"]], [r["locality_prompt"]]))
    # PopQA: subject and relation from the 16 templates
    seen: set[tuple[str, str]] = set()
    pats = [(re.compile(p), rel) for p, rel in T.POPQA_TEMPLATES]
    aliases: dict[str, tuple[str, ...]] = {}
    for r in _json(data / "popqa" / "popqa_neuropath_1000.json"):
        try:
            al = tuple(a for a in json.loads(r.get("s_aliases") or "[]") if isinstance(a, str) and a != r["subj"])
        except ValueError:
            al = ()
        if al:
            aliases[r["subj"]] = al[:3]
    questions = [r["question"] for r in _json(data / "popqa" / "popqa_test.json")]
    questions += [r["question"] for r in _jsonl(data / "popqa" / "popqa_longtail.jsonl")]
    questions += [r["question"] for r in _json(data / "popqa" / "popqa_neuropath_1000.json")]
    for q in questions:
        for pat, rel in pats:
            m = pat.fullmatch(q.strip())
            if m:
                s = m.group(1).strip()
                if rel == "genre" and s in aliases:
                    continue
                if (s, rel) not in seen:
                    seen.add((s, rel))
                    facts.append(Fact(s, rel, "popqa", aliases.get(s, ()), [q]))
                break
    # zsRE: a question template asks the relation its words name (pair_templates.zsre_relation), else one of
    # its own; rephrases give its other forms
    z1k = _json(data / "zsre" / "zsre_mend_train-1k.json")
    ztemplates: dict[str, str] = {}
    for r in z1k:
        s, src = r["subject"], " ".join(r["src"].split())
        if s not in src:
            facts.append(Fact(s, "zsre:" + norm(src), "zsre", (), [src, r["rephrase"]]))
            continue
        t = src.replace(s, "{}", 1)
        rel = T.zsre_relation(t) or "zsre:" + norm(t)
        ztemplates.setdefault(t, rel)
        forms.setdefault(rel, [])
        if t not in forms[rel]:
            forms[rel].append(t)
        reph = " ".join(r["rephrase"].split())
        if s in reph and reph.replace(s, "{}", 1) not in forms[rel]:
            forms[rel].append(reph.replace(s, "{}", 1))
        facts.append(Fact(s, rel, "zsre", (), [src, reph]))
    by_prefix: dict[str, list[str]] = defaultdict(list)
    for t in ztemplates:
        by_prefix[t.split("{}")[0]].append(t)
    z1k_src = {" ".join(r["src"].split()) for r in z1k}
    for line in (data / "zsre" / "zsre_mend_train_en_10000.txt").read_text(encoding="utf-8").splitlines():
        src = " ".join(line.split("\t")[0].split())
        if not src or src in z1k_src:
            continue
        for cut in [m.start() + 1 for m in re.finditer(" ", src)] + [0]:
            for t in by_prefix.get(src[:cut], []):
                pre, suf = t.split("{}", 1)
                if src.endswith(suf) and len(src) > len(pre) + len(suf):
                    s = src[len(pre):len(src) - len(suf)].strip()
                    if s and len(s) < 80:
                        facts.append(Fact(s, ztemplates[t], "zsre10k", (), [src]))
                        break
            else:
                continue
            break
    # invented companies, their plans and their people (the shape of user edits)
    comp_rels = [r for r, (g, _) in T.RELATIONS.items() if g == "company"]
    plan_rels = [r for r, (g, _) in T.RELATIONS.items() if g == "plan"]
    work_rels = [r for r, (g, _) in T.RELATIONS.items() if g == "worker"]
    for name, al in T.invented_companies(rng, 500):
        for rel in rng.sample(comp_rels, 6):
            facts.append(Fact(name, rel, "synthetic", al))
        for plan, pal in rng.sample(T.plan_names(name, al[0]), 2):
            facts.append(Fact(plan, rng.choice(plan_rels), "synthetic", pal))
    for name, al in T.invented_people(rng, 600):
        for rel in rng.sample(work_rels, 3):
            facts.append(Fact(name, rel, "synthetic", al))
    return facts, Counter(f.source for f in facts)


# ----------------------------------------------------------------------------- generating

def _group(rel: str) -> str:
    if rel in T.RELATIONS:
        return T.RELATIONS[rel][0]
    return rel.split(":")[0]  # "cf" and "zsre" relations form their own pools


def _fill(form: str, subject: str) -> str:
    return form.replace("{}", subject, 1)


def _vary_case(text: str, rng: random.Random) -> str:
    """The same text as people type it: lowercase, capitals or a lowercase first letter, and half the
    time without its question mark."""
    r = rng.random()
    if r < 0.5:
        text = text.lower()
    elif r < 0.7:
        text = text.upper()
    else:
        text = text[:1].lower() + text[1:]
    return text.rstrip("?").rstrip() if rng.random() < 0.5 else text


_SAME_SUBJECT_NEGATIVES = ("close_relation", "other_relation", "other_label", "named_question", "similar_subject",
                           "other_subject")


_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV")


def renumber(name: str, rng: random.Random) -> str | None:
    """Another thing named like ``name``: its number or Roman numeral changed, or (one time in five, for
    a name without one) a model number put after it; None otherwise."""
    words = name.split(" ")
    for i, w in enumerate(words):
        if w in _ROMAN:
            words[i] = rng.choice([r for r in _ROMAN if r != w])
            return " ".join(words)
        m = re.search(r"\d+", w)
        if m:
            n = int(m.group())
            words[i] = w[:m.start()] + str(n + rng.choice([-1, 1, 2, 10]) if n > 1 else n + 1) + w[m.end():]
            return " ".join(words)
    return f"{name} {rng.choice(['2', '3', '8', 'X', 'II', 'Pro 2'])}" if rng.random() < 0.2 else None


def misspell(name: str, rng: random.Random) -> str | None:
    """``name`` as people mistype it: one letter dropped, doubled, swapped with its neighbour or replaced in
    one of its longer words, or a possessive "s" added or lost; None when no word is long enough."""
    words = name.split(" ")
    long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long:
        return None
    i = rng.choice(long)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    how = rng.randrange(5)
    if how == 0:
        w = w[:j] + w[j + 1:]
    elif how == 1:
        w = w[:j] + w[j] + w[j:]
    elif how == 2:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif how == 3:
        w = w[:j] + rng.choice("aeiourstnl") + w[j + 1:]
    else:
        w = w[:-1] if w.endswith("s") else w + "s"
    words[i] = w
    out = " ".join(words)
    return out if out != name else None


def _content(text: str) -> set[str]:
    return {t for t in norm(text).split() if t not in _STOP and len(t) > 2}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(len(a | b), 1)


class _Generator:
    def __init__(self, facts: Sequence[Fact], forms: dict[str, list[str]], generic: Sequence[str],
                 rng: random.Random) -> None:
        self.facts, self.forms, self.generic, self.rng = facts, forms, list(generic), rng
        self.subjects_of: dict[str, list[str]] = defaultdict(list)   # relation -> subjects
        self.rels_of_group: dict[str, list[str]] = defaultdict(list)
        self.by_token: dict[str, list[str]] = defaultdict(list)       # content token -> subjects
        self.facts_of: dict[str, set[str]] = defaultdict(set)        # subject -> its relations
        for f in facts:
            self.subjects_of[f.relation].append(f.subject)
            self.facts_of[f.subject].add(f.relation)
        for rel in self.forms:
            g = _group(rel)
            if g not in ("cf",) and self.forms[rel]:
                self.rels_of_group[g].append(rel)
        for s in self.facts_of:
            for t in _content(s):
                self.by_token[t].append(s)
        self.close: dict[str, list[str]] = defaultdict(list)
        for a, b in T.CLOSE:
            self.close[a].append(b)
            self.close[b].append(a)
        self.inverse: dict[str, set[str]] = defaultdict(set)
        for a, b in (*T.INVERSE, *T.INTERCHANGEABLE):  # never each other's negatives
            self.inverse[a].add(b)
            self.inverse[b].add(a)
        # the content words of each relation's forms: a negative must not ask with a relation's own words
        self.words: dict[str, list[set[str]]] = {r: [_content(f.replace("{}", " ")) for f in fs]
                                                 for r, fs in self.forms.items()}
        known = {label.casefold() for labels in T.LABELS.values() for label in labels}
        self.other_labels = [x for x in T.OTHER_LABELS if x.casefold() not in known]
        self.labels_by_token: dict[str, list[str]] = defaultdict(list)
        for x in self.other_labels:
            for t in _content(x):
                self.labels_by_token[t].append(x)
        self.generic_by_token: dict[str, list[str]] = defaultdict(list)
        for q in self.generic:
            for t in _content(q):
                self.generic_by_token[t].append(q)

    def _form(self, rel: str, exclude: str | None = None) -> str | None:
        fs = [f for f in self.forms.get(rel, []) if f != exclude]
        return self.rng.choice(fs) if fs else None

    def _other_form(self, rel: str, own: str) -> str | None:
        """A form of ``rel`` to be a negative for a fact of relation ``own``: none whose content words
        are (or hold, or are held by) those of one of ``own``'s forms ("{} was developed by" is not
        another relation than "{} is developed by", whichever relation ParaRel files it under)."""
        mine = [w for w in self.words.get(own, []) if w]
        fs = [f for f, w in zip(self.forms.get(rel, []), self.words.get(rel, []), strict=True)
              if w and not any(w <= m or m <= w for m in mine)]
        return self.rng.choice(fs) if fs else None

    def pairs_of(self, f: Fact) -> list[Pair]:
        rng = self.rng
        out: list[Pair] = []
        aliases = f.aliases if (f.aliases and rng.random() < 0.6) else ()
        own_form = None
        if f.prompts and rng.random() < 0.7:
            prompt = f.prompts[0]
        else:
            own_form = self._form(f.relation)
            if own_form is None:
                if not f.prompts:
                    return []
                prompt = f.prompts[0]
            else:
                prompt = _fill(own_form, f.subject)

        def add(query: str, label: int, kind: str) -> None:
            if query and norm(query) != "":
                out.append(Pair(query, prompt, f.subject, label, kind, f.source, aliases, relation=f.relation))

        # positives: other phrasings of the same relation, given rephrases, aliases, case changes
        others = [p for p in f.prompts if p != prompt]
        pos_form = self._form(f.relation, own_form)
        if others:
            add(rng.choice(others), 1, "paraphrase")
        if pos_form is not None and (not others or rng.random() < 0.6):
            add(_fill(pos_form, f.subject), 1, "paraphrase")
        if f.aliases and pos_form is not None:
            add(_fill(self._form(f.relation) or pos_form, rng.choice(f.aliases)), 1, "alias")
        if rng.random() < 0.25:
            add(_vary_case(rng.choice([prompt, *others]), rng), 1, "case")
        typo = misspell(f.subject, rng) if rng.random() < 0.3 else None
        if typo is not None:
            said = [p for p in [prompt, *others] if f.subject in p]
            if said:
                add(rng.choice(said).replace(f.subject, typo, 1), 1, "spelling")
        # negatives: same subject another relation (a close one when there is one)
        g = _group(f.relation)
        close = [r for r in self.close.get(f.relation, []) if r in self.forms]
        if close:
            form = self._other_form(rng.choice(close), f.relation)
            if form:
                add(_fill(form, rng.choice([f.subject, *f.aliases])), 0, "close_relation")
        pool = [r for r in self.rels_of_group.get(g if g not in ("cf", "zsre") else "person", [])
                if r != f.relation and r not in self.inverse[f.relation]]
        if g == "zsre":  # zsRE templates of one relation vary: only clearly different ones are negatives
            mine = _content(f.relation)
            pool = [r for r in self.rels_of_group["zsre"] if r != f.relation and _jaccard(_content(r), mine) < 0.34]
        if pool and (g != "cf"):
            for _ in range(2 if not close else 1):
                form = self._other_form(rng.choice(pool), f.relation)
                if form:
                    add(_fill(form, f.subject), 0, "other_relation")
        # the relation by its Wikidata label, as KnowEdit asks it ("{} parent taxon" for "Which family does
        # {} belong to?")
        labelled = T.label_forms(f.relation)
        if labelled and rng.random() < 0.5:
            add(_fill(rng.choice(labelled), rng.choice([f.subject, f.subject, *f.aliases])), 1, "paraphrase")
        # a Wikidata property no relation here holds, in KnowEdit's forms ("{} legal form"); half the time one
        # that shares a word with the prompt ("given name" against "What is the name of {}'s father?")
        if rng.random() < 0.5:
            sharing = [x for t in sorted(_content(prompt)) for x in self.labels_by_token.get(t, [])]
            label = rng.choice(sharing if sharing and rng.random() < 0.5 else self.other_labels)
            if not any(_content(label) <= m or m <= _content(label) for m in self.words.get(f.relation, []) if m):
                add((f"The {label} of {{}} is" if rng.random() < 0.5 else f"{{}} {label}").replace("{}", f.subject),
                    0, "other_label")
        # same relation, another subject (CF's own locality prompt when given)
        if f.negatives:
            add(rng.choice(f.negatives), 0, "other_subject")
        subs = self.subjects_of.get(f.relation, [])
        if len(subs) > 1:
            other = rng.choice(subs)
            form = self._form(f.relation)
            if other != f.subject and form:
                add(_fill(form, other), 0, "other_subject")
        # lexically similar subject (shares a content word), same relation
        toks = sorted(_content(f.subject))
        rng.shuffle(toks)
        for t in toks[:2]:
            near = [s for s in self.by_token.get(t, [])[:200] if norm(s) != norm(f.subject)
                    and norm(s) not in {norm(a) for a in f.aliases} and not set(norm(s).split()) <= set(norm(f.subject).split())]
            if near:
                form = self._form(f.relation) or prompt.replace(f.subject, "{}")
                add(_fill(form, rng.choice(near)) if "{}" in form else "", 0, "similar_subject")
                break
        # the same name with another number ("Clement XIII" / "Clement XII", "Route 23" / "Route 42"), or a
        # numbered one inside it ("iPhone 8" against "iPhone"): another thing, same relation
        renumbered = renumber(f.subject, rng)
        if renumbered is not None and f.subject in prompt:
            add(prompt.replace(f.subject, renumbered, 1), 0, "similar_subject")
        # generic questions about other things (sometimes sharing a word with the prompt)
        if rng.random() < 0.35:
            share = [q for t in sorted(_content(prompt)) for q in self.generic_by_token.get(t, [])[:50]]
            add(rng.choice(share) if share and rng.random() < 0.5 else rng.choice(self.generic), 0, "generic")
        # real questions that name the subject and ask something else ("what type of economic system was
        # used in the soviet union" against "Soviet Union is located in"; "who wrote ..." against "The Who")
        named = self.named_questions(f.subject, prompt)
        if named:
            add(rng.choice(named), 0, "named_question")
        # the surface forms of the "case" positives (lowercase, capitals, no "?") on negatives too, so that
        # about 1 query in 18 is lowercase on each side: otherwise lowercase reads as a sign of being in scope
        for p in [p for p in out if p.label == 0 and p.kind in _SAME_SUBJECT_NEGATIVES]:
            if rng.random() < 0.12:
                add(_vary_case(p.query, rng), 0, p.kind)
        return out

    def named_questions(self, subject: str, prompt: str) -> list[str]:
        """Generic questions that name ``subject`` (whole words, a leading "the" optional) and share
        no other content word with ``prompt`` (so that they do not ask the prompt's relation)."""
        key = norm(subject).split()
        if key[:1] == ["the"] and len(key) > 1:
            key = key[1:]
        content = [t for t in key if t in self.generic_by_token]
        if not key or len(content) < len([t for t in key if t not in _STOP]) or not content:
            return []
        rarest = min(content, key=lambda t: len(self.generic_by_token[t]))
        own = _content(prompt) - set(norm(subject).split())
        out = []
        for q in self.generic_by_token[rarest][:400]:
            toks = norm(q).split()
            if any(toks[i:i + len(key)] == key for i in range(len(toks) - len(key) + 1)) \
                    and not (_content(q) - set(key)) & own:
                out.append(q)
        return out

    def generic_subject_pairs(self, n: int) -> list[Pair]:
        """QA edits whose "subject" is a generic word: other questions with that word are out of scope."""
        rng = self.rng
        out: list[Pair] = []
        words = [w for w in T.GENERIC_WORDS if len(self.generic_by_token.get(w, [])) >= 2 or " " in w]
        by_word = {w: [q for q in self.generic if re.search(rf"\b{re.escape(w)}\b", q.lower())] for w in words}
        by_word = {w: qs for w, qs in by_word.items() if len(qs) >= 2}
        if not by_word:
            return out
        keys = sorted(by_word)
        for _ in range(n):
            w = rng.choice(keys)
            q_edit, q_other = rng.sample(by_word[w], 2)
            subj = w if rng.random() < 0.7 else q_edit.split("?")[0]
            if rng.random() < 0.5:
                out.append(Pair(q_other, q_edit, subj, 0, "generic_subject", "generic"))
            else:
                out.append(Pair(_vary_case(q_edit, rng) if rng.random() < 0.5 else
                                rng.choice(("Tell me, ", "Do you know ", "Quick question: ")) + q_edit[:1].lower()
                                + q_edit[1:], q_edit, subj, 1, "case", "generic"))
        return out


def _split_of(subject: str, dev_fraction: float) -> str:
    return "dev" if zlib.crc32(norm(subject).encode()) % 1000 < dev_fraction * 1000 else "train"


def _subject_in(text: str, names: Iterable[str]) -> bool:
    return any(n and n.lower() in text.lower() for n in names)


def generate(data: str | Path, *, seed: int = 0, dev_fraction: float = 0.1, n_generic_subject: int = 4000
             ) -> PairSet:
    """All labelled pairs from the training files under ``data`` (``../shared/data``), split by subject.

    Facts whose subject, and pairs whose query or prompt, occur in an evaluation file are
    removed; ``stats`` counts them per source. Raises ConfigError when a training file is
    missing or unreadable.
    """
    data = Path(data)
    rng = random.Random(seed)
    forms = relation_forms(data)
    facts, per_source = read_facts(data, forms, rng)
    ev_subjects, ev_prompts = eval_keys(data)
    removed_facts: Counter[str] = Counter()
    kept: list[Fact] = []
    for f in facts:
        if norm(f.subject) in ev_subjects or any(norm(a) in ev_subjects for a in f.aliases):
            removed_facts[f.source] += 1
        else:
            kept.append(f)
    generic = [r["loc"].removeprefix("nq question:").strip().rstrip("?") + "?"
               for r in _json(data / "zsre" / "zsre_mend_train-1k.json") if r.get("loc")]
    generic += [" ".join(x.split("\t")[0].split()) for x in
                (data / "zsre" / "zsre_mend_train_en_10000.txt").read_text(encoding="utf-8").splitlines()[::4]]
    generic_before = len(generic)
    generic = [q for q in dict.fromkeys(generic) if q and norm(q) not in ev_prompts]
    gen = _Generator(kept, forms, generic, rng)
    raw: list[Pair] = []
    for f in kept:
        raw.extend(gen.pairs_of(f))
    raw.extend(gen.generic_subject_pairs(n_generic_subject))
    removed_pairs: Counter[str] = Counter()
    pairs: list[Pair] = []
    seen: set[tuple[str, str, str]] = set()
    for p in raw:
        key = (p.query, p.prompt, p.subject)
        if key in seen:
            continue
        seen.add(key)
        if norm(p.query) in ev_prompts or norm(p.prompt) in ev_prompts:
            removed_pairs[p.kind] += 1
            continue
        split = _split_of(p.subject, dev_fraction)
        pairs.append(Pair(p.query, p.prompt, p.subject, p.label, p.kind, p.source, p.aliases, split, p.relation))
    rng.shuffle(pairs)
    stats: dict[str, Any] = {
        "facts_per_source": dict(per_source), "facts_removed_eval_subject": dict(removed_facts),
        "facts_removed_total": sum(removed_facts.values()), "pairs_removed_eval_prompt": dict(removed_pairs),
        "pairs_removed_total": sum(removed_pairs.values()),
        "generic_questions": len(generic), "generic_removed_eval_prompt": generic_before - len(generic),
        "eval_subjects": len(ev_subjects), "eval_prompts": len(ev_prompts), "relations": len(forms),
        "pairs": len(pairs), "pairs_per_kind": dict(Counter(p.kind for p in pairs)),
        "pairs_per_split": dict(Counter(p.split for p in pairs)),
        "positives": sum(p.label for p in pairs), "seed": seed, "dev_fraction": dev_fraction,
    }
    log.info("generated %d pairs (%d positive); removed %d facts and %d pairs overlapping evaluation files",
             len(pairs), stats["positives"], stats["facts_removed_total"], stats["pairs_removed_total"])
    return PairSet(pairs, stats)


def save_pairs(ps: PairSet, path: str | Path) -> Path:
    """Write pairs as JSONL and the stats next to them (``<path>.stats.json``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as f:
        for x in ps.pairs:
            f.write(json.dumps(x.to_dict(), ensure_ascii=False) + "\n")
    p.with_suffix(p.suffix + ".stats.json").write_text(json.dumps(ps.stats, indent=1))
    return p


def load_pairs(path: str | Path) -> list[Pair]:
    """Read pairs written by :func:`save_pairs`. Raises ConfigError on an unreadable file."""
    return [Pair.from_dict(d) for d in _jsonl(Path(path))]
