"""Every user-facing Indonesian string, in one place.

Strings are HTML (the bot's one parse mode). Placeholders are filled by handlers with
values that have already been escaped with :func:`html.escape`.
"""

from __future__ import annotations

SANDBOX_FOOTER = "\n\n🧪 <i>Mode sandbox — data contoh</i>"

# -- start, help, privacy ---------------------------------------------------------------

#: The greeting and privacy summary; /start adds CONSENT_QUESTION (or, once agreed,
#: CONSENT_ALREADY).
START_INTRO = (
    "Halo! Saya <b>Asisten KK</b> 👋\n\n"
    "Saya membantu Anda menyimpan sampai <b>{max_accounts} akun BPJS Kesehatan (JKN)</b> dari "
    "Kartu Keluarga yang berbeda dalam satu chat: cukup diverifikasi sekali dengan kode OTP "
    "lewat SMS, lalu pindah akun dengan satu ketukan dan lihat status semuanya sekaligus.\n\n"
    "🔒 <b>Privasi singkat</b>\n"
    "• Saya hanya menyimpan data akun yang Anda tambahkan sendiri dan yang OTP-nya Anda "
    "konfirmasi.\n"
    "• NIK, nomor kartu, nama, nomor HP dan status disimpan terenkripsi.\n"
    "• Pesan berisi NIK atau kode OTP saya hapus setelah diproses.\n"
    "• Selain kode SMS, Anda boleh membuktikan nomor HP dengan membagikan kontak Telegram "
    "Anda sendiri; nomornya hanya dicocokkan, tidak disimpan.\n"
    "• Anda bisa menghapus semuanya kapan saja dengan /hapus_data.\n"
    "Rincian lengkap: /privasi"
)
CONSENT_QUESTION = "Apakah Anda setuju data tersebut diproses untuk layanan ini?"
CONSENT_YES_BUTTON = "Saya setuju"
CONSENT_NO_BUTTON = "Tidak"
CONSENT_GIVEN = (
    "Terima kasih, persetujuan Anda tercatat.\n\n"
    "Langkah berikutnya: tambahkan KK pertama dengan /tambah_kk.\n"
    "Daftar perintah: /bantuan"
)
CONSENT_ALREADY = (
    "Selamat datang kembali. Persetujuan Anda sudah tercatat sejak {when}. Mau apa "
    "sekarang? Pilih tombol di bawah."
)
CONSENT_DECLINED = (
    "Baik, tidak ada data yang disimpan. Tanpa persetujuan, saya tidak bisa menyimpan akun.\n"
    "Jika berubah pikiran, ketik /start. Jika sebelumnya sudah setuju dan ingin mencabutnya, "
    "gunakan /hapus_data."
)
CONSENT_REQUIRED = (
    "Sebelum menambah akun, Anda perlu menyetujui pemrosesan data. Ketik /start lalu pilih "
    "<b>Saya setuju</b>."
)

HELP = (
    "<b>Perintah Asisten KK</b>\n\n"
    "/start — sapaan, ringkasan privasi dan persetujuan\n"
    "/tambah_kk — tambah akun JKN (NIK atau nomor kartu + OTP SMS, atau tombol 📱 bila "
    "nomor Telegram Anda nomor HP yang terdaftar); bisa langsung <code>/tambah_kk NIK</code>\n"
    "/akun — daftar akun, pindah akun dengan satu ketukan\n"
    "/status — status akun yang dipilih 📌; <code>/status semua</code> untuk semua akun\n"
    "/riwayat — riwayat kunjungan akun yang dipilih, 90 hari terakhir\n"
    "/pengingat — pengingat iuran dan perubahan status, per akun\n"
    "/hapus_kk — hapus satu akun dari daftar\n"
    "/batal — batalkan proses yang sedang berjalan\n"
    "/privasi — data apa yang disimpan, untuk apa, dan cara menghapusnya\n"
    "/hapus_data — hapus semua data Anda di bot ini\n"
    "/bantuan — daftar perintah ini\n\n"
    "Pertanyaan soal kepesertaan JKN (data, iuran, nomor HP terdaftar): Care Center BPJS "
    "Kesehatan <b>165</b> atau PANDAWA (WhatsApp <b>08118165165</b>).\n\n"
    "Atau langsung pilih tombol di bawah."
)

