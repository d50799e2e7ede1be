"""The Editor protocol and the registry of editors by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Protocol, runtime_checkable

from bbedit.backends import Backend
from bbedit.errors import ConfigError
from bbedit.types import Edit, Message


@dataclass(frozen=True)
class EditorOutput:
    """An editor's answer; ``original_text`` is the unedited answer when the editor saw one."""

    text: str
    original_text: str | None = None


@runtime_checkable
class Editor(Protocol):
    """Changes the answer to a conversation whose last question is about ``edit``.

    ``answer`` raises :class:`bbedit.errors.BackendError` when the backend fails.
    """

    name: str

    def answer(self, backend: Backend, messages: Sequence[Message], edit: Edit, **opts: Any) -> EditorOutput: ...

    def stream(self, backend: Backend, messages: Sequence[Message], edit: Edit, **opts: Any) -> Iterator[str]: ...


_REGISTRY: dict[str, str] = {
    "ike": "bbedit.editors.ike:IKEEditor",
    "postedit": "bbedit.editors.postedit:PostEditor",
    "replace": "bbedit.editors.postedit:ReplaceEditor",
}


def register_editor(name: str, target: str) -> None:
    """Register an editor class under ``name`` as a lazy "module:Class" string."""
    _REGISTRY[name] = target


def editor_names() -> list[str]:
    return sorted(_REGISTRY)


def make_editor(name: str, **config: Any) -> Editor:
    """Instantiate the editor registered as ``name``. Raises :class:`ConfigError` for unknown names."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown editor {name!r}; choose one of {', '.join(editor_names())}") from None
    module, _, cls = target.partition(":")
    factory: Callable[..., Editor] = getattr(import_module(module), cls)
    return factory(**config)
