"""Import and export of edit sets: bbedit's native JSONL and the public benchmark formats.

Readers live in one table keyed by format name (``_SPECS``); each turns one record
into an :class:`~bbedit.types.Edit`. Records come from either container, a JSON
array (``.json``) or JSON lines (``.jsonl``), whatever their format. Imported
edits get deterministic ids (``cf-17``, ``zsre-3``, ``postedit-5``) so importing a
file twice yields the same edits.

Slightly over 500 lines: one reader and one writer per supported dataset format, kept side by side so
that a format's import and export stay symmetric.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bbedit.errors import ConfigError, EditFileError, InvalidEdit
from bbedit.types import EDIT_FIELDS, Edit

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "counterfact", "zsre", "knowedit", "postedit", "qaedit", "wise", "triviaqa")
PathLike = str | os.PathLike[str]
_LINE_SUFFIXES = (".jsonl", ".ndjson")
_WS = re.compile(r"[ \t\r\n]*")


def _skip_ws(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos


# ----------------------------------------------------------------------------- guess_subject

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CONNECTORS = _words("of de the and von van der den da di du la le del des do dos das y e in al el bin ibn zu af at for on upon &")
_INITIAL = _words("""a an the what who whom whose which where when why how in on at from by for with to is was are were
does did do has have had can could will would name tell this that these those its his her their our my your regarding as
after before during since under of and but if then there here it he she they we i you player""")
_ARTICLES = frozenset({"The", "A", "An", "My"})  # kept before a capital: "The Midway State", "A Little Curious"
_TITLE = re.compile(r"\d+(?:st|nd|rd|th)|Jr\.?|Sr\.?|Duke|Duchess|Baron|Baroness|Viscount|Viscountess|Count|Countess|Earl|Marquess|Lord|Lady|Prince|Princess|King|Queen")
# offices named with capitals ("the Chancellor of Germany", "the Prime Minister of India"): the relation,
# not part of the subject's name; after "of the" the name ends in a capitalised word ("of the United
# States", not "of the Casa Amatller architect")
_OFFICE = r"(?:President|Vice|Prime|Minister|Chancellor|Mayor|Governor|Premier|Chairman|Chairwoman|Chair|Chief|" \
          r"Executive|Officer|Secretary|General|Director|Leader|Speaker|Deputy|Attorney|Foreign)"
_REL_OF = re.compile(r"(?:(?:What|Who|Which|When|Where)\s+(?:is|was|are|were)\s+)?[Tt]he\s+(?:(?:[a-z'-]+|[A-Z]{2,}|"
                     + _OFFICE + r")\s+)+?(?:of|for)\s+"
                     r"(?:the\s+(?:film|album|song|series|novel|book|work|genus)\s+)?(?:([A-Z0-9][^?]*?)|the\s+([A-Z0-9][^?]*?\b[A-Z0-9][\w'.-]*))"
                     r"(?:\s+(?:is|was|are|were)(?:\s+(?:what|who|whom|when|where))?)?\s*\??")
_REL_STOP = re.compile(r"\b(?:is|was|are|were|who|whom|what|when|which|where|that|whose|by|located)\b|'s\b")
_HEAD_NOUNS = _words("district railway station line series dynasty county province municipality")
_AUX = _words("is was are were can has had have will would could")
_EXT_STOP = _words("the a an which who that also not")
_FALLBACK = re.compile(r"\b(?:of|does|did|is|was)\s+(.+?)(?:\s+(?:is|was|are|were)\b.*)?[?.!]*\s*$", re.I)
_Tok = tuple[str, str, str]  # word, possessive suffix, trailing punctuation


def _cap(tok: str) -> bool | str:
    """True for a capitalized word ("Paris", "iPhone"), "digit" for "250", else False."""
    t = tok.lstrip("\"'(“‘")
    if t[:1].isdigit():
        return "digit"
    return bool(t) and (t[0].isupper() or (t[0].isalpha() and any(c.isupper() for c in t[1:])))


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    words = text.split()
    for i, w in enumerate(words):
        core = w.rstrip(",?:;")
        punct = w[len(core):]
        if i == len(words) - 1 and core.endswith(".") and not re.search(r"(^|\.)[A-Z]\.$", core):
            core, punct = core[:-1], "." + punct
        m = re.fullmatch(r"(.{2,}?)('s|’s|')", core)
        out.append((m.group(1), m.group(2), punct) if m else (core, "", punct))
    return out


def _runs(toks: list[_Tok]) -> list[tuple[int, int]]:
    """Spans of capitalized words, with inner connectors ("Edwin of Northumbria")."""
    runs: list[tuple[int, int]] = []
    start: int | None = None

    def close(end: int) -> None:
        nonlocal start
        if start is not None:
            while end > start and toks[end - 1][0] in _CONNECTORS:
                end -= 1
            if any(_cap(t) is True for t, _, _ in toks[start:end]):
                runs.append((start, end))
        start = None

    for i, (tok, poss, punct) in enumerate(toks):
        nxt = toks[i + 1][0] if i + 1 < len(toks) else ""
        initial = i == 0 or toks[i - 1][2][:1] in ("?", ".", "!")
        cap = _cap(tok)
        if cap and initial and tok.lower() in _INITIAL and not (tok in _ARTICLES and _cap(nxt) is True):
            cap = False
        if cap or (start is not None and tok in _CONNECTORS):
            start = i if start is None else start
            joins = punct == "," and _TITLE.fullmatch(nxt) is not None  # "Arthur Wellesley, 1st Duke of ..."
            if (punct and not joins) or (poss and _cap(nxt) is not True):
                close(i + 1)
        else:
            close(i)
    close(len(toks))
    return runs


def guess_subject(prompt: str) -> str:
    """Guess the subject of a prompt that comes without one (PostEdit): a heuristic.

    Tries, in order: "The <relation> of <Subject> is" / "What is the <relation> of
    <Subject>?"; the longest run of capitalized words, inner connectors allowed
    ("Edwin of Northumbria", "Ferrari 250 GTO"), extended over a lowercase head noun
    ("Nizamabad district"); the phrase after "of"/"does"/"is"; the prompt itself minus
    a trailing "is"/"was". Never raises; returns "" only for an empty prompt.
    """
    text = " ".join(prompt.split())
    m = _REL_OF.fullmatch(text)
    if m and not _REL_STOP.search(name := m.group(1) or m.group(2)):
        return name
    toks = _tokens(text)
    runs = _runs(toks)
    if runs:
        s, e = max(runs, key=lambda r: (sum(t not in _CONNECTORS for t, _, _ in toks[r[0]:r[1]]), -r[0]))
        if s == 0 or (s == 1 and toks[0][0] not in _ARTICLES):  # sentence subject: run up to the verb
            j = e
            while (j < len(toks) and j - e < 4 and not (toks[j - 1][1] or toks[j - 1][2])
                   and toks[j][0] not in _AUX and toks[j][0].lower() not in _EXT_STOP):
                j += 1
            if e < j < len(toks) and (toks[j][0] in _AUX or toks[j - 1][2] == ","):
                e = j
        while e < len(toks) and toks[e][0] in _HEAD_NOUNS and not (toks[e - 1][1] or toks[e - 1][2]):
            e += 1
        return " ".join(t + (p if k < e - 1 else "") + ("," if c == "," and k < e - 1 else "")
                        for k, (t, p, c) in enumerate(toks[s:e], start=s))
    m = _FALLBACK.search(text)
    if m:
        return m.group(1).strip()
    return re.sub(r"\s+(?:is|was|are|were)\s*$", "", text).strip(" ?.!") or text


# ----------------------------------------------------------------------------- record readers

def _obj(rec: Any, what: str = "a record") -> Mapping[str, Any]:
    if not isinstance(rec, Mapping):
        raise InvalidEdit(f"{what} must be a JSON object, got {_json_type(rec)}")
    return rec


def _opt(rec: Mapping[str, Any], key: str) -> str | None:
    """``rec[key]`` as a string or None; a list gives its first item (``ground_truth: ["x"]``)."""
    value = rec.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is not None and not isinstance(value, str):
        raise InvalidEdit(f"field {key!r} must be a string, got {_json_type(value)}")
    return value


def _req(rec: Mapping[str, Any], key: str) -> str:
    value = _opt(rec, key)
    if value is None:
        raise InvalidEdit(f"missing field {key!r}")
    return value


def _ident(rec: Mapping[str, Any], key: str, index: int, prefix: str) -> tuple[str, str]:
    """(edit id, source locator) from the record's own id field, else its index."""
    value = rec.get(key) if key else None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        return f"{prefix}-{index}", f"record={index}"
    return f"{prefix}-{value}", f"{key}={value}"


