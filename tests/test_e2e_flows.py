"""The stories users came for: add, switch, evict, status, remove, erase, restart."""

from __future__ import annotations

from datetime import date

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.services import Services
from handlers.tambah_kk import ASK_LABEL, ASK_OTP, CONFIRM
from tests.conftest import (
    CARD_A,
    NIK_A,
    NIK_B,
    NIK_C,
    NIK_D,
    CodeBook,
    FakeClock,
    Phone,
    ServicesFactory,
    add_account,
    assert_a_row_in_every_table,
    both_stores,
    chat_rows,
    consent,
    restart,
    start_bot,
)
from tests.dbsql import execute, query_one

store = both_stores  # every test here runs on SQLite and on PostgreSQL


async def state_on_disk(services: Services, chat_id: int) -> int | None:
    """The /tambah_kk state the database holds for the chat right now."""
    row = await query_one(services.db, "SELECT state FROM conversations WHERE chat_id = ?",
                          chat_id)
    return None if row is None else int(row["state"])


async def labels_and_active(services: Services, chat_id: int) -> list[tuple[str, bool]]:
    return [(a.label, a.active) for a in await services.accounts.list(chat_id)]


async def test_add_one_card_with_otp(chat: EmulatedChat, phone: Phone, services: Services
                                     ) -> None:
    await consent(chat)
    await chat.send("/tambah_kk")
    assert "NIK" in chat.last_text and "/batal" in chat.last_text
    nik_message = await chat.send(NIK_A)
    assert nik_message.deleted, "the NIK message is deleted once processed"
    text = chat.reply
    assert "Kode OTP 6 angka sudah dikirim" in text
    assert "3174********0011" in text and NIK_A not in text
    sent_to, sms = phone.inbox[-1]
    assert sent_to.startswith("+628")
    assert sent_to[-4:] in text and sent_to not in text
    assert chat.buttons == ["Kirim ulang", "Batal"]
    assert [b["text"] for b in chat.reply_keyboard] == ["📱 Pakai nomor Telegram saya"]
    code = phone.last_code()
    assert sms.count(code) == 1 and "Asisten KK" in sms
    code_message = await chat.send(code)
    assert code_message.deleted
    assert "Kode benar" in chat.reply
    assert chat.reply_keyboard == [], "the 📱 keyboard goes once the code is accepted"
    assert chat.buttons == ["KK Saya", "KK Orang Tua", "KK Mertua", "Batal"]
    await chat.tap("KK Orang Tua")
    assert "Tersimpan" in chat.last_text and "KK Orang Tua" in chat.last_text
    assert "3174********0011" in chat.last_text
    assert code not in chat.reply
    assert await labels_and_active(services, chat.chat_id) == [("KK Orang Tua", True)]


async def test_add_three_switch_with_one_tap_and_see_all(
        chat: EmulatedChat, phone: Phone, services: Services, clock: FakeClock) -> None:
    await consent(chat)
    for nik, label in ((NIK_A, "KK Saya"), (NIK_B, "KK Orang Tua"), (NIK_C, "KK Mertua")):
        await add_account(chat, phone, nik, label)
        clock.advance(60)
    assert await labels_and_active(services, chat.chat_id) == [
        ("KK Saya", False), ("KK Orang Tua", False), ("KK Mertua", True)]
    sms_before = len(phone.inbox)

    await chat.send("/akun")
    listing = chat.last_message
    assert "(3/3)" in listing.text
    assert chat.buttons[2].startswith("📌 KK Mertua")
    assert chat.buttons[-2:] == ["➕ Tambah keluarga", "🗑 Hapus"]
    answer = await chat.tap("KK Saya")
    assert answer is not None and answer["text"] == "📌 «KK Saya» dipilih"
    edited = next(m for m in chat.bot_messages if m.message_id == listing.message_id)
    assert edited.edits == 1, "the listing is edited in place"
    assert edited.buttons[0][0].startswith("📌 KK Saya")
    assert chat.last_message.message_id == listing.message_id + 1
    assert chat.last_text.startswith("KK Saya 📌\n"), "the chosen account's card follows"
    assert chat.last_message.protected
    assert len(phone.inbox) == sms_before, "switching needs no OTP"
    assert await labels_and_active(services, chat.chat_id) == [
        ("KK Saya", True), ("KK Orang Tua", False), ("KK Mertua", False)]

    answer = await chat.tap("KK Saya")
    assert answer is not None and "sudah dipilih" in answer["text"]
    assert chat.events == [e for e in chat.events if e.kind == "answer"], "nothing edited"

    await chat.send("/status")
    card = chat.last_text
    assert "KK Saya" in card and "3174********0011" in card and "Faskes pertama" in card
    assert "Mode sandbox — data contoh" in card
    await chat.tap("Semua akun")
    everything = chat.last_text
    assert "Status semua akun (3)" in everything
    for label in ("KK Saya", "KK Orang Tua", "KK Mertua"):
        assert label in everything
    await chat.send("/status semua")
    assert "Status semua akun (3)" in chat.last_text


