"""The interface every white-box method implements, and what they share around it.

``compute(model, edits)`` returns an :class:`~bbedit.whitebox.hooks.Update` (weight deltas)
and leaves the model exactly as it found it; ``apply(model, edits)`` adds the deltas and
returns an :class:`~bbedit.whitebox.hooks.EditHandle` whose ``undo()`` restores the weights
bit for bit. ``model`` is a :class:`~bbedit.backends.transformers_backend.TransformersBackend`
(or anything with ``lm`` and ``tokenizer``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from bbedit.errors import ConfigError
from bbedit.types import Edit
from bbedit.whitebox import hooks, stats
from bbedit.whitebox.core import Editing, TargetConfig, Targets


@dataclasses.dataclass
class StatsConfig:
    """Where the key statistics come from (see :mod:`bbedit.whitebox.stats`)."""

    corpus: str | None = None  # a file or folder; None: BoolQ passages if present, else model samples
    n_tokens: int = 100_000


class Method:
    """Base of the white-box editors; subclasses set ``name``, ``Config`` and :meth:`_compute`."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    # what the evaluation and the CLI need to know about a method, declared by the method
    uses_key_statistics: ClassVar[bool] = True  # its update reads the layers' key second moments
    single_edit_timing: ClassVar[bool] = False  # comparisons time one edit of it end to end

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        if config is None:
            known = {f.name for f in dataclasses.fields(self.Config)}
            bad = set(overrides) - known
            if bad:
                raise ConfigError(f"{self.name}: unknown option(s) {', '.join(sorted(bad))}; known: "
                                  f"{', '.join(sorted(known))}")
            if isinstance(overrides.get("targets"), dict):
                overrides["targets"] = TargetConfig(**overrides["targets"])
            if isinstance(overrides.get("stats"), dict):
                overrides["stats"] = StatsConfig(**overrides["stats"])
            config = self.Config(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        self.last_seconds = 0.0
        self._stats: dict[tuple[int, int], torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def layers(self, ed: Editing) -> list[int]:
        raise NotImplementedError

    def target_layer(self, ed: Editing) -> int | None:
        """The layer whose target values (:meth:`Editing.targets`) the method uses, if any."""
        return None

    def statistics(self, model: Any, progress: bool = True) -> dict[int, torch.Tensor]:
        """The key statistics of every layer this method edits (computed once, then cached)."""
        ed = model if isinstance(model, Editing) else Editing(model)
        s: StatsConfig = self.config.stats
        layers = self.layers(ed)
        todo = [layer for layer in layers if (id(ed.lm), layer) not in self._stats]
        if todo:
            got = stats.second_moments(ed, todo, s.corpus, s.n_tokens, progress=progress)
            self._stats.update({(id(ed.lm), layer): c for layer, c in got.items()})
        return {layer: self._stats[(id(ed.lm), layer)] for layer in layers}

    def compute(self, model: Any, edits: Sequence[Edit], targets: Targets | None = None) -> hooks.Update:
        """Weight deltas for ``edits``; the model is left as it was (bit for bit). ``targets`` reuses
        target values already optimised at :meth:`target_layer` on this same model state."""
        edits = list(edits)
        if not edits:
            raise ConfigError(f"{self.name}: no edits to apply")
        ed = Editing(model)
        t0 = time.perf_counter()
        names = [ed.down(layer) for layer in self.layers(ed)]
        with hooks.restored(ed.lm, names):
            update = self._compute(ed, edits, targets)
        self.last_seconds = time.perf_counter() - t0
        update.info.setdefault("seconds", self.last_seconds)
        return update

    def apply(self, model: Any, edits: Sequence[Edit], targets: Targets | None = None) -> hooks.EditHandle:
        """Compute and add the deltas; the handle's ``undo()`` restores the previous weights."""
        update = self.compute(model, edits, targets)
        return hooks.apply_update(Editing(model).lm, update, self._commit(update))

    def _commit(self, update: hooks.Update) -> Any:
        """Record method state that outlives one edit (AlphaEdit's preserved keys); returns its undo."""
        return None

    def _compute(self, ed: Editing, edits: list[Edit], targets: Targets | None) -> hooks.Update:
        raise NotImplementedError

    def _targets(self, ed: Editing, edits: list[Edit], layer: int, given: Targets | None) -> Targets:
        if given is not None:
            if given.layer != layer or len(given.delta) != len(edits):
                raise ConfigError(f"{self.name}: given targets are for layer {given.layer} and {len(given.delta)} "
                                  f"edits, need layer {layer} and {len(edits)}")
            return given
        return ed.targets(edits, layer, self.config.targets)


def solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a⁻¹ b`` in float64."""
    return torch.linalg.solve(a.double(), b.double())
