"""Issue 22: the words a layperson reads, through the emulator (one meaning per word, no
jargon, no dead ends, mistakes forgiven)."""

from __future__ import annotations

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.services import Services
from tests.conftest import (
    CARD_A,
    NIK_A,
    NIK_B,
    FakeClock,
    FastSandbox,
    Phone,
    add_account,
    consent,
)
from tests.test_reminders import NOVEMBER, FakeTime, opt_in, pace, reminders_in, round_on

__all__ = ["pace"]

INACTIVE = "3174014506900001"  # sandbox: inactive, 3 months unpaid


async def test_the_chosen_account_is_pinned_and_check_marks_mean_jkn_status(
        chat: EmulatedChat, phone: Phone) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "KK Saya")
    await add_account(chat, phone, INACTIVE, "Bapak Ibu")
    saved = chat.bot_messages[-1].text.splitlines()
    assert saved[0] == "Tersimpan. «Bapak Ibu» sekarang dipilih 📌"
    assert saved[2] == "Bapak Ibu 📌" and "✅" not in "\n".join(saved)
    await chat.send("/status")
    assert chat.last_text.startswith("Bapak Ibu 📌\n") and "✅" not in chat.last_text
    await chat.send("/status semua")
    first = chat.last_text.splitlines()[0]
    assert first == "⚠️ 1 dari 2 kartu tidak aktif: «Bapak Ibu», tunggakan Rp" + first.split(
        "tunggakan Rp")[1], first
    assert "tunggakan Rp" in first and first.split("Rp")[1][0].isdigit()
    await chat.send("/akun")
    assert "📌 = akun yang dipilih" in chat.last_text
    assert chat.buttons[:2] == ["KK Saya · 3174********0011", "📌 Bapak Ibu · 3174********0001"]
    answer = await chat.tap("KK Saya")
    assert answer is not None and answer["text"] == "📌 «KK Saya» dipilih"
    await chat.send("/pengingat")
    assert "🔔 = menyala, 🔕 = mati" in chat.last_text
    assert chat.buttons[0].startswith("🔕 KK Saya")


async def test_status_all_says_all_cards_are_active_in_one_line(chat: EmulatedChat,
                                                                phone: Phone) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "KK Saya")
    await add_account(chat, phone, NIK_B, "KK Mertua")
    await chat.send("/status semua")
    assert chat.last_text.splitlines()[0] == "✅ Kedua kartu aktif"


async def test_the_code_goes_to_a_relatives_phone_and_the_words_say_so(
        chat: EmulatedChat, phone: Phone) -> None:
    await consent(chat)
    await chat.send("/tambah_kk")
    await chat.send(NIK_A)
    sent = chat.bot_messages[-2].text
    assert "minta kodenya kepada pemegang HP itu" in sent
    assert "Verifikasi ini perlu diulang tiap 30 hari." in sent
    sms = phone.inbox[-1][1]
    assert "untuk menghubungkan kartu JKN Anda ke Asisten KK di Telegram milik anggota " \
        "keluarga Anda" in sms
    assert "HANYA kepada anggota keluarga yang sedang menambahkannya" in sms
    assert "Bila tidak ada yang meminta, abaikan SMS ini" in sms


async def test_the_prompt_says_where_the_nik_is_and_a_kk_number_is_named_as_a_cause(
        chat: EmulatedChat) -> None:
    await consent(chat)
    await chat.send("/tambah_kk")
    assert "NIK ada di KTP, atau di kolom NIK pada Kartu Keluarga — bukan Nomor KK yang " \
        "tercetak di bagian atas kartu." in chat.last_text
    await chat.send("3174010101200000")  # a Nomor KK passes the format check, finds no one
    assert "yang dikirim Nomor KK, bukan NIK" in chat.last_text
    assert "Sisa percobaan: 4." in chat.last_text


async def test_mistakes_are_counted_aloud_and_a_spaced_code_is_accepted(
        chat: EmulatedChat, phone: Phone) -> None:
    await consent(chat)
    await chat.send("/tambah_kk")
    assert "Pesan berisi NIK otomatis terhapus dari chat ini" in chat.last_text
    await chat.send("12345")
    assert "Ada 5 angka" in chat.last_text and "Sisa percobaan: 4." in chat.last_text
    await chat.send("317401450690001")
    assert "Sisa percobaan: 3." in chat.last_text
    await chat.send(CARD_A)
    assert "untuk *********7890." in chat.reply, chat.reply
    await chat.send("12345")
    assert "Percobaan ini tidak dihitung; sisa percobaan: 5." in chat.last_text
    await chat.send("000 000" if phone.last_code() != "000000" else "111 111")
    assert chat.last_text.startswith("Kode salah. Sisa percobaan: 4.")
    await chat.send("12 34")
    assert "sisa percobaan: 4." in chat.last_text
    code = phone.last_code()
    typed = f"{code[:3]} {code[3:]}"
    sent = await chat.send(typed)
    assert "Kode benar" in chat.reply
    assert sent.deleted, "a spaced code is deleted like any code"