async def test_a_fourth_card_asks_which_account_it_replaces_and_evicts_that_on_success(
        chat: EmulatedChat, phone: Phone, services: Services, clock: FakeClock) -> None:
    await consent(chat)
    for nik, label in ((NIK_A, "Satu"), (NIK_B, "Dua"), (NIK_C, "Tiga")):
        await add_account(chat, phone, nik, label)
        clock.advance(60)
    await chat.send("/pengingat")
    await chat.tap("Dua")  # Dua's reminder on: the choice shows it
    sms_before = len(phone.inbox)
    await chat.send("/tambah_kk")
    await chat.send(NIK_D)
    assert chat.last_text.startswith("Maksimal 3 akun per chat. Pilih akun yang diganti:")
    assert chat.buttons == ["🔕 Satu · 3174********0011", "🔔 Dua · 3273********0022",
                            "🔕 Tiga · 3578********0033", "Batal"]
    assert len(phone.inbox) == sms_before, "no OTP before the user chooses"
    await chat.tap("Satu")  # not the least recently used one: the user's choice
    assert len(phone.inbox) == sms_before + 1
    assert await labels_and_active(services, chat.chat_id) == [
        ("Satu", False), ("Dua", False), ("Tiga", True)], "nothing evicted before the OTP"
    await chat.send(phone.last_code())
    await chat.send("Empat")
    assert "«Satu»" in chat.reply and "dikeluarkan" in chat.reply
    assert await labels_and_active(services, chat.chat_id) == [
        ("Dua", False), ("Tiga", False), ("Empat", True)]


