"""A BERT encoder forward pass in NumPy, for the default embedder (all-MiniLM-L6-v2).

The edit memory embeds one short query per request and a few edits per ``bbedit edits add``; for that,
importing torch and transformers costs seconds while the network itself is 22M parameters. This module
runs the same computation (token, position and type embeddings, post-LayerNorm encoder layers with exact
GELU) on the weights in ``model.safetensors`` and tokenizes with the model's own ``tokenizer.json``
(the ``tokenizers`` library), so embedding needs neither. It reads only plain BERT checkpoints
(:func:`supported`); anything else goes through transformers.

Threads: a query's product of a dozen tokens by the weights is compute-bound at about 4 ms + 0.25 ms a
token on one core here, and a second BLAS thread takes a 17-token forward pass from 12.1 to 8.1 ms,
but makes it 16.5 ms when that second core is busy (a model server, a training job: the thread waits
for it). So a pass uses two threads only while :class:`SpareCore` sees the other processes of the
machine leave a core free; ``$BBEDIT_ENCODE_THREADS`` fixes the count instead.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bbedit.errors import ConfigError, ModelNotFound

_PREFIXES = ("", "bert.", "model.")


def supported(root: Path) -> bool:
    """Whether ``root`` holds a plain BERT encoder this module can run (safetensors weights, a fast
    tokenizer file, absolute positions, exact GELU)."""
    try:
        cfg = json.loads((root / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (cfg.get("model_type") == "bert" and cfg.get("hidden_act") == "gelu"
            and cfg.get("position_embedding_type", "absolute") == "absolute"
            and (root / "model.safetensors").is_file() and (root / "tokenizer.json").is_file())


_SQRT_HALF = np.float32(1.0 / math.sqrt(2.0))


def _gelu(h: np.ndarray) -> np.ndarray:
    """Exact GELU, 0.5 h (1 + erf(h / sqrt 2)), in float32, with erf to float32 precision (Abramowitz and
    Stegun 7.1.26, |error| < 1.5e-7). Written in place on two buffers: a query's pass computes it on
    6 x T x 1536 values, and the plain expression took 4x as long (0.54 against 0.14 ms a layer)."""
    f = np.float32
    x = h * _SQRT_HALF
    a = np.abs(x)
    t = a * f(0.3275911)
    t += f(1.0)
    np.reciprocal(t, out=t)
    y = t * f(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        y += f(c)
        y *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    y *= a  # 1 - erf(|x|)
    out = np.where(x >= 0, f(2.0) - y, y)  # 1 + erf(x)
    out *= h
    out *= f(0.5)
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    inv = np.float32(1.0 / x.shape[-1])  # sums, not mean(): a query's pass makes 13 of these
    d = x - x.sum(-1, keepdims=True) * inv
    var = np.einsum("...i,...i->...", d, d)[..., None] * inv
    return d / np.sqrt(var + eps) * w + b


THREADS_ENV = "BBEDIT_ENCODE_THREADS"


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (every state of /proc/stat's ``cpu``
    line but idle and iowait; steal counts as busy: it is a core this machine could not use). None
    where there is no /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = sum(ticks[3:5])
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class SpareCore:
    """Whether another core was free over the last interval: the CPU time every *other* process used
    (the machine's busy time less this process's own) stayed under half a core. Sampled at most every
    ``every`` seconds (the counters tick in 10 ms steps), so a call costs a clock read between samples
    and a read of /proc/stat at one. No second core, no /proc/stat, or no interval seen yet: False."""

    def __init__(self, every: float = 0.5, cores: int | None = None) -> None:
        self.every = every
        self.cores = cores if cores is not None else _cores()
        self._last: tuple[float, float, float] | None = None
        self._spare = False
        self()  # the first interval runs from here (the model's loading) to the first pass

    def __call__(self) -> bool:
        if self.cores < 2:
            return False
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < self.every:
            return self._spare
        busy = _busy_seconds()
        if busy is None:
            return False
        sample = (now, busy, time.process_time())
        if self._last is not None:
            others = (sample[1] - self._last[1]) - (sample[2] - self._last[2])
            self._spare = others / (now - self._last[0]) < 0.5
        self._last = sample
        return self._spare


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def encode_threads() -> int | None:
    """The BLAS threads ``$BBEDIT_ENCODE_THREADS`` fixes for a pass (None: chosen per pass).
    Raises :class:`~bbedit.errors.ConfigError` for a value that is not a positive integer."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"${THREADS_ENV} must be a positive integer, not {raw!r}")
    return int(raw)


