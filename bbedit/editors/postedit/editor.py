"""PostEdit-style post-editing (Song et al., 2024, arXiv 2402.08631) on a small local model.

The API model answers the question as usual; a small local causal LM (SmolLM2-135M with
a LoRA adapter by default) reads the edit, the question and that answer, decides whether
the edit bears on it ("keep" or "edit", one token) and, if so, writes a short edit script:
which words of the answer name the old value and what replaces them ("Paris => Rome"), or,
when the answer does not name it, the fact to state ("= ..." for a short answer, "+ ..."
before a longer one). When the answer names the edit's old value verbatim, the exact script
is used without decoding (``rule_spans``; on long answers the 135M model sometimes picks the
wrong span), so the model's writing matters where no rule applies: answers that do not name
the old value, and edits that do not say what they replace. The script is applied to the answer, so everything else stays byte for
byte as the API model wrote it, and decoding a few tokens instead of the whole answer keeps a
rewrite well under a second on two CPU cores. (A first version regenerated the whole answer:
on long answers the 135M model copied the old value along with the rest.) The edit never
reaches the API provider.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bbedit.editors.base import AnswerEditor, Edits, Rewrite, word_chunks
from bbedit.editors.ike import fact_sentence
from bbedit.editors.postedit.config import DEFAULT_ADAPTER, PostEditConfig
from bbedit.editors.postedit.text import (
    apply_script,
    focus,
    insert_fact,
    query_about,
    replace_value,
    script_for,
)
from bbedit.editors.postedit.typed import TypedValues
from bbedit.errors import ConfigError, ModelNotFound
from bbedit.prompts import data_dir, load_prompt
from bbedit.types import Edit

log = logging.getLogger(__name__)

PROMPT_FILE = "postedit/editor.txt"
SCRIPT_VERSION = 2  # how scripts are decoded and applied (eval caches key on this package's source fingerprint instead)
KEEP, EDIT = " keep", " edit"


def render_prompt(query: str, answer: str, edit: Edit) -> str:
    """The post-editor's input for one answer (the format its adapter was trained on)."""
    return load_prompt(PROMPT_FILE).format(fact=fact_sentence(edit), old=edit.target_old or "unknown",
                                           query=query.strip(), answer=answer.strip())


def adapter_path(adapter: str | None) -> Path | None:
    """The directory of ``adapter`` ("default": the shipped one). Raises ModelNotFound."""
    if adapter is None:
        return None
    p = data_dir("models") / DEFAULT_ADAPTER if adapter == "default" else Path(adapter).expanduser()
    if not (p / "adapter_config.json").is_file():
        hint = " (train one with `bbedit posteditor train`)" if adapter == "default" else ""
        raise ModelNotFound(f"no post-editor adapter at {p}{hint}")
    return p


