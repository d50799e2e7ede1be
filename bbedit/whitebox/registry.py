"""The registry of white-box methods: each registered once, by name, with what callers need to know.

A method is registered as a lazy ``"module:Class"`` string (so listing names, as ``bbedit --help``
does, imports no torch) with its preset options, its report label, the number of edits it applies per
update when edits come one after another (``batch``), and whether a suite runs it when it names no
methods (``default``; variants like MEMIT + BLUE are opt-in). What a method *does* (whether it needs
key statistics, whether comparisons time a single edit of it) is declared on its class
(:class:`~bbedit.whitebox.base.Method`).

Adding a method: a folder under ``bbedit/whitebox/`` and one :func:`register_method` line below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from bbedit.errors import ConfigError

if TYPE_CHECKING:
    from bbedit.whitebox.base import Method


@dataclass(frozen=True)
class MethodSpec:
    """One registered method: ``target`` ("module:Class"), ``preset`` options, ``label`` for reports,
    ``batch`` (edits per update in sequential editing), ``default`` (run when a suite names none)."""

    name: str
    target: str
    label: str
    preset: Mapping[str, Any] = field(default_factory=dict)
    batch: int = 1
    default: bool = True

    def load(self) -> type[Method]:
        """The method's class (imports torch)."""
        module, _, cls = self.target.partition(":")
        return getattr(import_module(module), cls)  # type: ignore[no-any-return]

    def make(self, **options: Any) -> Method:
        """An instance with the preset and then ``options`` applied. Raises ConfigError for unknown options."""
        return self.load()(**{**self.preset, **options})


_METHODS: dict[str, MethodSpec] = {}


def register_method(name: str, target: str, preset: Mapping[str, Any] | None = None, *, label: str,
                    batch: int = 1, default: bool = True) -> MethodSpec:
    """Register a method under ``name``. Raises :class:`ConfigError` when the name is taken or ``batch``
    is not positive."""
    if name in _METHODS:
        raise ConfigError(f"white-box method {name!r} is already registered")
    if batch < 1:
        raise ConfigError(f"{name}: batch must be a positive number of edits, got {batch}")
    spec = MethodSpec(name, target, label, MappingProxyType(dict(preset or {})), batch, default)
    _METHODS[name] = spec
    return spec


def method_names() -> list[str]:
    """Registered method names, in registration order."""
    return list(_METHODS)


def method_spec(name: str) -> MethodSpec:
    """The registration of ``name``. Raises :class:`ConfigError` for an unknown method."""
    try:
        return _METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown white-box method {name!r}; known: {', '.join(_METHODS)}") from None


def make_method(name: str, **options: Any) -> Method:
    """The method registered as ``name`` with config overrides. Raises :class:`ConfigError` for an
    unknown method or option."""
    return method_spec(name).make(**options)


register_method("ft", "bbedit.whitebox.ft:FT", label="FT-L")
register_method("rome", "bbedit.whitebox.rome:ROME", label="ROME")
register_method("memit", "bbedit.whitebox.memit:MEMIT", label="MEMIT", batch=100)
register_method("alphaedit", "bbedit.whitebox.alphaedit:AlphaEdit", label="AlphaEdit", batch=100)
register_method("alphaedit_blue", "bbedit.whitebox.alphaedit:AlphaEdit", {"blue": True}, label="AlphaEdit + BLUE",
                batch=100)
register_method("memit_blue", "bbedit.whitebox.memit:MEMIT", {"blue": True}, label="MEMIT + BLUE", batch=100,
                default=False)

__all__ = ["MethodSpec", "make_method", "method_names", "method_spec", "register_method"]