PRIVACY = (
    "🔒 <b>Privasi Asisten KK</b>\n\n"
    "<b>Yang disimpan</b> (hanya setelah Anda setuju): waktu persetujuan; untuk tiap akun "
    "yang Anda tambahkan (maks. {max_accounts}): NIK, nomor kartu JKN, nama, nomor HP "
    "terdaftar, label buatan Anda dan status terakhir; serta langkah percakapan yang sedang "
    "berjalan. Selama menunggu kode OTP, hanya angka yang Anda ketik dan nomor HP tujuan "
    "kode yang disimpan; data peserta baru diambil setelah kode benar.\n\n"
    "<b>Bagaimana</b>: data pribadi dienkripsi (AES-256-GCM) dan terikat ke chat Anda. Kode "
    "OTP hanya disimpan sebagai sidik (hash), berlaku {ttl_minutes} menit dan sekali pakai. "
    "Pesan Anda yang berisi NIK, nomor kartu atau OTP dihapus setelah diproses. Pesan yang "
    "menampilkan nama atau status tidak bisa diteruskan atau disimpan.\n\n"
    "<b>Riwayat kunjungan</b> (/riwayat, termasuk diagnosis) diambil dari BPJS setiap kali "
    "Anda memintanya dan tidak disimpan; pesannya tidak bisa diteruskan.\n\n"
    "<b>Untuk apa</b>: hanya untuk menampilkan status JKN akun yang Anda buktikan sendiri "
    "lewat OTP. Bot ini bukan layanan cek NIK: kode dikirim ke nomor HP yang terdaftar di "
    "BPJS Kesehatan, bukan ke nomor pilihan Anda, dan sebelum kode benar bot hanya "
    "menyebut 4 angka terakhir nomor itu. Satu peserta paling banyak 10 kali salah kode "
    "per 24 jam, dari chat mana pun.\n\n"
    "<b>Mengapa SMS</b>: OTP lewat SMS adalah cara yang juga dipakai BPJS Kesehatan. "
    "Kode itu hanya untuk anggota keluarga yang sedang menambahkan akun; jangan berikan "
    "kepada orang lain, termasuk petugas. Sebagai ganti kode, Anda boleh membagikan "
    "kontak Telegram Anda sendiri (tombol 📱): bila nomornya sama dengan nomor HP yang "
    "terdaftar, itu bukti yang sama; nomor itu hanya dicocokkan lalu pesannya dihapus, "
    "tidak disimpan.\n\n"
    "<b>Berapa lama</b>: akun tetap tersimpan sampai Anda menghapusnya; tanpa OTP baru akun "
    "hanya bisa dipakai {session_days} hari sejak verifikasi terakhir. Kode OTP kedaluwarsa "
    "dalam {ttl_minutes} menit dan dihapus tak lama kemudian. Status diambil ulang dari "
    "BPJS paling cepat tiap {refresh_minutes} menit. Untuk akun yang pengingatnya Anda "
    "nyalakan (/pengingat), bot mengecek statusnya sekali sehari dan mencatat tanggal "
    "pengingat terkirim. Catatan jumlah pencarian, kode dan "
    "pembaruan (tanpa NIK, nomor, atau ID chat Anda, hanya waktu dan sidik berkunci) disimpan "
    "24 jam untuk mencegah penyalahgunaan, juga setelah /hapus_data.\n\n"
    "<b>Hak Anda</b> (UU 27/2022 tentang Pelindungan Data Pribadi): hapus satu akun dengan "
    "/hapus_kk, atau hapus semua data dan cabut persetujuan dengan /hapus_data — langsung "
    "terhapus saat itu juga. Bila berkas database sedang dicadangkan, sisa salinan "
    "terenkripsinya dibersihkan otomatis begitu pencadangan selesai, dan bot memberi tahu "
    "Anda."
)

UNKNOWN_COMMAND = "Perintah itu tidak saya kenal. Pilih tombol di bawah, atau lihat /bantuan."
UNKNOWN_TEXT = "Saya belum paham pesan itu. Pilih tombol di bawah, atau lihat /bantuan."
STRAY_IDENTIFIER = (
    "Pesan Anda yang berisi angka identitas sudah saya hapus demi keamanan. Untuk menambah "
    "akun, mulai dengan /tambah_kk."
)
PRIVATE_ONLY = (
    "Asisten KK hanya bekerja di chat pribadi, demi keamanan data Anda. Silakan kirim pesan "
    "langsung ke saya. Saya tidak menyimpan apa pun dari grup ini."
)
ERROR = "Maaf, terjadi kesalahan di pihak kami. Data Anda aman; silakan coba lagi sebentar lagi."
STALE_BUTTON = "Tombol ini sudah tidak berlaku."
TOO_FAST = "Terlalu cepat, coba lagi sebentar."
DB_BUSY = (
    "Server sedang sibuk, jadi permintaan Anda belum diproses. Tidak ada yang berubah; coba "
    "lagi sebentar lagi."
)
DISK_FULL = (
    "Penyimpanan server sedang penuh, jadi permintaan Anda belum diproses. Tidak ada yang "
    "berubah dan data Anda aman; coba lagi nanti. Pengelola bot sudah diberi tahu lewat log."
)
NOTHING_TO_CANCEL = (
    "Tidak ada proses yang sedang berjalan. Pilih tombol di bawah, atau lihat /bantuan."
)
CANCELLED = "Dibatalkan. Daftar akun Anda tidak berubah."

# -- /tambah_kk -------------------------------------------------------------------------