class NumpyBert:
    """The encoder of a BERT checkpoint folder, and its tokenizer.

    Raises :class:`ModelNotFound` when the folder's weights or tokenizer cannot be read.
    """

    def __init__(self, root: str | Path, max_length: int = 128) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        root = Path(root)
        try:
            cfg = json.loads((root / "config.json").read_text(encoding="utf-8"))
            weights = load_file(str(root / "model.safetensors"))
            self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        except Exception as e:
            raise ModelNotFound(f"cannot read the BERT model in {root}: {e}") from e
        prefix = next((p for p in _PREFIXES if f"{p}embeddings.word_embeddings.weight" in weights), None)
        if prefix is None:
            raise ModelNotFound(f"{root}/model.safetensors holds no BERT embeddings")
        self.w = {k[len(prefix):]: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()
                  if k.startswith(prefix)}
        self.layers = int(cfg["num_hidden_layers"])
        self.heads = int(cfg["num_attention_heads"])
        self.hidden = int(cfg["hidden_size"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.max_length = min(max_length, int(cfg.get("max_position_embeddings", 512)))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.no_padding()
        self._blas: Any = None  # threadpoolctl's controller, made at the first pass
        self.threads = encode_threads()
        self.spare_core = SpareCore()
        for i in range(self.layers):  # the transposes once, not per call
            p = f"encoder.layer.{i}."
            for name in ("attention.output.dense", "intermediate.dense", "output.dense"):
                self.w[f"{p}{name}.weight.T"] = np.ascontiguousarray(self.w[f"{p}{name}.weight"].T)
            # query, key and value as one (hidden, 3 * hidden) product: one BLAS call where there were three
            qkv = [f"{p}attention.self.{m}" for m in ("query", "key", "value")]
            self.w[f"{p}attention.self.qkv.weight.T"] = np.ascontiguousarray(
                np.concatenate([self.w[f"{k}.weight"] for k in qkv], axis=0).T)
            self.w[f"{p}attention.self.qkv.bias"] = np.concatenate([self.w[f"{k}.bias"] for k in qkv])

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids (n, T) padded with 0, the attention mask (n, T) and character offsets (n, T, 2)
        (special tokens and padding have (0, 0))."""
        encs = self.tokenizer.encode_batch(list(texts))
        t = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), t), np.int64)
        mask = np.zeros((len(encs), t), np.float32)
        offsets = np.zeros((len(encs), t, 2), np.int64)
        for r, e in enumerate(encs):
            n = len(e.ids)
            ids[r, :n], mask[r, :n] = e.ids, 1.0
            offsets[r, :n] = e.offsets
        return ids, mask, offsets

    def pass_threads(self) -> int:
        """BLAS threads for the next pass: ``$BBEDIT_ENCODE_THREADS``, else two while
        :attr:`spare_core` sees a free core, else one (see the module's notes)."""
        if self.threads is not None:
            return self.threads
        return 2 if self.spare_core() else 1

    @contextlib.contextmanager
    def _blas_threads(self, n: int) -> Iterator[None]:
        """BLAS on ``n`` threads for the duration. Without threadpoolctl, as is."""
        if self._blas is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # pragma: no cover - a declared dependency
                self._blas = False
            else:
                self._blas = ThreadpoolController()
        if self._blas is False:
            yield
            return
        with self._blas.limit(limits=n, user_api="blas"):
            yield

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The last hidden states (n, T, hidden) of a padded batch."""
        with self._blas_threads(self.pass_threads()):
            return self._forward(ids, mask)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        n, t = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t][None] \
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        dh = self.hidden // self.heads
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:  # one 2-D product: one BLAS call
                out = v.reshape(-1, v.shape[-1]) @ w[f"{p}{name}.weight.T"] + w[f"{p}{name}.bias"]
                return out.reshape(*v.shape[:-1], out.shape[-1])

            def split(v: np.ndarray) -> np.ndarray:
                return v.reshape(n, t, self.heads, dh).transpose(0, 2, 1, 3)

            qkv = lin(x, "attention.self.qkv")
            d = self.hidden
            q, k, v = split(qkv[..., :d]), split(qkv[..., d:2 * d]), split(qkv[..., 2 * d:])
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, t, self.hidden)
            x = _layer_norm(lin(ctx, "attention.output.dense") + x, w[f"{p}attention.output.LayerNorm.weight"],
                            w[f"{p}attention.output.LayerNorm.bias"], self.eps)
            h = lin(x, "intermediate.dense")
            h = _gelu(h)
            x = _layer_norm(lin(h, "output.dense") + x, w[f"{p}output.LayerNorm.weight"],
                            w[f"{p}output.LayerNorm.bias"], self.eps)
        return x.astype(np.float32, copy=False)


def mean_pool(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked mean over tokens: (n, T, d) and (n, T) → (n, d)."""
    return (states * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1.0)


__all__ = ["THREADS_ENV", "NumpyBert", "SpareCore", "encode_threads", "mean_pool", "supported"]
