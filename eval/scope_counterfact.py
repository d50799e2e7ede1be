"""Scope gate on CounterFact (10,000 edits in memory) + NQ-open + KnowEdit relation specificity."""

import logging

from bbedit.evaluation.scope_bench import run

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    print(run())
