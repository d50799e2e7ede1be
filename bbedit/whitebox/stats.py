"""Second-moment statistics of the keys, C = E[k kᵀ], computed locally from text.

ROME, MEMIT and AlphaEdit need, for each edited layer, the uncentred covariance of what the
down projection reads (its input k) over ordinary text: it says which directions of k-space
the model relies on, so an edit can change the value of one key while disturbing the others
least (ROME, MEMIT), or not at all (AlphaEdit's null-space projection).

Nothing is downloaded. The text comes from, in order: what the caller gives (a file, a folder
of ``.txt`` files, or a list of strings); the Wikipedia passages of BoolQ when the benchmark
data is present (read from the end of the file, so the general-ability probe, which reads its
first items, does not overlap); else text the model itself samples. Results are cached under
the user cache dir, keyed by model, corpus, token count and layer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bbedit.errors import ConfigError
from bbedit.whitebox import hooks

log = logging.getLogger(__name__)

Corpus = str | os.PathLike[str] | Sequence[str] | None
TEXT_FIELDS = ("text", "passage", "content", "document", "sentence")


def cache_root() -> Path:
    import platformdirs

    return Path(os.environ.get("BBEDIT_CACHE") or platformdirs.user_cache_dir("bbedit")) / "whitebox-stats"


def default_corpus() -> Path | None:
    """BoolQ's passages in the benchmark data folder (:func:`bbedit.config.data_root`), if present."""
    from bbedit.config import data_root

    p = data_root() / "general" / "boolq-dev.jsonl"
    return p if p.is_file() else None


def read_corpus(corpus: str | os.PathLike[str]) -> list[str]:
    """Texts of a ``.txt`` file (paragraphs), a ``.json``/``.jsonl`` file (a text field per record)
    or a folder of ``.txt`` files."""
    p = Path(corpus).expanduser()
    if p.is_dir():
        files = sorted(p.rglob("*.txt"))
        if not files:
            raise ConfigError(f"corpus folder {p} has no .txt files")
        return [t for f in files for t in read_corpus(f)]
    try:
        raw = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read corpus {p}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"corpus {p} is not UTF-8 text: {e}") from e
    if p.suffix in (".json", ".jsonl"):
        try:
            recs = [json.loads(line) for line in raw.splitlines() if line.strip()] if p.suffix == ".jsonl" \
                else json.loads(raw)
        except ValueError as e:
            raise ConfigError(f"corpus {p} is not valid JSON: {e}") from e
        recs = recs if isinstance(recs, list) else [recs]
        texts = []
        for r in recs:
            if isinstance(r, str):
                texts.append(r)
            elif isinstance(r, dict):
                f = next((f for f in TEXT_FIELDS if isinstance(r.get(f), str)), None)
                if f:
                    texts.append(r[f])
        if not texts:
            raise ConfigError(f"corpus {p}: no record has a text field ({', '.join(TEXT_FIELDS)})")
        return texts
    texts = [t.strip() for t in raw.split("\n\n") if t.strip()]
    if not texts:
        raise ConfigError(f"corpus {p} is empty")
    return texts


def sampled_corpus(model: Any, tokenizer: Any, n_tokens: int, seed: int = 0) -> list[str]:
    """Text the model writes itself (temperature 1), when no corpus is available."""
    torch.manual_seed(seed)
    dev = next(model.parameters()).device
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    texts: list[str] = []
    made = 0
    while made < n_tokens:
        ids = torch.full((16, 1), int(start), dtype=torch.long, device=dev)
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                                 top_k=0, max_new_tokens=128, pad_token_id=tokenizer.eos_token_id)
        texts += tokenizer.batch_decode(out[:, 1:], skip_special_tokens=True)
        made += out[:, 1:].numel()
    return texts


def _digest(texts: Sequence[str]) -> str:
    h = hashlib.sha1()
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def model_key(editing: Any) -> str:
    cfg = editing.lm.config.to_json_string(use_diff=False)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(editing.name).name)[:60]
    return f"{safe}-{hashlib.sha1(cfg.encode()).hexdigest()[:10]}"


