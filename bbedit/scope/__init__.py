"""The scope gate: which edit, if any, a query is about."""

from bbedit.scope.gate import CrossEncoderGate, LearnedGate, ScopeGate, SimilarityGate, load_gate

__all__ = ["CrossEncoderGate", "LearnedGate", "ScopeGate", "SimilarityGate", "load_gate"]
