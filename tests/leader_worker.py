"""A contender for the leader lock in a process of its own (tests/test_leader.py):
prints each status it goes through, one a line, until killed or its leadership is lost."""

from __future__ import annotations

import asyncio
import sys

from bot.leader import Leadership


async def main(url: str) -> None:
    lost = asyncio.Event()
    leadership = Leadership(url, on_lost=lost.set)
    stop = asyncio.Event()
    acquiring = asyncio.create_task(leadership.acquire(stop))
    said = ""
    while not acquiring.done() or leadership.status != said:
        if leadership.status != said:
            said = leadership.status
            print(said, flush=True)
        await asyncio.sleep(0.01)
    await lost.wait()
    print("lost", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
