"""Escaping and masking in every reply (issue 19, class 5).

One chat walks every path that shows a label or an identifier (add, the full cache and its
eviction, switching, status, history, reminders and their notice, removal, an expired
session and its re-verification, a failed look-up, a resend), with labels that are HTML
(``<i>x</i> a<b`` and friends, one that looks like an entity). Then every template in
bot/texts.py that takes a ``{label}``, ``{masked}`` or ``{tail}`` is looked for in what the
user saw: each must have been shown at least once, every label in it exactly as typed,
every identifier masked. Nothing the user saw holds a whole NIK, card or phone number, and
no text or button shows an entity where the label had a character.
"""

from __future__ import annotations

import re
from datetime import date

from bot import texts
from bot.devtools.harness import BotHarness, EmulatedChat
from bot.services import Services
from tests.conftest import NIK_A, NIK_B, NIK_C, FakeClock, FastSandbox, Phone, add_account, consent
from tests.dbsql import execute
from tests.test_reminders import ARREARS_NIK, FakeTime, opt_in, pace, round_on

__all__ = ["pace"]
LABELS = ("<i>x</i> a<b", "<b>y</b> c&d", "<u>z</u> e>f", "&lt;s&gt; g&amp;h")
TEMPLATES = {name: value for name, value in vars(texts).items()
             if isinstance(value, str) and re.search(r"\{(label|masked|tail)\}", value)}
#: A masked NIK (first and last four digits) or card number (last four digits only).
MASKED = re.compile(r"^(?:[0-9]{4}\*{8}[0-9]{4}|\*{9}[0-9]{4})$")


def _pattern(template: str) -> re.Pattern[str]:
    """The plain text a template shows (tags dropped), with its fields as groups."""
    plain = re.sub(r"</?(b|i|u|s|code|pre)>", "", template)
    parts = re.split(r"(\{[a-z_]+\})", plain.strip())
    seen: set[str] = set()
    out = []
    for part in parts:
        field = re.fullmatch(r"\{([a-z_]+)\}", part)
        if field and field.group(1) not in seen:
            seen.add(field.group(1))
            out.append(f"(?P<{field.group(1)}>.+?)" if field.group(1) in (
                "label", "masked", "tail") else ".*?")
        elif field:
            out.append(".*?")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out), re.DOTALL)


def _seen(bot: BotHarness, chat: EmulatedChat) -> list[str]:
    """Every text the chat was shown: messages, edits, tap answers, and button labels."""
    emulator = bot.emulator
    shown = [e.text for e in emulator.events if e.chat_id == chat.chat_id and e.text]
    for message in emulator.bot_messages(chat.chat_id, include_deleted=True):
        shown += [label for label, _ in message.buttons]
        shown += [str(b.get("text", "")) for b in message.keyboard]
    return shown


async def test_every_label_and_identifier_template_escapes_and_masks(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        backend: FastSandbox, clock: FakeClock, pace: FakeTime) -> None:
    buttons: list[str] = []

    def keep_buttons() -> None:
        buttons.extend(chat.buttons)

    l1, l2, l3, l4 = LABELS
    await consent(chat)
    # a failed look-up, then a resend
    await chat.send("/tambah_kk")
    await chat.send("3174014506900002")  # no phone on file
    await chat.send("/tambah_kk")
    await chat.send(ARREARS_NIK)
    await chat.send(ARREARS_NIK)  # sent twice: one code
    clock.advance(services.settings.otp_resend_seconds + 1)
    await chat.tap("Kirim ulang")
    await chat.send(phone.last_code())
    await chat.send(l1)
    await add_account(chat, phone, NIK_A, l2)
    await add_account(chat, phone, NIK_B, l3)
    await chat.send("/tambah_kk")  # one already held
    await chat.send(NIK_A)
    # switching
    await chat.send("/akun")
    keep_buttons()
    await chat.tap(l1)
    await chat.send("/akun")
    await chat.tap(l1)
    # status, every account, history
    await chat.send("/status")
    keep_buttons()
    if "Semua akun" in " ".join(chat.buttons):
        await chat.tap("Semua akun")
    await chat.send("/riwayat")
    keep_buttons()
    # reminders: on, off, on, and a round with arrears and a change
    await opt_in(chat, l1)
    await chat.tap(l1)
    await chat.tap(l1)
    assert (await round_on(bot, services, date(2026, 11, 6))).sent == 1  # arrears, inactive
    backend.changed[ARREARS_NIK] = {"fktp_name": "Klinik <Baru> & Co", "fktp_code": "X1",
                                    "active": True, "status_text": "AKTIF"}  # arrears, due
    assert (await round_on(bot, services, date(2026, 11, 7))).sent == 1
    # BPJS down: status and history that cannot be fetched
    backend.down = True
    await execute(services.db, ("UPDATE accounts SET status_ct = NULL, status_at = NULL "  # no
                                "WHERE chat_id = ?", (chat.chat_id,)))  # status known for l2
    clock.advance(services.settings.status_refresh_seconds + 1)
    await chat.send("/akun")
    await chat.tap(l2)
    await chat.send("/status")
    await chat.send("/riwayat")
    backend.down = False
    backend.refuse_history = True  # BPJS refuses the history request itself
    await chat.send("/riwayat")
    backend.refuse_history = False
    # the cache is full: the eviction question, then the eviction
    await chat.send("/tambah_kk")
    await chat.send(NIK_C)
    await chat.tap(chat.buttons[0])
    await chat.send(phone.last_code())
    await chat.send(l4)
    # removal: the question, then done
    await chat.send("/hapus_kk")
    keep_buttons()
    await chat.tap(l3)
    await chat.tap("Ya, hapus")
    # the session ran out: status and history ask for a new code, then it is renewed
    clock.advance(services.settings.kk_session_days * 86400 + 1)
    await chat.send("/status")
    await chat.send("/riwayat")
    await chat.send("/akun")
    await chat.tap(l4)
    if any("Kode OTP" in r for r in chat.replies) or phone.inbox:
        await chat.send(phone.last_code())

    shown = _seen(bot, chat) + buttons
    missing, wrong = [], []
    for name, template in sorted(TEMPLATES.items()):
        matches = [m for text in shown for m in _pattern(template).finditer(text)]
        if not matches:
            missing.append(name)
            continue
        for match in matches:
            fields = match.groupdict()
            if "label" in fields and fields["label"] not in LABELS:
                wrong.append((name, "label", fields["label"]))
            if "masked" in fields and not MASKED.match(fields["masked"]):
                wrong.append((name, "masked", fields["masked"]))
            if "tail" in fields and not re.fullmatch(r"[0-9]{4}", fields["tail"]):
                wrong.append((name, "tail", fields["tail"]))
    assert missing == [], f"templates never shown: {missing}"
    assert wrong == []

    secrets = {NIK_A, NIK_B, NIK_C, ARREARS_NIK}
    for account in await services.accounts.list(chat.chat_id):
        secrets |= {account.card, account.phone, account.phone.replace("+62", "0")}
    secrets |= {p for p, _ in phone.inbox} | {p.replace("+62", "0") for p, _ in phone.inbox}
    for text in shown:
        for secret in secrets:
            assert secret not in text, "an identifier shown whole"
        bare = text
        for label in LABELS:
            bare = bare.replace(label, "")
        assert not re.search(r"&(lt|gt|amp|quot|#\d+);", bare), text
    for label in LABELS:
        assert any(label in text for text in shown), f"{label} never shown as typed"