def distinct_id(id_: str, taken: Container[str]) -> str:
    """``id_``, or the first ``id_#n`` (n = 2, 3, ...) not in ``taken``: for datasets whose record ids
    repeat across their parts (QAEdit has 39 repeats in 1,000 records), so that no edit is dropped."""
    if id_ not in taken:
        return id_
    return next(f"{id_}#{n}" for n in itertools.count(2) if f"{id_}#{n}" not in taken)


def _read_native(rec: Any, index: int, prefix: str) -> Edit:
    return Edit.from_dict(_obj(rec, "an edit"))


def _flat(name: str, prompt: str, new: str, old: str, id_key: str = "") -> Callable[[Any, int, str], Edit]:
    """A reader for one flat record per edit, with these key names (and ``subject``)."""

    def read(rec: Any, index: int, prefix: str) -> Edit:
        rec = _obj(rec)
        if name == "counterfact" and rec.get("requested_rewrite") is not None:
            return _read_rome(rec, index, prefix)
        id_, where = _ident(rec, id_key, index, prefix)
        return Edit(subject=_req(rec, "subject"), prompt=_req(rec, prompt), target_new=_req(rec, new),
                    target_old=_opt(rec, old), id=id_, source=f"{name}:{where}")

    return read


def _read_rome(rec: Mapping[str, Any], index: int, prefix: str) -> Edit:
    """Original ROME CounterFact: ``requested_rewrite`` holds a ``{}`` template and ``{"str": ...}`` targets."""
    rewrite = _obj(rec["requested_rewrite"], "requested_rewrite")
    subject, template = _req(rewrite, "subject"), _req(rewrite, "prompt")
    if "{}" not in template:
        raise InvalidEdit("requested_rewrite.prompt has no '{}' placeholder for the subject")
    true = rewrite.get("target_true")
    id_, where = _ident(rec, "case_id", index, prefix)
    return Edit(subject=subject, prompt=template.replace("{}", subject), id=id_, source=f"counterfact:{where}",
                target_new=_req(_obj(rewrite.get("target_new"), "requested_rewrite.target_new"), "str"),
                target_old=None if true is None else _opt(_obj(true, "requested_rewrite.target_true"), "str"))


