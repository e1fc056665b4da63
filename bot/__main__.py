"""Command line: run | demo | keygen | rotate-key | backup PATH | remind [--date D].

Operator-facing text is English. A bad setting or an unusable key prints one line to
stderr and exits with status 2; nothing is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import date
from pathlib import Path

from bot import datalock
from bot.config import Settings, SettingsError, load_settings
from bot.datalock import DataDirBusy
from bot.logs import configure_logging
from bot.runner import StartupRefused
from storage.crypto import generate_master_key
from storage.db import DatabaseError
from storage.keys import KeyError_, encode_key, open_existing, rotate_key

EXIT_USAGE = 2


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Asisten KK bot")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot (long polling, or webhook if WEBHOOK_URL)")
    commands.add_parser("demo", help="the whole bot in this terminal, sandbox, no token")
    commands.add_parser("keygen", help="print a new base64 master key")
    commands.add_parser("rotate-key", help="re-encrypt everything under a new master key")
    backup = commands.add_parser("backup", help="consistent online copy of the database")
    backup.add_argument("path", type=Path)
    remind = commands.add_parser("remind", help="run one reminder round now (safe beside a "
                                                "running bot; never sends anything twice)")
    remind.add_argument("--date", type=date.fromisoformat, default=None,
                        help="as if it were this day, YYYY-MM-DD (Asia/Jakarta)")
    return parser


async def _rotate(settings: Settings) -> int:
    from bot.services import open_services

    services = await open_services(settings)
    try:
        key_path = None if settings.kk_master_key else settings.master_key_path
        raw, count = await rotate_key(services.db, services.vault, key_path)
    finally:
        await services.close()
    if key_path is None:
        sys.stdout.write(f"{encode_key(raw)}\n")
        sys.stderr.write(f"re-encrypted {count} account(s); set KK_MASTER_KEY to the key "
                         "printed above before the next start\n")
    else:
        sys.stderr.write(f"re-encrypted {count} account(s); new key in {key_path}, "
                         f"old key kept as {key_path}.old\n")
    return 0


async def _backup(settings: Settings, target: Path) -> int:
    """A consistent copy, safe beside a running bot: it writes nothing to the database
    (no migration, no key record), it only reads through SQLite's online backup API."""
    if target.exists():  # noqa: ASYNC240 - one stat before any I/O starts
        return _fail(f"{target} already exists; choose a new path")
    db = await open_existing(settings.kk_data_dir, settings.database_path,
                             settings.env_master_key)
    try:
        await db.backup_to(target)
    finally:
        await db.close()
    sys.stderr.write(f"backup written to {target} (it needs the same master key)\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keygen":
        sys.stdout.write(encode_key(generate_master_key()) + "\n")
        return 0
    if args.command == "demo":
        # Sandbox, console SMS and a throwaway directory, whatever the environment says.
        from bot.devtools.demo import run_demo

        configure_logging(logging.WARNING)
        return asyncio.run(run_demo())
    try:
        settings = load_settings()
        if args.command in ("run", "remind"):
            settings.require_token()
        settings.ensure_data_dir()
    except SettingsError as exc:
        return _fail(str(exc))
    configure_logging(settings.log_level_number, settings.secret_values())
    try:
        with datalock.hold(settings.kk_data_dir, **LOCKS[args.command]):
            return asyncio.run(_command(args, settings))
    except (KeyError_, DatabaseError, DataDirBusy, StartupRefused) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 0


#: Which locks on KK_DATA_DIR each command holds (see bot/datalock.py).
LOCKS: dict[str, dict[str, tuple[str, ...]]] = {
    "run": {"exclusive": (datalock.INSTANCE,)},
    "rotate-key": {"exclusive": (datalock.INSTANCE, datalock.KEY)},
    "backup": {"shared": (datalock.KEY,)},
    "remind": {"shared": (datalock.KEY,)},
}


async def _command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        from bot.runner import run_bot

        await run_bot(settings)
        return 0
    if args.command == "rotate-key":
        return await _rotate(settings)
    if args.command == "backup":
        return await _backup(settings, args.path)
    if args.command == "remind":
        return await _remind(settings, args.date)
    return _fail(f"unknown command {args.command}")


async def _remind(settings: Settings, day: date | None) -> int:
    """One reminder round through the Bot API, as the running bot's daily job does it."""
    from telegram import Bot
    from telegram.error import InvalidToken, NetworkError
    from telegram.request import HTTPXRequest

    from bot.services import open_services
    from bot.transport import RetryingRequest
    from handlers.reminders import deliver_with

    services = await open_services(settings)
    api = settings.telegram_api_url
    bot = Bot(settings.token, base_url=f"{api}/bot", base_file_url=f"{api}/file/bot",
              request=RetryingRequest(HTTPXRequest()))
    try:
        async with bot:
            report = await services.reminders.run_round(day or services.reminders.today(),
                                                        deliver_with(bot))
    except InvalidToken:
        return _fail("Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized or 404 Not "
                     "Found: is the token, and TELEGRAM_API_URL, right?)")
    except NetworkError as exc:
        return _fail(f"Telegram could not be reached ({type(exc).__name__}); run it again")
    finally:
        await services.close()
    sys.stderr.write(f"reminder round {report.day.isoformat()}: {report.chats} chat(s) "
                     f"opted in, {report.sent} sent, {report.nothing} with nothing to say, "
                     f"{report.already} already sent, {report.failed} refused, "
                     f"{report.backend_failures} backend failure(s)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
