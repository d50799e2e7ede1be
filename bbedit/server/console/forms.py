"""Reading the console's forms: an edit from the add/change form with an error per field, a pasted
conversation, labelled calibration questions. Every error names what is wrong in words a person reads
next to the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bbedit.errors import InvalidEdit
from bbedit.types import Edit, Message

MAX_FIELD = 2000  # characters of one field
MAX_ALIASES = 50
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:#-]{0,99}")
EDIT_FIELDS = ("subject", "aliases", "prompt", "target_new", "target_old", "id")
LABELS = {"subject": "Subject", "aliases": "Aliases", "prompt": "Prompt", "target_new": "New value",
          "target_old": "Old value", "id": "Edit id"}
ROLES = ("system", "user", "assistant")


@dataclass
class EditForm:
    """The values typed into the edit form (as text), and the errors found, by field ("" for the form)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, edit: Edit) -> EditForm:
        return cls({"subject": edit.subject, "aliases": "\n".join(edit.aliases), "prompt": edit.prompt,
                    "target_new": edit.target_new, "target_old": edit.target_old or "", "id": edit.id})


def _text(form: Mapping[str, Any], name: str) -> str:
    v = form.get(name)
    return v if isinstance(v, str) else ""


def read_edit_form(form: Mapping[str, Any], *, new: bool) -> tuple[EditForm, dict[str, Any] | None]:
    """The form's edit fields as :class:`Edit` keyword arguments, or None with ``errors`` filled in.
    ``new``: the id may be given (else it is made); an existing edit's id is not a field."""
    f = EditForm({k: _text(form, k) for k in EDIT_FIELDS if new or k != "id"})
    for k, v in f.values.items():
        if len(v) > MAX_FIELD * (MAX_ALIASES if k == "aliases" else 1):
            f.errors[k] = f"{LABELS[k]} is too long (at most {MAX_FIELD} characters)."
    for k in ("subject", "prompt", "target_new"):
        if not f.values[k].strip() and k not in f.errors:
            f.errors[k] = f"{LABELS[k]} is required."
    aliases = [a.strip() for a in f.values["aliases"].splitlines() if a.strip()]
    if len(aliases) > MAX_ALIASES:
        f.errors["aliases"] = f"At most {MAX_ALIASES} aliases, one per line."
    elif any(len(a) > 200 for a in aliases):
        f.errors["aliases"] = "An alias is longer than 200 characters; write one alias per line."
    if new and f.values["id"].strip() and not ID_PATTERN.fullmatch(f.values["id"].strip()):
        f.errors["id"] = ("Use up to 100 letters, digits and . _ : # - (starting with a letter or digit), or "
                          "leave it empty for a generated id.")
    if f.errors:
        return f, None
    kwargs: dict[str, Any] = {"subject": f.values["subject"].strip(), "prompt": f.values["prompt"].strip(), "target_new": f.values["target_new"].strip(),
                              "target_old": f.values["target_old"].strip() or None, "aliases": tuple(aliases)}
    if new and f.values["id"].strip():
        kwargs["id"] = f.values["id"].strip()
    try:
        Edit(**kwargs)
    except InvalidEdit as e:
        f.errors[_field_of(str(e))] = str(e)
        return f, None
    return f, kwargs


def _field_of(message: str) -> str:
    """The form field an :class:`InvalidEdit` message is about ("" when it names none)."""
    m = re.search(r"field '(\w+)'|edit (alias)", message)
    name = (m.group(1) or m.group(2)) if m else ""
    name = "aliases" if name == "alias" else name
    return name if name in EDIT_FIELDS else ""


def read_conversation(text: str) -> list[Message]:
    """A question, or a conversation pasted as lines ``user: ...`` / ``assistant: ...`` / ``system: ...``
    (a line without a role continues the turn above it). Raises :class:`ValueError` with a message for
    the person when there is no question to answer."""
    text = text.strip()
    if not text:
        raise ValueError("Type a question, or paste a conversation with one 'user:' / 'assistant:' turn per line.")
    head = re.compile(r"^\s*(system|user|assistant)\s*:\s?(.*)$", re.IGNORECASE)
    lines = text.splitlines()
    if not head.match(lines[0]):
        return [{"role": "user", "content": text}]
    turns: list[Message] = []
    for line in lines:
        m = head.match(line)
        if m:
            turns.append({"role": m.group(1).lower(), "content": m.group(2)})
        else:
            turns[-1]["content"] += "\n" + line
    for t in turns:
        t["content"] = t["content"].strip()
    if not any(t["role"] == "user" and t["content"] for t in turns):
        raise ValueError("The conversation has no user turn with text.")
    if turns[-1]["role"] != "user":
        raise ValueError("The conversation must end with a 'user:' turn: that is the question answered.")
    return turns
