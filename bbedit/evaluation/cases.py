"""Benchmark cases: one internal type for every editing dataset, and loaders for their formats.

A :class:`Case` is the edits a benchmark applies together (one for CounterFact or
zsRE, several for MQuAKE) and the :class:`Probe` queries that measure them. A
probe's ``kind`` names what it measures:

- ``reliability``: the edit's own prompt; should now give the new answer;
- ``generalization``: a paraphrase of it; should give the new answer;
- ``locality``: an unrelated or neighbouring query; its answer should not change
  (``answers``, when the dataset has them, are its ground truth);
- ``portability``: a question whose answer follows from the edit (one reasoning step);
- ``multihop``: a multi-hop question over several edits (MQuAKE).

Loaders read the public formats from any path: CounterFact (EasyEdit's flattened
form and ROME's original), zsRE (MEND), KnowEdit (ZsRE and WikiData), MQuAKE,
PostEdit (``query_data.json``; its sibling ``edit_data.json`` adds the rest of the
edit set), QAEdit, WISE-style records (``ood_rephrase``, ``locality_prompt``) and
KnowEdit's Sanitation set (TriviaQA questions in one object of named lists). Bad records raise :class:`~bbedit.errors.EditFileError`
naming the file, the line and the reason.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bbedit.errors import ConfigError, EditFileError, InvalidEdit
from bbedit.memory import formats
from bbedit.scope.pair_templates import relation_of
from bbedit.types import Edit

log = logging.getLogger(__name__)

PROBE_KINDS = ("reliability", "generalization", "locality", "portability", "multihop")
IN_SCOPE_KINDS = frozenset(PROBE_KINDS) - {"locality"}
DATASET_FORMATS = ("counterfact", "zsre", "knowedit", "mquake", "postedit", "qaedit", "wise", "triviaqa")


@dataclass(frozen=True)
class Probe:
    """One query of a case. ``answers`` are the right answers (any one counts);
    ``old_answers`` are those that show an in-scope edit did not take;
    ``reference`` is a recorded answer from before the edit (PostEdit)."""

    text: str
    kind: str
    answers: tuple[str, ...] = ()
    old_answers: tuple[str, ...] = ()
    reference: str | None = None
    label: str = ""
    route: bool | None = None  # whether a gate should route it to the case's edit, when not as its kind says


    def __post_init__(self) -> None:
        if self.kind not in PROBE_KINDS:
            raise InvalidEdit(f"unknown probe kind {self.kind!r}; known: {', '.join(PROBE_KINDS)}")
        if not isinstance(self.text, str) or not self.text.strip():
            raise InvalidEdit(f"a {self.kind} probe needs a non-empty query, got {self.text!r}")

    @property
    def in_scope(self) -> bool:
        """Whether the answer should follow the edit (its kind is not ``locality``)."""
        return self.kind in IN_SCOPE_KINDS

    @property
    def should_route(self) -> bool:
        """Whether the query is about the case's edit, so that a scope gate should route it there. As
        :attr:`in_scope`, except for probes that ask the edited fact yet judge another answer
        (KnowEdit's ``Forgetfulness``: the other objects of a one-to-many relation must stay)."""
        return self.in_scope if self.route is None else self.route


@dataclass(frozen=True)
class Case:
    id: str
    edits: tuple[Edit, ...]
    probes: tuple[Probe, ...]

    def of_kind(self, kind: str) -> list[Probe]:
        return [p for p in self.probes if p.kind == kind]


@dataclass
class Dataset:
    """Cases, plus edits that belong in memory without being probed (PostEdit's edit set)."""

    name: str
    format: str
    cases: list[Case]
    extra_edits: list[Edit] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "where: why" of records left out (on_error="skip")

    def edits(self) -> list[Edit]:
        """Every edit once, the cases' first (by id)."""
        seen: dict[str, Edit] = {}
        for e in [e for c in self.cases for e in c.edits] + self.extra_edits:
            seen.setdefault(e.id, e)
        return list(seen.values())


# ----------------------------------------------------------------------------- helpers

def _strs(value: Any, what: str) -> tuple[str, ...]:
    """A string, or a (nested) list of strings, as a flat tuple without blanks."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, list):
        return tuple(s for v in value for s in _strs(v, what))
    raise InvalidEdit(f"{what} must be a string or a list of strings, got {type(value).__name__}")


def _get(rec: Mapping[str, Any], key: str) -> Any:
    if key not in rec:
        raise InvalidEdit(f"missing field {key!r}")
    return rec[key]


def _text(rec: Mapping[str, Any], key: str) -> str:
    value = _get(rec, key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidEdit(f"field {key!r} must be a non-empty string, got {value!r}")
    return value


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidEdit(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _pairs(value: Any, what: str, prompt_keys: Sequence[str], answer_keys: Sequence[str]
           ) -> Iterator[tuple[str, tuple[str, ...]]]:
    """``[{"prompt": ..., "ground_truth": ...}, ...]`` (or one such object) as (prompt, answers)."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        item = _obj(item, what)
        pk = next((k for k in prompt_keys if k in item), None)
        ak = next((k for k in answer_keys if k in item), None)
        if pk is None:
            raise InvalidEdit(f"{what} item has none of the keys {', '.join(prompt_keys)}")
        prompts = _strs(item[pk], what)
        answers = _strs(item[ak], what) if ak else ()
        for p in prompts:  # KnowEdit sometimes lists several prompts sharing answers
            yield p, answers


def _nq_question(loc: str) -> str:
    """zsRE's and WISE's ``nq question: who sings hello`` as the question a user would type."""
    if not loc.startswith("nq question:"):
        return loc
    q = loc.split(":", 1)[1].strip()
    return q[:1].upper() + q[1:] + ("" if q.endswith("?") else "?")


# ----------------------------------------------------------------------------- per-format readers

def _counterfact(rec: Mapping[str, Any], index: int) -> Case:
    edit = formats.edit_from_record(rec, "counterfact", index)
    old = (edit.target_old,) if edit.target_old else ()
    new = (edit.target_new,)
    probes = [Probe(edit.prompt, "reliability", new, old)]
    rewrite = rec.get("requested_rewrite")
    if isinstance(rewrite, Mapping):  # ROME's original form: lists of prompts
        probes += [Probe(p, "generalization", new, old) for p in _strs(rec.get("paraphrase_prompts"), "paraphrase_prompts")]
        probes += [Probe(p, "locality", old) for p in _strs(rec.get("neighborhood_prompts"), "neighborhood_prompts")]
    else:
        probes += [Probe(p, "generalization", new, old) for p in _strs(rec.get("rephrase_prompt"), "rephrase_prompt")]
        truth = _strs(rec.get("locality_ground_truth"), "locality_ground_truth")
        probes += [Probe(p, "locality", truth) for p in _strs(rec.get("locality_prompt"), "locality_prompt")]
    return Case(edit.id, (edit,), tuple(probes))


def _zsre(rec: Mapping[str, Any], index: int) -> Case:
    edit = formats.edit_from_record(rec, "zsre", index)
    new, old = (edit.target_new,), _strs(rec.get("answers"), "answers") or _strs(rec.get("pred"), "pred")
    probes = [Probe(edit.prompt, "reliability", new, old)]
    probes += [Probe(p, "generalization", new, old) for p in _strs(rec.get("rephrase"), "rephrase")]
    loc = rec.get("loc")
    if isinstance(loc, str) and loc.strip():
        probes.append(Probe(_nq_question(loc), "locality", _strs(rec.get("loc_ans"), "loc_ans")))
    port = rec.get("portability")
    if isinstance(port, Mapping) and port.get("New Question"):
        probes.append(Probe(_text(port, "New Question"), "portability", _strs(port.get("New Answer"), "New Answer"),
                            label="New Question"))
    return Case(edit.id, (edit,), tuple(probes))


def _knowedit(rec: Mapping[str, Any], index: int) -> Case:
    """KnowEdit (ZsRE and WikiData). Its groups are read for what they ask, not only by their name:

    - ``Subject_Aliasing`` prompts that are the edit's prompt (or rephrase) with the subject named
      another way ask the edit itself: they are ``generalization`` probes, and the other name becomes an
      alias of the edit; the rest (KnowEdit ZsRE's are often other questions) stay ``portability``;
    - a ``Relation_Specificity`` prompt that asks the edited fact in other words is a ``generalization``
      probe: its answer is the edit's old answer (390 of KnowEdit ZsRE's 2,602, e.g. "The constellation
      of Butterfly Cluster is" for "What constellation is home to Butterfly Cluster?"), or it names the
      relation the edit's prompt asks ("Ilgar Nabiyev member of sports team" for "Which sports team is
      Ilgar Nabiyev playing for?"; :func:`~bbedit.scope.pair_templates.relation_of`);
    - ``Forgetfulness`` prompts ask the edited relation of the subject ("..., which is not X, is") and judge
      the objects that must stay: ``locality`` answers, routed to the edit (:attr:`Probe.should_route`).
    """
    edit = formats.edit_from_record(rec, "knowedit", index)  # with the aliases its Subject_Aliasing prompts give
    new, old = (edit.target_new,), _strs(rec.get("ground_truth"), "ground_truth")
    rephrases = _strs(rec.get("rephrase_prompt") or rec.get("rephrase"), "rephrase_prompt")
    portability = _obj(rec.get("portability") or {}, "portability")
    aliased = [(p, answers) for p, answers in _pairs(portability.get("Subject_Aliasing") or [],
                                                      "portability.Subject_Aliasing", ("prompt",), ("ground_truth", "answer"))]
    alias_probes = {p for p, _ in aliased if formats.other_name(p, edit.subject, (edit.prompt, *rephrases)) is not None}
    probes = [Probe(edit.prompt, "reliability", new, old)]
    probes += [Probe(p, "generalization", new, old) for p in rephrases]
    olds = {_answer_key(a) for a in old}
    asks = relation_of(edit.prompt, edit.subject)
    for label, items in _obj(rec.get("locality") or {}, "locality").items():
        for p, answers in _pairs(items, f"locality.{label}", ("prompt",), ("ground_truth", "answer")):
            if label == "Relation_Specificity" and ((olds and {_answer_key(a) for a in answers} & olds)
                                                    or (asks is not None and relation_of(p, edit.subject) == asks)):
                probes.append(Probe(p, "generalization", new, old, label="Relation_Specificity_same_fact"))
            else:
                probes.append(Probe(p, "locality", answers, label=label, route=True if label == "Forgetfulness" else None))
    for label, items in portability.items():
        if label == "Subject_Aliasing":
            for p, answers in aliased:
                probes.append(Probe(p, "generalization", new, old, label=label) if p in alias_probes
                              else Probe(p, "portability", answers, label=label))
            continue
        for p, answers in _pairs(items, f"portability.{label}", ("prompt",), ("ground_truth", "answer")):
            probes.append(Probe(p, "portability", answers, label=label))
    return Case(edit.id, (edit,), tuple(probes))


def _answer_key(text: str) -> str:
    return " ".join(text.casefold().split()).strip(" .")


def _qaedit(rec: Mapping[str, Any], index: int) -> Case:
    edit = formats.edit_from_record(rec, "qaedit", index)
    new = (edit.target_new,)
    probes = [Probe(edit.prompt, "reliability", new)]
    probes += [Probe(p, "generalization", new) for p in _strs(rec.get("rephrase"), "rephrase")]
    for p, answers in _pairs(rec.get("locality") or [], "locality", ("loc", "prompt"), ("loc_ans", "ground_truth")):
        probes.append(Probe(p, "locality", answers))
    return Case(edit.id, (edit,), tuple(probes))


def _wise(rec: Mapping[str, Any], index: int) -> Case:
    """WISE's temporal / hallucination records: ``ood_rephrase`` (or ``rephrase``) is the paraphrase."""
    edit = formats.edit_from_record(rec, "wise", index)
    new, old = (edit.target_new,), _strs(rec.get("ground_truth"), "ground_truth")
    probes = [Probe(edit.prompt, "reliability", new, old)]
    for key in ("rephrase_prompt", "rephrase", "ood_rephrase"):
        probes += [Probe(p, "generalization", new, old, label=key) for p in _strs(rec.get(key), key)]
    truth = _strs(rec.get("locality_ground_truth"), "locality_ground_truth")
    probes += [Probe(_nq_question(p), "locality", truth) for p in _strs(rec.get("locality_prompt"), "locality_prompt")]
    return Case(edit.id, (edit,), tuple(probes))


def _triviaqa(rec: Mapping[str, Any], index: int) -> Case:
    edit = formats.edit_from_record(rec, "triviaqa", index)
    return Case(edit.id, (edit,), (Probe(edit.prompt, "reliability", (edit.target_new,),
                                         _strs(rec.get("ground_truth"), "ground_truth")),))


def _trivia_object(path: Path) -> tuple[list[tuple[str, int | None, Any]], list[Probe]] | None:
    """KnowEdit's Sanitation (TriviaQA) object form: its edit records, and its questions whose
    answers must be kept as locality probes; None when the file is not in that form."""
    if path.suffix.lower() != ".json":
        return None
    try:
        with path.open(encoding="utf-8-sig") as f:
            if not f.read(64).lstrip().startswith("{"):
                return None
        sections = formats.object_sections(json.loads(path.read_text(encoding="utf-8-sig")))
    except (OSError, ValueError):
        return None  # formats.records reports the reason
    if sections is None:
        return None
    recs: list[tuple[str, int | None, Any]] = [(f"{name}[{i}]", None, rec) for name in formats.EDIT_SECTIONS for i, rec in enumerate(sections.get(name, ()))]
    keep = []
    for name in formats.KEEP_SECTIONS:
        for i, rec in enumerate(sections.get(name, ())):
            try:
                rec = _obj(rec, f"{name}[{i}]")
                keep.append(Probe(_text(rec, "question"), "locality", _strs(rec.get("ground_truth"), "ground_truth"),
                                  label=name))
            except InvalidEdit as e:
                raise EditFileError(str(path), f"{name}[{i}]: {e}") from e
    return recs, keep


def _mquake(rec: Mapping[str, Any], index: int) -> Case:
    rewrites = _get(rec, "requested_rewrite")
    if not isinstance(rewrites, list) or not rewrites:
        raise InvalidEdit("requested_rewrite must be a non-empty list of rewrites")
    cid = rec.get("case_id", index)
    edits = []
    for j, rw in enumerate(rewrites):
        rw = _obj(rw, f"requested_rewrite[{j}]")
        subject, template = _text(rw, "subject"), _text(rw, "prompt")
        if "{}" not in template:
            raise InvalidEdit(f"requested_rewrite[{j}].prompt has no '{{}}' placeholder for the subject")
        true = rw.get("target_true")
        edits.append(Edit(subject=subject, prompt=template.replace("{}", subject), id=f"mquake-{cid}-{j}",
                          target_new=_text(_obj(rw.get("target_new"), "target_new"), "str"),
                          target_old=_obj(true, "target_true").get("str") if true is not None else None,
                          source=f"mquake:case_id={cid}"))
    new = (_text(rec, "new_answer"), *_strs(rec.get("new_answer_alias"), "new_answer_alias"))
    old = _strs(rec.get("answer"), "answer") + _strs(rec.get("answer_alias"), "answer_alias")
    probes = [Probe(q, "multihop", new, old) for q in _strs(_get(rec, "questions"), "questions")]
    # single-hop questions of the edited facts: each should now give its own new answer
    for hop in rec.get("new_single_hops") or []:
        hop = _obj(hop, "new_single_hops item")
        answers = (_text(hop, "answer"), *_strs(hop.get("answer_alias"), "answer_alias"))
        if any(e.target_new == answers[0] and e.subject in _text(hop, "question") for e in edits):
            probes.append(Probe(_text(hop, "question"), "reliability", answers, label="single_hop"))
    return Case(f"mquake-{cid}", tuple(edits), tuple(probes))


def _postedit_query(rec: Mapping[str, Any], index: int) -> tuple[str, Edit, Probe]:
    edit = formats.edit_from_record(rec, "postedit", index)
    qtype = _text(rec, "query_type")
    kind = {"naive": "reliability", "paraphrase": "generalization", "neighbor": "locality"}.get(qtype)
    if kind is None:
        raise InvalidEdit(f"unknown query_type {qtype!r} (expected naive, paraphrase or neighbor)")
    old = (edit.target_old,) if edit.target_old else ()
    reference = rec.get("response_before_edit")
    if reference is not None and not isinstance(reference, str):
        raise InvalidEdit("response_before_edit must be a string")
    answers = (edit.target_new,) if kind != "locality" else _strs(rec.get("query_target"), "query_target") or old
    probe = Probe(_text(rec, "query"), kind, answers, old if kind != "locality" else (edit.target_new,),
                  reference=reference, label=qtype)
    return edit.id, edit, probe


_READERS: dict[str, Callable[[Mapping[str, Any], int], Case]] = {
    "counterfact": _counterfact, "zsre": _zsre, "knowedit": _knowedit, "qaedit": _qaedit, "mquake": _mquake,
    "wise": _wise, "triviaqa": _triviaqa,
}


def detect(rec: Any) -> str:
    """The dataset format of one record, from its keys."""
    if isinstance(rec, Mapping):
        rewrite = rec.get("requested_rewrite")
        if isinstance(rewrite, list) and "questions" in rec:
            return "mquake"
        if isinstance(rewrite, str) and "query" in rec:
            return "postedit"
        if isinstance(rewrite, str):
            return "postedit-edits"
        found = formats._classify(rec)
        if found in _READERS:
            return found
    keys = ", ".join(sorted(map(str, rec))) if isinstance(rec, Mapping) else type(rec).__name__
    raise InvalidEdit(f"cannot tell the dataset format from a record with keys {keys}; "
                      f"pass format= one of {', '.join(DATASET_FORMATS)}")


def _distinct(case: Case, edit_ids: set[str], case_ids: set[str]) -> Case:
    """``case`` with every edit id not yet in ``edit_ids`` and its own id not yet in ``case_ids`` (a
    repeat becomes ``id#2``, ...), recorded there. QAEdit's ids repeat across its NQ, TriviaQA and
    SimpleQA parts; merging its records by id dropped 39 of 1,000 edits."""
    edits = []
    for e in case.edits:
        new = formats.distinct_id(e.id, edit_ids)
        edit_ids.add(new)
        edits.append(e if new == e.id else replace(e, id=new))
    cid = formats.distinct_id(case.id, case_ids)
    case_ids.add(cid)
    if cid == case.id and all(a is b for a, b in zip(edits, case.edits, strict=True)):
        return case
    return Case(cid, tuple(edits), case.probes)


def _convert(path: str, recs: Iterable[tuple[str, int | None, Any]], fmt: str, n: int | None,
             skipped: list[str] | None) -> tuple[str, list[Case]]:
    cases: list[Case] = []
    # edit and case ids so far: a dataset's repeated ids must not merge two cases' edits
    edit_ids: set[str] = set()
    case_ids: set[str] = set()
    post: dict[str, tuple[Edit, list[Probe]]] = {}
    for index, (where, line, rec) in enumerate(recs):
        try:
            if fmt == "auto":
                fmt = detect(rec)
                if fmt == "postedit-edits":
                    raise InvalidEdit("this is a PostEdit edit_data file; load its query_data.json, "
                                      "which names the edits it probes")
            if fmt == "postedit":
                eid, edit, probe = _postedit_query(_obj(rec, "a record"), index)
                if eid not in post and n is not None and len(post) >= n:
                    continue
                post.setdefault(eid, (edit, []))[1].append(probe)
            else:
                if n is not None and len(cases) >= n:
                    break
                cases.append(_distinct(_READERS[fmt](_obj(rec, "a record"), index), edit_ids, case_ids))
        except InvalidEdit as e:
            if skipped is None or fmt in ("auto", "postedit-edits"):
                raise EditFileError(path, f"{where}: {e}" if where else str(e), line=line) from e
            skipped.append(f"line {line}: {e}")
            log.warning("%s:%s: skipping bad record: %s", path, line, e)
    if fmt == "postedit":
        cases = [Case(eid, (edit,), tuple(probes)) for eid, (edit, probes) in post.items()]
    return fmt, cases


def load_dataset(path: str | os.PathLike[str], format: str = "auto", n: int | None = None,
                 edits_path: str | os.PathLike[str] | None = None, on_error: str = "raise") -> Dataset:
    """Load a benchmark file as :class:`Case` objects; ``n`` keeps the first n cases.

    For PostEdit, ``path`` is the ``query_data.json``; the edits in ``edits_path``
    (default: ``edit_data.json`` next to it, when present) join the memory as
    :attr:`Dataset.extra_edits`. ``on_error="skip"`` leaves out bad records (listed
    in :attr:`Dataset.skipped`, with a warning each) instead of raising. Raises
    :class:`EditFileError` for an unreadable or malformed file, :class:`ConfigError`
    for an unknown format or ``on_error``.
    """
    if format != "auto" and format not in DATASET_FORMATS:
        raise ConfigError(f"unknown dataset format {format!r}; known: auto, {', '.join(DATASET_FORMATS)}")
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    p = Path(path)
    skipped: list[str] | None = [] if on_error == "skip" else None
    trivia = _trivia_object(p) if format in ("auto", "triviaqa") else None
    fmt, cases = _convert(str(p), formats.records(p) if trivia is None else trivia[0], format, n, skipped)
    if not cases:
        raise EditFileError(str(p), "the file holds no benchmark cases")
    if trivia is not None and trivia[1]:  # the kept questions concern no edit: spread them over the cases
        cases = [replace(c, probes=c.probes + tuple(trivia[1][i::len(cases)])) for i, c in enumerate(cases)]
    extra: list[Edit] = []
    if fmt == "postedit":
        sibling = Path(edits_path) if edits_path is not None else p.with_name("edit_data.json")
        if edits_path is not None or sibling.exists():
            quiet = logging.getLogger(formats.__name__)
            level = quiet.level
            quiet.setLevel(logging.ERROR)  # PostEdit's edit sets hold empty targets; counted below, not listed
            try:
                extra = formats.read_edits(sibling, "postedit", on_error=on_error)
            finally:
                quiet.setLevel(level)
    return Dataset(p.stem if p.stem not in ("query_data", "edit_data") else f"{p.parent.name}-{p.stem}",
                   fmt, cases, extra, skipped or [])
