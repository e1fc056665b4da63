"""A person meets the bot: greeting, consent, help, privacy, unknown input, groups."""

from __future__ import annotations

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.services import Services
from tests.conftest import both_stores, consent
from tests.dbsql import query_one

store = both_stores  # every test here runs on SQLite and on PostgreSQL


async def test_start_shows_greeting_privacy_and_consent_buttons(chat: EmulatedChat) -> None:
    await chat.send("/start")
    assert "Asisten KK" in chat.last_text
    assert "Privasi singkat" in chat.last_text
    assert "3 akun" in chat.last_text
    assert chat.buttons == ["Saya setuju", "Tidak"]
    assert "Mode sandbox — data contoh" in chat.last_text


async def test_nothing_is_stored_before_consent(chat: EmulatedChat, services: Services) -> None:
    await chat.send("/start")
    await chat.send("/bantuan")
    await chat.send("halo")
    assert await services.consent.consented_at(chat.chat_id) is None
    for table in ("consent", "chat_data", "conversations", "accounts", "challenges"):
        row = await query_one(services.db, f"SELECT count(*) AS n FROM {table}")
        assert row is not None and row["n"] == 0, table


async def test_consent_is_recorded_with_a_timestamp(chat: EmulatedChat, services: Services,
                                                    clock: object) -> None:
    await consent(chat)
    assert "persetujuan Anda tercatat" in chat.last_text
    assert "/tambah_kk" in chat.last_text
    assert await services.consent.consented_at(chat.chat_id) is not None
    assert chat.bot_messages[0].buttons == [], "consent buttons are removed after the tap"
    assert chat.last_message.buttons == [("➕ Tambah keluarga", "acct:add")], "no dead end"
    await chat.send("/start")
    assert "sudah tercatat sejak" in chat.last_text
    assert [label for label, _ in chat.last_message.buttons] == [
        "📄 Status kartu", "📋 Semua akun", "👥 Pilih akun", "➕ Tambah keluarga", "🩺 Riwayat",
        "🔔 Pengingat"], "no consent buttons again; the common tasks instead"


async def test_the_add_button_after_consent_starts_the_flow(chat: EmulatedChat) -> None:
    await consent(chat)
    await chat.tap("Tambah keluarga")
    assert "Kirim <b>NIK</b>" not in chat.last_text and "Kirim NIK" in chat.last_text


async def test_declining_stores_nothing(chat: EmulatedChat, services: Services) -> None:
    await chat.send("/start")
    await chat.tap("Tidak")
    assert "tidak ada data yang disimpan" in chat.last_text
    assert await services.consent.consented_at(chat.chat_id) is None


async def test_help_lists_every_command_once(chat: EmulatedChat) -> None:
    from bot.texts import COMMANDS

    await chat.send("/bantuan")
    help_text = chat.last_text
    for name, _ in COMMANDS:
        assert help_text.count(f"/{name} ") == 1 or f"/{name} —" in help_text, name
    await chat.send("/help")
    assert chat.last_text == help_text


async def test_commands_are_registered_with_indonesian_descriptions(bot: BotHarness) -> None:
    names = [c["command"] for c in bot.emulator.commands]
    assert names[:3] == ["start", "tambah_kk", "akun"]
    assert "hapus_data" in names and "bantuan" in names
    assert all(c["description"] for c in bot.emulator.commands)


async def test_privacy_explains_storage_purpose_retention_and_erasure(chat: EmulatedChat
                                                                      ) -> None:
    await chat.send("/privasi")
    text = chat.last_text
    for phrase in ("Yang disimpan", "AES-256-GCM", "Untuk apa", "Berapa lama", "/hapus_data",
                   "SMS", "30 hari", "5 menit", "UU 27/2022", "4 angka terakhir",
                   "10 kali salah kode", "tidak bisa diteruskan", "ID chat Anda",
                   "tiap 5 menit", "bukan layanan cek NIK"):
        assert phrase in text, phrase


async def test_unknown_command_and_text_point_to_help(chat: EmulatedChat) -> None:
    await chat.send("/foo")
    assert "tidak saya kenal" in chat.last_text and "/bantuan" in chat.last_text
    await chat.send("apa kabar?")
    assert "/bantuan" in chat.last_text


async def test_a_stray_nik_outside_a_flow_is_deleted_not_echoed(chat: EmulatedChat) -> None:
    message = await chat.send("3174014506900011")
    assert message.deleted
    assert "3174014506900011" not in chat.last_text
    assert "/tambah_kk" in chat.last_text


async def test_group_gets_one_private_only_answer_and_nothing_is_stored(
        bot: BotHarness, services: Services) -> None:
    group = bot.chat(-100123, chat_type="group", title="RT 05", user_id=77)
    await group.send("/start")
    assert len(group.replies) == 1
    assert "hanya bekerja di chat pribadi" in group.last_text
    await group.send("/tambah_kk")
    assert len(group.replies) == 1
    assert await services.consent.consented_at(-100123) is None
    posted = await group.send("NIK saya 3174014506900011")
    assert posted.deleted, "deleted when the bot may (as a group administrator)"
    assert "3174014506900011" not in group.reply


async def test_no_bot_api_error_in_a_normal_session(bot: BotHarness, chat: EmulatedChat
                                                    ) -> None:
    await consent(chat)
    for command in ("/bantuan", "/privasi", "/akun", "/status", "/hapus_kk", "/batal"):
        await chat.send(command)
    assert bot.emulator.errors == []
