"""Jobs the running bot does by itself (PTB's JobQueue), registered in bot/app.py."""

from __future__ import annotations

import logging

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
    dropped = svc.enrolment.drop_stale(context.application.chat_data)
    if dropped:
        await context.application.update_persistence()
        await svc.db.checkpoint()  # the sealed steps leave the WAL too
    if purged or dropped:
        _LOGGER.info("housekeeping: %d expired challenge(s), %d abandoned step(s) removed",
                     purged, dropped)
