"""Mutation testing of the rule modules with mutmut: `make mutation` (not part of `make test`).

Each module is mutated in its own copy of the repository, with only the fast tests that
cover it, so one module's run stays short on a small machine (the whole run is bounded to
20 minutes). The score per module and the survivors are printed; docs/testing.md keeps
the last scores and why each survivor left is equivalent.

    python tests/mutation.py                 # every module
    python tests/mutation.py identity vault  # modules whose name contains a word
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("bot", "handlers", "storage", "tests")
#: The whole run stops after this many seconds (modules not reached are reported).
BUDGET = 20 * 60

#: module -> (name, the fast tests that cover its rules)
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bot/identity.py": ("identity", ("tests/test_identity.py", "tests/test_identity_bounds.py",
                                     "tests/test_render.py")),
    "storage/crypto.py": ("vault", ("tests/test_storage.py", "tests/test_vault_vectors.py")),
    "storage/otp_repo.py": ("caps and codes (storage)", (
        "tests/test_cap_windows.py", "tests/test_storage.py",
        "tests/test_e2e_robustness.py::test_resend_replaces_the_code_and_the_hourly_cap_stops_a_"
        "sixth", "tests/test_e2e_robustness.py::test_the_old_code_dies_when_a_new_one_is_sent",
        "tests/test_contact.py", "tests/test_otp_repo_edges.py",
        "tests/test_otp_service_more.py")),
    "bot/otp.py": ("caps and codes (service)", (
        "tests/test_trust.py", "tests/test_unknown_outcomes.py", "tests/test_contact.py",
        "tests/test_otp_service_edges.py", "tests/test_otp_service_more.py",
        "tests/test_e2e_robustness.py::test_resend_replaces_the_code_and_the_hourly_cap_stops_a_"
        "sixth")),
    "bot/reminders.py": ("reminder round", (
        "tests/test_reminders.py", "tests/test_unknown_outcomes.py",
        "tests/test_reminders_edges.py", "tests/test_reminders_session.py", "--deselect",
        "tests/test_reminders.py::test_a_thousand_chats_are_each_told_once_at_twenty_a_second")),
}


def _config(module: str, tests: tuple[str, ...]) -> str:
    settings = {
        "source_paths": ["bot/", "storage/", "handlers/"],
        "only_mutate": [module],
        "also_copy": ["tests/"],
        "pytest_add_cli_args_test_selection": list(tests),
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q"],
        "use_git_change_detection": False,
    }
    body = "\n".join(f"{key} = {json.dumps(value)}" for key, value in settings.items())
    pyproject = (ROOT / "pyproject.toml").read_text()
    return f"{pyproject}\n[tool.mutmut]\n{body}\n"


def run_module(module: str, tests: tuple[str, ...], timeout: float
               ) -> tuple[int, int, list[str], str]:
    """(killed, total, survivors, note) for one module."""
    keep = os.environ.get("KK_MUTATION_KEEP")  # a directory to keep the run in (to look)
    with tempfile.TemporaryDirectory(prefix="kk-mutation-") as tmp:
        if keep:
            tmp = str(Path(keep) / Path(module).stem)
            shutil.rmtree(tmp, ignore_errors=True)
            Path(tmp).mkdir(parents=True)
        copy = Path(tmp)
        for name in COPIED:
            shutil.copytree(ROOT / name, copy / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (copy / "pyproject.toml").write_text(_config(module, tests))
        env = {**os.environ, "HOME": tmp}
        try:
            subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", "2"],
                           cwd=copy, env=env, capture_output=True, text=True,
                           timeout=timeout, check=False)
            note = ""
        except subprocess.TimeoutExpired:
            note = "stopped at the time budget"
        results = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                                 cwd=copy, env=env, capture_output=True, text=True,
                                 check=False).stdout
    statuses = re.findall(r"^\s*(\S+): (\S.*)$", results, re.MULTILINE)
    total = len(statuses)
    killed = sum(1 for _, status in statuses if status == "killed")
    survivors = [f"{name} ({status})" for name, status in statuses if status != "killed"]
    return killed, total, survivors, note


def main(argv: list[str]) -> int:
    started = time.monotonic()
    chosen = {m: v for m, v in MODULES.items()
              if not argv or any(a in m or a in v[0] for a in argv)}
    for module, (name, tests) in chosen.items():
        left = BUDGET - (time.monotonic() - started)
        if left < 30:
            sys.stdout.write(f"{module}: not reached within the time budget\n")
            continue
        began = time.monotonic()
        killed, total, survivors, note = run_module(module, tests, left)
        score = f"{100 * killed / total:.0f}%" if total else "-"
        sys.stdout.write(f"{module} ({name}): {killed}/{total} killed, {score}, "
                         f"{time.monotonic() - began:.0f}s {note}\n")
        for survivor in survivors:
            sys.stdout.write(f"    survived: {survivor}\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
