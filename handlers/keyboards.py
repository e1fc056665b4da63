"""Inline keyboards and their callback data: short, namespaced, matched by anchored
patterns. Slot tokens are random per account, so callback data reveals nothing.

Keyboards are built as the Bot API's own JSON (``{"inline_keyboard": [[{"text": …,
"callback_data": …}]]}``) rather than as python-telegram-bot objects: building and
serialising those cost about a third of a tap (docs/decisions.md 24), and nothing here
needs more than the JSON."""

from __future__ import annotations

from typing import Any

from bot import texts
from bot.accounts import Account, Brief
from bot.identity import mask_nik

CONSENT_YES = "consent:yes"
CONSENT_NO = "consent:no"
ACCT_ADD = "acct:add"
ACCT_REMOVE = "acct:remove"
ADD_GO = "add:go"
ADD_CANCEL = "add:cancel"
ADD_RESEND = "add:resend"
STATUS_ALL = "st:all"
STATUS_ONE = "st:one"
REMOVE_NO = "rm:no"
ERASE_YES = "erase:yes"
ERASE_NO = "erase:no"
REMINDERS_OPEN = "rem:open"
HISTORY_ACTIVE = "hist:active"

SLOT = r"([A-Za-z0-9_-]{1,16})"
SWITCH_RE = rf"^acct:switch:{SLOT}$"
REMOVE_PICK_RE = rf"^rm:pick:{SLOT}$"
REMOVE_YES_RE = rf"^rm:yes:{SLOT}$"
LABEL_RE = r"^add:label:([0-9])$"
REMINDER_TOGGLE_RE = rf"^rem:toggle:{SLOT}$"
HISTORY_RE = rf"^hist:{SLOT}$"


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
    return inline([[_button(texts.CONSENT_YES_BUTTON, CONSENT_YES),
                                  _button(texts.CONSENT_NO_BUTTON, CONSENT_NO)]])


def accounts(items: list[Brief], expired: set[str]) -> Keyboard:
    rows = [[_button(("✅ " if a.active else "") + account_caption(a)
                     + (texts.ACCOUNT_EXPIRED_MARK if a.slot in expired else ""),
                     f"acct:switch:{a.slot}")] for a in items]
    actions = [_button(texts.ADD_BUTTON, ACCT_ADD)]
    if items:
        actions.append(_button(texts.REMOVE_BUTTON, ACCT_REMOVE))
    rows.append(actions)
    return inline(rows)


def contact_request() -> Keyboard:
    """A reply keyboard whose one button shares the user's own Telegram contact."""
    return {"keyboard": [[{"text": texts.CONTACT_BUTTON, "request_contact": True}]],
            "one_time_keyboard": True, "resize_keyboard": True}


REMOVE_REPLY_KEYBOARD: Keyboard = {"remove_keyboard": True}


def add_only() -> Keyboard:
    return inline([[_button(texts.ADD_BUTTON, ACCT_ADD)]])


def confirm_send(continue_label: str = texts.CONTINUE_BUTTON) -> Keyboard:
    return inline([[_button(continue_label, ADD_GO),
                                  _button(texts.CANCEL_BUTTON, ADD_CANCEL)]])


def otp() -> Keyboard:
    return inline([[_button(texts.RESEND_BUTTON, ADD_RESEND),
                                  _button(texts.CANCEL_BUTTON, ADD_CANCEL)]])


def labels() -> Keyboard:
    return inline(
        [[_button(label, f"add:label:{i}")] for i, label in enumerate(texts.LABEL_PRESETS)]
        + [[_button(texts.CANCEL_BUTTON, ADD_CANCEL)]])


def status(*, showing_all: bool, many: bool, history: list[Account] | None = None
           ) -> Keyboard:
    """Under a status card: refresh, the other view, and (when the backend has it) the
    history of the active account, or of each account in the all-accounts view."""
    row = [_button(texts.STATUS_REFRESH_BUTTON, STATUS_ALL if showing_all else STATUS_ONE)]
    if many:
        row.append(_button(texts.STATUS_ACTIVE_BUTTON if showing_all
                           else texts.STATUS_ALL_BUTTON,
                           STATUS_ONE if showing_all else STATUS_ALL))
    rows = [row]
    if history is not None and showing_all:
        rows += [[_button(texts.HISTORY_BUTTON_OF.format(label=a.label), f"hist:{a.slot}")]
                 for a in history]
        rows.append([_button(texts.REMINDERS_BUTTON, REMINDERS_OPEN)])
    elif history is not None:
        rows.append([_button(texts.HISTORY_BUTTON, HISTORY_ACTIVE),
                     _button(texts.REMINDERS_BUTTON, REMINDERS_OPEN)])
    else:
        rows.append([_button(texts.REMINDERS_BUTTON, REMINDERS_OPEN)])
    return inline(rows)


def reminders(items: list[Brief]) -> Keyboard:
    return inline([[_button(("✅ " if a.remind else "⬜ ") + account_caption(a),
                             f"rem:toggle:{a.slot}")] for a in items])


def reverify(account: Account) -> Keyboard:
    return inline([[_button(texts.REVERIFY_BUTTON,
                                          f"acct:switch:{account.slot}")]])


def remove_pick(items: list[Account]) -> Keyboard:
    return inline(
        [[_button("🗑 " + account_caption(a), f"rm:pick:{a.slot}")] for a in items]
        + [[_button(texts.CANCEL_BUTTON, REMOVE_NO)]])


def remove_confirm(account: Account) -> Keyboard:
    return inline([[_button(texts.REMOVE_YES_BUTTON, f"rm:yes:{account.slot}"),
                                  _button(texts.CANCEL_BUTTON, REMOVE_NO)]])


def erase() -> Keyboard:
    return inline([[_button(texts.ERASE_YES_BUTTON, ERASE_YES),
                                  _button(texts.CANCEL_BUTTON, ERASE_NO)]])
