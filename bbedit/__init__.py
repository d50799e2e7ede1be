"""bbedit: edit what black-box language models know, without touching their weights.

Heavy parts (torch, faiss, openai) are imported only when used, so ``import bbedit``
is fast. The main names are importable from here lazily.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Edit": "bbedit.types",
    "Answer": "bbedit.types",
    "Hit": "bbedit.types",
    "GateDecision": "bbedit.types",
    "EditMemory": "bbedit.memory.memory",
    "LearnedGate": "bbedit.scope.gate",
    "SimilarityGate": "bbedit.scope.gate",
    "load_gate": "bbedit.scope.gate",
    "EditedModel": "bbedit.pipeline",
    "OpenAIBackend": "bbedit.backends.openai_backend",
    "EmbeddedServer": "bbedit.backends.embedded",
    "make_backend": "bbedit.backends.factory",
    "IKEEditor": "bbedit.editors.ike",
    "read_edits": "bbedit.memory.formats",
    "write_edits": "bbedit.memory.formats",
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bbedit' has no attribute {name!r}")
