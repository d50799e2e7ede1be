"""What every locate-then-edit method shares: the texts an edit is written into, the keys
(MLP activations at the subject's last token) and the target values found by gradient descent.

An edit "``prompt`` about ``subject`` → ``target_new``" is rehearsed in several contexts:
the bare prompt, a few neutral prefixes (ROME's trick for keys that hold in any context) and,
for chat models, the chat template with the prompt as the user's message and the reply
beginning the answer (how the harness asks it). The key k is the input of the down
projection at the subject's last token, averaged over contexts. The target is a vector δ
added to that projection's output at the same token, optimised so the model then says the
new target (ROME's v*, MEMIT's z*), with a KL term that keeps "{subject} is a" unchanged.

Tokens before the subject's last one do not see δ, so their keys and values are computed
once and reused by every optimisation step; only the few tokens from the subject's end to
the target run with gradients.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from bbedit.backends.transformers_backend import last_logits_only
from bbedit.errors import ConfigError
from bbedit.types import Edit
from bbedit.whitebox import hooks
from bbedit.whitebox.spec import ModelSpec, spec_for

log = logging.getLogger(__name__)

PREFIXES = ("{}", "I read this today: {}")
ESSENCE = "{} is a"


@dataclass
class TargetConfig:
    """How target values are found (shared by ROME, MEMIT, AlphaEdit; FT-L uses the contexts)."""

    contexts: tuple[str, ...] = PREFIXES  # "{}" is replaced by the prompt
    chat: bool = True  # also rehearse the edit inside the model's chat template, when it has one
    steps: int = 20
    lr: float = 0.5
    kl_factor: float = 0.0625
    weight_decay: float = 0.5
    clamp_norm: float = 4.0  # ||δ|| ≤ clamp_norm · ||v||
    stop_loss: float = 0.05  # stop once every edit's mean target NLL is below this

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def target_text(edit: Edit) -> str:
    t = edit.target_new.strip()
    return " " + t


def is_question(prompt: str) -> bool:
    return prompt.rstrip().endswith("?")


@dataclass
class Rows:
    """Tokenised rows (one per edit × context), split at the subject's last token.

    ``prefix[i]`` are the tokens before it, ``suffix[i]`` start with it and end with the target
    (when the row has one); ``edit[i]`` indexes the edit; ``n_target[i]`` counts target tokens at
    the end of the suffix (0 for KL rows)."""

    prefix: list[list[int]] = field(default_factory=list)
    suffix: list[list[int]] = field(default_factory=list)
    edit: list[int] = field(default_factory=list)
    n_target: list[int] = field(default_factory=list)


def _subject_end(text: str, subject: str) -> int | None:
    """Character index of the last character of the last occurrence of ``subject`` in ``text``."""
    i = text.rfind(subject)
    if i < 0:
        i = text.lower().rfind(subject.lower())
    return i + len(subject) - 1 if i >= 0 else None


class Tokens:
    """Turns edits into :class:`Rows` for one tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer
        self.has_chat = bool(getattr(tokenizer, "chat_template", None))
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)

    def encode(self, text: str, special: bool) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.tok(text, add_special_tokens=special, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def split(self, text: str, subject: str, special: bool = True) -> tuple[list[int], list[int]]:
        """(tokens before the subject's last token, tokens from it on) for ``text``."""
        ids, offsets = self.encode(text, special)
        end = _subject_end(text, subject)
        at = len(ids) - 1
        if end is not None:
            at = next((i for i, (a, b) in enumerate(offsets) if a <= end < b and b > a), at)
        return ids[:at], ids[at:]

    def contexts(self, edit: Edit, cfg: TargetConfig) -> list[tuple[str, bool]]:
        """(text up to the target, add special tokens?) for each context of ``edit``."""
        out = [(c.format(edit.prompt), True) for c in cfg.contexts]
        if cfg.chat and self.has_chat:
            chat = self.tok.apply_chat_template([{"role": "user", "content": edit.prompt}],
                                                add_generation_prompt=True, tokenize=False)
            out.append((chat + ("" if is_question(edit.prompt) else edit.prompt), False))
        return out

    def rows(self, edits: Sequence[Edit], cfg: TargetConfig, with_target: bool = True,
             essence: bool = False) -> Rows:
        r = Rows()
        for e_i, e in enumerate(edits):
            target = list(self.tok(target_text(e), add_special_tokens=False)["input_ids"]) if with_target else []
            texts = [(ESSENCE.format(e.subject), True)] if essence else self.contexts(e, cfg)
            for text, special in texts:
                pre, suf = self.split(text, e.subject, special)
                r.prefix.append(pre)
                r.suffix.append(suf + target)
                r.edit.append(e_i)
                r.n_target.append(len(target))
        return r


class Runner:
    """Batched forwards of :class:`Rows` with the prefix computed once. With ``upto`` (a module name),
    every forward ends once that module has run: for reading activations of the layers up to it, the
    layers above, the final norm and the vocabulary projection are never computed."""

    def __init__(self, lm: Any, tokens: Tokens, rows: Rows, upto: str | None = None) -> None:
        self.lm, self.rows, self.upto = lm, rows, upto
        dev = next(lm.parameters()).device
        n = len(rows.prefix)
        P = max((len(p) for p in rows.prefix), default=0)
        S = max(len(s) for s in rows.suffix)
        self.S = S
        pre_ids = torch.full((n, P), tokens.pad, dtype=torch.long)
        pre_mask = torch.zeros((n, P), dtype=torch.long)
        suf_ids = torch.full((n, S), tokens.pad, dtype=torch.long)
        suf_mask = torch.zeros((n, S), dtype=torch.long)
        for i, (p, s) in enumerate(zip(rows.prefix, rows.suffix, strict=True)):
            if p:
                pre_ids[i, P - len(p):] = torch.tensor(p)
                pre_mask[i, P - len(p):] = 1
            suf_ids[i, :len(s)] = torch.tensor(s)
            suf_mask[i, :len(s)] = 1
        plen = pre_mask.sum(1)
        self.suf_ids, self.mask = suf_ids.to(dev), torch.cat([pre_mask, suf_mask], 1).to(dev)
        self.pos = (plen[:, None] + torch.arange(S)[None, :]).to(dev)
        self.rows_idx = torch.arange(n, device=dev)
        self.zero_cols = torch.zeros(n, dtype=torch.long, device=dev)
        self.edit_idx = torch.tensor(rows.edit, device=dev)
        self.cache = None
        self.last_only = last_logits_only(lm)
        if P:  # only the keys and values are needed: no logits over the vocabulary for every prefix token
            pos = (pre_mask.cumsum(1) - 1).clamp(min=0)
            # a cache made here is filled layer by layer, so it holds what the layers up to ``upto`` need
            # even when the forward is stopped there
            cache = None
            if upto is not None:
                from transformers import DynamicCache

                cache = DynamicCache(config=lm.config)
            with torch.no_grad(), self._stopped():
                out = lm(input_ids=pre_ids.to(dev), attention_mask=pre_mask.to(dev), position_ids=pos.to(dev),
                         use_cache=True, past_key_values=cache, **self.last_only)
                cache = out.past_key_values
            self.cache = cache
        # where the target tokens sit in the suffix, and which logits predict them
        self.last = torch.tensor([len(s) - 1 for s in rows.suffix], device=dev)

    def _stopped(self) -> contextlib.AbstractContextManager[None]:
        return hooks.stop_after(self.lm, self.upto) if self.upto is not None else contextlib.nullcontext()

    def forward(self, logits: bool = True) -> Any:
        """The suffix rows on the cached prefix; ``logits=False`` when only hooked activations are wanted.
        Returns None when the runner stops ``upto`` a module."""
        cache = copy.deepcopy(self.cache) if self.cache is not None else None
        out = None
        with self._stopped():
            out = self.lm(input_ids=self.suf_ids, attention_mask=self.mask, position_ids=self.pos,
                          past_key_values=cache, use_cache=cache is not None, **({} if logits else self.last_only))
        return out

    def target_nll(self, logits: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of each row's target tokens, (rows,)."""
        logp = torch.log_softmax(logits.float(), -1)
        out = []
        for i, (s, k) in enumerate(zip(self.rows.suffix, self.rows.n_target, strict=True)):
            t0 = len(s) - k
            idx = torch.tensor(s[t0:], device=logits.device)
            out.append(-logp[i, t0 - 1:len(s) - 1].gather(1, idx[:, None]).mean())
        return torch.stack(out)


def per_edit_mean(values: torch.Tensor, edit_idx: torch.Tensor, n_edits: int) -> torch.Tensor:
    """Mean of row ``values`` (rows, ...) per edit → (n_edits, ...)."""
    shape = (n_edits, *values.shape[1:])
    sums = torch.zeros(shape, dtype=values.dtype, device=values.device).index_add_(0, edit_idx, values)
    counts = torch.bincount(edit_idx, minlength=n_edits).clamp(min=1).to(values.dtype)
    return sums / counts.view(-1, *([1] * (values.dim() - 1)))


@dataclass
class Targets:
    """Target values of a batch of edits at one layer: the down projection should output
    ``v + delta`` (per edit) at the subject's last token, where it outputs ``v`` now."""

    layer: int
    v: torch.Tensor  # (edits, d_out)
    delta: torch.Tensor  # (edits, d_out)
    nll: list[float] = field(default_factory=list)  # final target NLL per edit
    steps: int = 0


class Editing:
    """A model being edited: the transformers module, its tokenizer and its spec."""

    def __init__(self, model: Any, tokenizer: Any | None = None) -> None:
        lm = getattr(model, "lm", model)  # a TransformersBackend or a bare transformers model
        self.lm = lm
        self.tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
        if self.tokenizer is None:
            raise ConfigError("white-box editing needs the model's tokenizer (pass a TransformersBackend)")
        self.spec: ModelSpec = spec_for(lm)
        self.tokens = Tokens(self.tokenizer)
        self.name = str(getattr(model, "model_name", getattr(lm.config, "_name_or_path", type(lm).__name__)))

    def down(self, layer: int) -> str:
        n = self.spec.n_layers(self.lm.config)
        if not 0 <= layer < n:
            raise ConfigError(f"layer {layer} is out of range for {self.name} ({n} layers)")
        return self.spec.down_name(layer)

    def block(self, layer: int) -> str:
        self.down(layer)
        return f"{self.spec.layers}.{layer}"

    def weight(self, layer: int) -> torch.Tensor:
        return hooks.weight(self.lm, self.down(layer), self.spec.conv1d)

    # -- keys and values --------------------------------------------------

    def keys(self, edits: Sequence[Edit], layers: Sequence[int], cfg: TargetConfig) -> dict[int, torch.Tensor]:
        """k per edit (mean over contexts) at each layer's down projection: {layer: (edits, d_in)}."""
        got = self._at(edits, cfg, [(self.down(layer), True) for layer in layers], upto=max(layers))
        return dict(zip(layers, got, strict=True))

    def residual(self, edits: Sequence[Edit], layer: int, cfg: TargetConfig) -> torch.Tensor:
        """The residual stream after block ``layer`` at the subject's last token, per edit (mean over
        contexts): MEMIT's z."""
        return self._at(edits, cfg, [(self.block(layer), False)], upto=layer)[0]

    def key_and_residual(self, edits: Sequence[Edit], layer: int, top: int, cfg: TargetConfig
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`keys` at ``layer`` and :meth:`residual` at ``top`` from one forward."""
        k, z = self._at(edits, cfg, [(self.down(layer), True), (self.block(top), False)], upto=max(layer, top))
        return k, z

    def _at(self, edits: Sequence[Edit], cfg: TargetConfig, where: Sequence[tuple[str, bool]], upto: int
            ) -> list[torch.Tensor]:
        """Per edit (mean over contexts), at the subject's last token: the input (True) or output (False)
        of each named module (all in blocks up to ``upto``), from one forward that ends after block ``upto``."""
        run = Runner(self.lm, self.tokens, self.tokens.rows(edits, cfg, with_target=False), upto=self.block(upto))
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.no_grad())
            got = [stack.enter_context(hooks.capture(self.lm, [n], inputs=i)) for n, i in where]
            run.forward(logits=False)
        return [per_edit_mean(g[n][:, 0].float(), run.edit_idx, len(edits)) for g, (n, _) in zip(got, where, strict=True)]

    def targets(self, edits: Sequence[Edit], layer: int, cfg: TargetConfig) -> Targets:
        """Optimise δ per edit at ``layer`` (ROME's v*, MEMIT's z*); the model is not changed."""
        name = self.down(layer)
        rows = self.tokens.rows(edits, cfg)
        run = Runner(self.lm, self.tokens, rows)
        ess = Runner(self.lm, self.tokens, self.tokens.rows(edits, cfg, with_target=False, essence=True))
        n = len(edits)
        with torch.no_grad():
            base_kl = torch.log_softmax(ess.forward().logits[ess.rows_idx, ess.last].float(), -1)
        with torch.no_grad(), hooks.capture(self.lm, [name], inputs=False) as got:
            run.forward(logits=False)
        v = per_edit_mean(got[name][:, 0].float(), run.edit_idx, n)
        v_norm = v.norm(dim=1).clamp(min=1e-6)
        delta = torch.zeros_like(v, requires_grad=True)
        opt = torch.optim.Adam([delta], lr=cfg.lr)
        frozen = [p.requires_grad for p in self.lm.parameters()]
        for p in self.lm.parameters():
            p.requires_grad_(False)
        nll = torch.full((n,), float("inf"))
        steps = 0
        try:
            for step in range(1, cfg.steps + 1):
                steps = step
                opt.zero_grad()
                with hooks.add_at(self.lm, name, run.rows_idx, run.zero_cols, delta, run.edit_idx):
                    logits = run.forward().logits
                row_nll = run.target_nll(logits)
                nll = per_edit_mean(row_nll, run.edit_idx, n)
                loss = nll.sum()
                if cfg.kl_factor:
                    with hooks.add_at(self.lm, name, ess.rows_idx, ess.zero_cols, delta, ess.edit_idx):
                        kl_logits = ess.forward().logits[ess.rows_idx, ess.last].float()
                    new = torch.log_softmax(kl_logits, -1)
                    kl = torch.nn.functional.kl_div(new, base_kl, log_target=True, reduction="none").sum(-1)
                    loss = loss + cfg.kl_factor * kl.sum()
                loss = loss + cfg.weight_decay * ((delta.norm(dim=1) / v_norm) ** 2).sum()
                if float(nll.detach().max()) < cfg.stop_loss:
                    break
                loss.backward()
                opt.step()
                with torch.no_grad():  # keep δ within clamp_norm · ||v||
                    limit = cfg.clamp_norm * v_norm
                    scale = (limit / delta.norm(dim=1).clamp(min=1e-12)).clamp(max=1.0)
                    delta.mul_(scale[:, None])
        finally:
            for p, f in zip(self.lm.parameters(), frozen, strict=True):
                p.requires_grad_(f)
        return Targets(layer, v.detach(), delta.detach(), [float(x) for x in nll.detach()], steps)
