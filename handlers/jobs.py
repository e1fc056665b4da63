"""Jobs the running bot does by itself (PTB's JobQueue), registered in bot/app.py."""

from __future__ import annotations

import datetime as dt
import logging

from telegram.error import TelegramError

from bot.services import Services
from bot.wib import WIB_ZONE
from handlers import retention
from handlers.common import Context, services

_LOGGER = logging.getLogger(__name__)
#: How often expired challenges and stale pending steps are cleared away.
HOUSEKEEPING_SECONDS = 300.0


async def housekeeping(context: Context) -> None:
    """Delete challenges nobody can use any more and rate records past their day, and
    forget pending steps (a sealed identifier waiting at the eviction question) that were
    abandoned; then write the persistence so the forgotten steps leave the disk too."""
    svc = services(context)
    purged = await svc.otp.purge()
    dropped = await svc.enrolment.drop_stale(context.application.chat_data)
    if dropped:
        await context.application.update_persistence()
        await svc.db.checkpoint()  # the sealed steps leave the WAL too
    if purged or dropped:
        _LOGGER.info("housekeeping: %d expired challenge(s), %d abandoned step(s) removed",
                     purged, dropped)


#: The daily job's time of day (Asia/Jakarta): a quiet hour.
DAILY_AT = dt.time(4, 0, tzinfo=WIB_ZONE)
_DAILY_KEY = "daily_job:"


async def daily(context: Context) -> None:
    """Once a day (and at start when today's run was missed): storage limitation
    (RETENTION_DAYS: warn, then erase; handlers/retention.py) and old notices forgotten.
    Every warning and erase is claimed in the database, so a second run (or a second
    instance, which leadership already prevents) warns or erases nobody twice."""
    svc = services(context)
    try:
        await retention.run(context.application)
    except TelegramError as exc:
        _LOGGER.warning("retention run stopped (%s); the next one picks it up",
                        type(exc).__name__)
        return
    if not context.application.running:
        return  # stopped midway: the next start runs it again (nothing is done twice)
    await svc.operator.prune()
    await svc.db.set_meta(_DAILY_KEY + svc.retention.today().isoformat(), b"done")


async def daily_missed(services_: Services) -> bool:
    """Today's daily job has not run (the bot was down at DAILY_AT, or is new)."""
    return await services_.db.get_meta(
        _DAILY_KEY + services_.retention.today().isoformat()) is None
