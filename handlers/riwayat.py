"""/riwayat: the visits of the last 90 days of the active account (or of the account
whose 🩺 button was tapped under a status card). Sent protected: it shows diagnoses."""

from __future__ import annotations

import html

from telegram import Update

from bot import texts
from bot.accounts import Account
from handlers import keyboards, render
from handlers.common import Context, answer, chat_id_of, send, services


async def show(update: Update, context: Context) -> None:
    """/riwayat, or 🩺 Riwayat (the active account; or the tapped account's slot)."""
    svc = services(context)
    chat_id = chat_id_of(update)
    query = update.callback_query
    items = await svc.accounts.list(chat_id)
    wanted = (context.match.group(1) if query is not None and context.match is not None
              and query.data != keyboards.HISTORY_ACTIVE.data else None)
    account = next((a for a in items if (a.slot == wanted if wanted else a.active)), None)
    if query is not None:
        if wanted and account is None:
            await answer(context, query, texts.ACCOUNT_GONE, alert=True)
            return
        await answer(context, query)
    if account is None:
        await send(update, context, texts.HISTORY_NO_ACCOUNT, keyboards.add_only())
        return
    await send(update, context, *await _history(context, account), protect=True)


async def _history(context: Context, account: Account
                   ) -> tuple[str, keyboards.Keyboard | None]:
    svc = services(context)
    if not svc.accounts.is_fresh(account):
        return (texts.HISTORY_NEEDS_REVERIFY.format(label=html.escape(account.label),
                                                    days=svc.accounts.session_days),
                keyboards.reverify(account))
    return render.history(account, await svc.history.visits(account),
                          backend=svc.backend.label,
                          backend_hourly=svc.caps.backend_hourly), keyboards.after_history()
