"""Prove each control by breaking it: `make mutants`.

Every mutant below is a realistic bug put into a copy of the code (one exact text
replacement), then the tests named for it run against that copy. A mutant that no test
catches is a hole in the safety net: the run fails and names it. The list grows with
every security or data-loss control (docs/testing.md).

    python tests/mutants.py            # all of them
    python tests/mutants.py erase      # those whose name contains "erase"
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("bot", "handlers", "storage", "tests", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


T_TRUST = "tests/test_trust.py"
T_TRUST_HTTP = "tests/test_trust_process.py"
T_STORAGE = "tests/test_storage.py"
T_CONTACT = "tests/test_contact.py"
T_CONTACT_HTTP = "tests/test_contact_process.py"
T_ANSWERS = "tests/test_bpjs_answers.py"
T_KEYS = "tests/test_keys.py"
T_CLEANUP = "tests/test_cleanup.py"
T_OPS = "tests/test_ops.py"
T_OPS_HTTP = "tests/test_ops_process.py"
T_WINDOWS = "tests/test_cap_windows.py"
T_LOCKS = "tests/test_locks.py"
T_RECHECK = "tests/test_rechecks.py"
T_UNKNOWN = "tests/test_unknown_outcomes.py"
T_TEMPLATES = "tests/test_every_template.py"
T_SAME = "tests/test_reads_the_same.py"
T_CRASH = "tests/test_crash_points.py"
T_OPERATOR = "tests/test_operator.py"
T_RETENTION = "tests/test_retention.py"
T_ENROL = "tests/test_enrolment.py"
T_CHATKEYS = "tests/test_chat_keys.py"

MUTANTS = [
    # -- the six blind spots of issue #10 ------------------------------------------------
    Mutant("aad without the row", "storage/accounts_repo.py",
           'return Vault.aad("accounts", chat_id, slot, field)',
           'return Vault.aad("accounts", chat_id, "", field)',
           (f"{T_STORAGE}::test_a_field_swapped_between_two_accounts_of_one_chat_does_not_decrypt",)),
    Mutant("postgres units not serializable", "storage/pg.py",
           'return "BEGIN ISOLATION LEVEL SERIALIZABLE"',
           'return "BEGIN"',
           ("tests/test_pg_store.py::test_a_cache_race_between_two_instances_never_passes_the_bound",)),
    Mutant("postgres serialization failure not re-run", "storage/pg.py",
           "    for tries in range(RETRIES):\n",
           "    for tries in range(1):\n",
           ("tests/test_pg_store.py::test_a_cache_race_between_two_instances_never_passes_the_bound",)),
    Mutant("copy-store skips the decrypt check", "storage/copystore.py",
           "                report.decrypted = _decrypt_all(target, vault)\n",
           "                report.decrypted = 0\n",
           ("tests/test_copy_store.py::test_a_ciphertext_that_does_not_decrypt_fails_the_copy",)),
    Mutant("copy-store copies a running PostgreSQL", "storage/copystore.py",
           "    if not (row and row[0]):\n",
           "    if False:\n",
           ("tests/test_copy_store.py::test_a_non_empty_target_or_a_running_bot_is_refused",)),
    Mutant("erase skips conversations", "storage/db.py",
           "                for table in CHAT_TABLES:\n",
           "                for table in [t for t in CHAT_TABLES if t != 'conversations']:\n",
           (f"{T_STORAGE}::test_erase_chat_removes_every_row_of_that_chat_only",)),
    Mutant("erase skips chat_data", "storage/db.py",
           "                for table in CHAT_TABLES:\n",
           "                for table in [t for t in CHAT_TABLES if t != 'chat_data']:\n",
           (f"{T_STORAGE}::test_erase_chat_removes_every_row_of_that_chat_only",)),
    Mutant("no per-update persistence write", "bot/processor.py",
           "                await self._persist(update)\n", "                pass\n",
           ("tests/test_e2e_flows.py::test_restart_between_otp_sent_and_code_typed",
            f"{T_TRUST_HTTP}::test_a_kill_right_after_the_code_notice_keeps_the_flow")),
    Mutant("otp hash not bound to the chat", "storage/crypto.py",
           'message = b"%d|" % chat_id + subject', 'message = b"|" + subject',
           (f"{T_STORAGE}::test_chat_a_code_does_not_work_in_chat_b_even_when_the_codes_are_equal",)),
    Mutant("otp hash not bound to the participant", "storage/crypto.py",
           'message = b"%d|" % chat_id + subject + b"|" + code.encode()',
           'message = b"%d|" % chat_id + b"|" + code.encode()',
           (f"{T_STORAGE}::test_a_code_for_one_participant_does_not_confirm_another",)),
    # -- trust (#9) -----------------------------------------------------------------------
    Mutant("no participant lock on checking", "storage/otp_repo.py",
           "                if _wrong_codes(conn, keys, now, bool(owner)) >= cap:\n"
           "                    conn.execute(\"DELETE FROM challenges WHERE chat_id = ?\", "
           "(chat_id,))\n                    return VerifyOutcome.LOCKED, 0, None\n"
           "                if matches(",
           "                if matches(",
           (f"{T_STORAGE}::test_ten_wrong_codes_across_chats_lock_the_participant_for_a_day",)),
    Mutant("no participant lock on sending", "storage/otp_repo.py",
           "(_wrong_codes(conn, keys, now, owner) >= caps.participant_wrong_daily,",
           "(False and _wrong_codes(conn, keys, now, owner) >= 0,",
           (f"{T_TRUST}::test_a_dozen_chats_get_ten_guesses_a_day_at_one_participant_not_six_hundred",)),
    Mutant("participants keyed per chat", "bot/otp.py",
           "        return Keys(self.vault.chat_key(chat_id), self.vault.participant_key(nik),\n"
           "                    self.vault.phone_key(phone))",
           "        return Keys(self.vault.chat_key(chat_id), self.vault.blind_index(chat_id, nik),"
           "\n                    self.vault.blind_index(chat_id, phone, 'phone'))",
           (f"{T_TRUST}::test_a_dozen_chats_get_ten_guesses_a_day_at_one_participant_not_six_hundred",)),
    Mutant("no daily phone cap", "storage/otp_repo.py",
           "owner) >= caps.phone_daily, SendBlock.PHONE_DAILY),",
           "owner) >= caps.phone_daily and False, SendBlock.PHONE_DAILY),",
           (f"{T_TRUST}::test_ten_codes_a_day_reach_one_phone_however_many_chats_ask",)),
    Mutant("no global sms budget", "storage/otp_repo.py",
           "                    (_global_hour_full(conn, caps, now) and not owner,",
           "                    (False and not owner,",
           (f"{T_TRUST}::test_the_hourly_sms_budget_refuses_new_codes_and_warns_once",
            f"{T_STORAGE}::test_the_global_budget_blocks_strangers_but_not_an_owner")),
    Mutant("owner held back by strangers", "bot/enrolment.py",
           "        owner = step.owner\n", "        owner = False\n",
           (f"{T_TRUST}::test_the_owner_re_verifies_even_when_strangers_used_up_every_cap",)),
    Mutant("no phone tells itself apart", "bot/enrolment.py",
           "        if participant is None or participant.phone is None:\n            if adding:",
           "        if participant is None:\n            if adding:",
           (f"{T_TRUST}::test_not_found_and_no_phone_on_file_read_exactly_the_same",
            f"{T_ENROL}::test_not_found_no_phone_locked_and_out_of_codes_read_alike_and_cost_"
            "the_same")),
    Mutant("caps and sms failures tell the nik exists", "bot/enrolment.py",
           "        if result.outcome is not SendOutcome.SENT and not owner:",
           "        if False:",
           (f"{T_TRUST}::test_caps_and_sms_failures_read_like_not_found",)),
    Mutant("chat caps checked after the look-up", "bot/enrolment.py",
           "        blocked = await self.otp.blocked_for_chat(chat_id) if adding else None",
           "        blocked = None",
           (f"{T_TRUST}::test_caps_and_sms_failures_read_like_not_found",
            f"{T_ENROL}::test_the_chat_caps_refuse_before_the_look_up")),
    Mutant("every owner chat its own allowance", "storage/otp_repo.py",
           '(" AND owner = 1" if owners_only else "")',
           '(" AND owner = 1 AND chat_key = x\'00\'" if owners_only else "")',
           (f"{T_STORAGE}::test_owners_in_many_chats_share_one_cap",)),
    Mutant("removing keeps its re-verification", "handlers/hapus.py",
           "    await svc.enrolment.forget_account(chat_id, removed.slot)  # a re-verification",
           "    pass  # a re-verification",
           (f"{T_TRUST}::test_removing_an_account_mid_re_verification_leaves_nothing_of_it",)),
    Mutant("a dropped challenge stays in the wal", "storage/otp_repo.py",
           "            if gone:\n                self.db.scrub(conn)\n"
           "        await self.db.run",
           "            pass\n        await self.db.run",
           (f"{T_TRUST}::test_removing_an_account_mid_re_verification_leaves_nothing_of_it",)),
    Mutant("a late sms costs nothing", "bot/otp.py",
           "            if isinstance(exc, SmsError) and not exc.maybe_delivered:",
           "            if True:",
           ("tests/test_e2e_robustness.py::"
            "test_a_hanging_sms_gateway_times_out_and_the_send_still_counts",)),
    Mutant("the whole phone shown", "bot/otp.py",
           "return SendResult(SendOutcome.SENT, phone_tail(phone)), code",
           "return SendResult(SendOutcome.SENT, phone), code",
           (f"{T_TRUST}::test_before_the_code_a_stranger_sees_four_phone_digits_and_no_nik",)),
    Mutant("eviction asked after the look-up", "bot/enrolment.py",
           "        full = await self.accounts.when_full(chat_id)\n",
           "        full = None\n",
           (f"{T_TRUST}::test_the_eviction_question_comes_before_any_lookup",
            f"{T_ENROL}::test_a_full_cache_asks_which_account_goes_before_any_look_up")),
    Mutant("the challenge keeps the participant", "bot/enrolment.py",
           "                                      payload=step.to_dict(), owner=",
           "                                      payload={**step.to_dict(), "
           "'name': participant.name}, owner=",
           (f"{T_TRUST}::test_a_challenge_keeps_only_what_the_code_needs_until_it_is_accepted",)),
    Mutant("erase leaves the wal", "storage/db.py",
           '                conn.execute("DELETE FROM user_data WHERE user_id = ?", (chat_id,))\n'
           "            self.erased(chat_id)\n"
           "            return self.scrub(conn)\n",
           '                conn.execute("DELETE FROM user_data WHERE user_id = ?", (chat_id,))\n'
           "            self.erased(chat_id)\n"
           "            return True\n",
           (f"{T_STORAGE}::test_after_an_erase_no_byte_of_the_chat_is_left_in_the_files",)),
    Mutant("erase without secure_delete", "storage/db.py",
           '"synchronous=NORMAL", "secure_delete=ON"', '"synchronous=NORMAL", "secure_delete=OFF"',
           (f"{T_STORAGE}::test_after_an_erase_no_byte_of_the_chat_is_left_in_the_files",)),
    Mutant("remove leaves the wal", "storage/accounts_repo.py",
           "(chat_id, chat_id))\n            self.db.scrub(conn)\n",
           "(chat_id, chat_id))\n",
           (f"{T_STORAGE}::test_removing_or_evicting_one_account_leaves_no_copy_of_it",)),
    Mutant("rate records keyed by the chat id", "storage/crypto.py",
           'return self.global_index(str(chat_id), "chat")', "return str(chat_id).encode()",
           (f"{T_STORAGE}::test_rate_records_hold_no_chat_id_and_expire",)),
    Mutant("no purge at start", "bot/services.py",
           "    await otp.purge()  # challenges", "    pass  # challenges",
           (f"{T_TRUST_HTTP}::test_expired_challenges_are_deleted_at_start",)),
    Mutant("pending steps never expire", "bot/otp.py",
           "PENDING_TTL = 1800.0", "PENDING_TTL = 1e12",
           (f"{T_TRUST}::test_abandoned_challenges_and_pending_steps_are_cleared_by_housekeeping",)),
    Mutant("status never cached", "bot/status.py",
           "and now - account.status_at < self.refresh_seconds):",
           "and now - account.status_at < 0):",
           (f"{T_TRUST}::test_a_hundred_refresh_taps_cost_no_backend_call_while_the_status_is_young",)),
    Mutant("no backend budget", "bot/status.py",
           "        if not await self.allow_call(account.chat_id):",
           "        if False:",
           (f"{T_TRUST}::test_a_chat_makes_at_most_thirty_backend_calls_an_hour",)),
    Mutant("no scrubber", "handlers/start.py",
           "        await delete_user_message(update, context)\n    if update.edited_message",
           "        pass\n    if update.edited_message",
           (f"{T_TRUST}::test_an_identifier_is_deleted_with_any_command_in_any_state",)),
    # -- faults (#11) ----------------------------------------------------------------------
    Mutant("no retries on the bot api", "bot/transport.py",
           "    def __init__(self, inner: BaseRequest, *, attempts: int = 4,",
           "    def __init__(self, inner: BaseRequest, *, attempts: int = 1,",
           ("tests/test_faults.py::test_every_fourth_call_answered_502_and_a_whole_card_is_still"
            "_added",)),
    Mutant("a lost send repeated blindly", "bot/transport.py",
           "        repeatable = api not in NOT_IDEMPOTENT", "        repeatable = True",
           ("tests/test_faults.py::test_a_lost_answer_to_a_send_is_not_sent_again",)),
    Mutant("dropped taps left spinning", "bot/processor.py",
           "        if query is not None and self.application is not None:",
           "        if False:",
           ("tests/test_faults.py::test_a_burst_of_150_taps_is_answered_tap_by_tap",)),
    Mutant("a locked database reads as a crash", "bot/dbtrouble.py",
           '        if "locked" in reason or "busy" in reason:\n            return "busy"',
           '        if "locked" in reason or "busy" in reason:\n            return None',
           ("tests/test_faults.py::test_a_database_locked_by_another_process_says_busy_and_"
            "changes_nothing",)),
    Mutant("telegram down at start is fatal", "bot/runner.py",
           "        except NetworkError as exc:  # also timeouts and 5xx answers",
           "        except ZeroDivisionError as exc:  # also timeouts and 5xx answers",
           ("tests/test_faults_process.py::test_telegram_unreachable_at_start_then_back",)),
    Mutant("identical edits judged from the tapped copy", "handlers/common.py",
           "    known = _shown(context).get((message.chat_id, message.message_id))\n",
           "    from bot.devtools.tghtml import parse\n    markup = message.reply_markup\n"
           "    known = (body, markup.to_dict() if markup else None) "
           "if message.text == parse(body)[0] else None\n",
           ("tests/test_faults.py::test_taps_in_flight_together_leave_the_listing_true",)),
    Mutant("cards forwardable", "handlers/status.py",
           "    await send(update, context, text, keyboard, protect=True)",
           "    await send(update, context, text, keyboard)",
           (f"{T_TRUST}::test_cards_and_the_all_accounts_view_are_protected_from_forwarding",)),
    Mutant("ptb logs at debug", "bot/logs.py",
           'LIBRARY_FLOORS = {"telegram": logging.INFO,', 'LIBRARY_FLOORS = {"telegram": 0,',
           ("tests/test_logs.py::test_configure_logging_installs_the_filter_and_quiets_httpx",)),
    Mutant("spaced identifiers logged", "bot/logs.py",
           "digit_group_spans(text[start:end], CODE_GAP)",
           "digit_group_spans(text[start:end], 0)",
           ("tests/test_logs.py",)),
    Mutant("console sender with a real backend", "bot/config.py",
           'if self.otp_sender == "console" and self.jkn_backend != "sandbox":',
           "if False:",
           (f"{T_TRUST_HTTP}::test_unsafe_settings_refuse_to_start",)),
    Mutant("plain http to anywhere", "bot/config.py",
           '    if scheme == "https":', "    if True:",
           (f"{T_TRUST_HTTP}::test_unsafe_settings_refuse_to_start",)),
    Mutant("no data directory lock", "bot/datalock.py",
           "                fcntl.flock(fd, mode | fcntl.LOCK_NB)", "                pass",
           (f"{T_TRUST_HTTP}::test_only_one_process_serves_a_data_dir_and_backup_runs_beside_it",)),
    # -- verification by contact (issue 15) ---------------------------------------------
    Mutant("any contact counts as the user's own", "handlers/kode.py",
           "own = contact.user_id is not None and user is not None and contact.user_id == "
           "user.id", "own = True",
           (f"{T_CONTACT}::test_someone_elses_contact_with_the_number_on_file_is_a_wrong_attempt",
            f"{T_CONTACT_HTTP}::test_over_http_forged_contacts_are_refused_and_change_nothing")),
    Mutant("a contact without user id counts as own", "handlers/kode.py",
           "own = contact.user_id is not None and user is not None and contact.user_id == "
           "user.id", "own = contact.user_id in (None, getattr(user, 'id', None))",
           (f"{T_CONTACT}::test_someone_elses_contact_with_the_number_on_file_is_a_wrong_attempt",)),
    Mutant("a contact matches any phone", "storage/otp_repo.py",
           "return phone_key is not None and self.vault.hash_matches(keys.phone, phone_key)",
           "return phone_key is not None",
           (f"{T_CONTACT}::test_a_match_on_someone_elses_card_does_not_count_for_this_participant",
            f"{T_CONTACT}::test_ones_own_number_that_is_not_on_file_says_so_without_showing_it")),
    Mutant("wrong contacts are free", "handlers/kode.py",
           "    outcome = await enrolment(context).verify_contact(chat_id_of(update), own_phone)",
           "    outcome = await enrolment(context).verify_contact(chat_id_of(update), own_phone)"
           "\n    if not isinstance(outcome, en.AskLabel | en.Reverified):\n        return ASK_OTP",
           (f"{T_CONTACT}::test_wrong_contacts_use_up_the_same_attempts_as_wrong_codes",)),
    Mutant("a contact is not deleted", "bot/scrub.py",
           "    if message.contact is not None:\n        return True\n",
           "    if False:\n        return True\n",
           (f"{T_CONTACT}::test_a_contact_at_any_other_step_is_deleted_and_changes_nothing",)),
    # -- issue 20: BPJS's real answers ---------------------------------------------------
    Mutant("duplicate check ignores the card", "storage/accounts_repo.py",
           "(chat_id, index)).fetchone() or self._card_slot(",
           "(chat_id, index)).fetchone() or False and self._card_slot(",
           (f"{T_ANSWERS}::test_accounts_without_a_nik_are_told_apart_by_card_also_after_a_key"
            "_rotation",)),
    Mutant("no-NIK accounts share one blind index", "storage/accounts_repo.py",
           "    return nik or card\n", "    return nik\n",
           (f"{T_ANSWERS}::test_accounts_without_a_nik_are_told_apart_by_card_also_after_a_key"
            "_rotation",)),
    Mutant("no-NIK participants share one OTP cap", "bot/enrolment.py",
           "nik=participant.nik or participant.card,", "nik=participant.nik,",
           (f"{T_ANSWERS}::test_the_otp_caps_count_a_participant_without_a_nik_by_their_card",
            f"{T_ENROL}::test_a_participant_without_a_nik_is_found_counted_and_saved_by_card")),
    Mutant("an invalid number reads as unreachable", "bot/enrolment.py",
           "        except (JknNotFound, JknInvalidRequest):\n            return None",
           "        except JknNotFound:\n            return None",
           (f"{T_ANSWERS}::test_not_found_or_invalid_reads_as_cannot_send_never_as_unreachable",
            "tests/test_bpjs_answers_process.py::test_over_http_refusals_read_as_cannot_send"
            "_and_a_nik_less_participant_is_saved")),
    Mutant("a refused history reads as no visits", "bot/jkn/vclaim.py",
           "        except JknNotFound:\n            return []",
           "        except (JknNotFound, JknInvalidRequest):\n            return []",
           (f"{T_ANSWERS}::test_a_refused_history_request_never_reads_as_no_visits",)),
    Mutant("every 201 is not found", "bot/jkn/bridging.py",
           "nothing_there=True,", "nothing_there=None,",
           (f"{T_ANSWERS}::test_each_shape_on_the_history_never_reads_as_no_visits_unless_it_says_so",)),
    Mutant("credentials rejection only a warning", "bot/jkn/bridging.py",
           '            _LOGGER.error("%s: BPJS rejected',
           '            _LOGGER.warning("%s: BPJS rejected',
           (f"{T_ANSWERS}::test_rejected_credentials_alert_the_operator_without_identifiers",)),
    Mutant("emoji left as lone surrogates", "bot/jkn/bridging.py",
           'return raw.decode("utf-16-le", "replace")', "return units",
           (f"{T_ANSWERS}::test_a_facility_name_compressed_by_the_reference_javascript_decodes"
            "_intact",)),
    # -- trust, round two (issue 18): storage -------------------------------------------
    Mutant("an open data dir stays open", "bot/datalock.py",
           "    if not mode & 0o077:\n        return False\n",
           "    if True:\n        return False\n",
           (f"{T_KEYS}::test_an_existing_open_data_dir_is_tightened_to_0700_and_logged_once",)),
    Mutant("a rotation resets the caps", "storage/keys.py",
           "    old.carry_rate_key(new)  # rate records keep counting",
           "    pass  # rate records keep counting",
           (f"{T_KEYS}::test_a_key_rotation_gives_nobody_a_fresh_allowance",)),
    Mutant("an erase's cleanup waits for the reader", "storage/db.py",
           '    conn.execute("PRAGMA busy_timeout = 0")\n',
           '    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS * 4}")\n',
           (f"{T_CLEANUP}::test_an_erase_under_a_15_s_reader_holds_no_other_chat_up_and_its_"
            "bytes_go_after",)),
    Mutant("a held-up cleanup is never retried", "storage/db.py",
           "        if self._residue:\n            self._ensure_cleaner()\n",
           "        if self._residue:\n            pass\n",
           (f"{T_CLEANUP}::test_every_other_deletion_under_a_reader_answers_at_once_and_cleans_"
            "up_after",)),
    Mutant("the erase reply hides a held-up cleanup", "handlers/hapus.py",
           '    await edit_query(context, query, texts.ERASED + ("" if clean else '
           'texts.CLEANUP_PENDING))',
           "    await edit_query(context, query, texts.ERASED)",
           (f"{T_CLEANUP}::test_an_erase_under_a_15_s_reader_holds_no_other_chat_up_and_its_"
            "bytes_go_after",)),
    Mutant("a used code stays in the wal", "storage/accounts_repo.py",
           "            if evicted is not None or consumed:",
           "            if evicted is not None:",
           (f"{T_CLEANUP}::test_a_used_code_leaves_no_copy_of_its_payload",)),
    Mutant("a rotation overwrites the last retired key", "storage/keys.py",
           '    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H-%M-%SZ")\n',
           '    stamp = "2000-01-01T00-00-00Z"\n'
           '    key_path.with_name(f"{key_path.name}.{stamp}").unlink(missing_ok=True)\n',
           (f"{T_KEYS}::test_every_retired_key_is_kept_named_and_forgotten_only_when_asked",)),
    Mutant("forget-keys removes a key a kept backup needs", "storage/keys.py",
           "        if any(opens(key_file, check) for check in checks):",
           "        if False:",
           (f"{T_KEYS}::test_every_retired_key_is_kept_named_and_forgotten_only_when_asked",)),
    Mutant("a key of a rotation that died is left lying", "storage/keys.py",
           '                key_path.with_name(key_path.name + ".new").unlink()',
           "                pass",
           (f"{T_KEYS}::test_a_rotation_killed_at_any_point_leaves_a_key_that_opens_everything",)),
    # -- issue #18 items 1, 3, 6, 7, 8 (trust, round two) ------------------------------
    Mutant("loopback rule skipped for URL settings", "bot/config.py",
           "    if not _private_transport(value):\n",
           "    if False:\n",
           ("tests/test_url_rule.py::test_every_url_setting_refuses_plain_http_to_another_host",
            "tests/test_url_rule.py::test_over_http_run_refuses_a_bot_api_in_clear_text")),
    Mutant("reminders ignore the session", "bot/reminders.py",
           "if a.slot in slots and self.accounts.is_fresh(a)]:",
           "if a.slot in slots]:",
           ("tests/test_reminders_session.py::"
            "test_an_expired_session_gets_no_reminder_and_cannot_be_switched_on",
            "tests/test_trust_round2_process.py::"
            "test_over_http_an_expired_session_gets_no_reminder_and_no_switch_on")),
    Mutant("an expired account's reminder switches on", "handlers/reminders.py",
           "    if account is not None and not account.remind and not svc.accounts.is_fresh(",
           "    if False and not svc.accounts.is_fresh(",
           ("tests/test_reminders_session.py::"
            "test_an_expired_session_gets_no_reminder_and_cannot_be_switched_on",)),
    Mutant("the round does not re-read the chat before sending", "bot/reminders.py",
           "            notice.keep(held)\n", "            held = held and list(notice.seen)\n",
           ("tests/test_reminders_session.py::"
            "test_an_account_removed_or_a_chat_erased_during_the_round_gets_nothing",)),
    Mutant("an owner's step does not re-check the account", "bot/enrolment.py",
           "        return account is not None and (nik is None or account.nik == nik)",
           "        return True",
           ("tests/test_stale_steps.py::"
            "test_send_code_for_an_account_removed_meanwhile_sends_nothing",
            "tests/test_stale_steps.py::"
            "test_resend_for_an_account_removed_meanwhile_sends_nothing",
            f"{T_ENROL}::test_the_owner_allowance_is_re_checked_at_every_step")),
    Mutant("/hapus_kk keeps a sealed step about the account", "handlers/hapus.py",
           "    await forget_steps_of(context, chat_id, removed.slot)", "    pass",
           ("tests/test_stale_steps.py::test_hapus_kk_and_hapus_data_clear_a_sealed_step",
            "tests/test_trust_round2_process.py::"
            "test_over_http_a_stale_send_code_button_grants_nothing")),
    Mutant("the scrubber reads identifiers with the code's gap", "bot/identity.py",
           "    return (any(len(group) >= MIN_IDENTIFIER_DIGITS for group in digit_groups(text))",
           "    return (any(len(group) >= MIN_IDENTIFIER_DIGITS\n"
           "                for group in digit_groups(text, CODE_GAP))",
           ("tests/test_scrub.py::test_every_nik_form_the_parser_accepts_is_one_the_scrubber_deletes",
            "tests/test_scrub.py::test_any_text_the_parser_accepts_the_scrubber_deletes")),
    Mutant("the log redactor reads identifiers with the code's gap", "bot/logs.py",
           "    for start, end, digits in digit_group_spans(text):",
           "    for start, end, digits in digit_group_spans(text, CODE_GAP):",
           ("tests/test_logs.py",)),
    Mutant("the scrubber reads only text and caption", "bot/scrub.py",
           "    texts = list(message_texts(message))",
           '    texts = [message.text or "", message.caption or ""]',
           ("tests/test_scrub.py::test_every_message_kind_with_a_nik_is_deleted_in_any_state",)),
    Mutant("a group keeps a contact", "handlers/start.py",
           "    if message is not None and must_scrub(message):  # a contact",
           "    if message is not None and False:  # a contact",
           ("tests/test_scrub.py::test_in_a_group_a_contact_and_a_file_name_are_deleted_too",)),
    Mutant("a message dropped for the backlog is not scrubbed", "bot/processor.py",
           "            if message is not None and self.application is not None and must_scrub(",
           "            if False and must_scrub(",
           ("tests/test_trust_round2_process.py::"
            "test_over_http_a_backlog_of_nik_messages_is_deleted_to_the_last",)),
    Mutant("not found skips the work a blocked look-up does", "bot/enrolment.py",
           "                await self._as_if_found(chat_id, participant or step.identifier)\n",
           "                pass\n",
           ("tests/test_timing.py::test_blocked_and_not_found_cost_the_same",
            f"{T_ENROL}::test_not_found_no_phone_locked_and_out_of_codes_read_alike_and_cost_"
            "the_same")),
    # -- operations (issue 23) -------------------------------------------------------------
    Mutant("webhook secret not checked", "bot/web.py",
           "if not hmac.compare_digest(given.encode(), secret.encode()):",
           "if False:",
           ("tests/test_process.py::test_webhook_mode_checks_the_secret_and_answers",)),
    Mutant("a chat id as a metric label", "bot/processor.py",
           "metrics.observe_update(kind, elapsed)",
           "metrics.observe_update(str(key), elapsed)",
           (f"{T_OPS_HTTP}::test_metrics_after_a_whole_conversation_hold_counts_and_no_identifier",)),
    Mutant("update-id exception lets a NIK through", "bot/logs.py",
           "and len(digits) <= 10", "and len(digits) <= 16",
           (f"{T_OPS}::test_update_ids_are_not_masked_but_identifiers_still_are",)),
    Mutant("restore overwrites without --force", "bot/backups.py",
           "        if not force:\n", "        if False:\n",
           (f"{T_OPS_HTTP}::test_backup_verify_restore_and_start_keeps_the_cards",)),
    Mutant("restore does not check the key", "bot/backups.py",
           "    if not report.key_matches:\n", "    if False:\n",
           (f"{T_OPS_HTTP}::test_backup_verify_restore_and_start_keeps_the_cards",)),
    Mutant("no backup before a migration", "bot/backups.py",
           "if current == 0 or current >= SCHEMA_VERSION:", "if True:",
           (f"{T_OPS}::test_a_migration_is_preceded_by_a_backup_of_the_old_schema",)),
    Mutant("a 409 conflict goes unnoticed", "bot/health.py",
           'if code == 409 and api == "getupdates":', "if False:",
           (f"{T_OPS_HTTP}::test_a_second_instance_on_the_same_token_gets_409_and_exits_3",)),

    # -- issue 19, class 1: the time window of every cap -----------------------------------
    Mutant("phone day read as an hour", "storage/otp_repo.py",
           "keys.phone, now - DAY,", "keys.phone, now - HOUR,",
           (f"{T_WINDOWS}::test_the_phone_day_holds_for_the_whole_day_and_not_longer",)),
    Mutant("phone hour read as a day", "storage/otp_repo.py",
           "keys.phone, now - HOUR,", "keys.phone, now - DAY,",
           (f"{T_WINDOWS}::test_the_phone_hour_holds_for_the_whole_hour_and_not_longer",)),
    Mutant("chat day read as an hour", "storage/otp_repo.py",
           '"sms", chat_key, now - DAY)', '"sms", chat_key, now - HOUR)',
           (f"{T_WINDOWS}::test_the_chat_day_holds_for_the_whole_day_and_not_longer",)),
    Mutant("wrong codes day read as an hour", "storage/otp_repo.py",
           "    since = now - DAY\n", "    since = now - HOUR\n",
           (f"{T_WINDOWS}::test_a_locked_participant_stays_locked_for_the_whole_day",)),
    Mutant("global hour read as a minute", "storage/otp_repo.py",
           "now - HOUR) >= caps.global_hourly", "now - 60.0) >= caps.global_hourly",
           (f"{T_WINDOWS}::test_the_global_budget_holds_for_the_whole_hour_and_not_longer",)),
    Mutant("lookup day read as an hour", "storage/otp_repo.py",
           "self.caps.lookups_daily, DAY)", "self.caps.lookups_daily, HOUR)",
           (f"{T_WINDOWS}::test_the_lookup_day_holds_for_the_whole_day_and_not_longer",)),
    Mutant("backend hour read as a minute", "storage/otp_repo.py",
           "self.caps.backend_hourly, HOUR)", "self.caps.backend_hourly, 60.0)",
           (f"{T_WINDOWS}::test_the_backend_hour_holds_for_the_whole_hour_and_not_longer",)),
    Mutant("rate records kept an hour", "storage/otp_repo.py",
           "RATE_RETENTION = DAY", "RATE_RETENTION = HOUR",
           (f"{T_WINDOWS}::test_the_phone_day_holds_for_the_whole_day_and_not_longer",
            f"{T_WINDOWS}::test_rate_records_are_kept_a_day_and_pruned_after")),
    # -- issue 19, class 8: the checks that could not fail ---------------------------------
    Mutant("erase skips reminder_log", "storage/db.py",
           "                for table in CHAT_TABLES:\n",
           "                for table in [t for t in CHAT_TABLES if t != 'reminder_log']:\n",
           (f"{T_STORAGE}::test_erase_chat_removes_every_row_of_that_chat_only",
            "tests/test_e2e_flows.py::test_remove_one_account_then_erase_everything")),
    Mutant("erase of one chat takes another's reminder", "storage/db.py",
           "                for table in CHAT_TABLES:\n"
           '                    conn.execute(f"DELETE FROM {table} WHERE chat_id = ?",',
           "                conn.execute('DELETE FROM reminder_log')\n"
           "                for table in CHAT_TABLES:\n"
           '                    conn.execute(f"DELETE FROM {table} WHERE chat_id = ?",',
           (f"{T_STORAGE}::test_erase_chat_removes_every_row_of_that_chat_only",)),
    Mutant("daily round at 07:00 UTC", "bot/app.py",
           "time=rounds.at.replace(tzinfo=WIB_ZONE))", "time=rounds.at)",
           ("tests/test_reminders.py::test_the_daily_job_is_scheduled_and_runs_a_round",)),
    # -- issue 19, class 2: each command × lock pair of decision 14 --------------------------
    Mutant("run takes no instance lock", "bot/__main__.py",
           '    "run": {"exclusive": (datalock.INSTANCE,)},', '    "run": {},',
           (f"{T_LOCKS}::test_a_command_is_refused_while_the_other_side_holds_its_lock",)),
    Mutant("rotation takes no instance lock", "bot/__main__.py",
           '"rotate-key": {"exclusive": (datalock.INSTANCE, datalock.KEY)},',
           '"rotate-key": {"exclusive": (datalock.KEY,)},',
           (f"{T_LOCKS}::test_a_command_is_refused_while_the_other_side_holds_its_lock",)),
    Mutant("rotation takes no key lock", "bot/__main__.py",
           '"rotate-key": {"exclusive": (datalock.INSTANCE, datalock.KEY)},',
           '"rotate-key": {"exclusive": (datalock.INSTANCE,)},',
           (f"{T_LOCKS}::test_a_command_is_refused_while_the_other_side_holds_its_lock",
            f"{T_LOCKS}::test_a_rotation_runs_once_the_other_side_lets_go")),
    Mutant("backup takes no key lock", "bot/__main__.py",
           '    "backup": {"shared": (datalock.KEY,)},', '    "backup": {},',
           (f"{T_LOCKS}::test_a_backup_is_refused_during_a_rotation_and_runs_beside_a_bot_or_a"
            "_reader",)),
    Mutant("backup locks the key exclusively", "bot/__main__.py",
           '    "backup": {"shared": (datalock.KEY,)},',
           '    "backup": {"exclusive": (datalock.KEY,)},',
           (f"{T_LOCKS}::test_a_backup_is_refused_during_a_rotation_and_runs_beside_a_bot_or_a"
            "_reader",)),
    Mutant("remind takes no key lock", "bot/__main__.py",
           '    "remind": {"shared": (datalock.KEY,)},', '    "remind": {},',
           (f"{T_LOCKS}::test_a_command_is_refused_while_the_other_side_holds_its_lock",)),
    Mutant("remind takes the instance lock", "bot/__main__.py",
           '    "remind": {"shared": (datalock.KEY,)},',
           '    "remind": {"shared": (datalock.KEY,), "exclusive": (datalock.INSTANCE,)},',
           (f"{T_LOCKS}::test_a_reminder_round_runs_beside_a_bot_and_a_backup",)),
    # -- issue 19, class 4: the re-checks after the code -----------------------------------
    Mutant("no phone re-check after the code", "bot/enrolment.py",
           "        if participant is None or participant.phone != step.phone:",
           "        if participant is None:",
           (f"{T_RECHECK}::test_a_phone_changed_between_the_code_and_the_label_saves_nothing",
            f"{T_ENROL}::test_a_phone_changed_or_a_participant_gone_after_the_code_saves_nothing")),
    Mutant("no participant re-check after the code", "bot/enrolment.py",
           "        if participant is None or participant.phone != step.phone:",
           "        if participant is not None and participant.phone != step.phone:",
           (f"{T_RECHECK}::test_a_participant_gone_between_the_code_and_the_label_saves_nothing",
            f"{T_ENROL}::test_a_phone_changed_or_a_participant_gone_after_the_code_saves_nothing")),
    Mutant("the phone re-checked against itself", "bot/enrolment.py",
           "participant.phone != step.phone:", "participant.phone != participant.phone:",
           (f"{T_RECHECK}::test_a_phone_changed_between_the_code_and_the_label_saves_nothing",)),
    Mutant("the first look-up's name saved", "bot/enrolment.py",
           "card=participant.card, name=participant.name,",
           "card=participant.card, name='SITI RAHMAWATI',",
           (f"{T_RECHECK}::test_the_saved_account_holds_what_bpjs_says_after_the_code",
            f"{T_ENROL}::test_saving_looks_the_participant_up_again_and_keeps_what_bpjs_says_"
            "then")),
    # -- issue 19, class 6: outcomes that are not known ------------------------------------
    Mutant("an unknown reminder outcome released", "bot/reminders.py",
           '            _LOGGER.exception("reminder: sending failed with an unknown outcome")\n',
           '            _LOGGER.exception("reminder: sending failed with an unknown outcome")\n'
           "            await self.repo.release(chat_id, day)\n",
           (f"{T_UNKNOWN}::test_a_reminder_whose_answer_is_unknown_is_not_sent_again_that_day",
            f"{T_UNKNOWN}::test_a_reminder_that_ends_in_an_error_not_from_telegram_is_not_sent"
            "_again")),
    Mutant("every network error read as never sent", "handlers/common.py",
           "        if never_sent(exc):\n            return False\n        raise\n",
           "        return False\n",
           (f"{T_UNKNOWN}::test_a_reminder_whose_answer_is_unknown_is_not_sent_again_that_day",)),
    Mutant("a refused reminder kept claimed", "bot/reminders.py",
           "        if not delivered:\n            await self.repo.release(chat_id, day)\n",
           "        if not delivered:\n",
           (f"{T_UNKNOWN}::test_a_reminder_that_never_left_is_released_and_sent_later_that_day",)),
    Mutant("a timed-out sms costs nothing", "bot/otp.py",
           "            if isinstance(exc, SmsError) and not exc.maybe_delivered:",
           '            if not getattr(exc, "maybe_delivered", False):',
           (f"{T_UNKNOWN}::test_a_code_whose_sms_may_have_gone_out_still_counts",)),
    Mutant("an unexpected sms error releases the send", "bot/otp.py",
           "                await self.sender.send(phone, otp_message(code, self.ttl))\n",
           "                try:\n"
           "                    await self.sender.send(phone, otp_message(code, self.ttl))\n"
           "                except Exception as exc:\n"
           "                    if not isinstance(exc, (SmsError, TimeoutError)):\n"
           "                        await self.repo.release_send(reserved)\n"
           "                    raise\n",
           (f"{T_UNKNOWN}::test_a_code_whose_send_ends_in_an_unexpected_error_still_counts",)),
    # -- issue 19, class 5: escaping and masking in every reply -----------------------------
    Mutant("removed label not escaped", "handlers/hapus.py",
           "texts.REMOVED.format(label=html.escape(removed.label))",
           "texts.REMOVED.format(label=removed.label)",
           (T_TEMPLATES,)),
    Mutant("reminder change label not escaped", "handlers/render.py",
           "label=e(change.label), what=", "label=change.label, what=",
           (T_TEMPLATES,)),
    Mutant("evicted nik not masked", "handlers/tambah_kk.py",
           "masked=mask_nik(outcome.evicted.nik))", "masked=outcome.evicted.nik)",
           (T_TEMPLATES,)),
    Mutant("history button label escaped twice", "handlers/keyboards.py",
           "texts.HISTORY_BUTTON_OF.format(label=a.label)",
           "texts.HISTORY_BUTTON_OF.format(label=html.escape(a.label))",
           (T_TEMPLATES,)),
    Mutant("tap answer label escaped", "handlers/akun.py",
           "texts.SWITCHED.format(label=tapped.label)",
           "texts.SWITCHED.format(label=tapped.label.replace('<', '&lt;'))",
           (T_TEMPLATES,)),
    Mutant("removal question shows the nik", "handlers/hapus.py",
           "masked=mask_nik(account.nik)),", "masked=account.nik),",
           (T_TEMPLATES,)),
    # -- issue 19, class 3: "reads the same", call by call ---------------------------------
    # Not found, no phone, blocked and a failed SMS are one outcome (CannotSend) since the
    # rules left the handler (decision 49): one mapping line shows it, one mutant breaks it.
    Mutant("a code that cannot go out answers in a new message", "handlers/tambah_kk.py",
           "texts.LOOKUP_FAILED.format(masked=typed.masked), progress)",
           "texts.LOOKUP_FAILED.format(masked=typed.masked), None)",
           (f"{T_SAME}::test_every_way_a_code_cannot_go_out_makes_the_same_calls_as_not_found",
            f"{T_TRUST}::test_not_found_and_no_phone_on_file_read_exactly_the_same",
            f"{T_TRUST}::test_caps_and_sms_failures_read_like_not_found")),
    Mutant("a failed sms to a stranger offers Kirim kode", "bot/enrolment.py",
           "        if result.outcome is not SendOutcome.SENT and not owner:",
           "        if result.outcome not in (SendOutcome.SENT, SendOutcome.SMS_FAILED) "
           "and not owner:",
           (f"{T_SAME}::test_every_way_a_code_cannot_go_out_makes_the_same_calls_as_not_found",
            f"{T_ENROL}::test_a_failed_sms_reads_like_not_found_to_a_stranger_but_not_to_the_"
            "owner")),
    Mutant("a newer release's step read as this one's", "bot/enrolment.py",
           "        if version not in (1, 2):\n            return None\n",
           "        pass\n",
           (f"{T_ENROL}::test_a_step_round_trips_and_refuses_what_it_cannot_read",)),
    Mutant("a step of the previous release no longer loads", "bot/enrolment.py",
           '        version = data.get("v", 1)\n', '        version = data.get("v")\n',
           (f"{T_ENROL}::test_steps_sealed_by_the_previous_release_still_load",
            f"{T_ENROL}::test_a_challenge_written_by_the_previous_release_verifies_and_saves")),
    # -- issue 22 items 7 and 9 ------------------------------------------------------------
    Mutant("a forged replacement button accepted", "bot/enrolment.py",
           "        if step.purpose is not Purpose.ADD or await self.accounts.get(chat_id, slot) "
           "is None:", "        if step.purpose is not Purpose.ADD:",
           ("tests/test_e2e_flows.py::test_a_forged_or_stale_replacement_button_replaces_nothing",
            f"{T_ENROL}::test_a_full_cache_asks_which_account_goes_before_any_look_up")),
    Mutant("a code replaced by a resend still opens the challenge", "storage/otp_repo.py",
           "                if matches(keys, bytes(code_hash)):\n",
           "                if matches(keys, bytes(code_hash)) or (row['prior_hash'] is not None "
           "and matches(keys, bytes(row['prior_hash']))):\n",
           ("tests/test_e2e_flows.py::"
            "test_a_code_replaced_by_kirim_ulang_is_answered_so_and_costs_no_try",)),
    Mutant("a replaced code costs a try", "storage/otp_repo.py",
           "                if replaced is not None and prior is not None and replaced(keys, "
           "bytes(prior)):", "                if False:",
           ("tests/test_e2e_flows.py::"
            "test_a_code_replaced_by_kirim_ulang_is_answered_so_and_costs_no_try",)),
    # -- issue 19, class 9: deterministic crash points -------------------------------------
    Mutant("no checkpoint at start", "bot/services.py",
           "        await db.checkpoint()\n", "        pass\n",
           (f"{T_CRASH}::test_a_crash_right_after_an_erase_commit_leaves_nothing",
            f"{T_CRASH}::test_a_crash_right_after_an_enrolment_commit_keeps_it_whole")),
    Mutant("the new key written after the rotation's commit", "storage/keys.py",
           '        write_key_file(pending, raw)\n'
           '    legacy = ChatKeys.of(db, old)\n'
           '\n'
           '    def unit(conn: sqlite3.Connection) -> int:\n'
           '        with immediate(conn):\n'
           '            convert_all(conn, legacy)  # nothing may stay under the key that goes\n'
           '            done = rewrap_all(conn, old, new)\n'
           '            OtpRepo.reencrypt_all(conn)\n'
           '            conn.execute("UPDATE meta SET value = ? WHERE key = ?",\n'
           '                         (new.check_value(), KEY_CHECK))\n'
           '            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "\n'  # noqa: E501
           '                         "DO UPDATE SET value = excluded.value", (RATE_KEY, new.wrap_rate_key()))\n'  # noqa: E501
           '        return done\n'
           '\n'
           '    try:\n'
           '        count = await db.run(unit)\n'
           '    except BaseException:\n'
           '        if pending is not None:\n'
           '            with contextlib.suppress(FileNotFoundError):\n'
           '                pending.unlink()\n'
           '        raise\n'
           '    if key_path is not None:\n'
           '        _finish_rotation(key_path)\n',
           '    legacy = ChatKeys.of(db, old)\n'
           '\n'
           '    def unit(conn: sqlite3.Connection) -> int:\n'
           '        with immediate(conn):\n'
           '            convert_all(conn, legacy)  # nothing may stay under the key that goes\n'
           '            done = rewrap_all(conn, old, new)\n'
           '            OtpRepo.reencrypt_all(conn)\n'
           '            conn.execute("UPDATE meta SET value = ? WHERE key = ?",\n'
           '                         (new.check_value(), KEY_CHECK))\n'
           '            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "\n'  # noqa: E501
           '                         "DO UPDATE SET value = excluded.value", (RATE_KEY, new.wrap_rate_key()))\n'  # noqa: E501
           '        return done\n'
           '\n'
           '    try:\n'
           '        count = await db.run(unit)\n'
           '    except BaseException:\n'
           '        if pending is not None:\n'
           '            with contextlib.suppress(FileNotFoundError):\n'
           '                pending.unlink()\n'
           '        raise\n'
           '    if key_path is not None:\n'
           '        assert pending is not None\n'
           '        write_key_file(pending, raw)\n'
           '        _finish_rotation(key_path)\n',
           (f"{T_CRASH}::test_a_crash_right_after_a_rotation_commit_keeps_every_row_readable",)),
    Mutant("a code consumed only once the flow has it", "storage/otp_repo.py",
           'conn.execute("UPDATE challenges SET consumed_at = ? WHERE chat_id = ? "\n'
           '                                 "AND consumed_at IS NULL", (now, chat_id))\n',
           "pass\n",
           (f"{T_CRASH}::test_a_crash_right_after_a_code_is_accepted_leaves_it_used",)),
    Mutant("a migration step's version bumped after its commit", "storage/db.py",
           '                    conn.execute(f"PRAGMA user_version = {number + 1}")\n'
           '                applied.append(number + 1)\n',
           '                conn.execute(f"PRAGMA user_version = {number + 1}")  # after COMMIT\n'
           '                applied.append(number + 1)\n',
           (f"{T_CRASH}::test_a_crash_at_a_migration_commit_is_finished_at_the_next_start",)),
    # -- issue 24: one leader on PostgreSQL --------------------------------------------
    Mutant("a leader serves on without its lock", "bot/leader.py",
           "                if self.on_lost is not None:\n                    self.on_lost()\n",
           "                pass\n",
           ("tests/test_leader.py::test_leader_that_loses_its_connection_stops_serving_at_once",)),
    Mutant("two leaders at once", "bot/leader.py",
           'cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))',
           'cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s) OR true", '
           '(self.key,))',
           ("tests/test_leader.py::test_one_leads_the_other_stands_by_then_takes_over",)),
    Mutant("offset confirmed at fetch", "bot/polling.py",
           "            return min(self.in_flight)\n",
           "            return self.highest + 1\n",
           ("tests/test_polling.py::test_an_update_in_hand_is_not_confirmed_until_done",
            "tests/test_polling.py::test_an_update_in_hand_at_sigkill_is_handled_after_the_restart",
            "tests/test_polling.py::test_after_sigkill_the_resent_updates_of_a_chat_keep_their_order")),
    Mutant("offset confirmed at fetch, kills with traffic", "bot/polling.py",
           "            return min(self.in_flight)\n",
           "            return self.highest + 1\n",
           ("tests/test_failover_process.py::test_kills_with_traffic_lose_nothing_and_do_"
            "nothing_twice",)),
    Mutant("a handled update is handled again", "bot/polling.py",
           "                if done is not None and done == fingerprint(update):  # its state is",
           "                if False:  # its state is",
           ("tests/test_polling.py::test_a_resent_update_that_was_done_is_not_answered_again",)),
    Mutant("a converted database is scanned at every start", "storage/chat_keys.py",
           "    if is_converted(conn):\n        return []\n", "",
           ("tests/test_chat_keys.py::test_a_converted_database_is_not_scanned_again_at_start",)),
    Mutant("a recorded update id skips any update with that id", "bot/polling.py",
           "                if done is not None and done == fingerprint(update):  # its state is",
           "                if done is not None:  # its state is",
           ("tests/test_ops_process.py::test_backup_verify_restore_and_start_keeps_the_cards",)),
    Mutant("the handled update is never recorded", "storage/persistence.py",
           "                if update_id is not None:\n                    conn.execute(",
           "                if False:\n                    conn.execute(",
           ("tests/test_polling.py::test_a_resent_update_that_was_done_is_not_answered_again",)),
    Mutant("a dropped postgres connection is never reopened", "storage/pg.py",
           "        if conn.lost:\n            with contextlib.suppress(Exception):",
           "        if False:\n            with contextlib.suppress(Exception):",
           ("tests/test_pg_store.py::test_a_dropped_connection_is_reopened_and_a_unit_it_"
            "broke_is_reported",)),
    Mutant("a unit a dropped connection broke midway is re-run", "storage/pg.py",
           "                        if conn.unsent and tries < RETRIES - 1:",
           "                        if tries < RETRIES - 1:",
           ("tests/test_pg_store.py::test_a_dropped_connection_is_reopened_and_a_unit_it_"
            "broke_is_reported",)),
    Mutant("postgres out of disk reads as a crash", "bot/dbtrouble.py",
           '    if isinstance(error, pg_errors.DiskFull):  # SQLSTATE 53100\n        return "full"',
           '    if isinstance(error, pg_errors.DiskFull):  # SQLSTATE 53100\n        return None',
           ("tests/test_faults.py::test_postgres_trouble_gets_the_words_sqlite_trouble_gets",)),
    Mutant("postgres refusals read as a crash", "bot/dbtrouble.py",
           '    if isinstance(error, psycopg.OperationalError):\n        return "busy"',
           '    if isinstance(error, psycopg.OperationalError):\n        return None',
           ("tests/test_faults.py::test_postgres_trouble_gets_the_words_sqlite_trouble_gets",)),
    # -- issue 23 items 9-10: notices never sent twice, retention warns before it erases --
    Mutant("notice claimed after the send", "bot/operator.py",
           "        if not await self.repo.claim(notice_id, chat_id, self.clock()):\n"
           "            return\n"
           "        try:\n"
           "            delivered = await deliver(chat_id, body)\n",
           "        try:\n"
           "            delivered = await deliver(chat_id, body)\n"
           "            if not await self.repo.claim(notice_id, chat_id, self.clock()):\n"
           "                return\n",
           (f"{T_OPERATOR}::test_a_delivery_stopped_mid_send_is_not_sent_again_on_resume",)),
    Mutant("notice claim released when stopped mid-send", "bot/operator.py",
           "            raise  # mid-send it may have gone out: the claim stays, nothing twice",
           "            await self.repo.release(notice_id, chat_id)\n            raise",
           (f"{T_OPERATOR}::test_a_delivery_stopped_mid_send_is_not_sent_again_on_resume",)),
    Mutant("notice resumed over claimed chats", "storage/notices_repo.py",
           "(?, ?, 'sending', ?) ON CONFLICT (notice_id, chat_id) DO NOTHING",
           "(?, ?, 'sending', ?) ON CONFLICT (notice_id, chat_id) DO UPDATE SET at = "
           "excluded.at",
           (f"{T_OPERATOR}::test_a_notice_is_previewed_confirmed_once_and_sent_once",
            f"{T_OPERATOR}::test_two_runs_of_one_notice_at_once_message_each_chat_once")),
    Mutant("notice confirmed twice", "storage/notices_repo.py",
           'return await self._move(notice_id, "draft", "sending")',
           'return await self._move(notice_id, "sending", "sending") or '
           'await self._move(notice_id, "draft", "sending")',
           (f"{T_OPERATOR}::test_a_draft_is_confirmed_or_cancelled_once",)),
    Mutant("operator commands answered anywhere", "bot/operator.py",
           "return chat_id in self.operators", "return True",
           (f"{T_OPERATOR}::test_stats_counts_only_and_is_unknown_elsewhere",
            f"{T_OPERATOR}::test_a_notice_is_previewed_confirmed_once_and_sent_once")),
    Mutant("retention erases without a week's warning", "bot/retention.py",
           "warned_by = (today - timedelta(days=WARN_DAYS)).isoformat()",
           "warned_by = today.isoformat()",
           (f"{T_RETENTION}::test_a_late_warning_still_comes_a_week_before_the_erase",)),
    Mutant("retention ignores activity", "bot/retention.py",
           "        if chat_id in self._seen:\n            return\n",
           "        if True:\n            return\n",
           (f"{T_RETENTION}::test_warned_a_week_ahead_then_erased",)),
    Mutant("activity keeps the warning", "storage/retention_repo.py",
           '"UPDATE chat_activity SET day = ?, warned_on = NULL "',
           '"UPDATE chat_activity SET day = ? "',
           (f"{T_RETENTION}::test_warned_a_week_ahead_then_erased",)),
    Mutant("retention erase leaves the conversation step", "handlers/retention.py",
           "                handler._conversations.pop((chat_id,), None)",
           "                pass",
           (f"{T_RETENTION}::test_an_erase_mid_conversation_leaves_no_step_behind",)),
    Mutant("retention erase forgets a table", "storage/retention_repo.py",
           "                for table in CHAT_TABLES:\n",
           "                for table in CHAT_TABLES[1:]:\n",
           (f"{T_RETENTION}::test_warned_a_week_ahead_then_erased",)),
    # -- issue 22: a code typed with spaces is still a message the scrubber deletes --------
    Mutant("a spaced code read more loosely than the scrubber", "bot/identity.py",
           "    groups = digit_groups(candidate, CODE_GAP)\n",
           "    groups = digit_groups(candidate)\n",
           ("tests/test_identity.py::test_every_code_the_parser_accepts_the_scrubber_deletes",
            "tests/test_identity.py::test_otp_is_six_ascii_digits_typed_close_together")),
    # -- issue 24 item 5: per-chat data keys -----------------------------------------------
    Mutant("erase keeps the chat key", "storage/db.py",
           "                for table in CHAT_TABLES:\n",
           "                for table in [t for t in CHAT_TABLES if t != 'chat_keys']:\n",
           (f"{T_CHATKEYS}::test_after_an_erase_the_chats_old_ciphertexts_open_with_no_key_left",
            f"{T_STORAGE}::test_erase_chat_removes_every_row_of_that_chat_only")),
    Mutant("retention erase keeps the chat key", "storage/retention_repo.py",
           "                for table in CHAT_TABLES:\n",
           "                for table in [t for t in CHAT_TABLES if t != 'chat_keys']:\n",
           (f"{T_CHATKEYS}::test_the_retention_erase_deletes_the_chats_key_too",)),
    Mutant("chat data encrypted under the master key", "storage/accounts_repo.py",
           "        return key.encrypt(value, self._aad(chat_id, slot, field))\n",
           "        return self.vault.encrypt(value, self._aad(chat_id, slot, field))\n",
           (f"{T_CHATKEYS}::test_after_an_erase_the_chats_old_ciphertexts_open_with_no_key_left",)),
    Mutant("challenge payload under the master key", "storage/otp_repo.py",
           "                blob = self.keys.ensure(conn, chat_id).encrypt(plain, self._aad(chat_id))\n",  # noqa: E501
           "                blob = self.vault.encrypt(plain, self._aad(chat_id))\n",
           (f"{T_CHATKEYS}::test_after_an_erase_the_chats_old_ciphertexts_open_with_no_key_left",)),
    Mutant("sealed step under the master key", "storage/chat_keys.py",
           "                return self.ensure(conn, chat_id).encrypt(plaintext, aad)\n",
           "                return self.master.encrypt(plaintext, aad)\n",
           (f"{T_CHATKEYS}::test_after_an_erase_the_chats_old_ciphertexts_open_with_no_key_left",)),
    Mutant("nik index under the master key", "storage/accounts_repo.py",
           "                index = key.blind_index(chat_id, index_key(new.nik, new.card))\n",
           "                index = self.vault.blind_index(chat_id, index_key(new.nik, new.card))\n",  # noqa: E501
           (f"{T_CHATKEYS}::test_two_chats_have_different_keys_and_a_row_copied_across_does_not_"
            "open",)),
    Mutant("the cache keeps an erased chat's key", "storage/db.py",
           "            keys.forget(chat_id)\n", "            pass\n",
           (f"{T_CHATKEYS}::test_after_an_erase_the_chats_old_ciphertexts_open_with_no_key_left",)),
    Mutant("rotation leaves chat keys under the old master", "storage/chat_keys.py",
           "            [(wrap(new, int(r[\"chat_id\"]),",
           "            [(wrap(old, int(r[\"chat_id\"]),",
           (f"{T_CHATKEYS}::test_a_rotation_rewraps_the_chat_keys_and_leaves_the_rows",)),
    Mutant("rotation skips rows still under the master key", "storage/keys.py",
           "            convert_all(conn, legacy)  # nothing may stay under the key that goes\n",
           "            pass\n",
           (f"{T_CHATKEYS}::test_a_rotation_of_a_database_never_converted_carries_every_row",)),
    Mutant("conversion leaves rows under the master key", "storage/chat_keys.py",
           "            values[name] = (chat.encrypt(plain[name], aad) if is_master(master, blob)\n",  # noqa: E501
           "            values[name] = (bytes(blob) if is_master(master, blob)\n",
           (f"{T_CHATKEYS}::test_rows_of_the_release_before_are_converted_once_at_start",)),
    Mutant("conversion keeps the master key's blind index", "storage/chat_keys.py",
           "        index = chat.blind_index(chat_id, plain[\"nik\"] or plain[\"card\"])\n",
           "        index = master.blind_index(chat_id, plain[\"nik\"] or plain[\"card\"])\n",
           (f"{T_CHATKEYS}::test_rows_of_the_release_before_are_converted_once_at_start",)),
    Mutant("unused chat keys kept for ever", "bot/otp.py",
           "        await self.repo.purge_unused_keys(now - PENDING_TTL)  # a sealed step's whole life\n",  # noqa: E501
           "        pass\n",
           (f"{T_CHATKEYS}::test_a_chat_that_holds_nothing_any_more_loses_its_key_at_"
            "housekeeping",)),
    Mutant("no vacuum after a deletion on postgres", "storage/pg.py",
           '                conn.execute("VACUUM (SKIP_LOCKED) " + ", ".join(VACUUM_TABLES))\n',
           "                pass\n",
           ("tests/test_pg_store.py::test_on_postgres_an_erased_chats_lingering_rows_need_its_"
            "destroyed_key",)),
    Mutant("a deletion other than an erase never vacuumed on postgres", "storage/pg.py",
           "        self._vacuum_due = True\n        return True\n",
           "        return True\n",
           ("tests/test_pg_store.py::test_on_postgres_a_removed_card_is_vacuumed_off_the_units_"
            "thread",)),
    Mutant("the postgres vacuum runs on the units' thread", "storage/pg.py",
           "            done = await asyncio.to_thread(self._vacuum_now, rewrite)\n",
           "            done = await self._worker.submit(\n"
           "                functools.partial(self._vacuum_now, rewrite))\n",
           ("tests/test_pg_store.py::test_on_postgres_a_removed_card_is_vacuumed_off_the_units_"
            "thread",)),
    Mutant("chat_keys not rewritten after an erase on postgres", "storage/pg.py",
           "        super().erased(chat_id)\n        self._rewrite_keys = True\n",
           "        super().erased(chat_id)\n",
           ("tests/test_pg_store.py::test_on_postgres_an_erased_chats_lingering_rows_need_its_"
            "destroyed_key",)),
    Mutant("a NIK sealed for a retry stays half an hour", "bot/otp.py",
           '        ttl = min(float(stamped.get("ttl", PENDING_TTL)), PENDING_TTL)\n',
           "        ttl = PENDING_TTL\n",
           ("tests/test_e2e_words.py::test_a_backend_error_offers_a_retry_without_retyping_the_"
            "nik",)),
]


def run(mutant: Mutant) -> tuple[bool, float, str]:
    """True when some test failed (the mutant was caught)."""
    with tempfile.TemporaryDirectory(prefix="kk-mutant-") as tmp:
        copy = Path(tmp)
        for name in COPIED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, copy / name,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(source, copy / name)
        target = copy / mutant.path
        text = target.read_text()
        if text.count(mutant.old) != 1:
            raise SystemExit(f"{mutant.name}: the text to mutate occurs {text.count(mutant.old)}"
                             f" times in {mutant.path}; update tests/mutants.py")
        target.write_text(text.replace(mutant.old, mutant.new))
        started = time.monotonic()
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                 *mutant.tests], cwd=copy, capture_output=True, text=True, timeout=300,
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(copy), "HOME": tmp,
                     **{k: v for k, v in os.environ.items() if k == "KK_TEST_POSTGRES_URL"}},
                check=False)
        except subprocess.TimeoutExpired:
            return False, time.monotonic() - started, "the tests hung (fix them to fail)"
        lines = (result.stdout + result.stderr).strip().splitlines()
        failed = [line.split(" - ")[0] for line in lines if line.startswith("FAILED ")]
        return (result.returncode == 1, time.monotonic() - started,
                failed[0] if failed else (lines[-1] if lines else ""))


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or any(a in m.name for a in argv)]
    survivors = []
    for mutant in chosen:
        caught, seconds, last = run(mutant)
        mark = "caught  " if caught else "SURVIVED"
        sys.stdout.write(f"{mark} {seconds:5.1f}s  {mutant.name}  ({last})\n")
        sys.stdout.flush()
        if not caught:
            survivors.append(mutant.name)
    sys.stdout.write(f"{len(chosen) - len(survivors)} of {len(chosen)} mutants caught\n")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