ASK_ID = (
    "Kirim <b>NIK</b> (16 angka) atau <b>nomor kartu JKN</b> (13 angka) peserta yang ingin "
    "ditambahkan.\n"
    "NIK ada di KTP, atau di kolom NIK pada Kartu Keluarga — <b>bukan</b> Nomor KK yang "
    "tercetak di bagian atas kartu.\n"
    "Pesan berisi NIK otomatis terhapus dari chat ini setelah saya baca, demi keamanan.\n\n"
    "Kode OTP akan dikirim lewat SMS ke nomor HP yang terdaftar di BPJS Kesehatan untuk "
    "peserta itu.\n\n"
    "Ketik /batal untuk membatalkan."
)
ID_PROBLEMS = {
    "empty": "Pesan kosong. Kirim NIK (16 angka) atau nomor kartu JKN (13 angka).",
    "not_digits": (
        "NIK atau nomor kartu hanya berisi angka 0–9 (spasi dan tanda hubung boleh). "
        "Coba kirim lagi."
    ),
    "non_ascii_digits": (
        "Angka harus ditulis dengan angka biasa 0–9, bukan angka lebar atau huruf lain. "
        "Coba ketik ulang."
    ),
    "wrong_length": (
        "Ada {length} angka. NIK di KTP terdiri dari 16 angka, nomor kartu JKN 13 angka. "
        "Cocokkan lagi dengan KTP atau kartu JKN lalu kirim ulang."
    ),
    "nik_leading_zero": (
        "NIK tidak pernah diawali angka 0. Cocokkan lagi dengan NIK di KTP lalu kirim ulang."
    ),
    "nik_bad_date": (
        "Angka ke-7 sampai ke-12 NIK adalah tanggal lahir: tanggal, bulan, lalu dua angka "
        "terakhir tahun (untuk perempuan, tanggalnya ditambah 40). Cocokkan lagi dengan NIK "
        "di KTP lalu kirim ulang."
    ),
    "too_long": "Pesan terlalu panjang. Kirim NIK (16 angka) atau nomor kartu JKN (13 angka) saja.",
}
#: Added to every refusal of a typed NIK or card number but the last.
ID_TRIES_LEFT = "Sisa percobaan: {left}."
ID_TOO_MANY = (
    "Terlalu banyak percobaan yang tidak berhasil. Proses dihentikan; mulai lagi dengan "
    "/tambah_kk bila sudah siap."
)
LOOKUP_CAP = (
    "Batas pencarian peserta hari ini untuk chat ini sudah tercapai. Demi keamanan data, "
    "coba lagi besok."
)
#: In place of a masked NIK when BPJS gave none (an empty ``noKTP``).
NIK_UNKNOWN = "NIK tidak diketahui"
LOOKING_UP = "⏳ Memproses {masked}…"
#: One reply for everything that keeps a code from going out for a participant while
#: adding (not found, no phone on file, too many codes or wrong codes for them today, an
#: SMS failure): before the OTP, a stranger must not learn which it was (docs/decisions.md 13).
LOOKUP_FAILED = (
    "Kode OTP tidak bisa dikirim untuk {masked}. Kemungkinan penyebabnya:\n"
    "• yang dikirim Nomor KK, bukan NIK — NIK ada di KTP atau di kolom NIK pada Kartu "
    "Keluarga;\n"
    "• angkanya keliru — periksa lagi lalu kirim ulang;\n"
    "• peserta belum punya nomor HP terdaftar di BPJS Kesehatan — perbarui lewat Care "
    "Center <b>165</b> atau PANDAWA (WhatsApp <b>08118165165</b>);\n"
    "• demi keamanan, kode untuk peserta ini sedang tidak bisa dikirim (terlalu banyak "
    "percobaan, atau gangguan SMS) — coba lagi nanti.\n\n"
    "Kirim NIK atau nomor kartu lagi, atau /batal."
)
BACKEND_DOWN = (
    "Layanan data BPJS sedang tidak bisa dihubungi. Tidak ada yang berubah. Ketuk "
    "<b>🔁 Coba lagi</b> sebentar lagi: NIK tidak perlu diketik ulang (disimpan terenkripsi "
    "paling lama {minutes} menit). Atau /batal."
)
RETRY_BUTTON = "🔁 Coba lagi"
BACKEND_REJECTED = (
    "Layanan data BPJS sedang menolak permintaan bot ini (masalah di pihak bot, bukan data "
    "Anda). Tidak ada yang berubah. Coba lagi nanti, atau cek kartu lewat aplikasi JKN "
    "Mobile atau Care Center 165."
)
BACKEND_DOWN_SHORT = (
    "Layanan data BPJS sedang tidak bisa dihubungi. Tidak ada yang berubah; coba lagi "
    "sebentar lagi."
)
UNEXPECTED_IN_FLOW = "Ikuti petunjuk pada pesan terakhir, atau ketik /batal untuk berhenti."
ALREADY_CACHED = "Peserta ini sudah tersimpan sebagai «{label}» dan sekarang dipilih 📌"
CONTINUE_BUTTON = "Lanjutkan"
CANCEL_BUTTON = "Batal"
PRESS_A_BUTTON = "Silakan pilih salah satu tombol di pesan sebelumnya, atau ketik /batal."
OTP_SENT = (
    "Kode OTP 6 angka sudah dikirim lewat SMS ke nomor HP berakhiran <b>{tail}</b> yang "
    "terdaftar di BPJS Kesehatan untuk {masked}.\n\n"
    "Bila HP itu dipegang orang lain (misalnya orang tua Anda), minta kodenya kepada "
    "pemegang HP itu. Ketik kodenya di sini; berlaku {minutes} menit.\n\n"
    "Verifikasi ini perlu diulang tiap {days} hari."
)
OTP_RESENT = (
    "Kode baru dikirim ke nomor HP berakhiran <b>{tail}</b>. Kode sebelumnya tidak berlaku "
    "lagi."
)
RESEND_BUTTON = "Kirim ulang"
SEND_CODE_BUTTON = "Kirim kode"
RESEND_WAIT = "Tunggu {seconds} detik lagi sebelum meminta kode baru."
SMS_FAILED = (
    "SMS belum bisa dikirim karena gangguan layanan SMS. Tidak ada percobaan yang terpakai. "
    "Coba lagi dengan tombol di bawah, atau /batal."
)
SMS_FAILED_RESEND = (
    "SMS belum bisa dikirim karena gangguan layanan SMS; kode sebelumnya masih berlaku. "
    "Coba <b>Kirim ulang</b> sebentar lagi."
)
SMS_CAP_PHONE = (
    "Sudah terlalu banyak kode dikirim ke nomor HP peserta ini. Demi keamanan, coba lagi "
    "nanti (paling lama 24 jam)."
)
SMS_CAP_CHAT = "Batas kode OTP hari ini untuk chat ini sudah tercapai. Coba lagi besok."
SMS_CAP_PARTICIPANT = (
    "Terlalu banyak kode salah untuk peserta ini dalam 24 jam terakhir. Demi keamanan, kode "
    "baru untuk peserta ini baru bisa dikirim lagi setelah 24 jam."
)
SMS_CAP_GLOBAL = (
    "Layanan SMS bot ini sedang mencapai batas pengiriman per jam. Tidak ada yang berubah; "
    "coba lagi dalam satu jam."
)
OTP_FORMAT = (
    "Kode OTP terdiri dari 6 angka (0–9), boleh dengan spasi. Ketik ulang kodenya dari SMS, "
    "atau /batal untuk berhenti. Percobaan ini tidak dihitung; sisa percobaan: {left}."
)
OTP_WRONG = "Kode salah. Sisa percobaan: {left}."
OTP_EXPIRED = (
    "Kode sudah kedaluwarsa; percobaan ini tidak dihitung. Tekan <b>Kirim ulang</b> untuk "
    "mendapat kode baru."
)
OTP_EXHAUSTED = (
    "Terlalu banyak kode salah, jadi kode ini tidak berlaku lagi. Mulai lagi dengan /tambah_kk."
)
OTP_NONE = "Tidak ada kode OTP yang menunggu. Mulai lagi dengan /tambah_kk."
OTP_LOCKED = (
    "Terlalu banyak kode salah untuk peserta ini dalam 24 jam terakhir, jadi kode ini tidak "
    "berlaku lagi. Demi keamanan, kode baru baru bisa dikirim setelah 24 jam."
)
OTP_OK = "Kode benar 👍"
ASK_LABEL = (
    "Beri nama untuk akun ini: pilih salah satu tombol, atau ketik nama sendiri "
    "(maks. {max_len} karakter)."
)
CONTACT_PROMPT = (
    "📱 SMS belum datang? Bila nomor Telegram Anda adalah nomor HP berakhiran <b>{tail}</b> "
    "yang terdaftar di BPJS Kesehatan, ketuk <b>Pakai nomor Telegram saya</b> di bawah: "
    "tidak perlu menunggu SMS."
)
CONTACT_BUTTON = "📱 Pakai nomor Telegram saya"
CONTACT_OK = "Nomor Telegram Anda cocok dengan nomor HP yang terdaftar 👍"
CONTACT_NOT_OWN = (
    "Itu kontak orang lain. Yang bisa dipakai hanya nomor Telegram Anda sendiri (tombol "
    "📱), atau kode dari SMS. Sisa percobaan: {left}."
)
CONTACT_MISMATCH = (
    "Nomor Telegram Anda bukan nomor HP yang terdaftar di BPJS Kesehatan untuk peserta "
    "ini. Kode dari SMS tetap bisa dipakai. Sisa percobaan: {left}."
)
CONTACT_NOT_NOW = (
    "Kontak hanya dipakai untuk verifikasi saat menunggu kode OTP. Pesan kontak Anda sudah "
    "saya hapus."
)
LABEL_PRESETS = ("KK Saya", "KK Orang Tua", "KK Mertua")
LABEL_EMPTY = "Nama tidak boleh kosong. Pilih tombol atau ketik nama (maks. {max_len} karakter)."
LABEL_TOO_LONG = "Nama terlalu panjang ({length} karakter). Maksimal {max_len} karakter."
LABEL_LOOKS_LIKE_ID = (
    "Nama akun tidak boleh berisi NIK, nomor kartu atau kode OTP. Pilih tombol atau ketik "
    "nama lain."
)
VERIFY_SESSION_GONE = (
    "Verifikasi ini sudah berakhir atau dibatalkan. Mulai lagi dengan /tambah_kk."
)
SAVED = "Tersimpan. «<b>{label}</b>» sekarang dipilih 📌"
SAVE_BACKEND_DOWN = (
    "Kode Anda sudah benar, tetapi data peserta belum bisa diambil dari BPJS sekarang. "
    "Tidak ada yang hilang: kirim nama akun lagi sebentar lagi (dalam 30 menit), atau /batal."
)
PHONE_CHANGED = (
    "Nomor HP peserta di BPJS berubah selama verifikasi, jadi akun tidak disimpan. Mulai lagi "
    "dengan /tambah_kk agar kode dikirim ke nomor yang baru."
)
SAVED_EVICTED = "\n➖ «{label}» ({masked}) dikeluarkan dari daftar."
CACHE_CHANGED = (
    "Daftar akun berubah selama proses ini, jadi akun tidak disimpan. Mulai lagi dengan "
    "/tambah_kk."
)
REVERIFY_INTRO = (
    "Sesi akun «{label}» sudah lewat {days} hari sejak verifikasi terakhir. Demi keamanan, "
    "verifikasi ulang dengan kode OTP."
)
REVERIFY_NO_PHONE = (
    "Peserta ini tidak lagi punya nomor HP terdaftar di BPJS Kesehatan, jadi kode OTP tidak "
    "bisa dikirim. Perbarui nomor HP lewat Care Center <b>165</b> atau PANDAWA (WhatsApp "
    "<b>08118165165</b>), lalu ketuk akunnya lagi di /akun."
)
REVERIFIED = "Verifikasi berhasil. «<b>{label}</b>» bisa dipakai lagi dan sekarang dipilih 📌"

