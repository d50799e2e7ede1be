"""ROME (Meng et al., 2022): a rank-one change of one MLP down projection.

With the key k* of the subject and the target value v* = W k* + δ (δ optimised so the model
says the new target), the update W' = W + δ uᵀ, u = C⁻¹k* / (k*ᵀ C⁻¹ k*), makes W' k* = v*
while changing W's output least on keys distributed like the corpus (covariance C).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bbedit.errors import ConfigError
from bbedit.types import Edit
from bbedit.whitebox import hooks
from bbedit.whitebox.base import Method, StatsConfig, solve
from bbedit.whitebox.core import Editing, TargetConfig, Targets


@dataclass
class ROMEConfig:
    layer: int | None = None  # None: the model spec's ROME layer
    targets: TargetConfig = field(default_factory=TargetConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    ridge: float = 1e-4  # C + ridge·mean(diag C)·I keeps the solve well-posed


class ROME(Method):
    """One edit at a time; several edits are applied one after another inside one update."""

    name = "rome"
    Config = ROMEConfig
    single_edit_timing = True  # the classic one-edit method: its single-edit time is reported
    config: ROMEConfig

    def layers(self, ed: Editing) -> list[int]:
        return [self.config.layer if self.config.layer is not None else ed.spec.rome_layer(ed.lm.config)]

    def target_layer(self, ed: Editing) -> int | None:
        return self.layers(ed)[0]

    def _compute(self, ed: Editing, edits: list[Edit], targets: Targets | None) -> hooks.Update:
        if targets is not None and len(edits) > 1:
            raise ConfigError("rome: precomputed targets only for a single edit")
        layer = self.layers(ed)[0]
        cov = self.statistics(ed)[layer]
        c = cov.double() + self.config.ridge * float(cov.diagonal().mean()) * torch.eye(len(cov), dtype=torch.float64)
        update = hooks.Update(conv1d=ed.spec.conv1d)
        W = ed.weight(layer)
        for e in edits:  # sequential rank-one updates, each on the model with the previous ones applied
            t = self._targets(ed, [e], layer, targets)
            k = ed.keys([e], [layer], self.config.targets)[layer][0].double()
            u = solve(c, k)
            u = u / (u @ k)
            d = torch.outer(t.delta[0].double(), u).float()  # W' k = W k + δ = v*
            with torch.no_grad():
                W += d.to(W.dtype)
            update.add(ed.down(layer), d)
            update.info.setdefault("nll", []).extend(t.nll)
            update.info.setdefault("steps", []).append(t.steps)
        return update

