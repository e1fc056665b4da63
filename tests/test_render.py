"""Whatever a label, name or clinic contains, Telegram accepts the HTML and shows it as
typed: every interpolated value is escaped."""

from __future__ import annotations

import html

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import texts
from bot.accounts import Account
from bot.emulator import parse_html
from bot.jkn.base import FamilyMember, Participant
from bot.status import StatusView
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
    view = StatusView(account(label), participant(name, clinic), 1_764_000_000.0, fresh=False)
    for text in (render.card(view), render.card(view, detailed=False),
                 render.all_accounts([render.card(view), render.expired_block(account(label))]),
                 texts.SAVED.format(label=html.escape(label)),
                 texts.REMOVE_CONFIRM.format(label=html.escape(label), masked="x"),
                 keyboards.account_title(account(label))):
        parse_html(text)  # raises as Telegram would on anything unescaped
    assert f"«{label}»" in parse_html(texts.SAVED.format(label=html.escape(label)))[0]
    assert f"FKTP: {clinic}" in parse_html(render.card(view))[0]
    assert f"{label} (" in parse_html(keyboards.account_title(account(label)))[0]