# -- /akun ------------------------------------------------------------------------------

ACCOUNTS_HEADER = (
    "<b>Akun JKN Anda</b> ({count}/{max_accounts})\n"
    "Ketuk untuk memilih akun. 📌 = akun yang dipilih."
)
ACCOUNTS_EMPTY = "Belum ada akun tersimpan. Tambahkan dengan /tambah_kk."
ACCOUNT_EXPIRED_MARK = " ⏳"
ACCOUNTS_EXPIRED_NOTE = "\n⏳ = perlu verifikasi OTP ulang sebelum dipakai."
ADD_BUTTON = "➕ Tambah keluarga"
GO_ACCOUNTS_BUTTON = "👥 Pilih akun"
GO_STATUS_BUTTON = "📄 Status kartu"
GO_STATUS_ALL_BUTTON = "📋 Semua akun"
NEXT_STEP = "Langkah berikutnya:"
REMOVE_BUTTON = "🗑 Hapus"
SWITCHED = "📌 «{label}» dipilih"
ALREADY_ACTIVE = "📌 «{label}» sudah dipilih"
ACCOUNT_GONE = "Akun ini sudah tidak ada di daftar Anda."

# -- /status ----------------------------------------------------------------------------

STATUS_NO_ACCOUNT = "Belum ada akun tersimpan. Tambahkan dengan /tambah_kk."
STATUS_ALL_BUTTON = "Semua akun"
STATUS_ACTIVE_BUTTON = "📌 Akun dipilih saja"
STATUS_REFRESH_BUTTON = "🔄 Perbarui"
#: The toast for 🔄 Perbarui within STATUS_REFRESH_SECONDS: nothing newer can be asked yet.
STATUS_TOO_SOON = "Data diambil {age} ({time}). Bisa diperbarui lagi dalam {minutes} menit."
STATUS_ALL_HEADER = "<b>Status semua akun</b> ({count})"
#: The first line of /status semua: the JKN status of every card at a glance.
SUMMARY_ALL_OK = {1: "✅ Kartunya aktif", 2: "✅ Kedua kartu aktif", 3: "✅ Ketiga kartu aktif"}
SUMMARY_ALL_OK_MANY = "✅ Semua {count} kartu aktif"
SUMMARY_SOME_OK = "✅ {ok} dari {count} kartu aktif"
SUMMARY_INACTIVE = "⚠️ {bad} dari {count} kartu tidak aktif: {which}"
SUMMARY_INACTIVE_ONE = "«{label}»"
SUMMARY_INACTIVE_ARREARS = "«{label}», tunggakan Rp{amount}"
SUMMARY_UNKNOWN = "{n} kartu belum bisa dicek"
STATUS_ACTIVE_OK = "✅ {text}"
STATUS_INACTIVE = (
    "⚠️ <b>{text}</b> — kartu belum bisa dipakai berobat sampai tunggakan lunas."
)
#: Inactive with no arrears known (e.g. PBI ended, or the backend cannot tell arrears).
STATUS_INACTIVE_OTHER = (
    "⚠️ <b>{text}</b> — kartu belum bisa dipakai berobat. Tanyakan sebabnya ke Care Center "
    "<b>165</b>."
)
#: Where to pay, with the card's virtual account (the card and the reminder).
PAY_WAYS = (
    "Bayar dengan nomor virtual account <code>{va}</code> lewat m-banking/ATM (menu BPJS "
    "Kesehatan), minimarket (Indomaret, Alfamart) atau aplikasi JKN Mobile."
)
STATUS_ARREARS = (
    "💳 Tunggakan: <b>{amount}</b>. Iuran jatuh tempo tiap tanggal 10.\n"
    + PAY_WAYS
)
STATUS_ARREARS_NONE = "💳 Tunggakan: tidak ada"
STATUS_ARREARS_UNKNOWN = "💳 Tunggakan: tidak tersedia lewat {backend}"
STATUS_FAMILY_UNKNOWN = "👨‍👩‍👧 Anggota keluarga: tidak tersedia lewat {backend}"
STATUS_FAMILY_HEADER = "👨‍👩‍👧 Anggota keluarga ({count}):"
STATUS_FAMILY_MEMBER = "• {name} ({relation}) — {status}"
#: The participant type and class in plain words (bot/glossary.py).
STATUS_TYPE = "Jenis peserta: {type} · {care_class}"
#: FKTP (fasilitas kesehatan tingkat pertama) in the words people use.
STATUS_FKTP = "Faskes pertama: {name}"
STATUS_STALE = "⚠️ Data BPJS belum bisa diperbarui; ini status terakhir per {when} ({age})."
STATUS_CAPPED = (
    "⚠️ Batas pembaruan chat ini ({limit} per jam) tercapai; ini status terakhir per {when} "
    "({age})."
)
STATUS_CACHED = "Data per {when} ({age})."
AGE_NOW = "baru saja"
AGE_MINUTES = "{n} menit lalu"
AGE_HOURS = "{n} jam lalu"
AGE_DAYS = "{n} hari lalu"
STATUS_UNAVAILABLE = (
    "Status «{label}» belum bisa diambil: layanan data BPJS sedang tidak bisa dihubungi dan "
    "belum ada status tersimpan. Coba lagi sebentar lagi."
)
STATUS_NEEDS_REVERIFY = (
    "Sesi «{label}» sudah lewat {days} hari. Verifikasi ulang dengan OTP sebelum melihat "
    "statusnya."
)
STATUS_REVERIFY_SHORT = "⏳ perlu verifikasi OTP ulang (ketuk akun ini di /akun)"
REVERIFY_BUTTON = "Verifikasi ulang"
STATUS_UPDATED = "Diperbarui: {when}"