def other_name(query: str, subject: str, prompts: Sequence[str]) -> str | None:
    """The name ``query`` uses for ``subject`` when it is one of ``prompts`` with the subject named
    another way ("The occupation of Samuel Clemens is" against "The occupation of Mark Twain is"), else None."""
    q = " ".join(query.split())
    for prompt in prompts:
        prompt = " ".join(prompt.split())
        at = prompt.find(subject)
        if at < 0:
            continue
        head, tail = prompt[:at], prompt[at + len(subject):]
        if q.startswith(head) and q.endswith(tail) and len(q) > len(head) + len(tail):
            name = q[len(head):len(q) - len(tail)].strip(" ,")
            if name and name != subject and len(name) <= 120:
                return name
    return None


def _read_knowedit(rec: Any, index: int, prefix: str) -> Edit:
    """KnowEdit: a flat record whose ``Subject_Aliasing`` portability prompts, where they are the edit's
    prompt (or rephrase) with the subject named another way, give the subject's aliases."""
    edit = _flat("knowedit", "prompt", "target_new", "ground_truth")(rec, index, prefix)
    rephrase = rec.get("rephrase_prompt") or rec.get("rephrase")
    prompts = [edit.prompt, *([rephrase] if isinstance(rephrase, str) else [])]
    port = rec.get("portability")
    items = port.get("Subject_Aliasing") if isinstance(port, Mapping) else None
    aliases: list[str] = []
    for item in items if isinstance(items, list) else []:
        texts = item.get("prompt") if isinstance(item, Mapping) else None
        for text in [texts] if isinstance(texts, str) else texts if isinstance(texts, list) else []:
            name = other_name(text, edit.subject, prompts) if isinstance(text, str) else None
            if name is not None and name.casefold() not in {a.casefold() for a in (edit.subject, *aliases)}:
                aliases.append(name)
    return replace(edit, aliases=tuple(aliases)) if aliases else edit


