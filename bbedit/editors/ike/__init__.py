"""IKE: in-context knowledge editing."""

from bbedit.editors.ike.config import IKEConfig
from bbedit.editors.ike.editor import IKEEditor, fact_sentence

__all__ = ["IKEConfig", "IKEEditor", "fact_sentence"]