# -- /riwayat ---------------------------------------------------------------------------

HISTORY_TITLE = "🩺 <b>Riwayat kunjungan «{label}»</b>\n{start} – {end} (90 hari terakhir)"
HISTORY_EMPTY = "Belum ada kunjungan dalam 90 hari terakhir."
HISTORY_VISIT = "• <b>{date}</b> — {facility}{poli} · {kind}"
HISTORY_POLI = " · poli {poli}"
HISTORY_OUTPATIENT = "rawat jalan"
HISTORY_INPATIENT = "rawat inap"
HISTORY_DISCHARGED = "rawat inap, pulang {date}"
HISTORY_DIAGNOSIS = "  {diagnosis}"
HISTORY_MORE = "…dan {count} kunjungan lebih lama lagi."
HISTORY_UNSUPPORTED = (
    "Riwayat kunjungan tidak tersedia lewat {backend}. Lihat riwayat di aplikasi JKN Mobile."
)
HISTORY_REFUSED = (
    "Riwayat kunjungan «{label}» tidak bisa diambil: layanan data BPJS menolak "
    "permintaannya. Ini bukan berarti tidak ada kunjungan. Coba lagi nanti, atau lihat "
    "riwayat di aplikasi JKN Mobile."
)
HISTORY_UNAVAILABLE = (
    "Riwayat kunjungan «{label}» belum bisa diambil: layanan data BPJS sedang tidak bisa "
    "dihubungi. Tidak ada yang berubah; coba lagi sebentar lagi."
)
HISTORY_CAPPED = (
    "Batas permintaan data chat ini ({limit} per jam) sudah tercapai. Coba lagi nanti."
)
HISTORY_NO_ACCOUNT = (
    "Belum ada akun tersimpan untuk dilihat riwayatnya. Tambahkan dengan /tambah_kk."
)
HISTORY_NEEDS_REVERIFY = (
    "Sesi «{label}» sudah lewat {days} hari. Verifikasi ulang dengan OTP sebelum melihat "
    "riwayatnya."
)
HISTORY_BUTTON = "🩺 Riwayat"
HISTORY_BUTTON_OF = "🩺 Riwayat «{label}»"

