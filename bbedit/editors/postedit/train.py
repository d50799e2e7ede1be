"""``bbedit posteditor train``: LoRA-tune the post-editor on CPU.

The data comes from the training files only (:mod:`bbedit.editors.postedit.data`); records
whose subject the PostEdit evaluation sets mention are left out as well. The adapter (LoRA
rank 8 on every linear layer, stored in float16: about 5 MB for SmolLM2-135M) is written
with a ``training.json`` that records the data, settings, loss curve, held-out accuracy and
time. The shipped adapter is ``models/postedit-smollm2-135m``; by default a new one goes
to the user data dir (``bbedit posteditor train --out DIR`` to choose).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bbedit.editors.postedit.data import Example, build_examples, read_facts
from bbedit.editors.postedit.editor import EDIT, KEEP, PROMPT_FILE
from bbedit.errors import ConfigError
from bbedit.prompts import load_prompt

log = logging.getLogger(__name__)

EVAL_FILES = ("postedit/counterfact/query_data.json", "postedit/counterfact/edit_data.json",
              "postedit/zsre/query_data.json", "postedit/zsre/edit_data.json")


def default_out() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("bbedit")) / "posteditor" / "postedit-smollm2-135m"


@dataclass
class TrainConfig:
    """Settings of one training run (all recorded in ``training.json``)."""

    out: str = ""
    data_root: str = ""  # the benchmark data folder; empty: bbedit.config.data_root()
    model: str | None = None
    n_counterfact: int = 450
    n_zsre: int = 300
    served_share: float = 0.5
    rank: int = 8
    alpha: int = 16
    lr: float = 1e-3
    epochs: int = 1
    batch_size: int = 8
    max_len: int = 384
    decision_weight: float = 0.5  # share of each example's loss on its keep/edit token
    holdout: float = 0.06
    seed: int = 0
    threads: int | None = None
    served_answers: bool = True
    exclude_eval_subjects: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.rank < 1 or self.alpha < 1:
            raise ConfigError("rank and alpha must be positive")
        if not 0 < self.lr < 1:
            raise ConfigError(f"lr must be in (0, 1), got {self.lr}")
        if self.epochs < 1 or self.batch_size < 1 or self.max_len < 32:
            raise ConfigError("epochs and batch_size must be positive and max_len at least 32")
        if not 0.0 <= self.decision_weight <= 1.0:
            raise ConfigError(f"decision_weight must be in [0, 1], got {self.decision_weight}")
        if self.n_counterfact < 0 or self.n_zsre < 0 or self.n_counterfact + self.n_zsre == 0:
            raise ConfigError("n_counterfact + n_zsre must be positive")


def eval_subject_filter(data_root: Path) -> set[str]:
    """Lower-cased text of the PostEdit evaluation files' queries and edit prompts (training records
    whose subject occurs in it are left out)."""
    texts: list[str] = []
    for rel in EVAL_FILES:
        p = data_root / rel
        if p.is_file():
            for r in json.loads(p.read_text(encoding="utf-8")):
                texts += [str(r.get("query", "")), str(r.get("requested_rewrite", ""))]
    return {t.lower() for t in texts if t}


def _served_asker(cache_path: Path) -> tuple[Any, Any]:
    """A function answering batches of chat requests with the embedded SmolLM2 server (greedy,
    cached), and the context stack that owns the server."""
    import contextlib

    from bbedit.backends.cache import CachedModel, CallCache, pmap
    from bbedit.backends.embedded import EmbeddedServer
    from bbedit.backends.openai_backend import OpenAIBackend

    stack = contextlib.ExitStack()
    state: dict[str, Any] = {}

    def ask(requests: list[Any]) -> list[str]:
        if "model" not in state:
            server = stack.enter_context(EmbeddedServer(n_threads=2, n_parallel=4))
            backend = OpenAIBackend(model=server.model, base_url=server.base_url, timeout=180)
            state["model"] = CachedModel(backend, CallCache(cache_path), max_tokens=96, temperature=0.0)
        model = state["model"]
        return [c.text for c in pmap(model.complete, requests, 4, f"served answers ({len(requests)})")]

    return ask, stack


def tokenize(tok: Any, examples: Sequence[Example], max_len: int) -> tuple[list[tuple[list[int], list[int]]], int]:
    """(input ids, labels) per example, loss on the output only; examples longer than ``max_len``
    are dropped (their count is returned)."""
    rows, dropped = [], 0
    for ex in examples:
        p = tok(ex.prompt, add_special_tokens=False)["input_ids"]
        t = tok(ex.target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        if len(p) + len(t) > max_len:
            dropped += 1
            continue
        rows.append((p + t, [-100] * len(p) + t))
    return rows, dropped


def _batches(rows: list[tuple[list[int], list[int]]], size: int, rng: random.Random) -> list[list[int]]:
    """Index batches of similar length (less padding), in random order."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    chunks = [sorted(order[i:i + size * 16], key=lambda j: len(rows[j][0])) for i in range(0, len(order), size * 16)]
    batches = [c[i:i + size] for c in chunks for i in range(0, len(c), size)]
    rng.shuffle(batches)
    return batches


