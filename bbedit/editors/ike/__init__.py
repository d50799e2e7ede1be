"""IKE: in-context knowledge editing."""

from bbedit.editors.base import fact_sentence
from bbedit.editors.ike.config import IKEConfig
from bbedit.editors.ike.editor import IKEEditor

__all__ = ["IKEConfig", "IKEEditor", "fact_sentence"]
