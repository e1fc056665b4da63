"""README, .env.example, /bantuan and the diagrams stay in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from telegram.ext import CommandHandler, ConversationHandler

from bot import texts
from bot.app import build_application
from bot.config import ALLOWED, Settings, SettingsError, limits, load_settings
from bot.services import Services
from handlers import build_tambah_kk, operator, tambah_kk

ROOT = Path(__file__).resolve().parent.parent


def test_readme_starts_with_the_two_newcomer_commands() -> None:
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:8])
    assert "make demo" in head and "make test" in head


def test_every_setting_is_in_env_example_and_has_an_allowed_text() -> None:
    example = (ROOT / ".env.example").read_text()
    names = {name.upper() for name in Settings.model_fields}
    listed = set(re.findall(r"^([A-Z_]+)=", example, re.MULTILINE))
    assert listed == names
    assert set(ALLOWED) == names


def _comment_above(example: str, name: str) -> str:
    """The nearest block of comment lines above ``NAME=`` in .env.example."""
    lines = example.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{name}="))
    while index > 0 and not lines[index - 1].startswith("#"):
        index -= 1
    block = []
    while index > 0 and lines[index - 1].startswith("#"):
        index -= 1
        block.insert(0, lines[index])
    return "\n".join(block)


def test_every_range_is_written_once_and_the_prose_agrees_with_it() -> None:
    """The Field limits are the ranges; .env.example's prose and the error line say them."""
    example = (ROOT / ".env.example").read_text()
    ranged = {name.upper(): limits(name) for name in Settings.model_fields if limits(name)}
    assert set(ranged) >= {"KK_MAX_ACCOUNTS", "OTP_TTL_SECONDS", "WEBHOOK_PORT"}
    for name, (low, high) in ranged.items():
        assert f"({low}-{high})" in _comment_above(example, name), name
        line = str(SettingsError(name, None))
        assert f"from {low} to {high}" in line, line
        for bad in (low - 1, high + 1):
            try:
                load_settings(env_file=None, **{name.lower(): bad})
            except SettingsError as exc:
                assert str(exc).startswith(line), (str(exc), line)
            else:
                raise AssertionError(f"{name}={bad} was accepted")
    quoted = re.findall(r"\(([0-9]+)-([0-9]+)\)", example)
    assert len(quoted) == len(ranged), "every range in .env.example belongs to a setting"


def test_help_readme_and_registered_commands_agree(services: Services) -> None:
    app = build_application(services, token="1:" + "a" * 35)
    registered: set[str] = set()
    for handlers in app.handlers.values():
        for handler in handlers:
            inner = [handler]
            if isinstance(handler, ConversationHandler):
                inner = [*handler.entry_points, *handler.fallbacks]
            registered |= {c for h in inner if isinstance(h, CommandHandler) for c in h.commands}
    menu = {name for name, _ in texts.COMMANDS}
    assert registered == menu | {"help"} | set(operator.COMMANDS)
    assert not any(f"/{name}" in texts.HELP for name in operator.COMMANDS), "hidden"
    readme = (ROOT / "README.md").read_text()
    for name in menu:
        assert f"/{name}" in texts.HELP, name
        assert f"`/{name}" in readme, name


def test_the_diagram_names_every_state() -> None:
    diagram = (ROOT / "docs" / "conversations.md").read_text()
    conversation = build_tambah_kk()
    for state in conversation.states:
        name = next(n for n in ("ASK_ID", "CONFIRM", "ASK_OTP", "ASK_LABEL")
                    if getattr(tambah_kk, n) == state)
        assert name in diagram
    assert diagram.count("```mermaid") >= 5