def _collate(rows: list[tuple[list[int], list[int]]], idx: list[int], pad: int) -> dict[str, Any]:
    import torch

    width = max(len(rows[i][0]) for i in idx)
    ids = [rows[i][0] + [pad] * (width - len(rows[i][0])) for i in idx]
    labels = [rows[i][1] + [-100] * (width - len(rows[i][1])) for i in idx]
    mask = [[1] * len(rows[i][0]) + [0] * (width - len(rows[i][0])) for i in idx]
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def weighted_loss(lm: Any, batch: dict[str, Any], decision_weight: float) -> Any:
    """Each example's loss is ``decision_weight`` x the cross-entropy of its first output token (keep or
    edit) plus the rest x the mean over its remaining output tokens; the batch loss is the mean over
    examples. (A plain token mean lets the long, easy copying drown the one token that decides.)"""
    import torch
    import torch.nn.functional as F

    labels = batch.pop("labels")
    logits = lm(**batch).logits[:, :-1].float()
    target = labels[:, 1:]
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100,
                         reduction="none").view(target.shape)
    mask = target != -100
    first = mask.float().argmax(1)  # the first output position of each row
    rows = torch.arange(len(target))
    decision = ce[rows, first]
    rest_mask = mask.clone()
    rest_mask[rows, first] = False
    rest = (ce * rest_mask).sum(1) / rest_mask.sum(1).clamp(min=1)
    return (decision_weight * decision + (1 - decision_weight) * rest).mean()


