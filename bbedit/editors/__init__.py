"""Black-box editors: they change an answer when the scope gate says a query is about an edit.

Two kinds: :class:`RequestEditor` (changes the request: IKE) and :class:`AnswerEditor` (rewrites the
backend's answer: the post-editors)."""

from bbedit.editors.base import (
    AnswerEditor,
    Editor,
    EditorBase,
    EditorOutput,
    RequestEditor,
    Rewrite,
    check_editor,
    editor_names,
    make_editor,
    register_editor,
)

__all__ = ["AnswerEditor", "Editor", "EditorBase", "EditorOutput", "RequestEditor", "Rewrite", "check_editor",
           "editor_names", "make_editor", "register_editor"]