def _read_postedit(rec: Any, index: int, prefix: str) -> Edit:
    rec = _obj(rec)
    prompt = _req(rec, "requested_rewrite")
    id_, where = _ident(rec, "edit_id", index, prefix)
    return Edit(subject=guess_subject(prompt) or prompt, prompt=prompt, target_new=_req(rec, "target_new"),
                target_old=_opt(rec, "target_old"), id=id_, source=f"postedit:{where}")


def _read_question(name: str, prompt: str) -> Callable[[Any, int, str], Edit]:
    """A reader for records whose subject may be missing (then guessed from the prompt):
    WISE's temporal and hallucination sets, KnowEdit's Sanitation (TriviaQA) questions."""

    def read(rec: Any, index: int, prefix: str) -> Edit:
        rec = _obj(rec)
        text = _req(rec, prompt)
        id_, where = _ident(rec, "id" if "id" in rec else "case_id", index, prefix)
        return Edit(subject=_opt(rec, "subject") or guess_subject(text) or text, prompt=text,
                    target_new=_req(rec, "target_new"), target_old=_opt(rec, "ground_truth"),
                    id=id_, source=f"{name}:{where}")

    return read


@dataclass(frozen=True)
class _Spec:
    read: Callable[[Any, int, str], Edit]
    id_prefix: str
    write: Callable[[Edit, int], dict[str, Any]] | None = None  # (edit, record number) -> record
    array: bool = True  # written as a JSON array (else JSON lines)


_SPECS: dict[str, _Spec] = {
    "jsonl": _Spec(_read_native, "", lambda e, n: e.to_dict(), array=False),
    "counterfact": _Spec(_flat("counterfact", "prompt", "target_new", "ground_truth", "case_id"), "cf",
                         lambda e, n: {"case_id": n, "prompt": e.prompt, "subject": e.subject,
                                       "target_new": e.target_new, "ground_truth": e.target_old or ""}),
    "zsre": _Spec(_flat("zsre", "src", "alt", "answers"), "zsre"),
    "knowedit": _Spec(_read_knowedit, "knowedit"),
    "qaedit": _Spec(_flat("qaedit", "prompt", "target", "", "id"), "qaedit"),
    "wise": _Spec(_read_question("wise", "prompt"), "wise"),
    "triviaqa": _Spec(_read_question("triviaqa", "question"), "trivia"),
    "postedit": _Spec(_read_postedit, "postedit",
                      lambda e, n: {"edit_id": n, "requested_rewrite": e.prompt,
                                    "target_old": e.target_old or "", "target_new": e.target_new}),
}
WRITABLE_FORMATS = tuple(name for name, spec in _SPECS.items() if spec.write is not None)


def _classify(rec: Any) -> str | None:
    """The format a record's keys say it is in, or None."""
    if not isinstance(rec, Mapping):
        return None
    keys, rewrite = set(rec), rec.get("requested_rewrite")
    if isinstance(rewrite, Mapping):
        return "counterfact"
    if isinstance(rewrite, str) and "subject" not in keys:
        return "postedit"
    if {"src", "alt"} <= keys:
        return "zsre"
    if {"prompt", "target", "rephrase"} <= keys:
        return "qaedit"
    if {"question", "target_new"} <= keys:
        return "triviaqa"
    if {"prompt", "target_new"} <= keys and ("ood_rephrase" in keys or
                                            ("locality_prompt" in keys and "ground_truth" not in keys)):
        return "wise"
    if {"subject", "prompt", "target_new"} <= keys:
        if keys <= set(EDIT_FIELDS):
            return "jsonl"
        if keys & {"locality", "portability"} or isinstance(rec.get("ground_truth"), list):
            return "knowedit"
        if "ground_truth" in keys:
            return "counterfact"
    return None


