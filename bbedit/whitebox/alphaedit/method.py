"""AlphaEdit (Fang et al., 2025): MEMIT's layer updates projected onto the null space of the
knowledge to preserve.

P projects onto the directions of key space that ordinary text (the corpus statistics C) hardly
uses: the eigenvectors of C whose eigenvalues are below ``nullspace_threshold`` times the largest.
An update ΔW = Δ P then leaves the outputs for those keys (nearly) unchanged. Per layer:
Δᵀ = (P (K_p K_pᵀ + K Kᵀ) + α I)⁻¹ P K Rᵀ, where K_p are the keys of edits applied earlier in a
sequence, so later batches do not undo earlier ones. ``blue=True`` as for MEMIT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bbedit.types import Edit
from bbedit.whitebox import hooks
from bbedit.whitebox.base import StatsConfig, solve
from bbedit.whitebox.core import Editing, TargetConfig, Targets
from bbedit.whitebox.memit.method import MEMIT


@dataclass
class AlphaEditConfig:
    layers: list[int] | None = None
    targets: TargetConfig = field(default_factory=TargetConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    nullspace_threshold: float = 1e-2  # relative to C's largest eigenvalue
    l2: float = 10.0  # α
    blue: bool = False


class AlphaEdit(MEMIT):
    """Stateful across a sequence: :meth:`apply` remembers the applied edits' keys (undo forgets them)."""

    name = "alphaedit"
    Config = AlphaEditConfig  # type: ignore[assignment]
    config: AlphaEditConfig  # type: ignore[assignment]

    def __init__(self, config: AlphaEditConfig | None = None, **overrides: object) -> None:
        super().__init__(config, **overrides)
        self._projectors: dict[tuple[int, int], torch.Tensor] = {}
        self.preserved: dict[int, torch.Tensor] = {}  # layer -> Σ k kᵀ of edits applied so far
        self._pending: dict[int, torch.Tensor] = {}

    def projector(self, layer: int, cov: torch.Tensor) -> torch.Tensor:
        key = (layer, id(cov))
        if key not in self._projectors:
            vals, vecs = torch.linalg.eigh(cov.double())
            keep = vecs[:, vals < self.config.nullspace_threshold * vals.max()]
            self._projectors = {key: keep @ keep.T, **{k: v for k, v in self._projectors.items() if k[0] != layer}}
        return self._projectors[key]

    def _compute(self, ed: Editing, edits: list[Edit], targets: Targets | None) -> hooks.Update:
        self._pending = {}
        update = super()._compute(ed, edits, targets)
        update.info["null_dims"] = {k[0]: int(torch.trace(p).round()) for k, p in self._projectors.items()}
        return update

    def _delta(self, ed: Editing, layer: int, k: torch.Tensor, r: torch.Tensor, cov: torch.Tensor
               ) -> torch.Tensor:
        P = self.projector(layer, cov)
        K = k.double().T
        kk = K @ K.T
        prev = self.preserved.get(layer)
        a = P @ (kk + (prev.double() if prev is not None else 0)) + self.config.l2 * torch.eye(len(P), dtype=P.dtype)
        self._pending[layer] = kk
        return solve(a, P @ K @ r.double()).T  # (d_out, d_in)

    def _commit(self, update: hooks.Update) -> object:
        before = {layer: v.clone() for layer, v in self.preserved.items()}
        for layer, kk in self._pending.items():
            self.preserved[layer] = self.preserved[layer] + kk if layer in self.preserved else kk.clone()
        self._pending = {}

        def undo() -> None:
            self.preserved = before
        return undo
