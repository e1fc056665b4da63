"""/status: the active account's card, or every cached account in one message."""

from __future__ import annotations

import math

from telegram import Update

from bot import texts
from bot.accounts import Account
from handlers import keyboards, render
from handlers.common import Context, answer, chat_id_of, edit_query, send, services
from handlers.keyboards import Keyboard


async def _active_view(context: Context, items: list[Account]) -> tuple[str, Keyboard]:
    svc = services(context)
    active = next((a for a in items if a.active), items[0])
    if not svc.accounts.is_fresh(active):
        return (texts.STATUS_NEEDS_REVERIFY.format(label=render.e(active.label),
                                                   days=svc.accounts.session_days),
                keyboards.reverify(active))
    view = await svc.status.fetch(active)
    return render.card(view, backend_hourly=svc.caps.backend_hourly), keyboards.status(
        showing_all=False, many=len(items) > 1,
        history=[active] if svc.history.supported else None)


async def _all_view(context: Context, items: list[Account]) -> tuple[str, Keyboard]:
    svc = services(context)
    fresh = [a for a in items if svc.accounts.is_fresh(a)]
    views = {v.account.slot: v for v in await svc.status.fetch_many(fresh)}
    blocks = [render.card(views[a.slot], backend_hourly=svc.caps.backend_hourly,
                          detailed=False) if a.slot in views
              else render.expired_block(a) for a in items]
    return render.all_accounts(blocks, list(views.values())), keyboards.status(
        showing_all=True, many=len(items) > 1, history=items if svc.history.supported else None)


async def show_status(update: Update, context: Context) -> None:
    """/status, or /status semua for every account."""
    args = context.args or []
    await send_status(update, context,
                      showing_all=bool(args) and args[0].lower() in ("semua", "all"))


async def go_status(update: Update, context: Context) -> None:
    """📄 Status kartu / 📋 Semua akun offered as a next step: a new message, the tapped
    one stays as it was."""
    query = update.callback_query
    assert query is not None
    await answer(context, query)
    await send_status(update, context, showing_all=query.data == keyboards.GO_STATUS_ALL.data)


async def send_status(update: Update, context: Context, *, showing_all: bool = False) -> None:
    """The chosen account's card (or every account's) as a new message."""
    items = await services(context).accounts.list(chat_id_of(update))
    if not items:
        await send(update, context, texts.STATUS_NO_ACCOUNT, keyboards.add_only())
        return
    text, keyboard = await (_all_view if showing_all else _active_view)(context, items)
    await send(update, context, text, keyboard, protect=True)


def _too_soon(context: Context, items: list[Account], showing_all: bool) -> str | None:
    """For 🔄 Perbarui: when none of the shown cards may be asked again yet, the toast that
    says how old the data is and when it can be refreshed; else None."""
    svc = services(context)
    shown = [a for a in items if svc.accounts.is_fresh(a)] if showing_all else \
        [next((a for a in items if a.active), items[0])]
    now, window = svc.clock(), svc.status.refresh_seconds
    ages = [now - a.status_at for a in shown if a.status is not None and a.status_at is not None]
    if not shown or len(ages) < len(shown) or max(ages) >= window:
        return None
    youngest = min(ages)
    return texts.STATUS_TOO_SOON.format(
        age=render.age(youngest), time=render.wib(now - youngest).split(" ", 1)[1],
        minutes=max(1, math.ceil((window - max(ages)) / 60)))


async def status_button(update: Update, context: Context) -> None:
    """Semua akun / Akun dipilih saja / Perbarui: edit the status message in place; a
    refresh within the refresh window is answered with a toast and changes nothing."""
    query = update.callback_query
    assert query is not None
    items = await services(context).accounts.list(chat_id_of(update))
    showing_all = query.data in (keyboards.STATUS_ALL.data, keyboards.STATUS_REFRESH_ALL.data)
    refresh = query.data in (keyboards.STATUS_REFRESH_ONE.data,
                             keyboards.STATUS_REFRESH_ALL.data)
    toast = _too_soon(context, items, showing_all) if refresh and items else None
    await answer(context, query, toast)
    if toast is not None:
        return
    if not items:
        await edit_query(context, query, texts.STATUS_NO_ACCOUNT, keyboards.add_only())
        return
    view = _all_view if showing_all else _active_view
    text, keyboard = await view(context, items)
    await edit_query(context, query, text, keyboard, protect=True)
