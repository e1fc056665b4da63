"""/stats and /pengumuman in the operator's chats (OPERATOR_CHAT_IDS), the notice's job,
and the alerts' delivery. Anywhere else both commands are unknown commands and the
notice's buttons are stale buttons: no reply tells a chat that they exist."""

from __future__ import annotations

import html
import logging
from typing import Any

from telegram import Bot, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError

from bot import texts
from bot.operator import MAX_NOTICE_CHARS, TELEGRAM_DOWN_SECONDS, Alert, Deliver, NotSent
from bot.transport import never_sent
from handlers import start
from handlers.common import Context, answer, chat_id_of, edit_query, send, services
from handlers.keyboards import ArgRoute, Keyboard, inline

_LOGGER = logging.getLogger(__name__)
#: Commands only the operator chats have: not in the menu or /bantuan (no oracle).
COMMANDS = ("stats", "pengumuman")
NOTICE_GO = ArgRoute("ntc:go", "[0-9]{1,9}")
NOTICE_NO = ArgRoute("ntc:no", "[0-9]{1,9}")
#: Seconds after start before a notice interrupted by a restart is resumed.
RESUME_DELAY = 2.0
#: Seconds before a notice stopped by Telegram being unreachable is tried again.
RETRY_DELAY = 60.0
#: How often queued alerts are sent and Telegram's and the disk's health looked at.
ALERT_SECONDS = 15.0


def _confirm(notice_id: int) -> Keyboard:
    return inline([[{"text": texts.NOTICE_SEND_BUTTON, "callback_data": NOTICE_GO.data(notice_id)},
                    {"text": texts.NOTICE_CANCEL_BUTTON,
                     "callback_data": NOTICE_NO.data(notice_id)}]])


def _is_operator(update: Update, context: Context) -> bool:
    return services(context).operator.is_operator(chat_id_of(update))


async def stats(update: Update, context: Context) -> None:
    """/stats: counts only."""
    if not _is_operator(update, context):
        await start.unknown_command(update, context)
        return
    found = await services(context).operator.stats()
    await send(update, context, texts.STATS.format(
        chats=found.chats_consented, accounts=found.accounts_cached, codes=found.codes_today,
        reminders=found.reminders_today, caps=found.caps_hit,
        failures=found.backend_failures))


async def notice_start(update: Update, context: Context) -> None:
    """/pengumuman <text>: a preview with [Kirim] and [Batal]; nothing is sent yet."""
    if not _is_operator(update, context):
        await start.unknown_command(update, context)
        return
    message = update.effective_message
    words = (message.text or "").split(maxsplit=1) if message is not None else []
    svc = services(context)
    body = svc.operator.check_body(words[1] if len(words) > 1 else "")
    if body is None:
        await send(update, context, texts.NOTICE_USAGE.format(max_chars=MAX_NOTICE_CHARS))
        return
    notice_id = await svc.operator.draft(body)
    chats = (await svc.operator.stats()).chats_consented
    await send(update, context, texts.NOTICE_PREVIEW.format(
        chats=chats, notice=texts.NOTICE.format(body=html.escape(body))), _confirm(notice_id))