# ----------------------------------------------------------------------------- containers

def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), type(value).__name__)


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise EditFileError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise EditFileError(path, f"cannot read: {e.strerror or e}") from e


_Record = tuple[str, int | None, Any, str | None]  # where ("record 3"/""), line, value, JSON error


# KnowEdit's Sanitation set (TriviaQA questions) is one JSON object of named lists: the edits under
# K_F (train file) or success (test file), the questions whose answers must be kept under K_R / locality
EDIT_SECTIONS = ("K_F", "success")
KEEP_SECTIONS = ("K_R", "locality")


def object_sections(value: Any) -> dict[str, list[Any]] | None:
    """The named record lists of a file in that object form, or None for any other JSON value."""
    if not isinstance(value, dict) or not value or not set(value) <= {*EDIT_SECTIONS, *KEEP_SECTIONS}:
        return None
    if not any(k in value for k in EDIT_SECTIONS) or not all(isinstance(v, list) for v in value.values()):
        return None
    return value


def _records(path: str, text: str) -> Iterator[_Record]:
    """The file's records, lazily: a JSON array's items, or one JSON value per line."""
    if not path.lower().endswith(_LINE_SUFFIXES) and text.strip():
        if text.lstrip().startswith("["):
            yield from _array_records(path, text)
            return
        try:
            value = json.loads(text)  # cheap for JSON lines: fails right after the first value
        except json.JSONDecodeError:
            value = ...  # JSON lines in a file not named .jsonl
        if value is not ... and (sections := object_sections(value)) is not None:
            for name in EDIT_SECTIONS:
                for i, rec in enumerate(sections.get(name, ())):
                    yield f"{name}[{i}]", None, rec, None
            return
        if value is not ... and (path.lower().endswith(".json") or not isinstance(value, dict)):
            raise EditFileError(path, f"expected a JSON array of edit records, got a JSON {_json_type(value)}")
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 may sit raw inside strings
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            yield "", n, json.loads(line), None
        except json.JSONDecodeError as e:
            yield "", n, None, f"invalid JSON: {e.msg} (column {e.colno})"


def _array_records(path: str, text: str) -> Iterator[_Record]:
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, text.index("[") + 1)
    index, line, counted = 0, 1, 0
    while not text.startswith("]", pos):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise EditFileError(path, f"record {index}: invalid JSON: {e.msg} (column {e.colno})", line=e.lineno) from e
        line, counted = line + text.count("\n", counted, pos), pos
        yield f"record {index}", line, value, None
        index += 1
        pos = _skip_ws(text, end)
        if text.startswith(",", pos):
            pos = _skip_ws(text, pos + 1)
        elif not text.startswith("]", pos):
            raise EditFileError(path, f"invalid JSON after record {index - 1}: expected ',' or ']'",
                                line=text.count("\n", 0, pos) + 1)
    if _skip_ws(text, pos + 1) != len(text):
        raise EditFileError(path, "extra data after the JSON array", line=text.count("\n", 0, pos) + 1)


def _detect(path: str, text: str) -> str:
    suffix_says_lines = path.lower().endswith(_LINE_SUFFIXES)
    first = next(_records(path, text), None)
    if first is None or first[3] is not None:
        if suffix_says_lines:
            return "jsonl"  # empty, or the reader will report the bad line
        raise EditFileError(path, "cannot tell the format: the file holds no edit records")
    found = _classify(first[2])
    if found is not None:
        return found
    if suffix_says_lines:
        return "jsonl"  # the native reader will say which field is wrong, with its line
    rec = first[2]
    if isinstance(rec, Mapping) and isinstance(rec.get("requested_rewrite"), list):
        raise EditFileError(path, "cannot tell the format: looks like MQuAKE multi-hop cases, which are not an edit set")
    keys = ", ".join(sorted(map(str, rec))) if isinstance(rec, Mapping) else f"a JSON {_json_type(rec)}"
    raise EditFileError(path, f"cannot tell the format from the first record ({keys}); pass format= one of {', '.join(FORMATS)}")


