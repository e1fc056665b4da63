"""Command line: run | demo | keygen | rotate-key | forget-keys | backup PATH |
verify-backup PATH | restore PATH [--force] | remind [--date D]; ``--version``.

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

from bot import __version__, datalock
from bot.backups import BackupError, inspect_backup, read_key, restore
from bot.config import Settings, SettingsError, load_settings, unknown_settings
from bot.datalock import DataDirBusy
from bot.logs import configure_logging
from bot.runner import StartupRefused
from storage.crypto import generate_master_key
from storage.db import DatabaseError
from storage.keys import (
    KeyError_,
    describe_keys,
    encode_key,
    forget_retired,
    open_existing,
    rotate_key,
    write_key_file,
)

EXIT_USAGE = 2


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Asisten KK bot")
    parser.add_argument("--version", action="version", version=f"asisten-kk {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot (long polling, or webhook if WEBHOOK_URL)")
    commands.add_parser("demo", help="the whole bot in this terminal, sandbox, no token")
    commands.add_parser("keygen", help="print a new base64 master key")
    commands.add_parser("rotate-key", help="re-encrypt everything under a new master key "
                                           "(the old one is kept as master.key.<UTC time>)")
    forget = commands.add_parser(
        "forget-keys", help="remove the retired master keys that open none of the backups "
                            "you still keep")
    forget.add_argument("keep", type=Path, nargs="*", metavar="BACKUP",
                        help="a backup you keep: the key that opens it stays")
    forget.add_argument("--all", action="store_true",
                        help="no backup is kept: remove every retired key")
    backup = commands.add_parser("backup", help="consistent online copy of the database")
    backup.add_argument("path", type=Path)
    verify = commands.add_parser("verify-backup", help="open a backup with the key: schema, "
                                                       "row counts, integrity")
    verify.add_argument("path", type=Path)
    verify.add_argument("--key-file", type=Path, default=None,
                        help="the key kept apart (default: KK_MASTER_KEY, else master.key)")
    restore_cmd = commands.add_parser("restore", help="restore a backup into KK_DATA_DIR "
                                                      "(the bot stopped)")
    restore_cmd.add_argument("path", type=Path)
    restore_cmd.add_argument("--force", action="store_true",
                             help="replace an existing database (it is kept as a copy)")
    restore_cmd.add_argument("--key-file", type=Path, default=None,
                             help="the key kept apart; installed as master.key when the "
                                  "data directory has none and KK_MASTER_KEY is not set")
    copy = commands.add_parser("copy-store", help="copy a stopped deployment between SQLite "
                                                  "(KK_DATA_DIR) and an empty PostgreSQL")
    way = copy.add_mutually_exclusive_group(required=True)
    way.add_argument("--to", metavar="URL", help="SQLite in KK_DATA_DIR -> this PostgreSQL")
    way.add_argument("--from", dest="from_url", metavar="URL",
                     help="this PostgreSQL -> SQLite in KK_DATA_DIR (a rollback)")
    remind = commands.add_parser("remind", help="run one reminder round now (safe beside a "
                                                "running bot; never sends anything twice)")
    remind.add_argument("--date", type=date.fromisoformat, default=None,
                        help="as if it were this day, YYYY-MM-DD (Asia/Jakarta)")
    return parser


async def _rotate(settings: Settings) -> int:
    from bot.leader import Leadership
    from bot.services import open_services

    leadership = None
    if settings.database_url:  # no bot may serve with the old key: hold the leader lock
        leadership = Leadership(settings.database_url)
        if not await leadership.hold_now():
            await leadership.release()
            return _fail("a bot is running on this PostgreSQL database (it holds the leader "
                         "lock): stop every instance first; nothing was changed")
    try:
        services = await open_services(settings)
        try:
            key_path = None if settings.kk_master_key else settings.master_key_path
            raw, count = await rotate_key(services.db, services.vault, key_path)
        finally:
            await services.close()
    finally:
        if leadership is not None:
            await leadership.release()
    if key_path is None:
        sys.stdout.write(f"{encode_key(raw)}\n")
        sys.stderr.write(f"re-wrapped {count} chat key(s); set KK_MASTER_KEY to the key "
                         "printed above before the next start\n")
    else:
        sys.stderr.write(f"re-wrapped {count} chat key(s); new key in {key_path}\n")
        for line in describe_keys(key_path):
            sys.stderr.write(line + "\n")
        sys.stderr.write("once the backups of a retired key are gone, remove it with "
                         "`python -m bot forget-keys`\n")
    return 0


def _forget_keys(settings: Settings, keep: list[Path], everything: bool) -> int:
    if not keep and not everything:
        return _fail("name the backups you still keep (their keys stay), or --all")
    removed, kept = forget_retired(settings.master_key_path, keep)
    for key_file in removed:
        sys.stderr.write(f"removed {key_file}\n")
    for key_file in kept:
        sys.stderr.write(f"kept {key_file} (it opens a backup you keep)\n")
    if not removed and not kept:
        sys.stderr.write("there is no retired key\n")
    return 0


async def _backup(settings: Settings, target: Path) -> int:
    """A consistent copy, safe beside a running bot: it writes nothing to the database
    (no migration, no key record), it only reads through SQLite's online backup API."""
    if target.exists():  # noqa: ASYNC240 - one stat before any I/O starts
        return _fail(f"{target} already exists; choose a new path")
    db = await open_existing(settings.kk_data_dir, settings.database_path,
                             settings.env_master_key)
    try:
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            await db.backup_to(target)
        except OSError as exc:
            return _fail(f"cannot write {target} ({exc.strerror or type(exc).__name__}); "
                         "nothing was written")
    finally:
        await db.close()
    sys.stderr.write(f"backup written to {target} (it needs the same master key)\n")
    return 0


