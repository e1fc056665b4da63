"""Status cards as HTML. Every value from outside is escaped here."""

from __future__ import annotations

import html
from datetime import date, datetime

from bot import glossary, texts
from bot.accounts import Account
from bot.history import History, HistoryOutcome
from bot.identity import mask_card, mask_nik
from bot.jkn.base import Participant
from bot.reminders import Notice
from bot.status import Source, StatusView
from bot.wib import jakarta_now

e = html.escape


def wib(timestamp: float) -> str:
    return jakarta_now(timestamp).strftime("%d/%m/%Y %H:%M") + " WIB"


def rupiah(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


def unpaid(months: int, amount: int) -> str:
    """What is owed: '3 bulan, Rp315.000', or the amount alone when the months are not
    known (the card and the reminder say it the same way)."""
    if months > 0:
        return texts.REMINDER_AMOUNT_MONTHS.format(months=months, amount=rupiah(amount))
    return texts.REMINDER_AMOUNT.format(amount=rupiah(amount))


def _status_line(p: Participant) -> str:
    if p.active:
        return texts.STATUS_ACTIVE_OK.format(text=e(p.status_text))
    if p.arrears_known and p.unpaid_amount > 0:
        return texts.STATUS_INACTIVE.format(text=e(p.status_text))
    return texts.STATUS_INACTIVE_OTHER.format(text=e(p.status_text))


def _arrears(p: Participant) -> str:
    """Arrears as the backend knows them; never implied (decisions.md 27)."""
    if not p.arrears_known:
        return texts.STATUS_ARREARS_UNKNOWN.format(backend=e(p.source))
    if p.unpaid_amount <= 0 and p.unpaid_months <= 0:
        return texts.STATUS_ARREARS_NONE
    return texts.STATUS_ARREARS.format(amount=unpaid(p.unpaid_months, p.unpaid_amount),
                                       va=e(p.virtual_account))


def _family(p: Participant, detailed: bool) -> list[str]:
    if not p.family_known:
        return [texts.STATUS_FAMILY_UNKNOWN.format(backend=e(p.source))]
    if not p.family:
        return []
    header = texts.STATUS_FAMILY_HEADER.format(count=len(p.family))
    if not detailed:
        return [header.rstrip(":")]
    return [header, *(texts.STATUS_FAMILY_MEMBER.format(
        name=e(first_name(m.name)), relation=e(m.relation.strip().lower() or "-"),
        status=e(m.status_text)) for m in p.family)]


def first_name(name: str) -> str:
    """SITI RAHMAWATI → Siti: a verified card's family by their first names (a mother
    recognises "Budi", not "B*** S******"); the full names stay with BPJS."""
    words = name.split()
    return words[0].capitalize() if words else "-"


def card(view: StatusView, *, backend_hourly: int, detailed: bool = True) -> str:
    """One account's status block; ``backend_hourly`` is the cap a capped card names."""
    account, p = view.account, view.participant
    head = f"<b>{e(account.label)}</b>" + (" 📌" if account.active else "")
    if p is None:
        return head + "\n" + texts.STATUS_UNAVAILABLE.format(label=e(account.label))
    lines = [
        head,
        f"👤 {e(p.name)}",
        (f"NIK {mask_nik(account.nik)}" if account.nik else texts.NIK_UNKNOWN)
        + f" · Kartu {mask_card(account.card)}",
        _status_line(p),
        texts.STATUS_TYPE.format(type=e(glossary.participant_type(p.type_text)),
                                 care_class=e(glossary.care_class(p.class_text))),
        texts.STATUS_FKTP.format(name=e(p.fktp_name)),
        _arrears(p),
        *_family(p, detailed),
        freshness(view, backend_hourly=backend_hourly),
    ]
    return "\n".join(line for line in lines if line)


def age(seconds: float) -> str:
    """How old, in words: 'baru saja', '4 menit lalu', '2 jam lalu', '3 hari lalu'."""
    if seconds < 60:
        return texts.AGE_NOW
    if seconds < 3600:
        return texts.AGE_MINUTES.format(n=int(seconds // 60))
    if seconds < 86400:
        return texts.AGE_HOURS.format(n=int(seconds // 3600))
    return texts.AGE_DAYS.format(n=int(seconds // 86400))


def freshness(view: StatusView, *, backend_hourly: int) -> str:
    """The card's last line: where the data came from and how old it is."""
    if view.at is None or view.age is None:
        return ""
    when, how_old = wib(view.at), age(view.age)
    if view.source is Source.STALE:
        return texts.STATUS_STALE.format(when=when, age=how_old)
    if view.source is Source.CAPPED:
        return texts.STATUS_CAPPED.format(limit=backend_hourly, when=when, age=how_old)
    if view.source is Source.CACHED:
        return f"<i>{texts.STATUS_CACHED.format(when=when, age=how_old)}</i>"
    return f"<i>{texts.STATUS_UPDATED.format(when=when)}</i>"


def long_date(day: date) -> str:
    """Sabtu, 7 November 2026."""
    return (f"{texts.DAY_NAMES[day.weekday()]}, {day.day} "
            f"{texts.MONTH_NAMES[day.month - 1]} {day.year}")


def when_wib(moment: datetime) -> str:
    """A naive Jakarta time as 'Sabtu, 7 November 2026 07:00 WIB'."""
    return f"{long_date(moment.date())} {moment:%H:%M} WIB"


def reminder(notice: Notice) -> str:
    """One chat's reminder of the day: arrears and changes, every value escaped."""
    lines = [texts.REMINDER_TITLE.format(day=long_date(notice.day))]
    if notice.arrears:
        lines += ["", texts.REMINDER_ARREARS_HEADER]
        for item in notice.arrears:
            template = (texts.REMINDER_ARREARS_INACTIVE if item.inactive
                        else texts.REMINDER_ARREARS)
            lines.append(template.format(
                label=e(item.label), amount_text=unpaid(item.months, item.amount),
                va=e(item.virtual_account),
                due=long_date(item.due)))
    if notice.changes:
        lines += ["", texts.REMINDER_CHANGES_HEADER]
        for change in notice.changes:
            plain = glossary.care_class if change.what == "class" else str
            lines.append(texts.REMINDER_CHANGE.format(
                label=e(change.label), what=texts.REMINDER_WHAT[change.what],
                before=e(plain(change.before)), after=e(plain(change.after))))
            if change.what == "status":
                lines.append(texts.REMINDER_ACTIVE_AGAIN if change.active
                             else texts.REMINDER_INACTIVE_ADVICE)
            elif change.what == "fktp":
                lines.append(texts.REMINDER_FKTP_ADVICE)
    return "\n".join([*lines, "", texts.REMINDER_FOOTER])


#: Visits shown at most (a message holds 4096 characters).
MAX_VISITS = 20


def short_date(iso: str) -> str:
    """2026-11-01 → 01/11/2026 (anything else as it came, escaped)."""
    try:
        return date.fromisoformat(iso).strftime("%d/%m/%Y")
    except ValueError:
        return e(iso)


def history(account: Account, found: History, *, backend: str, backend_hourly: int) -> str:
    """The /riwayat message: visits newest first, or why there are none to show."""
    label = e(account.label)
    if found.outcome is HistoryOutcome.UNSUPPORTED:
        return texts.HISTORY_UNSUPPORTED.format(backend=e(backend))
    if found.outcome is HistoryOutcome.UNAVAILABLE:
        return texts.HISTORY_UNAVAILABLE.format(label=label)
    if found.outcome is HistoryOutcome.REFUSED:
        return texts.HISTORY_REFUSED.format(label=label)
    if found.outcome is HistoryOutcome.CAPPED:
        return texts.HISTORY_CAPPED.format(limit=backend_hourly)
    lines = [texts.HISTORY_TITLE.format(label=label, start=found.start.strftime("%d/%m/%Y"),
                                        end=found.end.strftime("%d/%m/%Y")), ""]
    if not found.visits:
        lines.append(texts.HISTORY_EMPTY)
    for visit in found.visits[:MAX_VISITS]:
        kind = (texts.HISTORY_OUTPATIENT if not visit.inpatient
                else texts.HISTORY_DISCHARGED.format(date=short_date(visit.discharge_date))
                if visit.discharge_date else texts.HISTORY_INPATIENT)
        poli = texts.HISTORY_POLI.format(poli=e(visit.poli)) if visit.poli else ""
        lines.append(texts.HISTORY_VISIT.format(date=short_date(visit.date),
                                                facility=e(visit.facility), poli=poli,
                                                kind=kind))
        if visit.diagnosis:
            lines.append(texts.HISTORY_DIAGNOSIS.format(
                diagnosis=e(glossary.diagnosis(visit.diagnosis))))
    if len(found.visits) > MAX_VISITS:
        lines.append(texts.HISTORY_MORE.format(count=len(found.visits) - MAX_VISITS))
    return "\n".join(lines)


def expired_block(account: Account) -> str:
    return f"<b>{e(account.label)}</b>\n{texts.STATUS_REVERIFY_SHORT}"


def summary(views: list[StatusView], count: int) -> str:
    """The first line of /status semua: how many of the ``count`` cards are not active, and
    which (with their arrears), or that all are; cards not checked now are counted aloud."""
    known = [v.participant for v in views if v.participant is not None]
    bad = [p for p in known if not p.active]
    unknown = count - len(known)
    if bad:
        by_card = {v.participant.card: v.account.label for v in views
                   if v.participant is not None}
        which = ", ".join(
            texts.SUMMARY_INACTIVE_ARREARS.format(label=e(by_card[p.card]),
                                                  amount=rupiah(p.unpaid_amount))
            if p.arrears_known and p.unpaid_amount > 0
            else texts.SUMMARY_INACTIVE_ONE.format(label=e(by_card[p.card])) for p in bad)
        line = texts.SUMMARY_INACTIVE.format(bad=len(bad), count=count, which=which)
    elif known and unknown:
        line = texts.SUMMARY_SOME_OK.format(ok=len(known), count=count)
    elif known:
        line = (texts.SUMMARY_ALL_OK.get(len(known))
                or texts.SUMMARY_ALL_OK_MANY.format(count=len(known)))
    else:
        line = ""
    if unknown:
        note = texts.SUMMARY_UNKNOWN.format(n=unknown)
        line = f"{line}; {note}" if line else note
    return line


def all_accounts(blocks: list[str], views: list[StatusView] | None = None) -> str:
    header = texts.STATUS_ALL_HEADER.format(count=len(blocks))
    top = summary(views, len(blocks)) if views is not None else ""
    return (top + "\n\n" if top else "") + header + "\n\n" + "\n\n".join(blocks)
