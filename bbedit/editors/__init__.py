"""Black-box editors: they change an answer when the scope gate says a query is about an edit."""

from bbedit.editors.base import Editor, EditorOutput, editor_names, make_editor, register_editor

__all__ = ["Editor", "EditorOutput", "editor_names", "make_editor", "register_editor"]