# -- /pengingat and the reminders -------------------------------------------------------

REMINDERS_HEADER = (
    "🔔 <b>Pengingat JKN</b>\n"
    "Ketuk akun untuk menyalakan atau mematikan pengingatnya: iuran yang belum dibayar "
    "(tanggal 5–10 tiap bulan) dan perubahan status (aktif/tidak aktif, kelas, faskes "
    "pertama). "
    "Paling banyak satu pesan sehari. 🔔 = menyala, 🔕 = mati."
)
REMINDERS_NEXT = "Pengingat berikutnya: <b>{when}</b>."
REMINDERS_NONE_ON = "Belum ada pengingat yang menyala."
REMINDERS_NO_ACCOUNT = "Belum ada akun tersimpan. Tambahkan dengan /tambah_kk."
REMINDER_ON = "Pengingat «{label}» dinyalakan"
REMINDER_OFF = "Pengingat «{label}» dimatikan"
REMINDER_NEEDS_REVERIFY = "Verifikasi OTP ulang dulu, lalu nyalakan pengingatnya."
REMINDERS_BUTTON = "🔔 Pengingat"
DAY_NAMES = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
MONTH_NAMES = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
               "September", "Oktober", "November", "Desember")
REMINDER_TITLE = "🔔 <b>Pengingat JKN</b> — {day}"
REMINDER_ARREARS_HEADER = "💳 <b>Iuran belum dibayar</b>"
REMINDER_ARREARS = (
    "• «{label}»: {amount_text}. Bayar paling lambat <b>{due}</b>.\n  " + PAY_WAYS
)
REMINDER_ARREARS_INACTIVE = (
    "• «{label}»: {amount_text}. Kartu <b>sudah tidak aktif</b> dan belum bisa dipakai "
    "berobat sampai tunggakan lunas; bayar sekarang.\n  " + PAY_WAYS
)
REMINDER_AMOUNT_MONTHS = "{months} bulan, Rp{amount}"
REMINDER_AMOUNT = "Rp{amount}"
REMINDER_CHANGES_HEADER = "📋 <b>Perubahan sejak terakhir dicek</b>"
REMINDER_CHANGE = "• «{label}»: {what} {before} → <b>{after}</b>"
REMINDER_WHAT = {"status": "status", "class": "kelas", "fktp": "faskes pertama"}
REMINDER_INACTIVE_ADVICE = (
    "  Kartu belum bisa dipakai berobat sampai tunggakan lunas (lihat /status untuk cara "
    "bayar), atau tanyakan sebabnya ke Care Center 165."
)
REMINDER_ACTIVE_AGAIN = "  Status sudah aktif kembali ✅"
REMINDER_FKTP_ADVICE = "  Mulai sekarang berobat dulu ke faskes pertama yang baru ini."
REMINDER_FOOTER = "Detail: /status semua · Atur pengingat: /pengingat"

