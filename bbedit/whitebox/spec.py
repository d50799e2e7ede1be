"""Architecture support as data: where a model keeps the weights that white-box editors change.

Every method here edits the MLP's output projection ("down" projection): its input is the
key k (the MLP's hidden activation at a token), its output the value v written into the
residual stream. A :class:`ModelSpec` names that module per layer for one
``config.model_type``; adding an architecture is adding an entry to :data:`SPECS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bbedit.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    """Module-name templates (``{}`` is the layer index) and default layers for one architecture.

    ``conv1d`` marks GPT-2-style ``Conv1D`` modules whose weight is stored (in, out) instead of
    ``nn.Linear``'s (out, in). Default layers are fractions of the depth, so one entry serves
    every size of a family: ``rome_at`` picks ROME's (and FT-L's) layer, ``memit_span`` the first and
    last of MEMIT's consecutive critical layers.
    """

    model_type: str
    layers: str
    down: str
    n_layers_attr: str = "num_hidden_layers"
    conv1d: bool = False
    memit_span: tuple[float, float] = (0.13, 0.27)
    rome_at: float = 0.27

    def down_name(self, layer: int) -> str:
        return self.down.format(layer)

    def n_layers(self, config: Any) -> int:
        return int(getattr(config, self.n_layers_attr))

    def rome_layer(self, config: Any) -> int:
        return min(round(self.rome_at * self.n_layers(config)), self.n_layers(config) - 1)

    def memit_layers(self, config: Any) -> list[int]:
        n = self.n_layers(config)
        lo, hi = (min(round(f * n), n - 1) for f in self.memit_span)
        return list(range(lo, max(hi, lo) + 1))


def _llama_like(model_type: str) -> ModelSpec:
    return ModelSpec(model_type, layers="model.layers", down="model.layers.{}.mlp.down_proj")


SPECS: dict[str, ModelSpec] = {
    # Llama-style blocks: the delta written by down_proj goes straight into the residual stream.
    # SmolLM2-135M (30 layers): ROME/FT-L at layer 8, MEMIT/AlphaEdit at layers 4-8 (Llama-7B's
    # published choices, 5 and 4-8 of 32, scaled to depth; ROME sits on MEMIT's last layer).
    **{t: _llama_like(t) for t in ("llama", "mistral", "qwen2", "qwen3", "olmo", "olmo2", "phi3")},
    # Gemma 2/3 apply a post-feed-forward norm to the MLP output before the residual add.
    **{t: _llama_like(t) for t in ("gemma", "gemma2", "gemma3_text")},
    "gpt2": ModelSpec("gpt2", layers="transformer.h", down="transformer.h.{}.mlp.c_proj", n_layers_attr="n_layer",
                      conv1d=True, memit_span=(0.08, 0.17), rome_at=0.17),
    "gptj": ModelSpec("gptj", layers="transformer.h", down="transformer.h.{}.mlp.fc_out", n_layers_attr="n_layer",
                      memit_span=(0.11, 0.29), rome_at=0.18),
}


def spec_for(model: Any) -> ModelSpec:
    """The spec of a transformers model (or its config), by ``config.model_type``."""
    config = getattr(model, "config", model)
    kind = getattr(config, "model_type", None)
    if kind not in SPECS:
        raise ConfigError(f"white-box editing does not know model_type {kind!r}; known: {', '.join(sorted(SPECS))} "
                          f"(add a ModelSpec to bbedit.whitebox.spec.SPECS)")
    return SPECS[kind]
