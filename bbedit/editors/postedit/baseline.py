"""The non-learned post-editor the learned one must beat: string replacement, else a template."""

from __future__ import annotations

import time
from collections.abc import Iterator

from bbedit.editors.base import AnswerEditor, Edits, Rewrite
from bbedit.editors.ike import fact_sentence
from bbedit.editors.postedit.text import replace_value
from bbedit.types import Edit


class ReplaceEditor(AnswerEditor):
    """Post-edits by rule: every mention of the old target becomes the new one (with any value appended
    to the first by a comma, "Paris, France"); an answer that does not name it gets the new value in
    place of the value it gives (its first name, or number for a numeric edit, that is not the
    question's); an answer that gives none is replaced by the edit's fact sentence.
    It cannot tell that an answer is about something else: every routed answer is changed."""

    name = "replace"

    def rewrite(self, query: str, answer: str, edit: Edit) -> Rewrite:
        t0 = time.perf_counter()
        replaced = replace_value(answer, edit, query)  # the old value, or the value the answer gives instead
        text = fact_sentence(edit) if replaced is None else replaced
        return Rewrite(text, text != answer, 0.0, time.perf_counter() - t0)

    def rewrite_stream(self, query: str, answer: str, edit: Edits) -> Iterator[str]:
        yield self.rewrite_all(query, answer, edit).text
