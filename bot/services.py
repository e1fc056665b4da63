"""Wiring of the Telegram-free services: database, vault, repositories, backend, SMS."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.accounts import AccountService
from bot.backups import backup_before_migration
from bot.config import Settings
from bot.enrolment import Enrolment
from bot.history import HistoryService
from bot.jkn.base import JknBackend
from bot.jkn.pcare import PCareBackend
from bot.jkn.sandbox import SandboxBackend
from bot.jkn.vclaim import VClaimBackend
from bot.metrics import MeteredBackend
from bot.operator import Alert, Alerts, OperatorService
from bot.otp import OtpService
from bot.reminders import ReminderService
from bot.retention import RetentionService
from bot.sms.base import SmsSender
from bot.sms.console import ConsoleSender
from bot.sms.http import HttpSender
from bot.status import StatusService
from storage.accounts_repo import AccountsRepo
from storage.chat_keys import convert_legacy
from storage.consent_repo import ConsentRepo
from storage.crypto import Vault
from storage.db import Database
from storage.keys import check_key, resolve_master_key
from storage.notices_repo import NoticesRepo
from storage.otp_repo import Caps, OtpRepo
from storage.pg import open_database
from storage.reminders_repo import RemindersRepo
from storage.retention_repo import RetentionRepo

_LOGGER = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    vault: Vault
    accounts: AccountService
    otp: OtpService
    enrolment: Enrolment
    backend: JknBackend
    sms: SmsSender
    status: StatusService
    reminders: ReminderService
    history: HistoryService
    consent: ConsentRepo
    caps: Caps
    clock: Callable[[], float]
    operator: OperatorService
    retention: RetentionService
    alerts: Alerts

    @property
    def sandbox(self) -> bool:
        return self.backend.name == "sandbox"

    async def close(self) -> None:
        for closer in (self.backend.aclose, self.sms.aclose, self.db.close):
            with contextlib.suppress(Exception):
                await closer()


def make_backend(settings: Settings) -> JknBackend:
    if settings.jkn_backend == "vclaim":
        assert settings.vclaim_base_url and settings.vclaim_cons_id
        assert settings.vclaim_secret_key and settings.vclaim_user_key
        return VClaimBackend(settings.vclaim_base_url, settings.vclaim_cons_id,
                             settings.vclaim_secret_key.get_secret_value(),
                             settings.vclaim_user_key.get_secret_value())
    if settings.jkn_backend == "pcare":
        assert settings.pcare_base_url and settings.pcare_cons_id and settings.pcare_username
        assert settings.pcare_secret_key and settings.pcare_user_key
        assert settings.pcare_password
        return PCareBackend(settings.pcare_base_url, settings.pcare_cons_id,
                            settings.pcare_secret_key.get_secret_value(),
                            settings.pcare_user_key.get_secret_value(),
                            settings.pcare_username,
                            settings.pcare_password.get_secret_value(),
                            settings.pcare_app_code)
    return SandboxBackend()


def make_sender(settings: Settings) -> SmsSender:
    if settings.otp_sender == "http":
        assert settings.sms_gateway_url and settings.sms_gateway_token
        return HttpSender(settings.sms_gateway_url, settings.sms_gateway_token.get_secret_value())
    return ConsoleSender()


async def open_services(settings: Settings, *, clock: Callable[[], float] = time.time,
                        backend: JknBackend | None = None, sms: SmsSender | None = None,
                        code_factory: Callable[[], str] | None = None) -> Services:
    """Open the database (creating the key for a new installation) and build every service.

    Raises ``storage.keys.KeyError_`` or ``storage.db.DatabaseError`` when the key or the
    database cannot be used; nothing is written in that case.
    """
    settings.ensure_data_dir()
    env_key = settings.env_master_key
    # Resolve the key before touching the database so a missing key never creates one.
    raw = resolve_master_key(settings.kk_data_dir, settings.database_path, env_key)
    db = await open_database(settings.database_url, settings.database_path, clock=clock,
                             migrate=False)
    try:
        if await db.user_version() == 0:  # a brand-new (or empty) database
            await db.migrate()
        vault = await check_key(db, Vault(raw), None if env_key else settings.master_key_path)
        await backup_before_migration(db, settings.kk_data_dir)
        await db.migrate()
        # Rows written before per-chat data keys go under their chat's key, once (a batch
        # of chats per transaction; nothing to do on every later start).
        converted = await convert_legacy(db, vault)
        if converted:
            _LOGGER.info("%d chat(s) moved to their own data keys", converted)
        # A crash between an erase's (or an eviction's) commit and its checkpoint leaves
        # older copies of the deleted rows in the WAL, and a reader may have held up a
        # stopped bot's cleanup: they go before anything else runs (retried in the
        # background while a reader holds the file; nothing to do on PostgreSQL).
        await db.checkpoint()
    except BaseException:
        await db.close()
        raise
    backend = MeteredBackend(backend or make_backend(settings))
    sms = sms or make_sender(settings)
    accounts = AccountService(AccountsRepo(db, vault), max_accounts=settings.kk_max_accounts,
                              session_days=settings.kk_session_days, clock=clock)
    otp_kwargs = {"code_factory": code_factory} if code_factory else {}
    caps = Caps(global_hourly=settings.sms_max_per_hour)
    otp = OtpService(OtpRepo(db, vault, caps), vault, sms, ttl=settings.otp_ttl_seconds,
                     max_attempts=settings.otp_max_attempts,
                     resend_seconds=settings.otp_resend_seconds, clock=clock, **otp_kwargs)
    status = StatusService(backend, accounts, allow_call=otp.allow_backend_call,
                           refresh_seconds=settings.status_refresh_seconds)
    reminders = ReminderService(accounts, RemindersRepo(db), backend,
                                at=settings.reminder_at, clock=clock)
    await otp.purge()  # challenges that expired while the bot was down (scrubbed there)
    history = HistoryService(backend, allow_call=otp.allow_backend_call, clock=clock)
    alerts = Alerts(clock)
    backend.on_credentials_rejected = lambda: alerts.raise_(Alert.CREDENTIALS)
    otp.on_budget_spent = lambda: alerts.raise_(Alert.SMS_BUDGET)
    # one pacer for every bulk send (reminders, notices, retention warnings)
    operator = OperatorService(settings.operator_ids, db, NoticesRepo(db), clock=clock,
                               pacer=reminders.pacer, alerts=alerts)
    retention = RetentionService(RetentionRepo(db), days=settings.retention_days,
                                 clock=clock, pacer=reminders.pacer)
    return Services(settings=settings, db=db, vault=vault, accounts=accounts, otp=otp,
                    enrolment=Enrolment(accounts, otp, backend),
                    backend=backend, sms=sms, status=status, reminders=reminders,
                    history=history, consent=ConsentRepo(db), caps=caps,
                    clock=clock, operator=operator, retention=retention, alerts=alerts)
