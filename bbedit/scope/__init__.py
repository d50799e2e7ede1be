"""The scope gate: which edit, if any, a query is about."""

from bbedit.scope.gate import LearnedGate, ScopeGate, SimilarityGate, load_gate

__all__ = ["LearnedGate", "ScopeGate", "SimilarityGate", "load_gate"]
