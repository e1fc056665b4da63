"""Inline keyboards and their callback data: short, namespaced, matched by anchored
patterns. Slot tokens are random per account, so callback data reveals nothing.

Keyboards are built as the Bot API's own JSON (``{"inline_keyboard": [[{"text": …,
"callback_data": …}]]}``) rather than as python-telegram-bot objects: building and
serialising those cost about a third of a tap (docs/decisions.md 24), and nothing here
needs more than the JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot import texts
from bot.accounts import Account, Brief
from bot.identity import mask_nik


@dataclass(frozen=True, slots=True)
class Route:
    """A button without an argument: the callback data it carries and the anchored
    pattern its handler matches, spelled once."""

    data: str

    @property
    def pattern(self) -> str:
        return f"^{re.escape(self.data)}$"


@dataclass(frozen=True, slots=True)
class ArgRoute:
    """A button with one argument (an account's slot token, a label's index): ``prefix:arg``.
    ``pattern`` captures the argument as group 1; ``arg_of`` reads it back."""

    prefix: str
    arg: str  # the argument's regex, without the group
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))

    @property
    def pattern(self) -> str:
        return f"^{re.escape(self.prefix)}:({self.arg})$"

    def data(self, arg: str | int) -> str:
        return f"{self.prefix}:{arg}"

    def arg_of(self, data: str) -> str | None:
        found = self._compiled.match(data)
        return found.group(1) if found else None


def any_of(*routes: Route) -> str:
    """One pattern for several argument-less routes."""
    return "^(" + "|".join(re.escape(r.data) for r in routes) + ")$"


CONSENT_YES = Route("consent:yes")
CONSENT_NO = Route("consent:no")
ACCT_ADD = Route("acct:add")
ACCT_REMOVE = Route("acct:remove")
ADD_GO = Route("add:go")
ADD_CANCEL = Route("add:cancel")
ADD_RESEND = Route("add:resend")
STATUS_ALL = Route("st:all")
STATUS_ONE = Route("st:one")
#: 🔄 Perbarui, told apart from the view buttons (a tap within the refresh window is
#: answered with the data's age, issue 22).
STATUS_REFRESH_ONE = Route("st:r1")
STATUS_REFRESH_ALL = Route("st:rall")
REMOVE_NO = Route("rm:no")
ERASE_YES = Route("erase:yes")
ERASE_NO = Route("erase:no")
REMINDERS_OPEN = Route("rem:open")
HISTORY_ACTIVE = Route("hist:active")
#: The next steps offered where a reply would otherwise end (issue 22): each sends a new
#: message, leaving the one tapped as it was.
GO_ACCOUNTS = Route("go:akun")
GO_STATUS = Route("go:status")
GO_STATUS_ALL = Route("go:semua")

SLOT = r"[A-Za-z0-9_-]{1,16}"
SWITCH = ArgRoute("acct:switch", SLOT)
REMOVE_PICK = ArgRoute("rm:pick", SLOT)
REMOVE_YES = ArgRoute("rm:yes", SLOT)
LABEL = ArgRoute("add:label", "[0-9]")
REMINDER_TOGGLE = ArgRoute("rem:toggle", SLOT)
HISTORY = ArgRoute("hist", SLOT)
ADD_EVICT = ArgRoute("add:evict", SLOT)


#: A reply_markup exactly as the Bot API takes it.
Keyboard = dict[str, Any]


def _button(label: str, data: str) -> dict[str, str]:
    return {"text": label, "callback_data": data}


def inline(rows: list[list[dict[str, str]]]) -> Keyboard:
    return {"inline_keyboard": rows}


def account_caption(account: Account | Brief) -> str:
    """Plain text (buttons are not HTML): label and masked NIK."""
    return f"{account.label} · {mask_nik(account.nik)}"


def consent() -> Keyboard:
    return inline([[_button(texts.CONSENT_YES_BUTTON, CONSENT_YES.data),
                                  _button(texts.CONSENT_NO_BUTTON, CONSENT_NO.data)]])


def accounts(items: list[Brief], expired: set[str]) -> Keyboard:
    rows = [[_button(("📌 " if a.active else "") + account_caption(a)
                     + (texts.ACCOUNT_EXPIRED_MARK if a.slot in expired else ""),
                     SWITCH.data(a.slot))] for a in items]
    actions = [_button(texts.ADD_BUTTON, ACCT_ADD.data)]
    if items:
        actions.append(_button(texts.REMOVE_BUTTON, ACCT_REMOVE.data))
    rows.append(actions)
    return inline(rows)


def contact_request() -> Keyboard:
    """A reply keyboard whose one button shares the user's own Telegram contact."""
    return {"keyboard": [[{"text": texts.CONTACT_BUTTON, "request_contact": True}]],
            "one_time_keyboard": True, "resize_keyboard": True}


REMOVE_REPLY_KEYBOARD: Keyboard = {"remove_keyboard": True}


def next_steps() -> Keyboard:
    """After an account is saved or chosen, or a flow is cancelled."""
    return inline([[_button(texts.ADD_BUTTON, ACCT_ADD.data),
                    _button(texts.GO_STATUS_ALL_BUTTON, GO_STATUS_ALL.data)],
                   [_button(texts.REMINDERS_BUTTON, REMINDERS_OPEN.data)]])