PAY_WAYS = ("lewat m-banking/ATM (menu BPJS Kesehatan), minimarket (Indomaret, Alfamart) atau "
            "aplikasi JKN Mobile")


async def test_arrears_come_with_a_way_to_pay_and_an_inactive_card_says_so(
        bot: BotHarness, chat: EmulatedChat, phone: Phone, services: Services,
        backend: FastSandbox, pace: FakeTime) -> None:
    await consent(chat)
    await add_account(chat, phone, INACTIVE, "Bapak Ibu")
    await chat.send("/status")
    card = chat.last_text
    assert "TIDAK AKTIF — kartu belum bisa dipakai berobat sampai tunggakan lunas." in card
    assert "tidak dijamin" not in card
    assert "Bayar dengan nomor virtual account 88888" in card and PAY_WAYS in card
    await opt_in(chat, "Bapak Ibu")
    await round_on(bot, services, NOVEMBER[6])
    (text,) = reminders_in(chat)
    assert "Kartu sudah tidak aktif dan belum bisa dipakai berobat sampai tunggakan lunas; " \
        "bayar sekarang." in text and PAY_WAYS in text and "paling lambat" not in text
    backend.changed[INACTIVE] = {"active": True, "status_text": "AKTIF", "status_code": "0"}
    await round_on(bot, services, NOVEMBER[7])
    text = reminders_in(chat)[-1]
    assert "Bayar paling lambat Selasa, 10 November 2026." in text and PAY_WAYS in text
    assert "sudah tidak aktif" not in text


async def test_the_card_and_history_speak_plain_indonesian(chat: EmulatedChat,
                                                          phone: Phone) -> None:
    from bot import glossary

    await consent(chat)
    await chat.send("/tambah_kk")
    await chat.send("3174013313990011")  # month 13
    assert "tanggal lahir: tanggal, bulan, lalu dua angka terakhir tahun" in chat.last_text
    assert "Cocokkan lagi dengan NIK di KTP" in chat.last_text and "DDMMYY" not in chat.last_text
    await chat.send("/batal")
    await add_account(chat, phone, NIK_A, "KK Saya")
    await chat.send("/status")
    card = chat.last_text
    kind = next(line for line in card.splitlines() if line.startswith("Jenis peserta: "))
    assert kind.split(": ", 1)[1].split(" · ")[0] in set(glossary.PARTICIPANT_TYPES.values())
    assert kind.split(" · ")[1] in ("Kelas 1", "Kelas 2", "Kelas 3"), kind
    assert "Faskes pertama: " in card and "FKTP" not in card
    members = [line for line in card.splitlines() if line.startswith("• ")]
    assert members and all("*" not in line for line in members), members
    assert all(line[2].isupper() and line[3:].split(" (")[0].islower() for line in members)
    await chat.send("/riwayat")
    history = chat.last_text
    codes = [line.strip() for line in history.splitlines() if line.startswith("  ")]
    assert codes, history
    for line in codes:
        code = line.split(" – ")[0]
        assert line == (f"{code} – {glossary.ICD10_ID[code]}" if code in glossary.ICD10_ID
                        else code), line
    assert not any(english in history for english in ("Routine", "examination", "infection"))


def labels(chat: EmulatedChat) -> list[str]:
    return [label for label, _ in chat.last_message.buttons]