# ----------------------------------------------------------------------------- public API

def records(path: PathLike) -> Iterator[tuple[str, int | None, Any]]:
    """A JSON array's or JSON-lines file's records as ``(where, line, value)``;
    ``where`` is ``"record N"`` for arrays, "" for lines. Raises :class:`EditFileError`
    for an unreadable file or broken JSON (with its line)."""
    path = os.fspath(path)
    for where, line, value, json_error in _records(path, _read_text(path)):
        if json_error is not None:
            raise EditFileError(path, json_error, line=line)
        yield where, line, value


def edit_from_record(rec: Any, format: str, index: int, id_prefix: str | None = None) -> Edit:
    """One record of an edit file in ``format`` (not ``auto``) as an :class:`Edit`;
    the id is ``<prefix>-<record id or index>``. Raises :class:`InvalidEdit`."""
    spec = _SPECS.get(format)
    if spec is None:
        raise ConfigError(f"unknown edit file format {format!r}; known formats: {', '.join(FORMATS)}")
    return spec.read(rec, index, spec.id_prefix if id_prefix is None else id_prefix)


def detect_format(path: PathLike) -> str:
    """The format of an edit file, one of :data:`FORMATS`, from its name and first record's keys.

    A ``.jsonl`` file whose first record fits no format is taken as native JSONL
    (reading it then reports the bad line). Raises :class:`EditFileError` when the
    file cannot be read or its format cannot be told.
    """
    path = os.fspath(path)
    return _detect(path, _read_text(path))


def iter_edits(path: PathLike, format: str = "auto", *, on_error: str = "raise",
               id_prefix: str | None = None, skipped: list[tuple[int | None, str]] | None = None) -> Iterator[Edit]:
    """The edits in a file, converted lazily; arguments and errors as for :func:`read_edits`. With
    ``on_error="skip"``, ``skipped`` (a list) also receives (line, message) of each bad record.

    The file is read, and ``format``/``on_error`` checked, before this returns.
    """
    if format != "auto" and format not in _SPECS:
        raise ConfigError(f"unknown edit file format {format!r}; known formats: auto, {', '.join(FORMATS)}")
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    path = os.fspath(path)
    text = _read_text(path)
    spec = _SPECS[_detect(path, text) if format == "auto" else format]
    return _convert(path, text, spec, on_error, spec.id_prefix if id_prefix is None else id_prefix, skipped)


def _same_as_seen(id_: str, content: dict[str, Any], seen: dict[str, tuple[dict[str, Any], str]]) -> str | None:
    """The id of an earlier record with this content under ``id_`` or one of its renamings
    (``id_#2``, ...), or None."""
    for n in itertools.count(1):
        cand = id_ if n == 1 else f"{id_}#{n}"
        if cand not in seen:
            return None
        if seen[cand][0] == {**content, "id": cand}:
            return cand
    return None  # pragma: no cover - the loop ends at the first free id


def _convert(path: str, text: str, spec: _Spec, on_error: str, prefix: str,
             skipped: list[tuple[int | None, str]] | None = None) -> Iterator[Edit]:
    seen: dict[str, tuple[dict[str, Any], str]] = {}
    index = -1
    for where, line, value, json_error in _records(path, text):
        index += 1
        place = where or f"line {line}"
        try:
            if json_error is not None:
                raise InvalidEdit(json_error)
            edit = spec.read(value, index, prefix)
            content = {k: v for k, v in edit.to_dict().items() if k != "created_at"}
            if edit.id in seen:
                same = _same_as_seen(edit.id, content, seen)
                if same is not None:
                    log.debug("%s: %s repeats edit %s; skipped", path, place, same)
                    continue
                if spec.read is _read_native:  # a user's own ids: a clash is a mistake to report
                    raise InvalidEdit(f"duplicate edit id {edit.id!r} (first at {seen[edit.id][1]})")
                # a dataset's ids may repeat across its parts (QAEdit: NQ, TriviaQA, SimpleQA): keep both
                first = edit.id
                edit = replace(edit, id=distinct_id(first, seen))
                content["id"] = edit.id
                log.info("%s: %s reuses id %s (first at %s) for another edit; stored as %s",
                         path, place, first, seen[first][1], edit.id)
            seen[edit.id] = (content, place)
        except InvalidEdit as e:
            message = f"{where}: {e}" if where else str(e)
            if on_error == "raise":
                raise EditFileError(path, message, line=line) from e
            log.warning("%s:%s: skipping bad edit record: %s", path, line, message)
            if skipped is not None:
                skipped.append((line, message))
            continue
        if edit.subject.lower() not in edit.prompt.lower():
            log.debug("%s: %s: subject %r does not occur in prompt %r", path, place, edit.subject, edit.prompt)
        yield edit


