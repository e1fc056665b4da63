"""Entry point of `make bench` (``.venv/bin/python bench/run.py``); see bench/README.md."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this directory would come first on sys.path; the package's modules are
# imported as ``bench.*`` from the repository root instead.
sys.path[0] = str(ROOT)

from bench.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
