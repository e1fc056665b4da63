"""Runs the real Application against the in-process Bot API stand-in.

Updates reach the bot the way they do in production: bot/polling.py long-polls
``getUpdates`` (here answered by the emulator), confirming offsets only past updates that
are done; the application's fetcher hands them to the per-chat
processor, handlers answer through ``sendMessage`` & co. :class:`EmulatedChat` is a
person in one chat: ``await chat.send("/start")``, ``await chat.tap("Saya setuju")``,
``chat.last_text``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.app import ALLOWED_UPDATES, AnyApp, build_application, start_application, stop_application
from bot.devtools.emulator import BotApiEmulator, EmulatorRequest, Event, StoredMessage
from bot.polling import ConfirmedPolling
from bot.processor import ChatOrderedProcessor
from bot.services import Services


class SettleTimeout(AssertionError):
    """The bot did not finish handling what was sent in time."""


class BotHarness:
    def __init__(self, services: Services, *, emulator: BotApiEmulator | None = None,
                 poll_timeout: float = 1.0) -> None:
        self.services = services
        self.emulator = emulator or BotApiEmulator(clock=services.clock)
        self.processor = ChatOrderedProcessor()
        self.poll_timeout = poll_timeout
        self.app: AnyApp | None = None
        self.polling: ConfirmedPolling | None = None
        self._base = 0

    async def start(self) -> BotHarness:
        # Updates an earlier bot on this emulator already confirmed are not ours to wait for.
        self._base = self.emulator.updates_created - len(self.emulator.updates)
        self.app = build_application(self.services, token=self.emulator.token,
                                     request=EmulatorRequest(self.emulator),
                                     processor=self.processor)
        await start_application(self.app)
        self.polling = ConfirmedPolling(self.app, self.processor,
                                        allowed_updates=ALLOWED_UPDATES,
                                        timeout=int(self.poll_timeout), idle_wait=0.02,
                                        first_retry=0.0, max_retry=0.0)
        await self.polling.start()
        return self

    async def stop(self) -> None:
        if self.app is None:
            return
        await stop_application(self.app, self.polling)
        self.app = None
        self.polling = None

    async def __aenter__(self) -> BotHarness:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def settle(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until every update sent so far has been fully handled."""
        deadline = time.monotonic() + timeout
        while (self.processor.completed < self.emulator.updates_created - self._base
               or self.processor.active_chats):
            if time.monotonic() > deadline:
                missing = self.emulator.updates_created - self._base - self.processor.completed
                raise SettleTimeout(
                    f"{missing} update(s) "
                    f"still unhandled after {timeout}s")
            await asyncio.sleep(0.001)

    def chat(self, chat_id: int, *, chat_type: str = "private", title: str = "Ani",
             user_id: int | None = None) -> EmulatedChat:
        self.emulator.open_chat(chat_id, chat_type=chat_type, title=title)
        return EmulatedChat(self, chat_id, user_id)


class EmulatedChat:
    """One person in one chat, reading what the bot shows."""

    def __init__(self, harness: BotHarness, chat_id: int, user_id: int | None = None) -> None:
        self.harness = harness
        self.emulator = harness.emulator
        self.chat_id = chat_id
        self.user_id = user_id
        self._mark = 0
        self.last_answer: dict[str, Any] | None = None

    # -- acting ---------------------------------------------------------------------------

    async def send(self, text: str, *, settle: bool = True) -> StoredMessage:
        self._mark = len(self.emulator.events)
        message = self.emulator.user_sends(self.chat_id, text, user_id=self.user_id)
        if settle:
            await self.harness.settle()
        return message

    async def share_contact(self, phone_number: str, *, own: bool = True,
                            contact_user_id: int | None = None) -> StoredMessage:
        """Tap 📱 (``own``: the contact carries this user's id) or send any contact card."""
        self._mark = len(self.emulator.events)
        me = self.user_id if self.user_id is not None else self.chat_id
        message = self.emulator.user_shares_contact(
            self.chat_id, phone_number, user_id=self.user_id,
            contact_user_id=me if own else contact_user_id)
        await self.harness.settle()
        return message

    @property
    def reply_keyboard(self) -> list[dict[str, Any]]:
        """The reply keyboard the user's keyboard area shows now ([] when none)."""
        shown = self.emulator.chats[self.chat_id].reply_keyboard
        return [b for row in (shown or {}).get("keyboard", []) for b in row]

    async def tap(self, label: str, *, message: StoredMessage | None = None
                  ) -> dict[str, Any] | None:
        """Tap the button whose label is (or contains) ``label`` on the newest bot message
        that has one (or on ``message``); returns the callback answer."""
        candidates = [message] if message else reversed(self.bot_messages)
        for candidate in candidates:
            for text, data in candidate.buttons:
                if text == label or label in text:
                    return await self.tap_data(data, message=candidate)
        raise AssertionError(f"no button {label!r}; buttons now: {self.buttons}")

    async def tap_data(self, data: str, *, message: StoredMessage | None = None
                       ) -> dict[str, Any] | None:
        """Send a callback query with any data (forged data included)."""
        target = message or self.last_message
        self._mark = len(self.emulator.events)
        query_id = self.emulator.user_taps(self.chat_id, target.message_id, data,
                                           user_id=self.user_id)
        await self.harness.settle()
        self.last_answer = self.emulator.answer_of(query_id)
        return self.last_answer

    # -- reading --------------------------------------------------------------------------

    @property
    def bot_messages(self) -> list[StoredMessage]:
        return self.emulator.bot_messages(self.chat_id)

    @property
    def last_message(self) -> StoredMessage:
        messages = self.bot_messages
        if not messages:
            raise AssertionError("the bot has not sent anything in this chat")
        return messages[-1]

    @property
    def last_text(self) -> str:
        return self.last_message.text

    @property
    def buttons(self) -> list[str]:
        """Labels on the newest bot message that has buttons."""
        for message in reversed(self.bot_messages):
            if message.buttons:
                return [label for label, _ in message.buttons]
        return []

    @property
    def events(self) -> list[Event]:
        """What the bot did in this chat since the last action."""
        return [e for e in self.emulator.events[self._mark:] if e.chat_id == self.chat_id]

    @property
    def replies(self) -> list[str]:
        """Texts the bot sent or edited in this chat since the last action."""
        return [e.text for e in self.events if e.kind in ("message", "edit")]

    @property
    def reply(self) -> str:
        """All replies since the last action, joined: what the user just read."""
        return "\n".join(self.replies)
