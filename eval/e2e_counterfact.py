"""End-to-end ES/PS/NS on 300 CounterFact cases through the served SmolLM2 (generation protocol)."""

import logging

from bbedit.evaluation.e2e import run

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("httpx", "openai", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    print(run())
