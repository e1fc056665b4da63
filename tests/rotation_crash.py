"""Subprocess for tests/test_keys.py: ``rotate-key`` that dies at one named point, with
``os._exit`` (no ``finally``, no cleanup: what a SIGKILL or a power cut leaves behind).

    python -m tests.rotation_crash before-commit|after-commit|after-retire|none
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from bot.config import load_settings
from bot.services import open_services
from storage import keys


def die(*_args: Any, **_kwargs: Any) -> Any:
    os._exit(9)


async def main(point: str) -> None:
    settings = load_settings()
    svc = await open_services(settings)
    if point == "before-commit":  # the new key is on disk, the transaction is not done
        keys.rewrap_all = die
    elif point == "after-commit":  # everything is under the new key, the files not swapped
        keys._finish_rotation = die
    elif point == "after-retire":  # the old key is retired, the new one not in place yet
        keys.os.replace = die
    await keys.rotate_key(svc.db, svc.vault, settings.master_key_path)
    await svc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