def read_edits(path: PathLike, format: str = "auto", *, on_error: str = "raise",
               id_prefix: str | None = None) -> list[Edit]:
    """Read an edit set in any of :data:`FORMATS` (``"auto"``: :func:`detect_format`).

    ``on_error="skip"`` logs a warning per bad record and returns the good ones.
    Records repeating an earlier edit exactly are dropped. ``id_prefix`` replaces
    the format's id prefix (``cf``, ``zsre``, ...), e.g. to import two zsRE files
    side by side. Raises :class:`EditFileError` (with the 1-based line, and
    "record N" for JSON arrays, N counted from 0) for an unreadable file, broken
    JSON array, or with ``on_error="raise"`` a bad record; :class:`ConfigError`
    for an unknown format or ``on_error`` value.
    """
    return list(iter_edits(path, format, on_error=on_error, id_prefix=id_prefix))


def _numbers(edits: list[Any], prefix: str) -> list[int]:
    """Record numbers for writing: N from an id ``<prefix>-N`` when free, else the next unused."""
    pattern = re.compile(re.escape(prefix) + r"-(\d+)")
    wanted = [int(m[1]) if (m := pattern.fullmatch(str(getattr(e, "id", "")))) else None for e in edits]
    reserved = set(wanted)
    free = (n for n in itertools.count() if n not in reserved)
    used: set[int] = set()
    for i, n in enumerate(wanted):
        wanted[i] = n = next(free) if n is None or n in used else n
        used.add(n)
    return [n for n in wanted if n is not None]


def write_edits(edits: Iterable[Edit], path: PathLike, format: str = "jsonl") -> int:
    """Write edits atomically (temp file in the same directory, fsync, rename); return the count.

    Writable formats: native ``jsonl`` (every field), ``counterfact`` (EasyEdit's
    flattened JSON) and ``postedit`` (its ``edit_data.json``; no subject). Raises
    :class:`ConfigError` for other formats, :class:`InvalidEdit` for an item that
    is not an :class:`Edit` (the target is then left as it was), ``OSError`` when
    the file cannot be written.
    """
    spec = _SPECS.get(format)
    write = spec.write if spec is not None else None
    if spec is None or write is None:
        raise ConfigError(f"cannot write edit format {format!r}; writable formats: {', '.join(WRITABLE_FORMATS)}")
    items = list(edits)
    numbers = _numbers(items, spec.id_prefix) if spec.array else list(range(len(items)))

    def lines() -> Iterator[str]:
        for i, (edit, number) in enumerate(zip(items, numbers, strict=True)):
            if not isinstance(edit, Edit):
                raise InvalidEdit(f"item {i} is not an Edit: {type(edit).__name__}")
            sep = ("[\n" if i == 0 else ",\n") if spec.array else ""
            yield sep + json.dumps(write(edit, number), ensure_ascii=False) + ("" if spec.array else "\n")
        if spec.array:
            yield "\n]\n" if items else "[]\n"

    _atomic_write(Path(path), lines())
    return len(items)


def _atomic_write(path: Path, chunks: Iterable[str]) -> None:
    """Write ``chunks`` to ``path`` so that readers see the old file or the whole new one."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
