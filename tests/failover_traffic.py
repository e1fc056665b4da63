"""A kill loop with traffic (issue 24 item 3): several chats hold real conversations with
`python -m bot run` on one PostgreSQL while the serving instance is SIGKILLed again and
again, a standby always waiting. Shared by ``bench/failover.py`` (≥ 10 kills, figures
printed) and ``tests/test_failover_process.py`` (a few kills, asserted).

What is measured and checked, all from outside the bot (the fake Bot API's record of what
the bot sent, the SMS gateway's record, and the database):

- **takeover**: seconds from the SIGKILL to the first thing the next instance sends to
  Telegram (an answer in any chat). Each kill falls while a probe chat's NIK is in hand
  (a sandbox NIK whose look-up takes 3 s), so there is always an update to hand over, and
  that NIK must then be answered by the next instance (a code sent), else it is lost;
- **lost**: a user action (message or tap) is lost when nothing at all appeared in its
  chat within :data:`ANSWER_TIMEOUT` seconds after it (the actions of a chat are sent one
  after the other, each after the answer to the one before; a tap also counts as lost
  when its callback query is never answered); and at the end Telegram must hold no update
  that was not confirmed;
- **order**: bursts of three commands sent back to back (/bantuan, /privasi, /batal) once
  the chat is quiet must be answered in that order (the first answer to each, in the
  chat's record);
- **doubled cards**: rows of ``accounts`` with the same chat and NIK index (the database
  would refuse them, this checks it), and every card the user saw saved ("Tersimpan") and
  did not try to remove is in the database at the end (nothing committed is lost; a
  removal whose answer the user did not see may or may not have happened);
- **codes accepted twice**: "Kode benar" answered more than once for the same code in a
  chat;
- **reminders twice**: more than one reminder message in a chat on one day, or more than
  one ``reminder_log`` claim per chat and day.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bot import texts
from bot.devtools.emulator import BotApiEmulator
from bot.identity import Identifier, IdKind
from bot.jkn.sandbox import SandboxBackend
from tests.botapi_http import HttpBotApi
from tests.process import http_env

#: Seconds an action may wait for its answer, across a takeover (three times the bound).
ANSWER_TIMEOUT = 30.0
#: Codes a chat may ask for in a day (storage/otp_repo.py Caps.chat_daily is 10): leave
#: room for the codes a resent update issues again.
CODES_PER_CHAT = 6
_KINDS = ("message", "edit", "answer")
#: Commands whose answers no other step gives (an /akun list is also edited by a tap).
_BURST = (("/bantuan", "Perintah Asisten KK"), ("/privasi", "Privasi Asisten KK"),
          ("/batal", "Tidak ada proses yang sedang berjalan"))
_CODE_REFUSED = ("Kode salah", "sudah diganti", "Tidak ada kode OTP", "kedaluwarsa",
                 "Terlalu banyak kode salah", "Kode OTP terdiri dari 6 angka")
_SMS_REFUSED = ("Batas kode OTP", "terlalu banyak kode", "Terlalu banyak kode",
                "Layanan SMS bot", "SMS belum bisa dikirim", "Tunggu")
_REMINDER = "🔔 Pengingat JKN — "  # texts.REMINDER_TITLE as the chat shows it
_OK = texts.OTP_OK.split(" ")[0] + " benar"  # "Kode benar"


def nik_for(chat_id: int, n: int) -> str:
    """A sandbox NIK of its own for each chat and card (a phone of its own too): the caps
    per phone and participant never couple the chats."""
    return f"317401450690{chat_id % 100:02d}{n + 10:02d}"


def slow_nik(n: int) -> str:
    """A NIK whose look-up takes 3 s in the sandbox (case 0003), one of its own (and a
    phone of its own) for each kill."""
    return f"3174{n // 10 + 1:02d}45069{n % 10}0003"


def phone_for(nik: str) -> str:
    phone = SandboxBackend().participant(Identifier(IdKind.NIK, nik)).phone
    assert phone is not None
    return phone


@dataclass
class Instance:
    """One `python -m bot run`, its stderr in a file (a pipe nobody reads could fill)."""

    proc: asyncio.subprocess.Process
    log: Path

    def said(self, words: str) -> bool:
        return words in self.log.read_text(errors="replace")


@dataclass
class Figures:
    takeovers: list[float] = field(default_factory=list)
    updates: int = 0
    actions: int = 0
    lost: list[str] = field(default_factory=list)
    unexpected: int = 0  # answered, but not with what the script expected (a resync)
    order_breaks: list[str] = field(default_factory=list)
    bursts: int = 0
    cards_saved: int = 0
    doubled_cards: int = 0
    missing_cards: int = 0
    removals_unseen: int = 0
    notes: list[str] = field(default_factory=list)
    resent_skipped: int = 0  # updates sent again that were already done (decision 53)
    codes_accepted: int = 0
    codes_twice: int = 0
    sms: int = 0
    reminders_twice: int = 0
    unconfirmed: int = 0
    unanswered_queries: int = 0
    instances: int = 0

    def summary(self) -> str:
        median = statistics.median(self.takeovers) if self.takeovers else float("nan")
        worst = max(self.takeovers) if self.takeovers else float("nan")
        return (f"kills {len(self.takeovers)}: takeover median {median:.2f} s, max "
                f"{worst:.2f} s (SIGKILL to the standby's first answer); updates sent "
                f"{self.updates}, user actions {self.actions}, lost {len(self.lost)}, "
                f"unconfirmed {self.unconfirmed}, unanswered taps "
                f"{self.unanswered_queries}, answered off-script {self.unexpected}; "
                f"bursts {self.bursts}, out of order {len(self.order_breaks)}; cards saved "
                f"{self.cards_saved}, doubled cards {self.doubled_cards}, saved cards "
                f"missing {self.missing_cards} (removals not seen through "
                f"{self.removals_unseen}); codes accepted {self.codes_accepted}, "
                f"codes accepted twice {self.codes_twice}; SMS {self.sms}; reminders twice "
                f"{self.reminders_twice}; resent updates skipped as already done "
                f"{self.resent_skipped}")


class Driver:
    """One person in one chat: consent, cards added with real codes, switches by button,
    lists, bursts; a card removed now and then so that codes keep flowing."""

    def __init__(self, loop: KillLoop, chat_id: int, rng: random.Random) -> None:
        self.loop = loop
        self.emulator = loop.emulator
        self.chat_id = chat_id
        self.rng = rng
        self.cards: list[str] = []  # labels the user saw saved and did not remove
        self.uncertain = 0  # cards whose removal was confirmed but its answer not seen
        self.next_card = 0
        self.codes_asked = 0
        self.ok_for: Counter[str] = Counter()  # code -> "Kode benar" answers seen for it
        self.sent_codes: list[tuple[int, str]] = []  # (event index when sent, code)
        self.bursts = 0
        self.order_breaks: list[str] = []
        self.lost: list[str] = []
        self.unexpected = 0
        self.actions = 0
        self.emulator.open_chat(chat_id)

    # -- looking at the chat --------------------------------------------------------------

    def _texts(self, mark: int) -> list[str]:
        return [e.text for e in self.emulator.events[mark:]
                if e.chat_id == self.chat_id and e.kind in _KINDS]

    async def _answer(self, mark: int, accept: tuple[str, ...], what: str,
                      query: str | None = None) -> str | None:
        """The first accepted text seen after ``mark``; None when something else came
        (off-script: the caller resyncs) or nothing at all (lost)."""
        self.actions += 1
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            seen = self._texts(mark)
            answered = query is None or bool(self.emulator.queries[query]["answered"])
            if answered:
                for text in seen:
                    for wanted in accept:
                        if wanted in text:
                            return wanted
            await asyncio.sleep(0.05)
        if self._texts(mark) and (query is None or self.emulator.queries[query]["answered"]):
            self.unexpected += 1
            return None
        self.lost.append(f"chat {self.chat_id}: {what}")
        return None

    async def send(self, text: str, accept: tuple[str, ...], what: str | None = None
                   ) -> str | None:
        mark = len(self.emulator.events)
        self.emulator.user_sends(self.chat_id, text)
        return await self._answer(mark, accept, what or text)

    async def tap(self, label: str, accept: tuple[str, ...]) -> str | None:
        found = [(m, d) for m in reversed(self.emulator.bot_messages(self.chat_id))
                 for text, d in m.buttons if label in text]
        if not found:
            self.unexpected += 1
            return None
        message, data = found[0]
        mark = len(self.emulator.events)
        query = self.emulator.user_taps(self.chat_id, message.message_id, data)
        return await self._answer(mark, accept, f"tap {label}", query)

    def _newest_code(self, phone: str) -> str | None:
        for sms in reversed(self.loop.api.sms):
            if sms["to"] == phone:
                match = re.search(r"\b([0-9]{6})\b", sms["message"])
                return match.group(1) if match else None
        return None

    # -- the conversation -----------------------------------------------------------------

    async def consent(self) -> bool:
        if await self.send("/start", ("Apakah Anda setuju",)) is None:
            return False
        return await self.tap(texts.CONSENT_YES_BUTTON, ("persetujuan Anda tercatat",)) \
            is not None

    async def add(self) -> None:
        nik = nik_for(self.chat_id, self.next_card)
        label = f"Kartu {self.next_card + 1}"
        self.next_card += 1
        phone = phone_for(nik)
        if await self.send("/tambah_kk", ("Kirim <b>NIK", "Kirim NIK")) is None:
            await self.resync()
            return
        self.codes_asked += 1
        sent = await self.send(nik, ("Kode OTP 6 angka sudah dikirim", *_SMS_REFUSED), "a NIK")
        if sent != "Kode OTP 6 angka sudah dikirim":
            await self.resync()
            return
        for _ in range(4):
            await asyncio.sleep(0.1)  # a resent NIK may bring a newer code: take the newest
            code = self._newest_code(phone)
            if code is None:
                break
            mark = len(self.emulator.events)
            self.sent_codes.append((mark, code))
            answer = await self.send(code, (_OK, *_CODE_REFUSED), "a code")
            if answer == _OK:
                break
            if answer not in ("Kode salah", "sudah diganti", "Kode OTP terdiri dari 6 angka"):
                await self.resync()
                return
        else:
            await self.resync()
            return
        if answer != _OK:
            await self.resync()
            return
        saved = await self.send(label, ("Tersimpan", "Kode OTP terdiri dari 6 angka",
                                        "Tidak ada kode OTP"), "a label")
        if saved == "Tersimpan":
            self.cards.append(label)
        else:
            await self.resync()

    async def remove_oldest(self) -> None:
        label = self.cards[0]
        if await self.send("/hapus_kk", ("Pilih akun yang ingin dihapus",)) is None:
            await self.resync()
            return
        if await self.tap(label, (f"Hapus «{label}»",)) is None:
            await self.resync()
            return
        self.cards.remove(label)
        if await self.tap(texts.REMOVE_YES_BUTTON, (f"«{label}» sudah dihapus",)) is None:
            self.uncertain += 1
            await self.resync()

    async def switch(self) -> None:
        if await self.send("/akun", ("Akun JKN Anda",)) is None:
            await self.resync()
            return
        if self.cards:
            label = self.rng.choice(self.cards)
            if await self.tap(label, ("dipilih",)) is None:
                await self.resync()

    async def quiet(self, still: float = 0.4, limit: float = 5.0) -> None:
        """Wait until nothing new has appeared in the chat for ``still`` seconds."""
        deadline = time.monotonic() + limit
        seen, since = len(self._texts(0)), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < still:
            await asyncio.sleep(0.05)
            now = len(self._texts(0))
            if now != seen:
                seen, since = now, time.monotonic()

    async def burst(self) -> None:
        """Three commands back to back: their answers must come in the same order."""
        await self.quiet()
        mark = len(self.emulator.events)
        for text, _ in _BURST:
            self.emulator.user_sends(self.chat_id, text)
        self.bursts += 1
        answer = await self._answer(mark, (_BURST[-1][1],), "a burst")
        if answer is None:
            return
        seen = self._texts(mark)
        firsts = [next((i for i, t in enumerate(seen) if wanted in t), None)
                  for _, wanted in _BURST]
        if None in firsts or firsts != sorted(firsts):  # type: ignore[type-var]
            self.order_breaks.append(f"chat {self.chat_id}: burst answered as {firsts}")

    async def resync(self) -> None:
        """Off-script (a resent update moved the conversation): end any flow."""
        await self.send("/batal", ("",), "/batal")

    async def run(self, stop: asyncio.Event) -> None:
        if not await self.consent():
            return
        while not stop.is_set():
            room = self.codes_asked < CODES_PER_CHAT
            if room and len(self.cards) < 3:
                await self.add()
            elif room and self.rng.random() < 0.5:
                await self.remove_oldest()
            elif self.rng.random() < 0.3:
                await self.burst()
            else:
                await self.switch()
            await asyncio.sleep(self.rng.uniform(0.0, 0.3))


class KillLoop:
    def __init__(self, root: Path, api: HttpBotApi, settings: dict[str, str],
                 seed: int = 24) -> None:
        self.root = root
        self.api = api
        self.emulator: BotApiEmulator = api.emulator
        self.settings = settings
        self.rng = random.Random(seed)
        self.spawned = 0
        self.instances: list[Instance] = []

    async def spawn(self) -> Instance:
        self.spawned += 1
        home = self.root / f"i{self.spawned}"
        home.mkdir()
        log = home / "stderr.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=home,
                env=http_env(home, self.api, **self.settings),
                stdout=asyncio.subprocess.DEVNULL, stderr=err)
        instance = Instance(proc, log)
        self.instances.append(instance)
        return instance

    async def _until(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)

    async def run(self, kills: int, chats: int, *, gap: tuple[float, float] = (1.0, 4.0),
                  progress: Callable[[str], None] | None = None) -> Figures:
        figures = Figures()
        leader = await self.spawn()
        polls = self.emulator.calls.get("getUpdates", 0)
        await self._until(lambda: self.emulator.calls.get("getUpdates", 0) > polls,
                          "the first instance to poll", 60)
        standby = await self.spawn()
        drivers = [Driver(self, 100 + n, random.Random(self.rng.random()))
                   for n in range(chats)]
        probes: list[Driver] = []
        stop = asyncio.Event()
        tasks = [asyncio.create_task(d.run(stop)) for d in drivers]
        try:
            for n in range(kills):
                await self._until(lambda s=standby: s.said("standby"),  # type: ignore[misc]
                                  "the standby to wait", 60)
                probe = Driver(self, 200 + n, random.Random(n))
                probes.append(probe)
                if not await probe.consent() or await probe.send(
                        "/tambah_kk", ("Kirim <b>NIK", "Kirim NIK")) is None:
                    raise AssertionError(f"the probe chat of kill {n + 1} got no answer")
                await asyncio.sleep(self.rng.uniform(*gap))
                # mid-conversation: a NIK whose look-up takes 3 s (the sandbox's case 0003)
                # is in hand, and the other chats' updates are wherever they are
                sent = len(self.emulator.events)
                self.emulator.user_sends(probe.chat_id, slow_nik(n))
                await self._until(lambda m=sent, p=probe: any(  # type: ignore[misc]
                    "Memproses" in t for t in p._texts(m)), "the look-up to start",
                    ANSWER_TIMEOUT)
                await asyncio.sleep(self.rng.uniform(0.0, 0.5))
                mark = len(self.emulator.events)
                killed = time.monotonic()
                leader.proc.send_signal(signal.SIGKILL)
                await leader.proc.wait()
                mark = max(mark, len(self.emulator.events))
                await self._until(lambda m=mark: len(self.emulator.events) > m,  # type: ignore[misc]
                                  "the standby's first answer", ANSWER_TIMEOUT)
                figures.takeovers.append(time.monotonic() - killed)
                if progress is not None:
                    progress(f"kill {n + 1}: takeover {figures.takeovers[-1]:.2f} s")
                # the NIK in hand at the kill is handled by the next instance: a code is sent
                await probe._answer(mark, ("Kode OTP 6 angka sudah dikirim",),
                                    "the NIK in hand at the kill")
                leader, standby = standby, await self.spawn()
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._until(lambda: not self.emulator.updates, "Telegram to hold nothing "
                          "unconfirmed", ANSWER_TIMEOUT)
        await asyncio.sleep(1.0)  # a last tap's answer in flight
        for instance in (leader, standby):
            if instance.proc.returncode is None:
                instance.proc.send_signal(signal.SIGTERM)
        for instance in (leader, standby):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(instance.proc.wait(), 30)
            if instance.proc.returncode is None:
                instance.proc.kill()
                await instance.proc.wait()
        figures.unconfirmed = len(self.emulator.updates)
        figures.unanswered_queries = len(self.emulator.unanswered_queries())
        figures.updates = self.emulator.updates_created
        figures.instances = self.spawned
        for instance in self.instances:
            figures.resent_skipped += sum(int(n) for n in re.findall(
                r"(\d+) update\(s\) sent again were already handled",
                instance.log.read_text(errors="replace")))
        figures.sms = len(self.api.sms)
        for d in [*drivers, *probes]:
            figures.actions += d.actions
            figures.lost += d.lost
            figures.unexpected += d.unexpected
            figures.order_breaks += d.order_breaks
            figures.bursts += d.bursts
            figures.cards_saved += len(d.cards)
            figures.removals_unseen += d.uncertain
            figures.codes_accepted += sum(1 for e in self.emulator.events
                                          if e.chat_id == d.chat_id and _OK in e.text)
            figures.codes_twice += self._codes_twice(d)
        self._check_database(figures, drivers)
        return figures

    def _codes_twice(self, driver: Driver) -> int:
        """Each "Kode benar" belongs to the last code sent before it in its chat."""
        accepted: Counter[str] = Counter()
        for index, event in enumerate(self.emulator.events):
            if event.chat_id != driver.chat_id or _OK not in event.text:
                continue
            before = [code for mark, code in driver.sent_codes if mark <= index]
            accepted[before[-1] if before else "?"] += 1
        return sum(n - 1 for n in accepted.values() if n > 1)

    def _check_database(self, figures: Figures, drivers: list[Driver]) -> None:
        with psycopg.connect(self.settings["KK_DATABASE_URL"]) as conn:
            row = conn.execute(
                "SELECT count(*) FROM (SELECT chat_id, nik_index FROM accounts GROUP BY "
                "chat_id, nik_index HAVING count(*) > 1) AS d").fetchone()
            figures.doubled_cards = int(row[0]) if row else 0
            for d in drivers:
                found = conn.execute("SELECT count(*) FROM accounts WHERE chat_id = %s",
                                     (d.chat_id,)).fetchone()
                have = int(found[0]) if found else 0
                if have < len(d.cards):
                    figures.missing_cards += len(d.cards) - have
                    figures.notes.append(f"chat {d.chat_id}: {len(d.cards)} card(s) seen "
                                         f"saved, {have} in the database")
            row = conn.execute(
                "SELECT count(*) FROM (SELECT chat_id, day FROM reminder_log GROUP BY "
                "chat_id, day HAVING count(*) > 1) AS d").fetchone()
            figures.reminders_twice = int(row[0]) if row else 0
        per_day: Counter[tuple[int, str]] = Counter()
        for event in self.emulator.events:
            if event.kind == "message" and event.text.startswith(_REMINDER):
                per_day[(event.chat_id, time.strftime("%Y-%m-%d"))] += 1
        figures.reminders_twice += sum(1 for n in per_day.values() if n > 1)


def describe(figures: Figures) -> dict[str, Any]:
    """The figures as a dict (for results files)."""
    return {"kills": len(figures.takeovers),
            "takeover_median_s": round(statistics.median(figures.takeovers), 2)
            if figures.takeovers else None,
            "takeover_max_s": round(max(figures.takeovers), 2) if figures.takeovers else None,
            "updates": figures.updates, "actions": figures.actions,
            "lost": len(figures.lost), "doubled_cards": figures.doubled_cards,
            "codes_twice": figures.codes_twice, "out_of_order": len(figures.order_breaks)}
