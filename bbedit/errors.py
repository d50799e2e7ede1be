"""bbedit's exceptions: one base class, one specific subclass per failure.

Subclasses also inherit from the builtin that callers would naturally catch
(``ValueError`` for bad input, ``KeyError`` for unknown ids), so existing
``except`` clauses keep working.
"""

from __future__ import annotations


class BBEditError(Exception):
    """Base class of every error bbedit raises on purpose."""


class ConfigError(BBEditError, ValueError):
    """A configuration value or argument is invalid or inconsistent."""


class InvalidEdit(BBEditError, ValueError):
    """An edit is malformed (missing field, empty target, subject not a string...)."""


class EditFileError(BBEditError, ValueError):
    """An edit file cannot be parsed; ``line`` (1-based) says where, when known."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class EditNotFound(BBEditError, KeyError):
    """No edit with this id exists in the memory."""

    def __init__(self, edit_id: str) -> None:
        self.edit_id = edit_id
        super().__init__(edit_id)

    def __str__(self) -> str:
        return f"no edit with id {self.edit_id!r} in this memory"


class DuplicateEdit(BBEditError, ValueError):
    """An edit with this id already exists."""


class MemoryCorrupt(BBEditError):
    """A memory directory exists but its files cannot be read consistently."""


class StoreUnavailable(BBEditError):
    """The database server holding the edit memory cannot be reached; nothing was written."""


class BackendError(BBEditError):
    """The model backend failed (unreachable, timed out, or returned an error)."""


class BackendUnavailable(BackendError):
    """The model endpoint cannot be reached at all (connection refused, DNS, ...)."""


class ModelNotFound(BBEditError, FileNotFoundError):
    """A model file or package needed for a default model is not installed."""
