"""A tiny MLP that scores (query, edit) feature vectors; trained with torch, run with numpy."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bbedit.errors import ConfigError

log = logging.getLogger(__name__)

_MLP_KEYS = ("w1", "b1", "w2", "b2", "w3", "b3")
PAIR_SCALE = (20.0, 5.0)
"""Scales of the pair model's two input halves: unit 384-d embeddings make ``q * e`` and ``|q - e|`` tiny
per dimension, which trains slowly and worse (held-out-relation AUC 0.926 / 0.890 unscaled against
0.939 / 0.908 scaled, two folds of the training pairs)."""


def pair_inputs(q: np.ndarray, e: np.ndarray) -> np.ndarray:
    """The pair model's input for rows of subject-free query and edit embeddings: ``[q * e, |q - e|]``, scaled."""
    return np.concatenate([q * e * PAIR_SCALE[0], np.abs(q - e) * PAIR_SCALE[1]], axis=1, dtype=np.float32)


def pair_probability(mlp: dict[str, np.ndarray], q: np.ndarray, e: np.ndarray) -> np.ndarray:
    """p(same relation) from the pair model with weights ``mlp`` (:meth:`PairScorer.fit_relation_pair`)
    for rows of subject-free query and edit embeddings (n, d)."""
    h = pair_inputs(np.atleast_2d(q), np.atleast_2d(e))
    h = np.maximum(h @ mlp["w1"] + mlp["b1"], 0.0)
    h = np.maximum(h @ mlp["w2"] + mlp["b2"], 0.0)
    z = h @ mlp["w3"] + mlp["b3"]
    return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)


