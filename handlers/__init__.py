"""The thin Telegram layer: parse the update, call a service, render the answer."""

from __future__ import annotations

import warnings
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from handlers import (
    akun,
    errors,
    hapus,
    keyboards,
    kode,
    operator,
    reminders,
    retention,
    riwayat,
    start,
    status,
    tambah_kk,
)

TEXT = filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND
OTHER_MESSAGE = filters.UpdateType.MESSAGE & ~filters.COMMAND
CONTACT = filters.UpdateType.MESSAGE & filters.CONTACT


def build_tambah_kk() -> ConversationHandler[Any]:
    """/tambah_kk and re-verification, one persistent conversation per chat."""
    with warnings.catch_warnings():
        # Buttons are matched by data and checked against the database, not per message.
        warnings.filterwarnings("ignore", category=PTBUserWarning, message=".*per_message.*")
        return ConversationHandler(
            name="tambah_kk",
            persistent=True,
            per_chat=True,
            per_user=False,
            allow_reentry=True,
            entry_points=[
                CommandHandler("tambah_kk", tambah_kk.start_add),
                CallbackQueryHandler(tambah_kk.start_add, pattern=keyboards.ACCT_ADD.pattern),
                CallbackQueryHandler(akun.switch_account, pattern=keyboards.SWITCH.pattern),
                # on for an account marked ⏳ starts re-verification
                CallbackQueryHandler(reminders.toggle, pattern=keyboards.REMINDER_TOGGLE.pattern),
            ],
            states={
                kode.ASK_ID: [MessageHandler(TEXT, tambah_kk.receive_id)],
                kode.CONFIRM: [
                    CallbackQueryHandler(tambah_kk.confirm_send, pattern=keyboards.ADD_GO.pattern),
                    CallbackQueryHandler(tambah_kk.choose_eviction,
                                         pattern=keyboards.ADD_EVICT.pattern),
                    MessageHandler(OTHER_MESSAGE & ~filters.CONTACT, tambah_kk.press_a_button),
                ],
                kode.ASK_OTP: [
                    MessageHandler(CONTACT, kode.receive_contact),
                    MessageHandler(TEXT, kode.receive_code),
                    CallbackQueryHandler(kode.resend, pattern=keyboards.ADD_RESEND.pattern),
                ],
                kode.ASK_LABEL: [
                    MessageHandler(TEXT, tambah_kk.receive_label),
                    CallbackQueryHandler(tambah_kk.receive_label, pattern=keyboards.LABEL.pattern),
                ],
            },
            fallbacks=[
                CommandHandler("batal", tambah_kk.cancel),
                CallbackQueryHandler(tambah_kk.cancel, pattern=keyboards.ADD_CANCEL.pattern),
                CallbackQueryHandler(hapus.erase_yes, pattern=keyboards.ERASE_YES.pattern),
                MessageHandler(CONTACT, kode.contact_elsewhere),
                MessageHandler(OTHER_MESSAGE, tambah_kk.unexpected),
            ],
        )


def register(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    application.add_handler(TypeHandler(Update, start.private_only), group=-2)
    application.add_handler(TypeHandler(Update, start.scrub), group=-1)
    for handler in (
        build_tambah_kk(),
        CommandHandler("start", start.start),
        CommandHandler(["bantuan", "help"], start.help_command),
        CommandHandler("privasi", start.privacy),
        CommandHandler("akun", akun.show_accounts),
        CommandHandler("status", status.show_status),
        CommandHandler("hapus_kk", hapus.remove_start),
        CommandHandler("riwayat", riwayat.show),
        CallbackQueryHandler(riwayat.show, pattern=keyboards.HISTORY.pattern),
        CommandHandler("pengingat", reminders.show),
        CallbackQueryHandler(reminders.show, pattern=keyboards.REMINDERS_OPEN.pattern),
        CallbackQueryHandler(status.go_status, pattern=keyboards.any_of(
            keyboards.GO_STATUS, keyboards.GO_STATUS_ALL)),
        CallbackQueryHandler(akun.go_accounts, pattern=keyboards.GO_ACCOUNTS.pattern),
        CommandHandler("hapus_data", hapus.erase_start),
        CommandHandler("stats", operator.stats),
        CommandHandler("pengumuman", operator.notice_start),
        CallbackQueryHandler(operator.notice_go, pattern=operator.NOTICE_GO.pattern),
        CallbackQueryHandler(operator.notice_no, pattern=operator.NOTICE_NO.pattern),
        CommandHandler("batal", start.nothing_to_cancel),
        CallbackQueryHandler(start.consent_yes, pattern=keyboards.CONSENT_YES.pattern),
        CallbackQueryHandler(start.consent_no, pattern=keyboards.CONSENT_NO.pattern),
        CallbackQueryHandler(hapus.remove_start, pattern=keyboards.ACCT_REMOVE.pattern),
        CallbackQueryHandler(hapus.remove_pick, pattern=keyboards.REMOVE_PICK.pattern),
        CallbackQueryHandler(hapus.remove_yes, pattern=keyboards.REMOVE_YES.pattern),
        CallbackQueryHandler(hapus.remove_no, pattern=keyboards.REMOVE_NO.pattern),
        CallbackQueryHandler(status.status_button,
                             pattern=keyboards.any_of(keyboards.STATUS_ALL, keyboards.STATUS_ONE,
                                                      keyboards.STATUS_REFRESH_ONE,
                                                      keyboards.STATUS_REFRESH_ALL)),
        CallbackQueryHandler(hapus.erase_yes, pattern=keyboards.ERASE_YES.pattern),
        CallbackQueryHandler(hapus.erase_no, pattern=keyboards.ERASE_NO.pattern),
        MessageHandler(CONTACT, start.contact_outside),
        MessageHandler(filters.UpdateType.MESSAGE & filters.COMMAND, start.unknown_command),
        MessageHandler(filters.UpdateType.MESSAGE, start.unknown_message),
        CallbackQueryHandler(start.stale_button),
    ):
        application.add_handler(handler)
    # after the handlers: any update from a chat is activity (RETENTION_DAYS)
    application.add_handler(TypeHandler(Update, retention.touch), group=1)
    application.add_error_handler(errors.on_error)
