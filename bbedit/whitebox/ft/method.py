"""FT-L (Zhu et al., 2020, as benchmarked by ROME): fine-tune one MLP down projection on the new
target, every weight kept within ``norm_constraint`` of its original value (an L∞ ball).

The loss is the target's negative log-likelihood after the prompt, in the same contexts the
other methods rehearse (bare, neutral prefixes, the chat template).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bbedit.types import Edit
from bbedit.whitebox import hooks
from bbedit.whitebox.base import Method
from bbedit.whitebox.core import Editing, Rows, Runner, TargetConfig, Targets


@dataclass
class FTConfig:
    layer: int | None = None  # None: the spec's ROME layer
    # FT-L trains on the prompt followed by the target (Zhu et al.; EasyEdit); add contexts to rehearse more
    targets: TargetConfig = field(default_factory=lambda: TargetConfig(contexts=("{}",), chat=False))
    steps: int = 25
    lr: float = 5e-4
    norm_constraint: float = 5e-4  # max |W' − W| per weight
    stop_loss: float = 0.01
    plateau: float = 1e-3  # stop when a step improves the loss by less than this (relative): the L∞ ball is reached


class FT(Method):
    name = "ft"
    Config = FTConfig
    uses_key_statistics = False  # fine-tuning needs no key statistics
    config: FTConfig

    def layers(self, ed: Editing) -> list[int]:
        return [self.config.layer if self.config.layer is not None else ed.spec.rome_layer(ed.lm.config)]

    def statistics(self, model: object, progress: bool = True) -> dict[int, torch.Tensor]:
        return {}  # fine-tuning needs none

    def _compute(self, ed: Editing, edits: list[Edit], targets: Targets | None) -> hooks.Update:
        cfg = self.config
        layer = self.layers(ed)[0]
        split = ed.tokens.rows(edits, cfg.targets)
        # the whole text runs every step: the changed layer also changes the tokens before the subject
        rows = Rows([[] for _ in split.prefix], [p + s for p, s in zip(split.prefix, split.suffix, strict=True)],
                    split.edit, split.n_target)
        run = Runner(ed.lm, ed.tokens, rows)
        w = hooks.param(ed.lm, ed.down(layer))
        w0 = w.detach().clone()
        grads = {p: p.requires_grad for p in ed.lm.parameters()}
        for p in ed.lm.parameters():
            p.requires_grad_(False)
        w.requires_grad_(True)
        opt = torch.optim.Adam([w], lr=cfg.lr)
        losses = []
        try:
            for _ in range(cfg.steps):
                opt.zero_grad()
                loss = run.target_nll(run.forward().logits).mean()
                losses.append(float(loss.detach()))
                if losses[-1] < cfg.stop_loss or (
                        len(losses) > 1 and losses[-2] - losses[-1] < cfg.plateau * losses[-2]):
                    break
                loss.backward()
                opt.step()
                with torch.no_grad():
                    w.copy_(torch.maximum(torch.minimum(w, w0 + cfg.norm_constraint), w0 - cfg.norm_constraint))
        finally:
            for p, g in grads.items():
                p.requires_grad_(g)
        d = (w.detach() - w0).float()
        return hooks.Update({ed.down(layer): d.T if ed.spec.conv1d else d}, conv1d=ed.spec.conv1d,
                            info={"loss": losses})
