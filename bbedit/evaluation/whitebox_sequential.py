"""The ``whitebox_sequential`` task (see :mod:`bbedit.evaluation.whitebox`)."""

from bbedit.evaluation.whitebox import report
from bbedit.evaluation.whitebox import run_sequential as run

__all__ = ["report", "run"]
