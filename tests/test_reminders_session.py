"""Issue #18 item 1: a session that ran out shows nothing, reminders included.

The round skips (and says nothing about) accounts past KK_SESSION_DAYS; switching the
reminder on for an account marked ⏳ starts re-verification instead; and the round
re-reads the chat right before it sends, so an account removed or a chat erased while the
round runs gets nothing and leaves no reminder_log row behind."""

from __future__ import annotations

from datetime import date

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.reminders import Notice, RoundReport
from bot.services import Services
from handlers.reminders import deliver_with
from tests.conftest import NIK_B, FakeClock, FastSandbox, Phone, add_account, consent
from tests.dbsql import query_one
from tests.test_reminders import FakeTime, pace  # noqa: F401  (a fixture)

ARREARS = ("3174014506900001", "3174014506880001")  # the sandbox's participants in arrears
DAY = date(2026, 11, 7)
DAYS = 86400


async def opt_in(chat: EmulatedChat, *labels: str) -> None:
    await chat.send("/pengingat")
    for label in labels:
        await chat.tap(label)


def reminders_in(chat: EmulatedChat) -> list[str]:
    return [m.text for m in chat.bot_messages if m.text.startswith("🔔 Pengingat JKN —")]


async def round_on(bot: BotHarness, services: Services, day: date = DAY) -> RoundReport:
    assert bot.app is not None
    report = await services.reminders.run_round(day, deliver_with(bot.app.bot))
    await bot.settle()
    return report


async def log_rows(services: Services, chat_id: int) -> int:
    row = await query_one(services.db, "SELECT count(*) AS n FROM reminder_log WHERE "
                          "chat_id = ?", chat_id)
    assert row is not None
    return int(row["n"])


async def test_an_expired_session_gets_no_reminder_and_cannot_be_switched_on(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        backend: FastSandbox, clock: FakeClock, pace: FakeTime) -> None:  # noqa: F811
    await consent(chat)
    await add_account(chat, phone, ARREARS[0], "Lama")
    clock.advance(20 * DAYS)
    await add_account(chat, phone, ARREARS[1], "Baru")
    await opt_in(chat, "Lama", "Baru")
    clock.advance(15 * DAYS)  # "Lama" was verified 35 days ago: past KK_SESSION_DAYS (30)
    calls = backend.lookups
    report = await round_on(bot, services)
    (text,) = reminders_in(chat)
    assert "«Baru»" in text and "Lama" not in text, text
    assert backend.lookups == calls + 1, "the expired account is not even asked about"
    assert report.sent == 1
    clock.advance(200 * DAYS)  # both expired: nothing at all, not even an empty message
    assert (await round_on(bot, services, date(2026, 11, 8))).sent == 0
    assert len(reminders_in(chat)) == 1

    await chat.send("/pengingat")
    assert chat.buttons == ["🔔 Lama · 3174********0001 ⏳", "🔔 Baru · 3174********0001 ⏳"]
    await chat.tap("Lama")  # switching off needs nothing
    assert chat.buttons[0] == "🔕 Lama · 3174********0001 ⏳"
    answer = await chat.tap("🔕 Lama")  # switching on: re-verification first
    assert answer is not None and "Verifikasi OTP ulang" in answer["text"]
    assert "Sesi akun «Lama» sudah lewat" in chat.reply, chat.reply
    assert "Kode OTP 6 angka sudah dikirim" in chat.reply
    assert [(b.label, b.remind) for b in await services.accounts.list_brief(1001)] == [
        ("Lama", False), ("Baru", True)]
    await chat.send(phone.last_code())
    assert "Kode benar" in chat.reply
    await chat.send("/pengingat")
    assert chat.buttons[0] == "🔕 Lama · 3174********0001", "fresh again: no ⏳"
    await chat.tap("Lama")
    assert chat.buttons[0].startswith("🔔 Lama")


async def test_an_account_removed_or_a_chat_erased_during_the_round_gets_nothing(
        bot: BotHarness, phone: Phone, services: Services, pace: FakeTime  # noqa: F811
        ) -> None:
    removed, erased = bot.chat(1101), bot.chat(1102)
    for chat in (removed, erased):
        await consent(chat)
        await add_account(chat, phone, ARREARS[0], "Nunggak")
        await add_account(chat, phone, ARREARS[1], "Ibu")
        await add_account(chat, phone, NIK_B, "Ayah")
        await opt_in(chat, "Nunggak", "Ibu", "Ayah")
    asked = services.reminders.notice_for

    async def meanwhile(chat_id: int, slots: list[str], day: date, report: RoundReport
                        ) -> Notice:
        notice = await asked(chat_id, slots, day, report)
        # between the backend's answer and the send, the user acts in the chat
        if chat_id == 1101:
            (gone,) = [a for a in await services.accounts.list(chat_id) if a.label == "Nunggak"]
            assert await services.accounts.remove(chat_id, gone.slot) is not None
        else:
            await services.db.erase_chat(chat_id)
        return notice

    services.reminders.notice_for = meanwhile  # type: ignore[method-assign]
    report = await round_on(bot, services)
    (text,) = reminders_in(removed)
    assert "«Ibu»" in text and "Nunggak" not in text, "the removed account is not told"
    assert reminders_in(erased) == [], "an erased chat gets nothing"
    assert await log_rows(services, 1102) == 0, "and no reminder_log row with its chat id"
    assert (report.sent, report.nothing) == (1, 1)
