"""PostEdit: the API model answers as usual and a small local model rewrites only the fact."""

from bbedit.editors.postedit.baseline import ReplaceEditor
from bbedit.editors.postedit.config import PostEditConfig
from bbedit.editors.postedit.editor import PostEditor, Rewrite, render_prompt

__all__ = ["PostEditConfig", "PostEditor", "ReplaceEditor", "Rewrite", "render_prompt"]
