"""``python -m bbedit.cli``: the same as the ``bbedit`` command."""

import sys

from bbedit.cli import main

sys.exit(main())
