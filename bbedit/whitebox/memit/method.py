"""MEMIT (Meng et al., 2023): many edits at once, spread over several consecutive MLP layers.

For each edit, z* is the residual stream after the last critical layer that makes the model say
the new target (found as δ at that layer's down projection). Layer by layer, from the first,
each edit's remaining residual z* − z is divided by the number of layers still to edit, and the
layer's down projection gets the least-squares update that writes that share for the edits' keys
while preserving the corpus keys: ΔW = R Kᵀ (λC + K Kᵀ)⁻¹.

``blue=True`` is BLUE (Boundary Layer UpdatE, arXiv 2502.03748): only the first and the last
critical layers are updated; the first takes the whole residual, and the last then corrects what
did not reach it (each layer with its full remaining residual, no even split). Our reading of the
paper; its code was not available offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bbedit.types import Edit
from bbedit.whitebox import hooks
from bbedit.whitebox.base import Method, StatsConfig, solve
from bbedit.whitebox.core import Editing, TargetConfig, Targets


@dataclass
class MEMITConfig:
    layers: list[int] | None = None  # None: the model spec's critical layers
    targets: TargetConfig = field(default_factory=TargetConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    mom2_weight: float | None = None  # λ; None: the key dimension (MEMIT's 15,000 for GPT-J's 16,384)
    blue: bool = False


class MEMIT(Method):
    name = "memit"
    Config = MEMITConfig
    config: MEMITConfig

    def layers(self, ed: Editing) -> list[int]:
        layers = sorted(self.config.layers) if self.config.layers else ed.spec.memit_layers(ed.lm.config)
        return [layers[0], layers[-1]] if self.config.blue and len(layers) > 1 else layers

    def target_layer(self, ed: Editing) -> int | None:
        return self.layers(ed)[-1]

    def _compute(self, ed: Editing, edits: list[Edit], targets: Targets | None) -> hooks.Update:
        layers = self.layers(ed)
        top = layers[-1]
        cfg = self.config.targets
        covs = self.statistics(ed)
        t = self._targets(ed, edits, top, targets)
        z_star = ed.residual(edits, top, cfg) + t.delta  # delta at the top down projection adds to the stream
        update = hooks.Update(conv1d=ed.spec.conv1d, info={"nll": t.nll, "steps": [t.steps]})
        for i, layer in enumerate(layers):
            k, z = ed.key_and_residual(edits, layer, top, cfg)  # (edits, d_in), (edits, d_out)
            resid = z_star - z
            share = resid if self.config.blue else resid / (len(layers) - i)
            d = self._delta(ed, layer, k, share, covs[layer]).float()
            W = ed.weight(layer)
            with torch.no_grad():
                W += d.to(W.dtype)
            update.add(ed.down(layer), d)
        return update

    def _delta(self, ed: Editing, layer: int, k: torch.Tensor, r: torch.Tensor, cov: torch.Tensor
               ) -> torch.Tensor:
        lam = self.config.mom2_weight if self.config.mom2_weight is not None else float(cov.shape[0])
        K = k.double().T  # (d_in, edits)
        a = lam * cov.double() + K @ K.T
        return r.double().T @ solve(a, K).T  # (d_out, d_in)
