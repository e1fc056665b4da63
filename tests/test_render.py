"""Whatever a label, name or clinic contains, Telegram accepts the HTML and shows it as
typed: every interpolated value is escaped."""

from __future__ import annotations

import html
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import texts
from bot.accounts import Account
from bot.devtools.emulator import parse_html
from bot.jkn.base import FamilyMember, Participant
from bot.status import Source, StatusView
from handlers import keyboards, render

nasty = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1,
                max_size=40) | st.sampled_from(["<b>", "</i>", "&amp;", "a & b", "<script>",
                                                "\"'", "&#0;", "<a href='x'>", "\u202e"])


def participant(name: str, clinic: str) -> Participant:
    return Participant(
        name=name, nik="3174014506900011", card="0001234567890", sex="P",
        birth_date="1990-06-05", age=36, status_code="1", status_text="TIDAK <AKTIF>",
        active=False, type_text="PBPU", class_text="KELAS <I>", fktp_code="x",
        fktp_name=clinic, tmt=None, tat=None, phone="+6281234567890",
        family=(FamilyMember(name, "ANAK & ISTRI", "AKTIF", True),), unpaid_months=3,
        unpaid_amount=315000)


def account(label: str) -> Account:
    return Account(1, "slot1", "3174014506900011", "0001234567890", "X", "+6281234567890",
                   label, None, None, 0.0, 0.0, 0.0, True)


@settings(max_examples=150, deadline=None)
@given(label=nasty, name=nasty, clinic=nasty)
def test_any_label_name_or_clinic_renders_as_valid_html(label: str, name: str,
                                                        clinic: str) -> None:
    views = [StatusView(account(label), participant(name, clinic), 1_764_000_000.0, source,
                        1_764_000_000.0 + 4000) for source in Source]
    view = views[0]
    for text in (*(render.card(v, backend_hourly=30) for v in views),
                 render.card(view, backend_hourly=30, detailed=False),
                 render.all_accounts([render.card(view, backend_hourly=30),
                                      render.expired_block(account(label))]),
                 texts.SAVED.format(label=html.escape(label)),
                 texts.REMOVE_CONFIRM.format(label=html.escape(label), masked="x")):
        parse_html(text)  # raises as Telegram would on anything unescaped
    assert f"«{label}»" in parse_html(texts.SAVED.format(label=html.escape(label)))[0]
    assert f"Faskes pertama: {clinic}" in parse_html(render.card(view, backend_hourly=30))[0]


def test_the_card_says_where_the_data_came_from_and_how_old_it_is() -> None:
    at = 1_764_000_000.0  # 24/11/2025 23:00 WIB
    lines = {source: parse_html(render.card(StatusView(
        account("Ibu"), participant("SITI", "Puskesmas"), at, source, at + 600),
        backend_hourly=7))[0]
        .splitlines()[-1] for source in Source}
    assert lines[Source.LIVE] == "Diperbarui: 24/11/2025 23:00 WIB"
    assert lines[Source.CACHED] == "Data per 24/11/2025 23:00 WIB (10 menit lalu)."
    assert "belum bisa diperbarui" in lines[Source.STALE] and "10 menit lalu" in lines[Source.STALE]
    assert "7 per jam" in lines[Source.CAPPED] and "10 menit lalu" in lines[Source.CAPPED]


def test_ages_in_words() -> None:
    assert [render.age(s) for s in (5, 61, 3599, 3600, 7300, 86400 * 3)] == [
        "baru saja", "1 menit lalu", "59 menit lalu", "1 jam lalu", "2 jam lalu", "3 hari lalu"]


def test_each_callback_route_builds_the_data_its_pattern_matches() -> None:
    """A route is spelled once: the data its buttons carry is what its handler matches,
    and nothing else of the same shape is."""
    fixed = [v for v in vars(keyboards).values() if isinstance(v, keyboards.Route)]
    with_arg = [v for v in vars(keyboards).values() if isinstance(v, keyboards.ArgRoute)]
    assert len(fixed) >= 14 and len(with_arg) >= 6
    for route in fixed:
        assert re.fullmatch(route.pattern, route.data)
        assert not re.match(route.pattern, route.data + "x")
    for arg_route in with_arg:
        arg = "7" if arg_route is keyboards.LABEL else "Ab_-9"
        data = arg_route.data(arg)
        found = re.match(arg_route.pattern, data)
        assert found is not None and found.group(1) == arg == arg_route.arg_of(data)
        assert len(data.encode()) <= 64  # Telegram's limit for callback data
        assert arg_route.arg_of(data + "/x") is None and arg_route.arg_of(arg) is None
    assert len({r.data for r in fixed} | {r.prefix for r in with_arg}) == len(fixed) + len(
        with_arg), "no two routes share a spelling"
    status = keyboards.any_of(keyboards.STATUS_ALL, keyboards.STATUS_ONE)
    assert re.match(status, "st:all") and re.match(status, "st:one")
    assert not re.match(status, "st:allx")


def test_arrears_read_the_same_on_the_card_and_in_the_reminder() -> None:
    assert render.unpaid(3, 315000) == "3 bulan, Rp315.000"
    assert render.unpaid(0, 42000) == "Rp42.000"
    card = parse_html(render.card(StatusView(account("Ibu"), participant("SITI", "X"), 1.0,
                                             Source.LIVE, 1.0), backend_hourly=30))[0]
    assert "3 bulan, Rp315.000" in card
