"""Reading an uploaded edit file for the import preview: every format ``bbedit edits import`` reads
(through :mod:`bbedit.memory.formats`, so the same edits come out), the errors per record, and which
edits are new, already stored, or clash with a stored edit of the same id."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bbedit.errors import ConfigError, EditFileError
from bbedit.types import Edit


@dataclass
class Preview:
    """What an import would do: ``fresh`` edits to create, ``present`` ones already stored as they are,
    ``problems`` (where, message) per record that will not be created, and the ``format`` read."""

    format: str
    filename: str
    fresh: list[Edit] = field(default_factory=list)
    present: list[Edit] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def records(self) -> int:
        return len(self.fresh) + len(self.present) + len(self.problems)


def _where(place: str, message: str) -> tuple[str, str]:
    """("record 3", "missing ...") from a message that starts with its place."""
    if message.startswith("record ") and ": " in message:
        head, rest = message.split(": ", 1)
        return head, rest
    return place or "file", message


def preview(data: bytes, filename: str, fmt: str, id_prefix: str | None, memory: Any, limit: int) -> Preview:
    """Parse ``data`` (an uploaded file named ``filename``) as format ``fmt`` ("auto" to detect) and compare it
    with ``memory``. Raises :class:`EditFileError` when the file as a whole cannot be read (not UTF-8,
    broken JSON array, unknown layout) and :class:`ConfigError` for an unknown format or a file with
    more than ``limit`` edits."""
    from bbedit.memory.formats import detect_format, iter_edits

    suffix = Path(filename).suffix.lower() if Path(filename).suffix.lower() in (".json", ".jsonl", ".ndjson") else ".json"
    fd, tmp = tempfile.mkstemp(prefix="bbedit-import-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            used = detect_format(tmp) if fmt == "auto" else fmt
            skipped: list[tuple[int | None, str]] = []
            edits = list(iter_edits(tmp, used, on_error="skip", id_prefix=id_prefix or None, skipped=skipped))
        except EditFileError as e:
            where = f"{e.path}:{e.line}: " if e.line is not None else f"{e.path}: "
            text = str(e)
            raise EditFileError(filename, text[len(where):] if text.startswith(where) else text, line=e.line) from None
        if len(edits) > limit:
            raise ConfigError(f"{filename} holds {len(edits)} edits; an import takes at most {limit}")
        out = Preview(used, filename, problems=[_where(f"line {line}" if line is not None else "", m.replace(tmp, filename))
                                                for line, m in skipped])
        memory.refresh()
        for edit in edits:
            if edit.id not in memory and not _stored(memory, edit.id):
                out.fresh.append(edit)
                continue
            old = memory.get(edit.id)
            if (old.subject, old.prompt, old.target_new) == (edit.subject, edit.prompt, edit.target_new):
                out.present.append(edit)
            else:
                out.problems.append((f"edit {edit.id}", f"a different edit with id {edit.id!r} is already stored; "
                                                        f"import with an id prefix to keep both"))
        return out
    finally:
        Path(tmp).unlink(missing_ok=True)


def _stored(memory: Any, edit_id: str) -> bool:
    """Whether a superseded (not active) edit has this id."""
    from bbedit.errors import EditNotFound

    try:
        memory.get(edit_id)
    except EditNotFound:
        return False
    return True
