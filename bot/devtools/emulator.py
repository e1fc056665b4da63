"""An in-process stand-in for the Telegram Bot API.

:class:`BotApiEmulator` keeps chats, messages, updates and callback queries and answers
Bot API methods with Telegram's own rules and error texts: HTML entity parsing, the
4096-character limit, callback data of at most 64 bytes, "message is not modified",
callback queries answered at most once, deleteMessage, message ids per chat.
:class:`EmulatorRequest` plugs it into python-telegram-bot as its HTTP transport, so the
real Application talks the Bot API protocol to it. The demo, the end-to-end tests and the
benchmarks all use it; an HTTP front end for it lives in the tests.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from telegram.error import NetworkError
from telegram.request import BaseRequest, RequestData

from bot.devtools import tghtml

JSON = dict[str, Any]

MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
QUERY_INVALID = ("Bad Request: query is too old and response timeout expired or query ID is "
                 "invalid")
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup of "
                "the message")

_INT_KEYS = {"chat_id", "message_id", "offset", "limit", "timeout", "user_id", "cache_time",
             "from_chat_id", "max_connections"}
_BOOL_KEYS = {"show_alert", "drop_pending_updates", "disable_notification",
              "disable_web_page_preview", "protect_content"}
_JSON_KEYS = {"reply_markup", "commands", "allowed_updates", "scope", "link_preview_options",
              "reply_parameters", "entities"}


class Fault(enum.StrEnum):
    """Telegram on a bad day, for one call."""

    GATEWAY = "502"  # Bad Gateway from the front end: the call was not processed
    UNAVAILABLE = "503"  # likewise
    RATE_LIMITED = "429"  # Too Many Requests, retry_after 1: not processed
    SERVER = "500"  # processed, then answered 500: the caller cannot know
    LOST = "lost"  # processed, but the answer never arrives (a reset connection)
    REFUSED = "refused"  # the connection is refused: nothing reached Telegram


_UNPROCESSED = {Fault.GATEWAY: 502, Fault.UNAVAILABLE: 503, Fault.RATE_LIMITED: 429}
_DESCRIPTIONS = {500: "Internal Server Error", 502: "Bad Gateway",
                 503: "Service Unavailable", 429: "Too Many Requests: retry after 1"}


class TransportFault(Exception):
    """No HTTP answer at all (the front ends turn it into a network error)."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.value)
        self.fault = fault


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def parse_html(text: str) -> tuple[str, list[tuple[str, int, int]]]:
    """Return the plain text and entities of an HTML message, or raise ApiError(400)."""
    try:
        return tghtml.parse(text)
    except tghtml.HtmlError as exc:
        raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class StoredMessage:
    chat_id: int
    message_id: int
    from_bot: bool
    text: str
    date: int
    raw: str = ""
    entities: list[tuple[str, int, int]] = field(default_factory=list)
    reply_markup: JSON | None = None
    deleted: bool = False
    edits: int = 0
    user_id: int | None = None
    protected: bool = False

    @property
    def keyboard(self) -> list[dict[str, Any]]:
        """The buttons of a reply keyboard sent with this message, row by row."""
        if not self.reply_markup:
            return []
        return [b if isinstance(b, dict) else {"text": str(b)}
                for row in self.reply_markup.get("keyboard", []) for b in row]

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button, row by row."""
        if not self.reply_markup:
            return []
        return [(str(b.get("text", "")), str(b.get("callback_data", "")))
                for row in self.reply_markup.get("inline_keyboard", []) for b in row]


@dataclass
class Event:
    """Something the bot did, in order, for the demo's screen and for tests."""

    kind: str  # "message" | "edit" | "markup" | "delete" | "answer"
    chat_id: int
    message_id: int | None = None
    text: str = ""
    alert: bool = False