async def notice_go(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and context.match is not None
    if not _is_operator(update, context):
        await start.stale_button(update, context)
        return
    notice_id = int(context.match.group(1))
    if not await services(context).operator.confirm(notice_id):
        await answer(context, query, texts.NOTICE_TAKEN, alert=True)
        return
    await answer(context, query)
    await edit_query(context, query, texts.NOTICE_STARTED)
    schedule(context, notice_id, 0.0)


async def notice_no(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and context.match is not None
    if not _is_operator(update, context):
        await start.stale_button(update, context)
        return
    if not await services(context).operator.cancel(int(context.match.group(1))):
        await answer(context, query, texts.NOTICE_TAKEN, alert=True)
        return
    await answer(context, query)
    await edit_query(context, query, texts.NOTICE_CANCELLED)


def schedule(context: Context, notice_id: int, delay: float) -> None:
    """Send (or resume) a confirmed notice from the JobQueue, so that the operator's chat
    is not held up for the minutes it takes (a stopping bot pauses it: bot/operator.py)."""
    assert context.job_queue is not None  # the job-queue extra is a dependency
    context.job_queue.run_once(notice_job, delay, data=notice_id, name=f"notice-{notice_id}")


def deliver_with(bot: Bot) -> Deliver:
    """Sends the notice to one chat. False when Telegram refuses it for good (blocked,
    chat gone); :class:`~bot.operator.NotSent` when it certainly did not leave; anything
    else raised is an unknown outcome (never sent again)."""
    async def deliver(chat_id: int, body: str) -> bool:
        params: dict[str, Any] = {"chat_id": chat_id, "parse_mode": ParseMode.HTML,
                                  "text": texts.NOTICE.format(body=html.escape(body))}
        try:
            await bot.do_api_request("send_message", api_kwargs=params)
        except (Forbidden, BadRequest) as exc:
            _LOGGER.info("notice refused by Telegram (%s)", type(exc).__name__)
            return False
        except NetworkError as exc:
            if never_sent(exc):
                raise NotSent from exc
            raise
        return True
    return deliver


async def tell_operators(bot: Bot, operators: frozenset[int], text: str) -> bool:
    """Send ``text`` to every operator chat; False if Telegram could not be reached."""
    reached = True
    for chat_id in sorted(operators):
        try:
            await bot.send_message(chat_id, text)
        except (Forbidden, BadRequest) as exc:  # that operator never started the bot
            _LOGGER.warning("an operator chat refused a message (%s)", type(exc).__name__)
        except TelegramError as exc:
            _LOGGER.warning("an operator message was not sent (%s)", type(exc).__name__)
            reached = False
    return reached


async def notice_job(context: Context) -> None:
    assert context.job is not None
    notice_id = context.job.data
    assert isinstance(notice_id, int)
    svc = services(context)
    try:
        report = await svc.operator.run_notice(notice_id, deliver_with(context.bot),
                                               lambda: context.application.running)
    except (NotSent, TelegramError) as exc:
        _LOGGER.warning("notice %d stopped (%s); it resumes in %d s", notice_id,
                        type(exc).__name__, int(RETRY_DELAY))
        schedule(context, notice_id, RETRY_DELAY)
        return
    if report.finished:
        await tell_operators(context.bot, svc.operator.operators, texts.NOTICE_DONE.format(
            sent=report.tally.sent, refused=report.tally.refused,
            unknown=report.tally.unknown))


async def resume_notices(context: Context) -> None:
    """At start: every confirmed notice that a stop or a crash interrupted goes on."""
    for notice_id in await services(context).operator.unfinished():
        schedule(context, notice_id, 0.0)


async def alerts_job(context: Context) -> None:
    """Every ALERT_SECONDS: look at Telegram's and the database's health, and send the
    queued alerts to the operator chats (they wait while Telegram cannot be reached)."""
    svc = services(context)
    alerts = svc.alerts
    health = context.application.bot_data.get("health")
    if health is not None:
        if health.last_contact is not None and \
                health.clock() - health.last_contact > TELEGRAM_DOWN_SECONDS:
            alerts.raise_(Alert.TELEGRAM_DOWN)
        reason = await health.db_reason()
        if reason is not None and "full" in reason:
            alerts.raise_(Alert.DISK_FULL)
    while alerts.queue and svc.operator.operators:
        kind = alerts.queue[0]
        text = texts.ALERTS[kind.value].format(minutes=int(TELEGRAM_DOWN_SECONDS // 60))
        if not await tell_operators(context.bot, svc.operator.operators, text):
            return  # Telegram is not reachable: the alert waits for the next turn
        alerts.queue.popleft()
    if not svc.operator.operators:
        alerts.queue.clear()  # in the log already; nobody to tell