def second_moments(editing: Any, layers: Sequence[int], corpus: Corpus = None, n_tokens: int = 100_000,
                   seq_len: int = 256, batch: int = 8, cache: bool = True, progress: bool = True
                   ) -> dict[int, torch.Tensor]:
    """C = E[k kᵀ] (float32, d_in × d_in) of each layer's down-projection input over ``n_tokens``
    tokens of the corpus. Statistics belong to the model as loaded (the unedited one): compute them
    before editing; cached ones are reused across edits."""
    layers = sorted(set(layers))
    if isinstance(corpus, str | os.PathLike):
        texts = read_corpus(corpus)
        source = str(corpus)
    elif corpus is not None:
        texts = [t for t in corpus if t.strip()]
        if not texts:
            raise ConfigError("the corpus has no text")
        source = "texts"
    elif (p := default_corpus()) is not None:
        texts = read_corpus(p)[::-1]  # the end of BoolQ: its first items are the general probe's
        source = f"{p.name} (from its end)"
    else:
        texts = []
        source = "model samples"
    ckey = f"{_digest(texts) if texts else 'sampled'}-{n_tokens}-seq{seq_len}"  # chunk length changes C
    folder = cache_root() / model_key(editing) / ckey
    paths = {layer: folder / f"layer{layer}.pt" for layer in layers}
    found = {}
    if cache:
        for layer, path in paths.items():
            if path.is_file():
                try:
                    found[layer] = torch.load(path, weights_only=True)["mom2"]
                except Exception as e:  # a broken cache file is recomputed, not fatal
                    log.warning("ignoring unreadable statistics %s: %s", path, e)
    todo = [layer for layer in layers if layer not in found]
    if not todo:
        return found
    if not texts:
        log.info("no corpus given and no benchmark data: sampling %d tokens from the model", n_tokens)
        texts = sampled_corpus(editing.lm, editing.tokenizer, n_tokens)
    t0 = time.perf_counter()
    sums, count = _accumulate(editing, todo, texts, n_tokens, seq_len, batch, progress)
    elapsed = time.perf_counter() - t0
    for layer in todo:
        found[layer] = (sums[layer] / count).float()
        if cache:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = paths[layer].with_suffix(f".tmp{os.getpid()}")
            torch.save({"mom2": found[layer], "count": count, "model": editing.name, "corpus": source,
                        "seconds": elapsed}, tmp)
            tmp.replace(paths[layer])
    log.info("statistics for layers %s: %d tokens of %s in %.1f s", todo, count, source, elapsed)
    return found


def _accumulate(editing: Any, layers: Sequence[int], texts: Sequence[str], n_tokens: int, seq_len: int,
                batch: int, progress: bool) -> tuple[dict[int, torch.Tensor], int]:
    from tqdm import tqdm

    tok, lm = editing.tokenizer, editing.lm
    dev = next(lm.parameters()).device
    names = {layer: editing.down(layer) for layer in layers}
    d_in = editing.weight(layers[0]).shape[1]
    sums = {layer: torch.zeros(d_in, d_in, dtype=torch.float64, device=dev) for layer in layers}
    chunks: list[list[int]] = []
    count = 0
    bar = tqdm(total=n_tokens, desc=f"key statistics, layers {layers[0]}-{layers[-1]}", unit="tok",
               disable=not progress)

    def run(chunks: list[list[int]]) -> int:
        width = max(len(c) for c in chunks)
        ids = torch.full((len(chunks), width), editing.tokens.pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, c in enumerate(chunks):
            ids[i, :len(c)] = torch.tensor(c)
            mask[i, :len(c)] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        with torch.no_grad(), hooks.capture(lm, list(names.values())) as got, \
                hooks.stop_after(lm, names[layers[-1]]):
            lm(input_ids=ids, attention_mask=mask)
        keep = mask.bool()
        for layer, n in names.items():
            k = got[n][keep].double()
            sums[layer] += k.T @ k
        return int(keep.sum())

    try:
        for text in texts:
            ids = list(tok(text, add_special_tokens=True)["input_ids"])
            chunks += [ids[i:i + seq_len] for i in range(0, len(ids), seq_len) if len(ids[i:i + seq_len]) > 1]
            while len(chunks) >= batch and count < n_tokens:
                got = run(chunks[:batch])
                chunks = chunks[batch:]
                count += got
                bar.update(got)
            if count >= n_tokens:
                break
        if count < n_tokens and chunks:
            got = run(chunks)
            count += got
            bar.update(got)
    finally:
        bar.close()
    if count == 0:
        raise ConfigError("the corpus produced no tokens")
    return sums, count