class PostEditor(AnswerEditor):
    """The learned post-editor; ``config`` or keyword overrides of :class:`PostEditConfig`.

    The model loads on first use (a few seconds; the first use of the packaged GGUF converts it
    once, ~30 s). Thread-safe: one rewrite runs at a time, as torch already uses every core.
    """

    name = "postedit"

    def __init__(self, config: PostEditConfig | None = None, **overrides: Any) -> None:
        base = config or PostEditConfig()
        self.config = PostEditConfig(**{**base.__dict__, **overrides}) if overrides else base
        self._lm: Any = None
        self._tok: Any = None
        self._lock = threading.Lock()
        self.adapter_dir = adapter_path(self.config.adapter)  # fail early on a missing adapter
        # the keep decision filters again after the gate, so the router may accept more candidates
        self.gate_threshold: float | None = self.config.gate_threshold
        # an edit without an old value: the value of the new value's kind, where no rule finds one
        self._typed = TypedValues(minimum=self.config.typed_minimum) if self.config.typed_minimum is not None else None

    # -- model ---------------------------------------------------------------------------------------
    def load(self) -> None:
        """Load the model and merge the adapter into it (idempotent)."""
        if self._lm is not None:
            return
        from bbedit.backends.transformers_backend import TransformersBackend

        t0 = time.perf_counter()
        base = TransformersBackend(self.config.model, device=self.config.device, dtype=self.config.dtype,
                                   threads=self.config.threads)
        lm = base.lm
        if self.adapter_dir is not None:
            from peft import PeftModel

            try:
                lm = PeftModel.from_pretrained(lm, str(self.adapter_dir)).merge_and_unload()
            except (OSError, ValueError, RuntimeError, KeyError) as e:
                raise ModelNotFound(f"cannot apply the post-editor adapter {self.adapter_dir} to "
                                    f"{base.model_name}: {e}") from e
        self._lm, self._tok = lm.eval(), base.tokenizer
        ids = [self._tok(t, add_special_tokens=False)["input_ids"] for t in (KEEP, EDIT, "\n")]
        if any(len(i) != 1 for i in ids):
            raise ConfigError(f"the post-editor needs {KEEP!r}, {EDIT!r} and a newline to be single tokens "
                              f"in {base.model_name}'s vocabulary")
        self._keep_id, self._edit_id, self._nl_id = (i[0] for i in ids)
        log.info("post-editor ready in %.1f s (%s, adapter %s)", time.perf_counter() - t0, base.model_name,
                 self.adapter_dir)

    # -- the edit ------------------------------------------------------------------------------------
    def rewrite(self, query: str, answer: str, edit: Edit) -> Rewrite:
        """Post-edit ``answer`` (to ``query``) for ``edit``; the answer is returned as is when the
        editor decides the edit does not bear on it."""
        import torch

        self.load()
        tok, lm = self._tok, self._lm
        t0 = time.perf_counter()
        # in a long answer about several things, the model reads the part about the edit's subject,
        # asked the part of the question about it
        lo, hi = focus(answer, edit, query)
        part = answer[lo:hi]
        prompt = tok(render_prompt(query_about(query, edit), part, edit), add_special_tokens=False)["input_ids"]
        with self._lock, torch.no_grad():
            out = lm(input_ids=torch.tensor([prompt]), use_cache=True)
            p_keep = float(torch.softmax(out.logits[0, -1, [self._keep_id, self._edit_id]].float(), -1)[0])
            if p_keep >= self.config.keep_threshold:
                return Rewrite(answer, False, p_keep, time.perf_counter() - t0)
            fact = fact_sentence(edit)
            exact = script_for(edit, answer, fact, query, self._typed)
            if self.config.rule_spans and " => " in exact:
                text = replace_value(answer, edit, query, self._typed) or insert_fact(answer, fact, edit)
                return Rewrite(text, text != answer, p_keep, time.perf_counter() - t0, 0, 1, exact)
            cache = out.past_key_values
            step = lm(input_ids=torch.tensor([[self._edit_id, self._nl_id]]), past_key_values=cache, use_cache=True)
            generated: list[int] = []
            passes = 2
            while len(generated) < self.config.max_new_tokens:
                nxt = int(step.logits[0, -1].argmax())
                if nxt == tok.eos_token_id:
                    break
                generated.append(nxt)
                if len(generated) == 1 and str(tok.decode(generated)).strip()[:1] in ("=", "+"):
                    break  # "state the fact": the rest of the script is the edit's own sentence
                step = lm(input_ids=torch.tensor([[nxt]]), past_key_values=step.past_key_values, use_cache=True)
                passes += 1
        script = str(tok.decode(generated, skip_special_tokens=True))
        edited = apply_script(part, script, fact)
        text = answer[:lo] + (edited if hi == len(answer) else edited.rstrip() + part[len(part.rstrip()):]) + answer[hi:]
        return Rewrite(text, text != answer, p_keep, time.perf_counter() - t0, len(generated), passes, script)

    def rewrite_stream(self, query: str, answer: str, edit: Edits) -> Iterator[str]:
        """The post-edited answer in chunks (a few words each) for callers that stream. The edit scripts
        are decoded first (a fraction of a second each), so the first chunk comes after them."""
        yield from word_chunks(self.rewrite_all(query, answer, edit).text)


__all__ = ["PostEditor", "Rewrite", "adapter_path", "render_prompt"]
