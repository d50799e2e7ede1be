"""Per-query overhead of memory + gate at 10k and 100k edits; edits added per second."""

import logging

from bbedit.evaluation.overhead import run

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    print(run())