def validate(lm: Any, tok: Any, examples: Sequence[Example]) -> dict[str, float]:
    """Held-out decision accuracy (keep vs edit from the first output token) and the teacher-forced
    token accuracy of the rewrites."""
    import torch

    keep_id = tok(KEEP, add_special_tokens=False)["input_ids"][0]
    edit_id = tok(EDIT, add_special_tokens=False)["input_ids"][0]
    right, hits, total = 0, 0, 0
    lm.eval()
    with torch.no_grad():
        for ex in examples:
            p = tok(ex.prompt, add_special_tokens=False)["input_ids"]
            t = tok(ex.target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            logits = lm(input_ids=torch.tensor([p + t])).logits[0]
            first = logits[len(p) - 1]
            said_keep = bool(first[keep_id] >= first[edit_id])
            right += said_keep == (ex.kind == "keep")
            if ex.kind == "edit":
                preds = logits[len(p) - 1:len(p) + len(t) - 1].argmax(-1).tolist()
                hits += sum(int(a == b) for a, b in zip(preds, t, strict=True))
                total += len(t)
    return {"decision_accuracy": right / max(len(examples), 1), "rewrite_token_accuracy": hits / max(total, 1),
            "n": len(examples)}


def _portable_config(path: Path, base: str) -> None:
    """peft records the base model's local path (a cache dir on this machine); record its name instead
    (bbedit always passes the base model itself when it loads an adapter)."""
    conf = json.loads(path.read_text(encoding="utf-8"))
    conf["base_model_name_or_path"] = base
    path.write_text(json.dumps(conf, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def train(cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Build the data, train, validate and save the adapter; returns what ``training.json`` holds.
    Raises ConfigError / EditFileError / ModelNotFound."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm

    from bbedit.backends.transformers_backend import TransformersBackend, _cache_root
    from bbedit.config import data_root

    cfg.check()
    t_start = time.perf_counter()
    data = data_root(cfg.data_root or None)
    out = Path(cfg.out).expanduser() if cfg.out else default_out()
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    eval_text = "\n".join(sorted(eval_subject_filter(data))) if cfg.exclude_eval_subjects else ""
    facts_all = read_facts(data)
    facts = [f for f in facts_all if f.edit.subject.lower() not in eval_text] if eval_text else facts_all
    log.info("%d training records (%d left out: their subject is in the evaluation sets)",
             len(facts), len(facts_all) - len(facts))

    ask, stack = (_served_asker(_cache_root().parent / "posteditor-answers.sqlite")
                  if cfg.served_answers else (None, None))
    t0 = time.perf_counter()
    try:
        examples = build_examples(facts, ask, cfg.n_counterfact, cfg.n_zsre, cfg.served_share if ask else 0.0,
                                  seed=cfg.seed)
    finally:
        if stack is not None:
            stack.close()
    t_data = time.perf_counter() - t0
    n_hold = max(1, int(len(examples) * cfg.holdout))
    held, train_ex = examples[:n_hold], examples[n_hold:]

    backend = TransformersBackend(cfg.model)
    tok = backend.tokenizer
    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    lm = get_peft_model(backend.lm, lora)
    rows, dropped = tokenize(tok, train_ex, cfg.max_len)
    steps_per_epoch = math.ceil(len(rows) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    params = [p for p in lm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(total - warm, 1))))
    log.info("training on %d examples (%d dropped as longer than %d tokens), %d steps", len(rows), dropped,
             cfg.max_len, total)
    losses: list[tuple[int, float]] = []
    lm.train()
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc="post-editor LoRA", disable=not progress, unit="step")
    step, running = 0, 0.0
    for _ in range(cfg.epochs):
        for idx in _batches(rows, cfg.batch_size, rng):
            loss = weighted_loss(lm, _collate(rows, idx, tok.eos_token_id), cfg.decision_weight)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            running = loss.item() if step == 1 else 0.9 * running + 0.1 * loss.item()
            if step % 10 == 0 or step == total:
                losses.append((step, round(running, 4)))
            if step == 3:
                per = (time.perf_counter() - t0) / 3
                log.info("about %.0f min to go (%.1f s per step)", per * (total - 3) / 60, per)
            bar.set_postfix(loss=f"{running:.3f}")
            bar.update()
    bar.close()
    t_train = time.perf_counter() - t0
    val = validate(lm, tok, held)
    for p in lm.parameters():  # store the adapter in half precision (loaded back into float32)
        if p.requires_grad:
            p.data = p.data.half()
    out.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(str(out))
    (out / "README.md").unlink(missing_ok=True)  # peft's generic model card; training.json says what this is
    _portable_config(out / "adapter_config.json", cfg.model or backend.model_name)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    counts: dict[str, int] = {}
    for ex in train_ex:
        counts[f"{ex.dataset}/{ex.kind}/{ex.origin}"] = counts.get(f"{ex.dataset}/{ex.kind}/{ex.origin}", 0) + 1
    summary = {
        "base_model": backend.model_name, "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        "prompt_sha256": hashlib.sha256(load_prompt(PROMPT_FILE).encode()).hexdigest(),
        "train_files": ["counterfact/counterfact-train.json", "zsre/zsre_mend_train-1k.json"],
        "records_available": len(facts), "records_left_out_eval_subjects": len(facts_all) - len(facts),
        "examples": len(rows), "examples_dropped_too_long": dropped, "example_counts": dict(sorted(counts.items())),
        "steps": total, "data_s": round(t_data, 1), "train_s": round(t_train, 1),
        "total_s": round(time.perf_counter() - t_start, 1), "adapter_bytes": size,
        "validation": val, "loss_curve": losses,
    }
    (out / "training.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    log.info("adapter saved to %s (%.1f MB); held-out decision accuracy %.3f", out, size / 1e6,
             val["decision_accuracy"])
    return summary
