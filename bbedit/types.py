"""Plain, frozen value types shared by every part of bbedit."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bbedit.errors import InvalidEdit

Message = dict[str, Any]
"""One chat message in OpenAI form: ``{"role": "user", "content": "..."}``."""

EDIT_FIELDS = (
    "id",
    "subject",
    "prompt",
    "target_new",
    "target_old",
    "aliases",
    "created_at",
    "supersedes",
    "source",
)


def new_edit_id() -> str:
    """A fresh, random edit id (``e_`` + 12 hex digits)."""
    return "e_" + uuid.uuid4().hex[:12]


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string with seconds precision."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def _req_str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidEdit(f"edit field {name!r} must be a non-empty string, got {value!r}")
    return value.strip()


def _check_unicode(name: str, value: str) -> None:
    """Lone surrogates (possible in JSON ``\\ud800`` escapes) cannot be stored as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidEdit(f"edit field {name!r} is not valid Unicode text: {e.reason} at position {e.start}") from None


@dataclass(frozen=True)
class Edit:
    """One fact update: ``prompt`` about ``subject`` should now be answered ``target_new``.

    ``prompt`` is a statement or question that names the subject ("The CEO of
    Acme is", "Who is the CEO of Acme?"); ``target_old`` is the answer being
    replaced, when known; ``aliases`` are other names of the subject that users
    may write. ``supersedes`` names the id of an earlier edit of the same fact
    that this one replaced. Raises :class:`InvalidEdit` on malformed fields.
    """

    subject: str
    prompt: str
    target_new: str
    target_old: str | None = None
    aliases: tuple[str, ...] = ()
    id: str = field(default_factory=new_edit_id)
    created_at: str = field(default_factory=utc_now)
    supersedes: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "subject", _req_str("subject", self.subject))
        set_(self, "prompt", _req_str("prompt", self.prompt))
        set_(self, "target_new", _req_str("target_new", self.target_new))
        set_(self, "id", _req_str("id", self.id))
        if self.target_old is not None:
            if not isinstance(self.target_old, str):
                raise InvalidEdit(f"edit field 'target_old' must be a string, got {self.target_old!r}")
            set_(self, "target_old", self.target_old.strip() or None)
        aliases = self.aliases
        if isinstance(aliases, str) or not isinstance(aliases, Sequence):
            raise InvalidEdit(f"edit field 'aliases' must be a list of strings, got {aliases!r}")
        clean = []
        for a in aliases:
            if not isinstance(a, str):
                raise InvalidEdit(f"edit alias must be a string, got {a!r}")
            if a.strip() and a.strip() != self.subject and a.strip() not in clean:
                clean.append(a.strip())
        set_(self, "aliases", tuple(clean))
        for name in ("supersedes", "source", "created_at"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise InvalidEdit(f"edit field {name!r} must be a string or null, got {v!r}")
        for name in ("subject", "prompt", "target_new", "target_old", "id", "supersedes", "source", "created_at"):
            if isinstance(v := getattr(self, name), str):
                _check_unicode(name, v)
        for a in self.aliases:
            _check_unicode("aliases", a)

    @property
    def names(self) -> tuple[str, ...]:
        """The subject followed by its aliases."""
        return (self.subject, *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with every field (aliases as a list)."""
        d = dataclasses.asdict(self)
        d["aliases"] = list(self.aliases)
        return {k: d[k] for k in EDIT_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Edit:
        """Build an edit from a dict in native form; unknown keys are an error.

        Raises :class:`InvalidEdit` when a required key is missing, a key is
        unknown, or a value has the wrong type.
        """
        if not isinstance(data, Mapping):
            raise InvalidEdit(f"an edit must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - set(EDIT_FIELDS)
        if unknown:
            raise InvalidEdit(f"unknown edit field(s): {', '.join(sorted(unknown))}")
        missing = [k for k in ("subject", "prompt", "target_new") if k not in data]
        if missing:
            raise InvalidEdit(f"missing required edit field(s): {', '.join(missing)}")
        kw = {k: v for k, v in data.items() if v is not None or k in ("target_old", "supersedes", "source")}
        if "aliases" in kw and kw["aliases"] is not None:
            if isinstance(kw["aliases"], str) or not isinstance(kw["aliases"], Sequence):
                raise InvalidEdit(f"edit field 'aliases' must be a list of strings, got {kw['aliases']!r}")
            kw["aliases"] = tuple(kw["aliases"])
        return cls(**kw)

    def replace(self, **changes: Any) -> Edit:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Hit:
    """An edit retrieved for a query, with its retrieval similarity (cosine, -1..1)."""

    edit: Edit
    score: float


@dataclass(frozen=True)
class GateDecision:
    """What the scope gate decided for one query.

    ``edit`` is the edit the query is about, or None when the query is out of
    scope; ``score`` is the gate's probability for the best candidate (0..1);
    ``candidates`` are all candidates considered, best first, with their scores.
    """

    edit: Edit | None
    score: float
    candidates: tuple[tuple[Edit, float], ...] = ()

    @property
    def in_scope(self) -> bool:
        return self.edit is not None


@dataclass(frozen=True)
class Answer:
    """The answer to one query, and how it was produced.

    ``edit`` is the edit applied (None when the query passed through untouched);
    ``score`` the gate's score; ``original_text`` the unedited answer when the
    editor produced one (post-editing) or None; ``timings`` seconds per stage;
    ``route`` the :class:`bbedit.routing.Route` it was answered on (every candidate
    the gate scored, for explanations).
    """

    text: str
    edit: Edit | None
    score: float
    original_text: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    route: Any = None

    @property
    def edited(self) -> bool:
        return self.edit is not None


@dataclass(frozen=True)
class Completion:
    """One model reply with what it cost: token counts as the server reports them
    (-1 when it reports none), wall time, and why generation stopped."""

    text: str
    prompt_tokens: int = -1
    completion_tokens: int = -1
    latency_s: float = 0.0
    finish_reason: str = ""