@dataclass
class _Chat:
    id: int
    type: str
    title: str
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    reply_keyboard: JSON | None = None  # what the user's keyboard area shows now

    def as_json(self) -> JSON:
        if self.type == "private":
            return {"id": self.id, "type": "private", "first_name": self.title}
        return {"id": self.id, "type": self.type, "title": self.title}


class _Poll(asyncio.Event):
    """A pending long poll; a newer getUpdates supersedes it."""

    superseded = False


class BotApiEmulator:
    """The Bot API, in memory. One instance serves one bot."""

    def __init__(self, token: str = "123456789:EMULATOR-token-0123456789abcdef",  # noqa: S107
                 *, username: str = "AsistenKKBot", clock: Callable[[], float] = time.time
                 ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.username = username
        self.clock = clock
        self.chats: dict[int, _Chat] = {}
        self.users: dict[int, JSON] = {}
        self.updates: deque[JSON] = deque()
        self.updates_created = 0
        self.last_delivered_id = 0
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self.queries: dict[str, JSON] = {}
        self.events: list[Event] = []
        self.errors: list[tuple[str, str]] = []
        self.calls: dict[str, int] = {}
        self.commands: list[JSON] = []
        self.webhook_url = ""
        self._new_update: _Poll | None = None
        #: ``faults(method)`` may return a :class:`Fault` for a call (tests, benchmarks).
        self.faults: Callable[[str], Fault | None] | None = None
        self.injected: list[tuple[str, Fault]] = []

    # -- the user's side ------------------------------------------------------------------

    def user(self, user_id: int, first_name: str = "Pengguna") -> JSON:
        return self.users.setdefault(user_id, {
            "id": user_id, "is_bot": False, "first_name": first_name, "language_code": "id"})

    def open_chat(self, chat_id: int, *, chat_type: str = "private", title: str = "Pengguna"
                  ) -> None:
        self.chats.setdefault(chat_id, _Chat(chat_id, chat_type, title))

    def _push(self, update: JSON) -> int:
        update_id = next(self._update_ids)
        update["update_id"] = update_id
        self.updates.append(update)
        self.updates_created += 1
        if self._new_update is not None:
            self._new_update.set()
        return update_id

    def _store(self, chat: _Chat, message: StoredMessage) -> StoredMessage:
        chat.messages[message.message_id] = message
        chat.next_message_id += 1
        return message

    def user_sends(self, chat_id: int, text: str, *, user_id: int | None = None) -> StoredMessage:
        chat = self.chats[chat_id]
        sender = self.user(user_id if user_id is not None else chat_id, chat.title)
        message = self._store(chat, StoredMessage(
            chat_id, chat.next_message_id, False, text, int(self.clock()), raw=text,
            user_id=sender["id"]))
        payload: JSON = {"message_id": message.message_id, "from": sender,
                         "chat": chat.as_json(), "date": message.date, "text": text}
        if text.startswith("/"):
            length = len(text.split(maxsplit=1)[0]) if text.strip() else 0
            if length > 1:
                payload["entities"] = [{"type": "bot_command", "offset": 0,
                                        "length": utf16_len(text[:length])}]
        self._push({"message": payload})
        return message

    def user_shares_contact(self, chat_id: int, phone_number: str, *,
                            contact_user_id: int | None, user_id: int | None = None,
                            first_name: str = "Kontak") -> StoredMessage:
        """The user sends a contact: their own (the reply-keyboard button shares it with
        ``contact_user_id`` = their id) or any other card (another id, or none at all)."""
        chat = self.chats[chat_id]
        sender = self.user(user_id if user_id is not None else chat_id, chat.title)
        message = self._store(chat, StoredMessage(
            chat_id, chat.next_message_id, False, "", int(self.clock()), user_id=sender["id"]))
        contact: JSON = {"phone_number": phone_number, "first_name": first_name}
        if contact_user_id is not None:
            contact["user_id"] = contact_user_id
        self._push({"message": {"message_id": message.message_id, "from": sender,
                                "chat": chat.as_json(), "date": message.date,
                                "contact": contact}})
        return message

    def user_sends_kind(self, chat_id: int, fields: JSON, *, user_id: int | None = None
                        ) -> StoredMessage:
        """The user sends any other kind of message (a document, venue, poll, location …):
        ``fields`` are the Bot API Message fields beside the id, sender, chat and date."""
        chat = self.chats[chat_id]
        sender = self.user(user_id if user_id is not None else chat_id, chat.title)
        message = self._store(chat, StoredMessage(
            chat_id, chat.next_message_id, False, str(fields.get("caption", "")),
            int(self.clock()), user_id=sender["id"]))
        self._push({"message": {"message_id": message.message_id, "from": sender,
                                "chat": chat.as_json(), "date": message.date, **fields}})
        return message

    def user_edits(self, chat_id: int, message_id: int, text: str) -> StoredMessage:
        """The user edits one of their messages (Telegram sends an edited_message)."""
        chat = self.chats[chat_id]
        message = chat.messages[message_id]
        message.text = message.raw = text
        message.edits += 1
        payload = self._message_json(message, chat)
        payload["edit_date"] = int(self.clock())
        self._push({"edited_message": payload})
        return message

    def user_taps(self, chat_id: int, message_id: int, data: str, *,
                  user_id: int | None = None) -> str:
        """Tap a button (or send forged data) on a bot message; returns the query id."""
        chat = self.chats[chat_id]
        message = chat.messages[message_id]
        sender = self.user(user_id if user_id is not None else chat_id, chat.title)
        query_id = f"{self.bot_id}{next(self._query_ids):08d}"
        self.queries[query_id] = {"chat_id": chat_id, "answered": False, "answer": None}
        self._push({"callback_query": {
            "id": query_id, "from": sender, "message": self._message_json(message, chat),
            "chat_instance": f"ci{chat_id}", "data": data}})
        return query_id

    def unanswered_queries(self) -> list[str]:
        return [qid for qid, q in self.queries.items() if not q["answered"]]

    def answer_of(self, query_id: str) -> JSON | None:
        answer: JSON | None = self.queries[query_id]["answer"]
        return answer

    def bot_messages(self, chat_id: int, *, include_deleted: bool = False
                     ) -> list[StoredMessage]:
        chat = self.chats.get(chat_id)
        if chat is None:
            return []
        return [m for m in chat.messages.values()
                if m.from_bot and (include_deleted or not m.deleted)]

    # -- the bot's side -------------------------------------------------------------------

    def _bot_json(self) -> JSON:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Asisten KK",
                "username": self.username, "can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _message_json(self, message: StoredMessage, chat: _Chat) -> JSON:
        sender = self._bot_json() if message.from_bot else self.users.get(
            message.user_id or chat.id, self.user(chat.id))
        data: JSON = {"message_id": message.message_id, "from": sender,
                      "chat": chat.as_json(), "date": message.date, "text": message.text}
        if message.edits:
            data["edit_date"] = int(self.clock())
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            data["reply_markup"] = message.reply_markup  # reply keyboards are not echoed
        if message.protected:
            data["has_protected_content"] = True
        return data

    async def handle(self, method: str, params: JSON) -> tuple[int, JSON]:
        """Answer one Bot API call: (HTTP status, JSON body). A fault injected by
        :attr:`faults` answers for Telegram on a bad day instead (see :class:`Fault`)."""
        self.calls[method] = self.calls.get(method, 0) + 1
        fault = self.faults(method) if self.faults is not None else None
        if fault is not None:
            self.injected.append((method, fault))
            if fault is Fault.REFUSED:
                raise TransportFault(fault)
            if fault in _UNPROCESSED:
                status = _UNPROCESSED[fault]
                body: JSON = {"ok": False, "error_code": status,
                              "description": _DESCRIPTIONS[status]}
                if status == 429:
                    body["parameters"] = {"retry_after": 1}
                return status, body
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            self.errors.append((method, "Not Found"))
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        try:
            result = await handler(_normalise(params))
        except ApiError as exc:
            self.errors.append((method, exc.description))
            body = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return exc.status, body
        if fault is Fault.LOST:
            raise TransportFault(fault)
        if fault is Fault.SERVER:
            return 500, {"ok": False, "error_code": 500, "description": _DESCRIPTIONS[500]}
        return 200, {"ok": True, "result": result}

    def _chat(self, params: JSON) -> _Chat:
        chat_id = params.get("chat_id")
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    @staticmethod
    def _render(params: JSON) -> tuple[str, list[tuple[str, int, int]]]:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        mode = params.get("parse_mode")
        entities: list[tuple[str, int, int]] = []
        if mode is None:
            plain = text
        elif str(mode).upper() == "HTML":
            plain, entities = parse_html(text)
        else:
            raise ApiError(400, f"Bad Request: unsupported parse_mode {mode}")
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return plain, entities

    @staticmethod
    def _markup(params: JSON) -> JSON | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return markup
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list):
            raise ApiError(400, "Bad Request: can't parse inline keyboard button")
        for row in rows:
            for button in row:
                if not str(button.get("text", "")).strip():
                    raise ApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup if any(rows) else None

    async def _m_getme(self, params: JSON) -> JSON:
        return self._bot_json()

    async def _m_getupdates(self, params: JSON) -> list[JSON]:
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        while self.updates and self.updates[0]["update_id"] < offset:
            self.updates.popleft()
        if self._new_update is not None:  # Telegram ends the earlier long poll with 409
            self._new_update.superseded = True
            self._new_update.set()
        if not self.updates and timeout > 0:
            event = self._new_update = _Poll()
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                pass
            finally:
                if self._new_update is event:
                    self._new_update = None
            if event.superseded:
                raise ApiError(409, "Conflict: terminated by other getUpdates request; make "
                                    "sure that only one bot instance is running")
        batch = list(itertools.islice(self.updates, limit))
        if batch:
            self.last_delivered_id = max(self.last_delivered_id, batch[-1]["update_id"])
        return batch

    async def _m_deletewebhook(self, params: JSON) -> bool:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            self.updates.clear()
        return True

    async def _m_setwebhook(self, params: JSON) -> bool:
        self.webhook_url = str(params.get("url", ""))
        return True

    async def _m_getwebhookinfo(self, params: JSON) -> JSON:
        return {"url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": len(self.updates)}

    async def _m_setmycommands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands are invalid")
        for command in commands:
            name, description = str(command.get("command", "")), str(
                command.get("description", ""))
            if not (1 <= len(name) <= 32 and name.replace("_", "").isalnum()
                    and name == name.lower() and name.isascii()):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands = list(commands)
        return True

    async def _m_getmycommands(self, params: JSON) -> list[JSON]:
        return self.commands

    async def _m_deletemycommands(self, params: JSON) -> bool:
        self.commands = []
        return True

    async def _m_sendchataction(self, params: JSON) -> bool:
        self._chat(params)
        return True

    async def _m_close(self, params: JSON) -> bool:
        return True

    async def _m_logout(self, params: JSON) -> bool:
        return True

    async def _m_sendmessage(self, params: JSON) -> JSON:
        chat = self._chat(params)
        plain, entities = self._render(params)
        markup = self._markup(params)
        message = self._store(chat, StoredMessage(
            chat.id, chat.next_message_id, True, plain, int(self.clock()),
            raw=str(params["text"]), entities=entities, reply_markup=markup,
            protected=bool(params.get("protect_content"))))
        if markup is not None and "keyboard" in markup:
            chat.reply_keyboard = markup
        elif markup is not None and markup.get("remove_keyboard"):
            chat.reply_keyboard = None
        self.events.append(Event("message", chat.id, message.message_id, plain))
        return self._message_json(message, chat)

    def _target(self, params: JSON, verb: str) -> tuple[_Chat, StoredMessage]:
        if "inline_message_id" in params:
            raise ApiError(400, "Bad Request: inline messages are not supported here")
        chat = self._chat(params)
        message_id = params.get("message_id")
        message = chat.messages.get(message_id) if isinstance(message_id, int) else None
        if message is None or message.deleted:
            raise ApiError(400, f"Bad Request: message to {verb} not found")
        return chat, message

    async def _m_editmessagetext(self, params: JSON) -> JSON:
        chat, message = self._target(params, "edit")
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        plain, entities = self._render(params)
        markup = self._markup(params)
        if markup is not None and "inline_keyboard" not in markup:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        if (plain, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        message.text, message.entities, message.reply_markup = plain, entities, markup
        message.raw = str(params["text"])
        message.edits += 1
        self.events.append(Event("edit", chat.id, message.message_id, plain))
        return self._message_json(message, chat)

    async def _m_editmessagereplymarkup(self, params: JSON) -> JSON:
        chat, message = self._target(params, "edit")
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        markup = self._markup(params)
        if markup == message.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        message.reply_markup = markup
        message.edits += 1
        self.events.append(Event("markup", chat.id, message.message_id, message.text))
        return self._message_json(message, chat)

    async def _m_deletemessage(self, params: JSON) -> bool:
        chat, message = self._target(params, "delete")
        message.deleted = True
        self.events.append(Event("delete", chat.id, message.message_id,
                                 "" if message.from_bot else "user"))
        return True

    async def _m_answercallbackquery(self, params: JSON) -> bool:
        query = self.queries.get(str(params.get("callback_query_id")))
        if query is None or query["answered"]:
            raise ApiError(400, QUERY_INVALID)
        text = str(params.get("text") or "")
        if utf16_len(text) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        query["answered"] = True
        query["answer"] = {"text": text, "show_alert": bool(params.get("show_alert"))}
        if text:
            self.events.append(Event("answer", query["chat_id"], None, text,
                                     bool(params.get("show_alert"))))
        return True


def _normalise(params: JSON) -> JSON:
    """Accept both in-process (JSON-ready) and HTTP form (stringified) parameters."""
    out: JSON = {}
    for key, value in params.items():
        if isinstance(value, str):
            if key in _INT_KEYS:
                try:
                    value = int(value)
                except ValueError:
                    raise ApiError(400, f"Bad Request: invalid {key}") from None
            elif key in _BOOL_KEYS:
                value = value.lower() == "true"
            elif key in _JSON_KEYS:
                try:
                    value = json.loads(value)
                except ValueError:
                    raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from None
        out[key] = value
    return out


class EmulatorRequest(BaseRequest):
    """python-telegram-bot's transport, answered in process by a :class:`BotApiEmulator`."""

    def __init__(self, emulator: BotApiEmulator) -> None:
        self.emulator = emulator

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None,
                         connect_timeout: Any = None, pool_timeout: Any = None
                         ) -> tuple[int, bytes]:
        prefix, _, api_method = url.rpartition("/")
        if not prefix.endswith(f"/bot{self.emulator.token}"):
            return 401, b'{"ok":false,"error_code":401,"description":"Unauthorized"}'
        params = request_data.parameters if request_data is not None else {}
        try:
            status, body = await self.emulator.handle(api_method, dict(params))
        except TransportFault as exc:  # as PTB's HTTPX transport reports these
            request = httpx.Request("POST", url)
            cause: httpx.TransportError = (
                httpx.ConnectError("connection refused", request=request)
                if exc.fault is Fault.REFUSED
                else httpx.ReadError("connection reset by peer", request=request))
            raise NetworkError(f"httpx.{type(cause).__name__}: {cause}") from cause
        return status, json.dumps(body).encode()