def tasks() -> Keyboard:
    """The common tasks: /bantuan, /start for a returning user, a message not understood."""
    return inline([[_button(texts.GO_STATUS_BUTTON, GO_STATUS.data),
                    _button(texts.GO_STATUS_ALL_BUTTON, GO_STATUS_ALL.data)],
                   [_button(texts.GO_ACCOUNTS_BUTTON, GO_ACCOUNTS.data),
                    _button(texts.ADD_BUTTON, ACCT_ADD.data)],
                   [_button(texts.HISTORY_BUTTON, HISTORY_ACTIVE.data),
                    _button(texts.REMINDERS_BUTTON, REMINDERS_OPEN.data)]])


def after_history() -> Keyboard:
    return inline([[_button(texts.GO_STATUS_BUTTON, GO_STATUS.data),
                    _button(texts.GO_STATUS_ALL_BUTTON, GO_STATUS_ALL.data)]])


def add_only() -> Keyboard:
    return inline([[_button(texts.ADD_BUTTON, ACCT_ADD.data)]])


def confirm_send(continue_label: str = texts.CONTINUE_BUTTON) -> Keyboard:
    return inline([[_button(continue_label, ADD_GO.data),
                                  _button(texts.CANCEL_BUTTON, ADD_CANCEL.data)]])


def retry() -> Keyboard:
    """🔁 Coba lagi after the backend did not answer a look-up (the identifier is sealed
    for a few minutes), or Batal."""
    return inline([[_button(texts.RETRY_BUTTON, ADD_GO.data),
                    _button(texts.CANCEL_BUTTON, ADD_CANCEL.data)]])


def otp() -> Keyboard:
    return inline([[_button(texts.RESEND_BUTTON, ADD_RESEND.data),
                                  _button(texts.CANCEL_BUTTON, ADD_CANCEL.data)]])


def labels() -> Keyboard:
    return inline(
        [[_button(label, LABEL.data(i))] for i, label in enumerate(texts.LABEL_PRESETS)]
        + [[_button(texts.CANCEL_BUTTON, ADD_CANCEL.data)]])


def status(*, showing_all: bool, many: bool, history: list[Account] | None = None
           ) -> Keyboard:
    """Under a status card: refresh, the other view, and (when the backend has it) the
    history of the active account, or of each account in the all-accounts view."""
    row = [_button(texts.STATUS_REFRESH_BUTTON,
                   STATUS_REFRESH_ALL.data if showing_all else STATUS_REFRESH_ONE.data)]
    if many:
        row.append(_button(texts.STATUS_ACTIVE_BUTTON if showing_all
                           else texts.STATUS_ALL_BUTTON,
                           STATUS_ONE.data if showing_all else STATUS_ALL.data))
    rows = [row]
    if history is not None and showing_all:
        rows += [[_button(texts.HISTORY_BUTTON_OF.format(label=a.label), HISTORY.data(a.slot))]
                 for a in history]
        rows.append([_button(texts.REMINDERS_BUTTON, REMINDERS_OPEN.data)])
    elif history is not None:
        rows.append([_button(texts.HISTORY_BUTTON, HISTORY_ACTIVE.data),
                     _button(texts.REMINDERS_BUTTON, REMINDERS_OPEN.data)])
    else:
        rows.append([_button(texts.REMINDERS_BUTTON, REMINDERS_OPEN.data)])
    return inline(rows)


def reminders(items: list[Brief], expired: set[str]) -> Keyboard:
    return inline([[_button(("🔔 " if a.remind else "🔕 ") + account_caption(a)
                            + (texts.ACCOUNT_EXPIRED_MARK if a.slot in expired else ""),
                            REMINDER_TOGGLE.data(a.slot))] for a in items])


def reverify(account: Account) -> Keyboard:
    return inline([[_button(texts.REVERIFY_BUTTON,
                                          SWITCH.data(account.slot))]])


def remove_pick(items: list[Account]) -> Keyboard:
    return inline(
        [[_button("🗑 " + account_caption(a), REMOVE_PICK.data(a.slot))] for a in items]
        + [[_button(texts.CANCEL_BUTTON, REMOVE_NO.data)]])


def remove_confirm(account: Account) -> Keyboard:
    return inline([[_button(texts.REMOVE_YES_BUTTON, REMOVE_YES.data(account.slot)),
                                  _button(texts.CANCEL_BUTTON, REMOVE_NO.data)]])


def erase() -> Keyboard:
    return inline([[_button(texts.ERASE_YES_BUTTON, ERASE_YES.data),
                                  _button(texts.CANCEL_BUTTON, ERASE_NO.data)]])


def evict_pick(items: list[Brief]) -> Keyboard:
    """The fourth card: which account it replaces (each with its reminder switch), or
    Batal."""
    return inline(
        [[_button((texts.EVICT_REMIND_ON if a.remind else texts.EVICT_REMIND_OFF) + " "
                  + account_caption(a), ADD_EVICT.data(a.slot))] for a in items]
        + [[_button(texts.CANCEL_BUTTON, ADD_CANCEL.data)]])