class PairScorer:
    """``p(in scope | features)`` from a one-hidden-layer MLP over standardised features.

    ``columns`` picks the scorer's features out of wider rows (a model trained before a feature was
    added reads its own columns of today's rows); None: the rows hold exactly its features.
    ``relation_mlp`` is the pair model behind the ``relation_pair`` feature (:meth:`relation_pair`):
    weights ``w1, b1, w2, b2, w3, b3`` of a two-hidden-layer MLP over :func:`pair_inputs`."""

    def __init__(self, feature_names: Sequence[str], mean: np.ndarray, std: np.ndarray,
                 w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: float,
                 relation_proj: np.ndarray | None = None, columns: Sequence[int] | None = None,
                 relation_mlp: dict[str, np.ndarray] | None = None) -> None:
        self.feature_names = tuple(feature_names)
        self.columns = None if columns is None else np.asarray(columns, np.int64)
        self.relation_proj = None if relation_proj is None else np.asarray(relation_proj, np.float32)
        self.relation_mlp = None if relation_mlp is None else \
            {k: np.asarray(relation_mlp[k], np.float32) for k in _MLP_KEYS}
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.w1, self.b1 = np.asarray(w1, np.float32), np.asarray(b1, np.float32)
        self.w2, self.b2 = np.asarray(w2, np.float32), float(b2)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for rows of ``x`` (n, n_features)."""
        x = np.atleast_2d(x)
        if self.columns is not None:
            x = x[:, self.columns]
        x = (x - self.mean) / self.std
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        z = h @ self.w2 + self.b2
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def relation_pair(self, q: np.ndarray, e: np.ndarray) -> np.ndarray:
        """p(same relation) for rows of subject-free query and edit embeddings (n, d); zeros without a pair model."""
        if self.relation_mlp is None:
            return np.zeros(len(np.atleast_2d(q)), np.float32)
        return pair_probability(self.relation_mlp, q, e)

    @property
    def pair_model(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
        """:meth:`relation_pair` when this scorer has a pair model, else None (what ``candidates`` takes)."""
        return self.relation_pair if self.relation_mlp is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.feature_names), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "w1": self.w1.tolist(), "b1": self.b1.tolist(), "w2": self.w2.tolist(), "b2": self.b2,
                "relation_proj": None if self.relation_proj is None else self.relation_proj.round(5).tolist(),
                "relation_mlp": None if self.relation_mlp is None else
                {k: v.round(5).tolist() for k, v in self.relation_mlp.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any], expect_features: Sequence[str]) -> PairScorer:
        """A stored scorer that reads rows of ``expect_features`` (the features computed today; a model
        trained on some of them reads its own columns). Raises :class:`ConfigError` if the stored model
        needs a feature that is not computed any more."""
        names = list(d.get("features", []))
        missing = [f for f in names if f not in expect_features]
        if not names or missing:
            raise ConfigError("the stored scope-gate model was trained on features that are not computed any "
                              f"more ({', '.join(missing) or 'none listed'}); retrain it (`bbedit gate train`)")
        columns = None if names == list(expect_features) else [list(expect_features).index(f) for f in names]
        mlp = d.get("relation_mlp")
        if mlp is not None and any(k not in mlp for k in _MLP_KEYS):
            raise ConfigError("the stored scope-gate model's relation pair model lacks "
                              f"{', '.join(k for k in _MLP_KEYS if k not in mlp)}; retrain it")
        return cls(names, np.array(d["mean"]), np.array(d["std"]), np.array(d["w1"]),
                   np.array(d["b1"]), np.array(d["w2"]), d["b2"],
                   None if d.get("relation_proj") is None else np.array(d["relation_proj"]), columns,
                   None if mlp is None else {k: np.array(mlp[k]) for k in _MLP_KEYS})

    @classmethod
    def fit(cls, feature_names: Sequence[str], x: np.ndarray, y: np.ndarray, *, hidden: int = 32,
            epochs: int = 300, lr: float = 0.01, weight_decay: float = 1e-4, seed: int = 0,
            sample_weight: np.ndarray | None = None) -> PairScorer:
        """Train on features ``x`` (n, f) and 0/1 labels ``y`` (optionally weighted) with full-batch Adam."""
        import torch

        torch.manual_seed(seed)
        mean = x.mean(0)
        std = x.std(0) + 1e-6
        xt = torch.tensor((x - mean) / std, dtype=torch.float32)
        yt = torch.tensor(y, dtype=torch.float32)
        l1, l2 = torch.nn.Linear(x.shape[1], hidden), torch.nn.Linear(hidden, 1)
        net = torch.nn.Sequential(l1, torch.nn.ReLU(), l2)
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        wt = torch.ones(len(y)) if sample_weight is None else torch.tensor(sample_weight, dtype=torch.float32)
        loss_fn = torch.nn.BCEWithLogitsLoss(weight=wt / wt.mean())
        for ep in range(epochs):
            opt.zero_grad()
            loss = loss_fn(net(xt).squeeze(-1), yt)
            loss.backward()
            opt.step()
            if ep % 100 == 0:
                log.info("gate training epoch %d loss %.4f", ep, float(loss.detach()))
        return cls(feature_names, mean, std, l1.weight.detach().numpy().T, l1.bias.detach().numpy(),
                   l2.weight.detach().numpy()[0], float(l2.bias.detach().numpy()[0]))

    @staticmethod
    def fit_relation(q: np.ndarray, e: np.ndarray, y: np.ndarray, *, dim: int = 64, epochs: int = 200,
                     lr: float = 0.01, seed: int = 0) -> np.ndarray:
        """Learn a projection (d × dim) under which the cosine of subject-free query and
        edit embeddings tells "same relation" (y=1) from "other relation" (y=0)."""
        import torch

        torch.manual_seed(seed)
        qt, et = torch.tensor(q, dtype=torch.float32), torch.tensor(e, dtype=torch.float32)
        yt = torch.tensor(y, dtype=torch.float32)
        proj = torch.nn.Parameter(torch.eye(q.shape[1])[:, :dim] + 0.01 * torch.randn(q.shape[1], dim))
        scale = torch.nn.Parameter(torch.tensor(5.0))
        bias = torch.nn.Parameter(torch.tensor(-2.0))
        opt = torch.optim.Adam([proj, scale, bias], lr=lr)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        for ep in range(epochs):
            opt.zero_grad()
            cos = torch.nn.functional.cosine_similarity(qt @ proj, et @ proj, dim=-1)
            loss = loss_fn(scale * cos + bias, yt)
            loss.backward()
            opt.step()
            if ep % 50 == 0:
                log.info("relation head epoch %d loss %.4f", ep, float(loss.detach()))
        return proj.detach().numpy()

    @staticmethod
    def fit_relation_pair(q: np.ndarray, e: np.ndarray, y: np.ndarray, *, hidden: tuple[int, int] = (128, 32),
                          epochs: int = 8, batch: int = 512, lr: float = 2e-3, weight_decay: float = 1e-4,
                          seed: int = 0) -> dict[str, np.ndarray]:
        """Fit the pair model of :meth:`relation_pair`: "same relation" (y=1) against "other relation"
        (y=0) from subject-free query and edit embeddings, with mini-batch Adam. Returns its weights."""
        import torch

        torch.manual_seed(seed)
        yt = torch.tensor(y, dtype=torch.float32)
        l1 = torch.nn.Linear(2 * q.shape[1], hidden[0])
        l2 = torch.nn.Linear(hidden[0], hidden[1])
        l3 = torch.nn.Linear(hidden[1], 1)
        net = torch.nn.Sequential(l1, torch.nn.ReLU(), l2, torch.nn.ReLU(), l3)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        pos = float(yt.mean())
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((1 - pos) / max(pos, 1e-6)))
        gen = torch.Generator().manual_seed(seed)
        for ep in range(epochs):
            order = torch.randperm(len(yt), generator=gen)
            total = 0.0
            for b in range(0, len(order), batch):
                i = order[b:b + batch]
                x = torch.from_numpy(pair_inputs(q[i.numpy()], e[i.numpy()]))
                opt.zero_grad()
                loss = loss_fn(net(x).squeeze(-1), yt[i])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(i)
            log.info("relation pair model epoch %d loss %.4f", ep, total / len(order))
        return {"w1": l1.weight.detach().numpy().T, "b1": l1.bias.detach().numpy(),
                "w2": l2.weight.detach().numpy().T, "b2": l2.bias.detach().numpy(),
                "w3": l3.weight.detach().numpy()[0], "b3": l3.bias.detach().numpy()[0]}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict()))