# -- /hapus_kk, /hapus_data -------------------------------------------------------------

REMOVE_PICK = "Pilih akun yang ingin dihapus dari daftar:"
REMOVE_CONFIRM = (
    "Hapus «<b>{label}</b>» ({masked}) dari daftar? Data akun ini dihapus dari bot; "
    "menambahkannya lagi nanti perlu OTP baru."
)
REMOVE_YES_BUTTON = "Ya, hapus"
REMOVED = "«{label}» sudah dihapus dari daftar."
REMOVE_CANCELLED = "Tidak jadi dihapus. Daftar akun tidak berubah."
ERASE_CONFIRM = (
    "Ini akan menghapus <b>semua</b> data Anda di bot ini: {count} akun, kode OTP yang "
    "menunggu, langkah percakapan dan persetujuan Anda. Tidak bisa dibatalkan.\n\n"
    "Lanjutkan?"
)
ERASE_YES_BUTTON = "Ya, hapus semua"
ERASED = (
    "Semua data Anda sudah dihapus dari bot ini: akun, kode yang menunggu, langkah "
    "percakapan dan persetujuan Anda. Bot tidak bisa lagi membacanya.\n\n"
    "Pesan lama di chat ini (nama, status, riwayat berobat) masih tampil karena tersimpan "
    "di Telegram, bukan di bot. Untuk menghapusnya dari HP Anda: buka menu chat ini (⋮ "
    "atau nama bot di bagian atas), lalu pilih <b>Bersihkan riwayat</b> (Clear history) "
    "atau <b>Hapus chat</b> (Delete chat).\n\n"
    "Terima kasih sudah memakai Asisten KK. Ketik /start bila ingin memakai lagi."
)
ERASE_CANCELLED = "Tidak ada yang dihapus."
#: Added to a deletion's reply while a reader (a backup copying) holds the database file.
CLEANUP_PENDING = (
    "\n\n⏳ Bot tidak bisa lagi membacanya, tetapi salinan terenkripsinya masih ada di "
    "berkas database selama proses lain (misalnya pencadangan) membacanya. Bot menghapusnya "
    "otomatis begitu proses itu selesai."
)

# -- SMS --------------------------------------------------------------------------------

#: The code goes to the participant's phone, which is often a parent's: the SMS says what
#: it is for, who may have it, and to ignore it if nobody asked (issue 22).
SMS_OTP = (
    "Asisten KK: kode {code} untuk menghubungkan kartu JKN Anda ke Asisten KK di Telegram "
    "milik anggota keluarga Anda. Berikan HANYA kepada anggota keluarga yang sedang "
    "menambahkannya, jangan kepada orang lain. Bila tidak ada yang meminta, abaikan SMS "
    "ini. Berlaku {minutes} menit."
)

