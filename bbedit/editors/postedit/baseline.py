"""The non-learned post-editor the learned one must beat: string replacement, else a template."""

from __future__ import annotations

import time
from collections.abc import Iterator

from bbedit.editors.base import AnswerEditor, Edits, Rewrite
from bbedit.editors.ike import fact_sentence
from bbedit.editors.postedit.text import mentions, replace_target
from bbedit.types import Edit


class ReplaceEditor(AnswerEditor):
    """Post-edits by rule: every mention of the old target becomes the new one; an answer that does
    not name the old target (or an edit without one) is replaced by the edit's fact sentence.
    It cannot tell that an answer is about something else: every routed answer is changed."""

    name = "replace"

    def rewrite(self, query: str, answer: str, edit: Edit) -> Rewrite:
        t0 = time.perf_counter()
        if edit.target_old and mentions(answer, edit.target_old):
            text = replace_target(answer, edit.target_old, edit.target_new)
        else:
            text = fact_sentence(edit)
        return Rewrite(text, text != answer, 0.0, time.perf_counter() - t0)

    def rewrite_stream(self, query: str, answer: str, edit: Edits) -> Iterator[str]:
        yield self.rewrite_all(query, answer, edit).text