async def test_no_dead_ends(chat: EmulatedChat, phone: Phone) -> None:
    await consent(chat)
    await chat.send("halo")
    assert "Saya belum paham pesan itu. Pilih tombol di bawah" in chat.last_text
    assert "📄 Status kartu" in labels(chat) and "➕ Tambah keluarga" in labels(chat)
    await chat.send("/bantuan")
    assert "Care Center BPJS Kesehatan 165" in chat.last_text
    assert labels(chat) == ["📄 Status kartu", "📋 Semua akun", "👥 Pilih akun",
                            "➕ Tambah keluarga", "🩺 Riwayat", "🔔 Pengingat"]
    await add_account(chat, phone, NIK_A, "KK Saya")
    assert labels(chat) == ["➕ Tambah keluarga", "📋 Semua akun", "🔔 Pengingat"]
    await chat.tap("📋 Semua akun")
    assert chat.last_text.startswith("✅ Kartunya aktif\n\nStatus semua akun (1)")
    await add_account(chat, phone, NIK_B, "KK Mertua")
    await chat.send("/akun")
    await chat.tap("KK Saya")
    assert chat.last_text.startswith("KK Saya 📌\n👤 "), "a switch shows the card"
    assert "🔄 Perbarui" in labels(chat)
    await chat.send("/tambah_kk")
    await chat.send("/batal")
    assert chat.last_text.startswith("Dibatalkan.")
    assert labels(chat) == ["➕ Tambah keluarga", "📋 Semua akun", "🔔 Pengingat"]
    await chat.send("/start")
    assert "Selamat datang kembali" in chat.last_text and "👥 Pilih akun" in labels(chat)
    await chat.tap("👥 Pilih akun")
    assert chat.last_text.startswith("Akun JKN Anda (2/3)")
    await chat.tap("KK Mertua")
    await chat.tap("🩺 Riwayat")
    assert "Riwayat kunjungan «KK Mertua»" in chat.last_text
    assert labels(chat) == ["📄 Status kartu", "📋 Semua akun"]
    await chat.tap("📄 Status kartu")
    assert chat.last_text.startswith("KK Mertua 📌")


async def test_an_empty_history_offers_the_next_step(chat: EmulatedChat, phone: Phone,
                                                     backend: FastSandbox) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "KK Saya")
    backend.no_visits = True
    await chat.send("/riwayat")
    assert "Belum ada kunjungan dalam 90 hari terakhir." in chat.last_text
    assert labels(chat) == ["📄 Status kartu", "📋 Semua akun"]


async def test_refresh_within_the_window_says_how_old_the_data_is(
        chat: EmulatedChat, phone: Phone, clock: FakeClock, services: Services,
        backend: FastSandbox) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "KK Saya")
    await chat.send("/status")
    card = chat.last_message
    clock.advance(120)
    lookups = backend.lookups
    answer = await chat.tap("🔄 Perbarui")
    window = services.settings.status_refresh_seconds // 60
    assert answer is not None and answer["text"].startswith("Data diambil 2 menit lalu (")
    assert answer["text"].endswith(f"WIB). Bisa diperbarui lagi dalam {window - 2} menit.")
    assert backend.lookups == lookups and chat.last_message.message_id == card.message_id
    clock.advance(services.settings.status_refresh_seconds)
    answer = await chat.tap("🔄 Perbarui")
    assert answer is not None and not answer.get("text")
    assert backend.lookups == lookups + 1 and "Diperbarui:" in chat.last_text


async def test_a_backend_error_offers_a_retry_without_retyping_the_nik(
        chat: EmulatedChat, phone: Phone, backend: FastSandbox, clock: FakeClock,
        services: Services) -> None:
    await consent(chat)
    await chat.send("/tambah_kk")
    backend.down = True
    await chat.send(NIK_A)
    assert "Ketuk 🔁 Coba lagi sebentar lagi: NIK tidak perlu diketik ulang" in chat.last_text
    assert "paling lama 5 menit" in chat.last_text
    assert chat.buttons == ["🔁 Coba lagi", "Batal"]
    backend.down = False
    sent = len(phone.inbox)
    await chat.tap("🔁 Coba lagi")
    assert "Kode OTP 6 angka sudah dikirim" in chat.reply and len(phone.inbox) == sent + 1

    await chat.send("/tambah_kk")
    backend.down = True
    await chat.send(NIK_B)
    backend.down = False
    lookups = backend.lookups
    clock.advance(301)  # the identifier was sealed for a few minutes only
    await chat.tap("🔁 Coba lagi")
    assert "sudah berakhir" in chat.last_text and backend.lookups == lookups
    assert await services.otp.challenge(chat.chat_id) is None


async def test_erase_is_honest_about_telegram_and_removes_the_contact_keyboard(
        chat: EmulatedChat, phone: Phone) -> None:
    await consent(chat)
    await add_account(chat, phone, NIK_A, "KK Saya")
    await chat.send("/tambah_kk")
    await chat.send(NIK_B)
    assert chat.reply_keyboard, "the 📱 button is shown while the code is awaited"
    await chat.send("/hapus_data")
    await chat.tap("Ya, hapus semua")
    text = chat.last_text
    assert "Semua data Anda sudah dihapus dari bot ini" in text
    assert "masih tampil karena tersimpan di Telegram, bukan di bot" in text
    assert "Bersihkan riwayat (Clear history)" in text
    assert chat.reply_keyboard == [], "the erase ended the flow: the 📱 keyboard is gone"
    await consent(chat)
    await chat.send("/tambah_kk")
    await chat.send(NIK_B)
    assert chat.reply_keyboard
    await chat.send("/batal")
    assert chat.reply_keyboard == [], "/batal mid-code removes it too"
