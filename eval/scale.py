"""The edit memory on PostgreSQL + pgvector at 10k, 100k and 1M edits; three proxy replicas on one
database under load; a replica killed and the database restarted during writes; namespaces."""

import logging

from bbedit.evaluation.scale import run

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    print(run())
