"""Entry point: ``.venv/bin/python bench/run.py --help``.

Also runs as ``python -m bench.run``. The project root is put on ``sys.path`` so that
the harness modules import as the ``bench`` package when this file is run as a script.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.harness import main

    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(_main())
