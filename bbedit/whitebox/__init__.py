"""White-box editing: change a local model's weights so it knows an edit.

Methods (one folder each, registered in :mod:`~bbedit.whitebox.registry`; shared code in :mod:`~bbedit.whitebox.core`,
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
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bbedit.errors import ConfigError
from bbedit.types import Edit
from bbedit.whitebox.registry import make_method, method_names, method_spec, register_method

if TYPE_CHECKING:
    from bbedit.whitebox.alphaedit import AlphaEdit, AlphaEditConfig
    from bbedit.whitebox.base import Method, StatsConfig
    from bbedit.whitebox.core import Editing, TargetConfig, Targets
    from bbedit.whitebox.ft import FT, FTConfig
    from bbedit.whitebox.hooks import EditHandle, Update
    from bbedit.whitebox.memit import MEMIT, MEMITConfig
    from bbedit.whitebox.rome import ROME, ROMEConfig
    from bbedit.whitebox.spec import SPECS, ModelSpec, spec_for

MANIFEST = "bbedit-whitebox.json"

# the methods and their machinery import torch: loaded on first use, so that the registry (method names
# for ``bbedit --help``) and the manifest helpers stay light
_LAZY = {
    "AlphaEdit": "alphaedit", "AlphaEditConfig": "alphaedit", "Method": "base", "StatsConfig": "base",
    "Editing": "core", "TargetConfig": "core", "Targets": "core", "FT": "ft", "FTConfig": "ft",
    "EditHandle": "hooks", "Update": "hooks", "MEMIT": "memit", "MEMITConfig": "memit", "ROME": "rome",
    "ROMEConfig": "rome", "SPECS": "spec", "ModelSpec": "spec", "spec_for": "spec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f"bbedit.whitebox.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bbedit.whitebox' has no attribute {name!r}")


def save_edited(model: Any, path: str | os.PathLike[str], edits: Sequence[Edit] = (), method: str = "",
                options: dict[str, Any] | None = None) -> Path:
    """Write an edited model as a transformers directory (weights, config, tokenizer) plus a
    manifest of the edits it carries; :class:`TransformersBackend` loads it back by path."""
    from bbedit.whitebox.core import Editing

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
    "FT", "MEMIT", "ROME", "SPECS", "AlphaEdit", "AlphaEditConfig", "EditHandle", "Editing", "FTConfig",
    "MEMITConfig", "Method", "ModelSpec", "ROMEConfig", "StatsConfig", "TargetConfig", "Targets", "Update",
    "load_manifest", "make_method", "method_names", "method_spec", "register_method", "save_edited", "spec_for",
]