async def test_a_forged_or_stale_replacement_button_replaces_nothing(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    for nik in (NIK_A, NIK_B, NIK_C):
        await add_account(chat, phone, nik, nik[-4:])
    before = await services.accounts.list(chat.chat_id)
    sms_before = len(phone.inbox)
    await chat.send("/tambah_kk")
    await chat.send(NIK_D)
    answer = await chat.tap_data("add:evict:notaslot")
    assert answer is not None and answer["text"] == (
        "Akun itu sudah tidak ada di daftar. Pilih akun lain, atau Batal.")
    assert len(phone.inbox) == sms_before
    await chat.tap("Batal")
    assert "Dibatalkan" in chat.last_text
    assert await services.accounts.list(chat.chat_id) == before


async def test_cancelling_the_fourth_card_leaves_the_cache_exactly_as_it_was(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    for nik in (NIK_A, NIK_B, NIK_C):
        await add_account(chat, phone, nik, nik[-4:])
    before = await services.accounts.list(chat.chat_id)
    await chat.send("/tambah_kk")
    await chat.send(NIK_D)
    await chat.tap("Batal")
    assert "Dibatalkan" in chat.last_text
    await chat.send("/tambah_kk")
    await chat.send(NIK_D)
    await chat.tap("0022")
    await chat.send("/batal")
    assert "Dibatalkan" in chat.reply
    assert await services.accounts.list(chat.chat_id) == before
    assert await services.otp.challenge(chat.chat_id) is None


async def test_cancel_from_every_step(chat: EmulatedChat, phone: Phone, services: Services
                                      ) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A)
    before = await services.accounts.list(chat.chat_id)
    steps = [
        [],  # waiting for the identifier
        [NIK_B],  # waiting for the code
        [NIK_B, "CODE"],  # waiting for the label
    ]
    for step in steps:
        await chat.send("/tambah_kk")
        for text in step:
            await chat.send(phone.last_code() if text == "CODE" else text)
        await chat.send("/batal")
        assert "Dibatalkan" in chat.reply and "tidak berubah" in chat.reply
        assert await services.accounts.list(chat.chat_id) == before
        assert await services.otp.challenge(chat.chat_id) is None
        await chat.send("hai")
        assert "/bantuan" in chat.last_text, "the conversation really ended"
    await chat.send("/batal")
    assert "Tidak ada proses" in chat.last_text


async def test_adding_a_cached_card_switches_to_it_without_otp(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await add_account(chat, phone, NIK_B, "Ayah")
    sms_before = len(phone.inbox)
    await chat.send("/tambah_kk")
    await chat.send("3174 0145 0690 0011")
    assert "sudah tersimpan sebagai «Ibu»" in chat.last_text
    assert len(phone.inbox) == sms_before
    assert await labels_and_active(services, chat.chat_id) == [("Ibu", True), ("Ayah", False)]


async def test_add_by_card_number_and_refresh_status_by_the_same_number(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await add_account(chat, phone, CARD_A, "Kartu")
    account = (await services.accounts.list(chat.chat_id))[0]
    assert account.card == CARD_A and account.lookup_kind == "card"
    await chat.send("/status")
    assert "Kartu *********7890" in chat.last_text


async def test_restart_between_otp_sent_and_code_typed(
        services_factory: ServicesFactory, phone: Phone) -> None:
    svc = await services_factory()
    harness = await start_bot(svc)
    chat = harness.chat(1001)
    await consent(chat)
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    assert "Kode OTP 6 angka sudah dikirim" in chat.reply
    assert await state_on_disk(svc, 1001) == ASK_OTP, "written before any stop"
    harness, svc = await restart(harness, svc, services_factory)
    chat = harness.chat(1001)
    try:
        await chat.send(phone.last_code())
        assert "Kode benar" in chat.reply
        await chat.tap("KK Saya")
        assert "Tersimpan" in chat.last_text
        assert [a.label for a in await svc.accounts.list(1001)] == ["KK Saya"]
    finally:
        await harness.stop()


async def test_restart_at_the_eviction_question_and_at_the_label_step(
        services_factory: ServicesFactory, phone: Phone) -> None:
    svc = await services_factory()
    harness = await start_bot(svc)
    chat = harness.chat(1001)
    await consent(chat)
    for nik in (NIK_A, NIK_B, NIK_C):
        await add_account(chat, phone, nik, nik[-4:])
    await chat.send("/tambah_kk")
    await chat.send(NIK_D)
    assert "Pilih akun yang diganti" in chat.last_text
    for expected in (CONFIRM, ASK_LABEL):
        assert await state_on_disk(svc, 1001) == expected, "written before any stop"
        harness, svc = await restart(harness, svc, services_factory)
        chat = harness.chat(1001)
        if "0011" in "".join(chat.buttons):
            await chat.tap("0011")
            await chat.send(phone.last_code())
            assert "Kode benar" in chat.reply
    await chat.send("Baru")
    assert "Tersimpan" in chat.reply
    assert [a.label for a in await svc.accounts.list(1001)] == ["0022", "0033", "Baru"]
    await harness.stop()


async def test_two_chats_cannot_touch_each_others_accounts_or_codes(
        bot: BotHarness, phone: Phone, services: Services, codes: CodeBook) -> None:
    alice, budi = bot.chat(2001, title="Alice"), bot.chat(2002, title="Budi")
    await consent(alice)
    await consent(budi)
    await add_account(alice, phone, NIK_A, "Milik Alice")
    await alice.send("/akun")
    alice_slot = alice.last_message.buttons[0][1]

    await budi.send("/akun")
    answer = await budi.tap_data(alice_slot)
    assert answer is not None and "tidak ada di daftar" in answer["text"]
    assert await services.accounts.list(2002) == []

    codes.queue[:] = ["222222", "333333"]
    await budi.send("/tambah_kk")
    await budi.send(NIK_B)
    await alice.send("/tambah_kk")
    await alice.send(NIK_C)
    await budi.send("333333")  # Alice's code, typed in Budi's chat
    assert "Kode salah" in budi.last_text
    await alice.send("333333")
    assert "Kode benar" in alice.reply
    await budi.send("222222")
    assert "Kode benar" in budi.reply


async def test_switch_and_remove_are_checked_against_the_tapping_chat(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "A")
    other = bot.chat(2002, title="Lain")
    await consent(other)
    await add_account(other, phone, NIK_B, "Milik orang lain")
    theirs = (await services.accounts.list(2002))[0].slot
    before, before_theirs = (await services.accounts.list(chat.chat_id),
                             await services.accounts.list(2002))
    for forged in ("acct:switch:nope", "rm:yes:nope", "rm:pick:ZZZ", "acct:switch:",
                   "garbage", "add:label:9", "st:zzz", "x" * 64, f"acct:switch:{theirs}",
                   f"rm:pick:{theirs}", f"rm:yes:{theirs}"):
        await chat.send("/akun")
        answer = await chat.tap_data(forged)
        assert answer is not None and answer["text"], forged
    assert await services.accounts.list(chat.chat_id) == before
    assert await services.accounts.list(2002) == before_theirs


async def test_remove_one_account_then_erase_everything(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Pertama")
    await add_account(chat, phone, NIK_B, "Kedua")
    await chat.send("/hapus_kk")
    await chat.tap("Pertama")
    assert "Hapus «Pertama»" in chat.last_text
    await chat.tap("Ya, hapus")
    assert "«Pertama» sudah dihapus" in chat.last_text
    assert [a.label for a in await services.accounts.list(chat.chat_id)] == ["Kedua"]

    await chat.send("/hapus_data")
    assert "1 akun" in chat.last_text
    await chat.tap("Batal")
    assert "Tidak ada yang dihapus" in chat.last_text
    await chat.send("/hapus_data")
    erase_prompt = chat.last_message
    await chat.send("/tambah_kk")  # a flow in progress: conversation, chat data, challenge
    await chat.send("12345")
    await chat.send(NIK_C)
    # the two tables the bot fills in ways this story does not reach: today's reminder,
    # and PTB's user data (the bot keeps none, an older version may have)
    assert await services.reminders.repo.claim(chat.chat_id, date(2026, 1, 5), 1.0)
    await execute(services.db, ("INSERT INTO user_data (user_id, data) VALUES (?, '{}')",
                                (chat.chat_id,)))
    # and an operator's notice being delivered, and the day the chat was last active
    notice = await services.operator.draft("Perawatan")
    assert await services.operator.confirm(notice)
    assert await services.operator.repo.claim(notice, chat.chat_id, 1.0)
    assert await services.retention.repo.adopt("2026-01-05") == 1
    assert_a_row_in_every_table(await chat_rows(services, chat.chat_id))
    await chat.tap("Ya, hapus semua", message=erase_prompt)
    assert "sudah dihapus" in chat.reply
    assert await services.accounts.list(chat.chat_id) == []
    assert await services.consent.consented_at(chat.chat_id) is None
    assert not any((await chat_rows(services, chat.chat_id)).values())
    assert bot.emulator.errors == []


async def test_erase_in_the_middle_of_a_flow_ends_it(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await chat.send("/hapus_data")
    erase_prompt = chat.last_message
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    await chat.tap("Ya, hapus semua", message=erase_prompt)
    assert "sudah dihapus" in chat.reply
    await chat.send(phone.last_code())
    assert "Kode benar" not in chat.last_text
    assert await services.accounts.list(chat.chat_id) == []
    assert await services.otp.challenge(chat.chat_id) is None


async def test_expired_session_asks_for_a_fresh_otp_before_switching(
        chat: EmulatedChat, phone: Phone, services: Services, clock: FakeClock) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Lama")
    clock.advance(20 * 86400)
    await add_account(chat, phone, NIK_B, "Baru")
    clock.advance(11 * 86400)  # "Lama" is now 31 days old, "Baru" 11
    await chat.send("/akun")
    assert "⏳" in chat.buttons[0] and "⏳" not in chat.buttons[1]
    sms_before = len(phone.inbox)
    await chat.tap("Lama")
    assert "sudah lewat 30 hari" in chat.reply
    assert len(phone.inbox) == sms_before + 1
    assert await labels_and_active(services, chat.chat_id) == [("Lama", False),
                                                                ("Baru", True)]
    await chat.send(phone.last_code())
    assert "Verifikasi berhasil" in chat.last_text
    assert await labels_and_active(services, chat.chat_id) == [("Lama", True),
                                                                ("Baru", False)]
    await chat.send("/akun")
    assert "⏳" not in chat.buttons[0]


async def test_status_survives_a_backend_outage_with_the_last_known_data(
        chat: EmulatedChat, phone: Phone, backend: object, clock: FakeClock) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Saya")
    clock.advance(3600)
    backend.down = True  # type: ignore[attr-defined]
    await chat.send("/status")
    assert "belum bisa diperbarui" in chat.last_text
    assert "status terakhir per" in chat.last_text
    assert "Faskes pertama" in chat.last_text


async def test_inactive_participant_shows_warning_arrears_and_virtual_account(
        chat: EmulatedChat, phone: Phone) -> None:
    await consent(chat)
    await add_account(chat, phone, "3174014506900001", "Nunggak")
    await chat.send("/status")
    text = chat.last_text
    assert "TIDAK AKTIF" in text and "⚠️" in text
    assert "Tunggakan: 3 bulan" in text and "88888" in text and "tanggal 10" in text


async def test_a_cached_nik_switches_even_while_the_backend_is_down(
        chat: EmulatedChat, phone: Phone, services: Services, backend: object) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Ibu")
    await add_account(chat, phone, NIK_B, "Ayah")
    backend.down = True  # type: ignore[attr-defined]
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    assert "sudah tersimpan sebagai «Ibu»" in chat.last_text
    assert await labels_and_active(services, chat.chat_id) == [("Ibu", True), ("Ayah", False)]


async def test_a_sealed_pending_payload_only_opens_in_its_own_chat(services: Services) -> None:
    sealed = await services.otp.seal(1, {"nik": NIK_A})
    assert NIK_A not in sealed
    assert await services.otp.unseal(1, sealed) == {"nik": NIK_A}
    assert await services.otp.unseal(2, sealed) is None
    assert await services.otp.unseal(1, "not base64!") is None


async def test_re_adding_an_expired_cached_nik_asks_for_a_fresh_otp(
        chat: EmulatedChat, phone: Phone, services: Services, clock: FakeClock) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "Lama")
    await add_account(chat, phone, NIK_B, "Baru")
    clock.advance(31 * 86400)
    sms_before = len(phone.inbox)
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    assert "sudah lewat 30 hari" in chat.reply and "Kode OTP 6 angka" in chat.reply
    assert len(phone.inbox) == sms_before + 1
    assert await labels_and_active(services, chat.chat_id) == [("Lama", False), ("Baru", True)]
    await chat.send(phone.last_code())
    assert "Verifikasi berhasil" in chat.last_text
    assert await labels_and_active(services, chat.chat_id) == [("Lama", True), ("Baru", False)]
    assert len(await services.accounts.list(chat.chat_id)) == 2, "no duplicate was added"


async def test_a_crash_before_the_new_state_was_written_still_accepts_the_code(
        services_factory: ServicesFactory, phone: Phone) -> None:
    svc = await services_factory()
    harness = await start_bot(svc)
    chat = harness.chat(1001)
    await consent(chat)
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)

    async def lose_the_last_state_write(old: Services) -> None:
        # as if killed before ASK_OTP reached disk
        await execute(old.db, "UPDATE conversations SET state = '0'")

    harness, svc = await restart(harness, svc, services_factory, lose_the_last_state_write)
    chat = harness.chat(1001)
    try:
        code_message = await chat.send(phone.last_code())
        assert "Kode benar" in chat.reply
        assert code_message.deleted
    finally:
        await harness.stop()


# -- fast hands (issue 22 item 9) ---------------------------------------------------------

async def test_a_nik_sent_twice_while_bpjs_is_slow_sends_one_code(
        chat: EmulatedChat, phone: Phone, services: Services) -> None:
    await consent(chat)
    await chat.send("/tambah_kk")
    slow = "3174014506900003"  # the sandbox answers after 3 seconds
    first = await chat.send(slow, settle=False)
    second = await chat.send(slow)
    assert first.deleted and second.deleted
    assert len(phone.inbox) == 1, "one code"
    assert chat.replies[-1].startswith(
        "Kode untuk 3174********0003 sudah dikirim ke nomor HP berakhiran "
        f"{phone.inbox[0][0][-4:]}; tidak ada kode baru. Ketik 6 angka dari SMS itu, atau "
        "/batal.")
    challenge = await services.otp.challenge(chat.chat_id)
    assert challenge is not None and challenge.attempts == 0 and challenge.resends == 0
    await chat.send(phone.last_code())
    assert "Kode benar" in chat.reply


async def test_a_code_replaced_by_kirim_ulang_is_answered_so_and_costs_no_try(
        chat: EmulatedChat, phone: Phone, services: Services, clock: FakeClock,
        codes: CodeBook) -> None:
    await consent(chat)
    codes.queue[:] = ["111111", "222222"]
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    clock.advance(services.otp.resend_seconds + 1)
    await chat.tap("Kirim ulang")
    assert [message for _, message in phone.inbox][-1].count("222222") == 1
    await chat.send("111111")
    assert chat.reply.startswith("Kode itu sudah diganti; pakai SMS terakhir.")
    challenge = await services.otp.challenge(chat.chat_id)
    assert challenge is not None and challenge.attempts == 0, "no try used"
    await chat.send("333333")
    assert f"Sisa percobaan: {services.otp.max_attempts - 1}." in chat.reply
    await chat.send("222222")
    assert "Kode benar" in chat.reply
