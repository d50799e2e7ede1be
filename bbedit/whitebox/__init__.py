"""White-box editing: change a local model's weights so it knows an edit.

Methods (one folder each; shared code in :mod:`~bbedit.whitebox.core`,
:mod:`~bbedit.whitebox.hooks` and :mod:`~bbedit.whitebox.stats`):

- ``ft``: FT-L, constrained fine-tuning of one MLP layer;
- ``rome``: ROME, a rank-one update of one MLP layer per edit;
- ``memit``: MEMIT, batched least-squares updates spread over several layers;
- ``alphaedit``: AlphaEdit, MEMIT projected onto the null space of preserved knowledge;
- ``memit_blue`` / ``alphaedit_blue``: the same with BLUE (first and last critical layers only).

    from bbedit.backends.transformers_backend import TransformersBackend
    from bbedit.whitebox import make_method

    model = TransformersBackend()                    # the packaged SmolLM2-135M-Instruct
    handle = make_method("rome").apply(model, edits)  # weights changed
    handle.undo()                                     # weights restored bit for bit
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bbedit.errors import ConfigError
from bbedit.types import Edit
from bbedit.whitebox.alphaedit import AlphaEdit, AlphaEditConfig
from bbedit.whitebox.base import Method, StatsConfig
from bbedit.whitebox.core import Editing, TargetConfig, Targets
from bbedit.whitebox.ft import FT, FTConfig
from bbedit.whitebox.hooks import EditHandle, Update
from bbedit.whitebox.memit import MEMIT, MEMITConfig
from bbedit.whitebox.rome import ROME, ROMEConfig
from bbedit.whitebox.spec import SPECS, ModelSpec, spec_for

METHODS: dict[str, tuple[type[Method], dict[str, Any]]] = {
    "ft": (FT, {}), "rome": (ROME, {}), "memit": (MEMIT, {}), "alphaedit": (AlphaEdit, {}),
    "memit_blue": (MEMIT, {"blue": True}), "alphaedit_blue": (AlphaEdit, {"blue": True}),
}
MANIFEST = "bbedit-whitebox.json"


def make_method(name: str, **options: Any) -> Method:
    """A method by name (see :data:`METHODS`) with config overrides."""
    if name not in METHODS:
        raise ConfigError(f"unknown white-box method {name!r}; known: {', '.join(METHODS)}")
    cls, preset = METHODS[name]
    return cls(**{**preset, **options})


def save_edited(model: Any, path: str | os.PathLike[str], edits: Sequence[Edit] = (), method: str = "",
                options: dict[str, Any] | None = None) -> Path:
    """Write an edited model as a transformers directory (weights, config, tokenizer) plus a
    manifest of the edits it carries; :class:`TransformersBackend` loads it back by path."""
    out = Path(path)
    ed = Editing(model)
    out.mkdir(parents=True, exist_ok=True)
    ed.lm.save_pretrained(out)
    ed.tokenizer.save_pretrained(out)  # type: ignore[union-attr]
    manifest = {"base_model": ed.name, "method": method, "options": options or {},
                "edits": [e.to_dict() for e in edits]}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a saved edited model ({} when the folder has none)."""
    p = Path(path) / MANIFEST
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text())
    except ValueError as e:
        raise ConfigError(f"{p} is not valid JSON: {e}") from e
    data["edits"] = [Edit.from_dict(d) for d in data.get("edits", [])]
    return data  # type: ignore[no-any-return]


__all__ = [
    "FT", "MEMIT", "METHODS", "ROME", "SPECS", "AlphaEdit", "AlphaEditConfig", "EditHandle", "Editing", "FTConfig",
    "MEMITConfig", "Method", "ModelSpec", "ROMEConfig", "StatsConfig", "TargetConfig", "Targets", "Update",
    "load_manifest", "make_method", "save_edited", "spec_for",
]
