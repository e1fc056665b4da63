"""Failover on PostgreSQL with traffic (issue 24): several chats hold real conversations
(consent, /tambah_kk with codes from the SMS gateway, switches by button, lists, bursts,
removals) while the serving `python -m bot run` is SIGKILLed N times at random moments,
a standby always waiting. Prints the seconds from each kill to the standby's first answer
(median, max) and what the outside checks found (tests/failover_traffic.py defines each:
lost updates, doubled cards, codes accepted twice, answers out of order, reminders twice).

Usage: python -m bench.failover [N kills, default 10] [chats, default 6] (needs PostgreSQL
binaries or KK_TEST_POSTGRES_URL, as the tests). Exit status 1 when a check fails."""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from bot.devtools.emulator import BotApiEmulator
from storage.crypto import generate_master_key
from storage.keys import encode_key
from tests import pgserver
from tests.botapi_http import HttpBotApi
from tests.failover_traffic import KillLoop
from tests.process import TOKEN


async def main(kills: int, chats: int) -> int:
    # a SIGKILLed bot cuts its requests to the fake Bot API short: expected, not news
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    with pgserver.postgres_server() as cluster, tempfile.TemporaryDirectory() as tmp:
        url = pgserver.with_database(cluster.url, "postgres")
        settings = {"KK_DATABASE_URL": url, "KK_MASTER_KEY": encode_key(generate_master_key())}
        api = HttpBotApi(BotApiEmulator(token=TOKEN))
        await api.start()
        try:
            figures = await KillLoop(Path(tmp), api, settings).run(
                kills, chats, progress=lambda line: print(line, flush=True))
        finally:
            await api.stop()
    print(figures.summary())
    for line in figures.lost + figures.order_breaks + figures.notes:
        print("  " + line)
    bad = (figures.lost or figures.order_breaks or figures.doubled_cards
           or figures.missing_cards or figures.codes_twice or figures.reminders_twice
           or figures.unconfirmed or figures.unanswered_queries
           or max(figures.takeovers, default=0) >= 10)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10,
                              int(sys.argv[2]) if len(sys.argv) > 2 else 6)))
