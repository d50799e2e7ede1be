"""Shared mechanics of weight editing: finding modules, reading what goes in and out of them,
adding to their output at chosen tokens, and changing weights with an exact undo.

Weights are always handled in ``nn.Linear`` orientation, (out, in): ``v = W k``. GPT-2's
``Conv1D`` stores the transpose; :func:`weight` and :class:`Update` hide that.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from bbedit.errors import ConfigError


def module(model: Any, name: str) -> torch.nn.Module:
    try:
        return model.get_submodule(name)  # type: ignore[no-any-return]
    except AttributeError as e:
        raise ConfigError(f"model {type(model).__name__} has no module {name!r}: {e}") from e


def param(model: Any, name: str) -> torch.Tensor:
    """The weight parameter of module ``name``, as stored."""
    w = module(model, name).weight
    if not isinstance(w, torch.Tensor):
        raise ConfigError(f"module {name!r} has no weight tensor")
    return w


def weight(model: Any, name: str, conv1d: bool = False) -> torch.Tensor:
    """The weight of module ``name`` as (out, in) — a view, not a copy."""
    w = param(model, name)
    return w.T if conv1d else w


@contextlib.contextmanager
def capture(model: Any, names: Sequence[str], inputs: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Record the input (or output) of each named module during the forwards inside the block:
    ``got[name]`` is the last forward's tensor, (batch, seq, dim)."""
    got: dict[str, torch.Tensor] = {}
    handles = []
    for n in names:
        def hook(_m: Any, args: tuple[Any, ...], out: Any, n: str = n) -> None:
            t = args[0] if inputs else out
            got[n] = (t[0] if isinstance(t, tuple) else t).detach()
        handles.append(module(model, n).register_forward_hook(hook))
    try:
        yield got
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def add_at(model: Any, name: str, rows: torch.Tensor, cols: torch.Tensor, delta: torch.Tensor,
           which: torch.Tensor | None = None) -> Iterator[None]:
    """Add ``delta[which[i]]`` (or ``delta[i]``) to the output of module ``name`` at (rows[i], cols[i])
    during the forwards inside the block; gradients flow into ``delta``."""
    pick = which if which is not None else torch.arange(len(rows))

    def hook(_m: Any, _args: Any, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[rows, cols] = out[rows, cols] + delta[pick].to(out.dtype)
        return out

    h = module(model, name).register_forward_hook(hook)
    try:
        yield
    finally:
        h.remove()


class StopForward(Exception):
    """Raised by a hook to end a forward early once every needed layer has run."""


@contextlib.contextmanager
def stop_after(model: Any, name: str) -> Iterator[None]:
    def hook(*_: Any) -> None:
        raise StopForward

    h = module(model, name).register_forward_hook(hook)
    try:
        yield
    except StopForward:
        pass
    finally:
        h.remove()


# ----------------------------------------------------------------------------- weight changes


@dataclass
class Update:
    """Weight deltas by module name, (out, in) orientation, float32 on the model's device."""

    deltas: dict[str, torch.Tensor] = field(default_factory=dict)
    conv1d: bool = False
    info: dict[str, Any] = field(default_factory=dict)  # per-method diagnostics (losses, norms)

    def add(self, name: str, delta: torch.Tensor) -> None:
        self.deltas[name] = self.deltas[name] + delta if name in self.deltas else delta

    def norms(self) -> dict[str, float]:
        return {n: float(d.norm()) for n, d in self.deltas.items()}


class EditHandle:
    """What :meth:`apply` returns: the changed weights' original values, for an exact undo."""

    def __init__(self, model: Any, originals: Mapping[str, torch.Tensor], update: Update,
                 on_undo: Any = None) -> None:
        self.model = model
        self._originals = dict(originals)
        self.update = update
        self._on_undo = on_undo
        self.undone = False

    @property
    def modules(self) -> list[str]:
        return list(self._originals)

    def undo(self) -> None:
        """Restore every changed weight bit for bit (idempotent)."""
        if self.undone:
            return
        with torch.no_grad():
            for name, orig in self._originals.items():
                param(self.model, name).copy_(orig)
        if self._on_undo is not None:
            self._on_undo()
        self.undone = True

    def __enter__(self) -> EditHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


def apply_update(model: Any, update: Update, on_undo: Any = None) -> EditHandle:
    """Add ``update``'s deltas to the model's weights; returns the handle that undoes it."""
    originals = {}
    with torch.no_grad():
        for name, d in update.deltas.items():
            w = param(model, name)
            originals[name] = w.detach().clone()
            w.add_((d.T if update.conv1d else d).to(w.dtype))
    return EditHandle(model, originals, update, on_undo)


@contextlib.contextmanager
def per_row(model: Any, updates: Sequence[Update], row_update: Sequence[int]) -> Iterator[None]:
    """Forwards inside the block behave, for batch row i, as if ``updates[row_update[i]]`` had been
    applied to the weights (W x + ΔW x instead of (W + ΔW) x: equal up to float rounding). Lets one
    batch answer for many differently edited models, e.g. to evaluate single-edit cases together."""
    names = sorted({n for u in updates for n in u.deltas})
    handles = []
    for n in names:
        w = param(model, n)
        conv1d = any(u.conv1d for u in updates)
        out_dim, in_dim = (w.shape[1], w.shape[0]) if conv1d else (w.shape[0], w.shape[1])
        zero = torch.zeros(out_dim, in_dim, dtype=w.dtype, device=w.device)
        rows = torch.stack([updates[j].deltas.get(n, zero).to(w.dtype) for j in row_update])  # (rows, out, in)

        def hook(_m: Any, args: tuple[Any, ...], out: torch.Tensor, rows: torch.Tensor = rows) -> torch.Tensor:
            return out + torch.einsum("bsi,boi->bso", args[0], rows)
        handles.append(module(model, n).register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def restored(model: Any, names: Sequence[str]) -> Iterator[None]:
    """Whatever the block does to these modules' weights is undone on exit (bit for bit)."""
    saved = {n: param(model, n).detach().clone() for n in names}
    try:
        yield
    finally:
        with torch.no_grad():
            for n, w in saved.items():
                param(model, n).copy_(w)