async def _copy_store(settings: Settings, to: str | None, from_url: str | None) -> int:
    """SQLite in KK_DATA_DIR <-> an empty PostgreSQL, the source stopped and unchanged."""
    from storage.copystore import CopyRefused, from_postgres, to_postgres
    from storage.keys import resolve_master_key

    url = to or from_url or ""
    if not url.startswith(("postgresql://", "postgres://")):
        return _fail("copy-store: the URL must start with postgresql://")
    path = settings.database_path
    if from_url and not (settings.env_master_key or settings.master_key_path.exists()):
        return _fail("copy-store: the master key of the PostgreSQL data is needed "
                     f"(KK_MASTER_KEY or {settings.master_key_path}); nothing was changed")
    if to and not path.exists():
        return _fail(f"copy-store: {path} does not exist; nothing to copy")
    raw = resolve_master_key(settings.kk_data_dir, path if to else
                             settings.kk_data_dir / "none", settings.env_master_key)
    try:
        report = await (to_postgres(path, url, raw) if to else from_postgres(url, path, raw))
    except CopyRefused as exc:
        return _fail(f"copy-store: {exc}")
    for line in report.lines():
        sys.stderr.write(line + "\n")
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
    configure_logging(settings.log_level_number, settings.secret_values(),
                      settings.log_format)
    for line in unknown_settings():
        logging.getLogger("bot.config").warning("%s", line)
    try:
        datalock.make_private(settings.kk_data_dir)
        locks = LOCKS[args.command]
        if args.command == "run" and settings.database_url:  # the leader lock decides
            locks = {"shared": (datalock.KEY,)}
        with datalock.hold(settings.kk_data_dir, **locks):
            return asyncio.run(_command(args, settings))
    except (KeyError_, DatabaseError, DataDirBusy, StartupRefused, BackupError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 0


#: Which locks on KK_DATA_DIR each command holds (see bot/datalock.py).
LOCKS: dict[str, dict[str, tuple[str, ...]]] = {
    "run": {"exclusive": (datalock.INSTANCE,)},
    "rotate-key": {"exclusive": (datalock.INSTANCE, datalock.KEY)},
    "forget-keys": {"exclusive": (datalock.KEY,)},
    "backup": {"shared": (datalock.KEY,)},
    "remind": {"shared": (datalock.KEY,)},
    "verify-backup": {},
    "restore": {"exclusive": (datalock.INSTANCE, datalock.KEY)},
    "copy-store": {"exclusive": (datalock.INSTANCE,), "shared": (datalock.KEY,)},
}


async def _command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        from bot.runner import run_bot

        return await run_bot(settings)
    if args.command == "rotate-key":
        return await _rotate(settings)
    if args.command == "backup":
        return await _backup(settings, args.path)
    if args.command == "forget-keys":
        return _forget_keys(settings, args.keep, args.all)
    if args.command == "remind":
        return await _remind(settings, args.date)
    if args.command == "copy-store":
        return await _copy_store(settings, args.to, args.from_url)
    if args.command == "verify-backup":
        return _verify(settings, args.path, args.key_file)
    if args.command == "restore":
        return _restore(settings, args.path, args.key_file, args.force)
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


def _verify(settings: Settings, path: Path, key_file: Path | None) -> int:
    report = inspect_backup(path, read_key(settings.kk_data_dir, settings.env_master_key,
                                           key_file))
    sys.stdout.write("\n".join(report.lines()) + "\n")
    return 0 if report.usable else 1


def _restore(settings: Settings, path: Path, key_file: Path | None, force: bool) -> int:
    key = read_key(settings.kk_data_dir, settings.env_master_key, key_file)
    installed = settings.kk_master_key is None and key_file is not None
    if installed and settings.master_key_path.exists():
        if read_key(settings.kk_data_dir, None, None) != key:
            return _fail(f"--key-file differs from {settings.master_key_path}; move that one "
                         "away first if the backup's key is the right one; nothing was "
                         "changed")
        installed = False
    report, kept = restore(path, settings.database_path, key, force=force)
    if installed:
        write_key_file(settings.master_key_path, key)
    accounts = report.rows.get("accounts", 0)
    sys.stderr.write(f"restored {path} into {settings.database_path} (schema "
                     f"{report.schema}, {accounts} account(s))"
                     + (f"; the database it replaced is kept as {kept}" if kept else "")
                     + ("; master.key installed from --key-file" if installed else "")
                     + "\n")
    return 0


def main_exit() -> None:
    """The ``asisten-kk`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    main_exit()
