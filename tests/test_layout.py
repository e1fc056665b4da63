"""Rooms say what they hold: imports point one way (handlers → bot → storage), the
development tooling stays in bot/devtools/, handlers never reach through a service into its
repository, and no dependency's private module or attribute is used."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "storage")


def _modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_handlers_never_import_storage_and_storage_imports_neither_layer_above() -> None:
    found = [(_rel(p), name) for p in _modules("handlers") for name in _imports(p)
             if name.split(".")[0] == "storage"]
    found += [(_rel(p), name) for p in _modules("storage") for name in _imports(p)
              if name.split(".")[0] in ("bot", "handlers")]
    assert found == []


def test_the_development_tooling_is_used_only_by_itself_and_the_demo_command() -> None:
    users = {_rel(p) for p in _modules(*PACKAGES) for name in _imports(p)
             if name.startswith("bot.devtools") and "devtools" not in p.parts}
    assert users == {"bot/__main__.py"}  # `python -m bot demo`, imported only when asked


def test_no_reach_through_a_service_into_its_repository() -> None:
    reach = re.compile(r"\b(?!self\b)\w+(\.\w+)*\.repo\b")
    found = [(_rel(p), line.strip()) for p in _modules("handlers", "bot")
             for line in p.read_text(encoding="utf-8").splitlines()
             if "devtools" not in p.parts and reach.search(line.split("#")[0])]
    assert found == []



def test_no_private_module_or_attribute_of_a_dependency_is_used() -> None:
    ours = {"bot", "handlers", "storage", "tests", "bench"}
    found: list[tuple[str, str]] = []
    for path in _modules(*PACKAGES):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] not in ours and any(p.startswith("_") and not p.startswith("__")
                                            for p in parts):
                found.append((_rel(path), name))
    assert found == []

