"""The middleware benchmark: exactness, overhead, load, fuzzing and a crash test of `bbedit serve`."""

import argparse
import logging

from bbedit.evaluation.middleware import run

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="a small run to check the harness (not a report)")
    a = p.parse_args()
    if a.quick:
        import tempfile
        from pathlib import Path

        print(run(n_exact=10, load_s=10, direct_s=5, clients=10, n_pairs=20, n_fuzz=100, n_crash=200, n_edits=100, n_api=6,
                  root=Path(tempfile.mkdtemp(prefix="bbedit-middleware-quick-"))))
    else:
        print(run())