# -- bot commands (post_init) -----------------------------------------------------------

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Mulai dan persetujuan privasi"),
    ("tambah_kk", "Tambah akun JKN dengan OTP"),
    ("akun", "Daftar akun dan pindah akun"),
    ("status", "Status akun yang dipilih atau semua akun"),
    ("riwayat", "Riwayat kunjungan 90 hari"),
    ("pengingat", "Pengingat iuran dan status"),
    ("hapus_kk", "Hapus satu akun"),
    ("batal", "Batalkan proses"),
    ("privasi", "Data yang disimpan dan hak Anda"),
    ("hapus_data", "Hapus semua data Anda"),
    ("bantuan", "Daftar perintah"),
)

# -- the operator's chats and storage limitation (issue 23, items 9-10) --------------------

STATS = (
    "📊 <b>Statistik Asisten KK</b> (hanya jumlah)\n\n"
    "Chat yang sudah setuju: {chats}\n"
    "Akun tersimpan: {accounts}\n"
    "Kode OTP terkirim hari ini: {codes}\n"
    "Pengingat terkirim hari ini: {reminders}\n"
    "Kode ditolak karena batas: {caps}\n"
    "Kegagalan BPJS: {failures}\n\n"
    "Dua baris terakhir dihitung sejak bot terakhir dinyalakan."
)
NOTICE_USAGE = (
    "Tulis pengumumannya setelah perintah, misalnya:\n"
    "<code>/pengumuman Bot akan dirawat Minggu pukul 22.00-23.00 WIB.</code>\n"
    "Paling banyak {max_chars} karakter."
)
NOTICE_PREVIEW = (
    "Pratinjau pengumuman untuk semua chat yang sudah setuju ({chats} chat):\n\n"
    "{notice}\n\nKirim sekarang?"
)
NOTICE_SEND_BUTTON = "📢 Kirim"
NOTICE_CANCEL_BUTTON = "Batal"
NOTICE_STARTED = "📢 Pengumuman sedang dikirim. Laporannya menyusul di sini."
NOTICE_CANCELLED = "Pengumuman dibatalkan. Tidak ada yang dikirim."
NOTICE_TAKEN = "Pengumuman ini sudah dikirim atau dibatalkan."
#: What every consented chat receives; {body} is the operator's text, escaped.
NOTICE = "📢 <b>Pengumuman Asisten KK</b>\n\n{body}"
NOTICE_DONE = (
    "📢 Pengumuman selesai: {sent} terkirim, {refused} ditolak Telegram (bot diblokir atau "
    "chat hilang), {unknown} tidak pasti (tidak dikirim ulang)."
)
ALERTS = {
    "disk_full": "⚠️ Penyimpanan server penuh: bot tidak bisa menyimpan data. Kosongkan "
                 "ruang disk.",
    "credentials_rejected": "⚠️ BPJS menolak kredensial bot. Periksa pengaturan JKN_BACKEND "
                            "dan kuncinya.",
    "sms_budget": "⚠️ Kuota SMS per jam (SMS_MAX_PER_HOUR) habis: kode OTP baru ditolak "
                  "sampai kuota pulih.",
    "telegram_down": "⚠️ Bot lama tidak tersambung ke Telegram (lebih dari {minutes} menit). "
                     "Sekarang sudah tersambung lagi.",
}
RETENTION_WARNING = (
    "⏳ Anda sudah lama tidak memakai Asisten KK. Sesuai aturan penyimpanan data, semua data "
    "Anda di bot ini (persetujuan dan akun JKN) akan dihapus mulai {date}.\n\n"
    "Ingin tetap menyimpannya? Kirim pesan apa saja, misalnya /akun, sebelum tanggal itu."
)
RETENTION_PRIVACY = (
    "\n\n<b>Batas penyimpanan</b>: bila Anda tidak memakai bot selama {days} hari, semua "
    "data Anda dihapus seperti /hapus_data; seminggu sebelumnya bot memberi tahu Anda. Untuk "
    "itu bot hanya mencatat tanggal terakhir Anda memakai bot, dan catatan itu ikut terhapus."
)
RETENTION_PRIVACY_OFF = (
    "\n\n<b>Batas penyimpanan</b>: operator bot ini tidak menghapus data yang lama tidak "
    "dipakai; hapus sendiri dengan /hapus_data kapan saja."
)

# -- issue 22 items 7 and 9: the fourth card, and codes sent twice (h21b) -------------------
EVICT_PICK = (
    "Maksimal {max_accounts} akun per chat. Pilih akun yang diganti:\n\n"
    "Akun yang dipilih baru dikeluarkan <b>setelah</b> kode OTP kartu baru benar; sebelum "
    "itu tidak ada yang berubah."
)
EVICT_REMIND_ON = "🔔"
EVICT_REMIND_OFF = "🔕"
EVICT_GONE = "Akun itu sudah tidak ada di daftar. Pilih akun lain, atau Batal."
OTP_SUPERSEDED = "Kode itu sudah diganti; pakai SMS terakhir."
OTP_ALREADY_SENT = (
    "Kode untuk {masked} sudah dikirim ke nomor HP berakhiran {tail}; tidak ada kode baru. "
    "Ketik 6 angka dari SMS itu, atau /batal."
)
