"""Every hand-made mutant of `make mutants` still names code that exists: a mutant whose
text no longer occurs once proves nothing (two went stale unnoticed in issue 24)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_mutant_text_occurs_exactly_once_in_its_file() -> None:
    spec = importlib.util.spec_from_file_location("kk_mutants", ROOT / "tests" / "mutants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kk_mutants"] = module
    try:
        spec.loader.exec_module(module)
        stale = [(mutant.name, mutant.path, (ROOT / mutant.path).read_text().count(mutant.old))
                 for mutant in module.MUTANTS
                 if (ROOT / mutant.path).read_text().count(mutant.old) != 1]
    finally:
        sys.modules.pop("kk_mutants", None)
    assert not stale, stale
