"""Issue #18 item 6: the scrubber deletes every NIK the parser accepts.

One grammar (bot/identity.py::digit_groups) decides what "contains a NIK or card number"
means for the parser and the scrubber alike, and every kind of message that carries text
is checked (bot/scrub.py), in a private chat, at any step of a flow, and in a group."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.devtools.harness import BotHarness, EmulatedChat
from bot.identity import Identifier, IdKind, carries_identifier, parse_identifier
from tests.conftest import consent

NIK = "3174014506900011"
#: NIKs as people type (or paste) them: each is a NIK to the parser, so it must be deleted.
NIK_FORMS = [
    "3174    0145    0690    0011",
    "3174 - - 0145 - - 0690 - - 0011",
    "3174....0145....0690....0011",
    "3174.....0145.....0690.....0011",
    "3174\n\n0145\n\n0690\n\n0011",
    "3174\n \n \n0145\n \n \n0690\n \n \n0011",
    "3174 /// 0145 /// 0690 /// 0011",
    "3174\u200b\u200b\u200b\u200b0145\u200b\u200b\u200b\u200b0690\u200b\u200b\u200b\u200b0011",
    "  3174  -  0145  -  0690  -  0011  ",
    "0001    2345    67890",  # a card number
]
#: Not a NIK to the parser (other digits), but a NIK to anyone reading it.
LOOKALIKES = [
    "³¹⁷⁴ ⁰¹⁴⁵ ⁰⁶⁹⁰ ⁰⁰¹¹",
    "NIK saya ³¹⁷⁴⁰¹⁴⁵⁰⁶⁹⁰⁰⁰¹¹ ya",
    "３１７４    ０１４５    ０６９０    ００１１",
    "nik: 3174    0145    0690    0011, tolong dicek",
]


@pytest.mark.parametrize("text", NIK_FORMS)
def test_every_nik_form_the_parser_accepts_is_one_the_scrubber_deletes(text: str) -> None:
    assert parse_identifier(text) in (Identifier(IdKind.NIK, NIK),
                                      Identifier(IdKind.CARD, "0001234567890")), text
    assert carries_identifier(text), text


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_the_parser_refuses_are_deleted_too(text: str) -> None:
    assert not isinstance(parse_identifier(text), Identifier)
    assert carries_identifier(text), text


_SEPARATOR = st.sampled_from([" ", "-", ".", "\n", "\t", "/", ",", "_", "\u00a0", "\u200b",
                              "–", "·", "*", "(", ")", "'"])


@given(st.lists(st.lists(_SEPARATOR, max_size=8).map("".join), min_size=17, max_size=17),
       st.sampled_from([NIK, "0001234567890"]))
def test_whatever_separators_the_parser_accepts_the_scrubber_deletes(
        gaps: list[str], value: str) -> None:
    text = gaps[0] + "".join(d + g for d, g in zip(value, gaps[1:], strict=False))
    if isinstance(parse_identifier(text), Identifier):
        assert carries_identifier(text), repr(text)


@given(st.text(max_size=70))
def test_any_text_the_parser_accepts_the_scrubber_deletes(text: str) -> None:
    if isinstance(parse_identifier(text), Identifier):
        assert carries_identifier(text), repr(text)


def test_short_numbers_are_left_alone() -> None:
    for text in ("123    456", "RT 005 RW 012", "Rumah 12 Blok C 34", "1 2 3 4 5",
                 "12 anak 34 cucu 56 orang 78 ekor 90 buah 12 kali 34"):
        assert not carries_identifier(text), text


def _poll(question: str, *options: str) -> dict[str, Any]:
    return {"id": question, "question": question, "total_voter_count": 0,
            "options": [{"text": text, "voter_count": 0, "persistent_id": f"o{i}"}
                        for i, text in enumerate(options)],
            "is_closed": False, "is_anonymous": True, "type": "regular",
            "allows_multiple_answers": False, "allows_revoting": False,
            "members_only": False}


#: (kind, Bot API Message fields) — every kind of message that carries text.
KINDS: list[tuple[str, dict[str, Any]]] = [
    ("caption", {"photo": [{"file_id": "p1", "file_unique_id": "u1", "width": 9,
                            "height": 9}], "caption": "ktp 3174    0145    0690    0011"}),
    ("file name", {"document": {"file_id": "d1", "file_unique_id": "u2",
                                "file_name": "KTP_3174014506900011.pdf"}}),
    ("file name, spaced", {"document": {"file_id": "d2", "file_unique_id": "u3",
                                        "file_name": "kk 3174 - - 0145 - - 0690 - - 0011.jpg"}}),
    ("video file name", {"video": {"file_id": "v1", "file_unique_id": "u4", "width": 1,
                                   "height": 1, "duration": 1,
                                   "file_name": "3174.0145.0690.0011.mp4"}}),
    ("audio title", {"audio": {"file_id": "a1", "file_unique_id": "u5", "duration": 1,
                               "title": "NIK 3174014506900011"}}),
    ("venue title", {"venue": {"location": {"latitude": -6.2, "longitude": 106.8},
                               "title": "Rumah NIK 3174014506900011", "address": "Jl. Mawar"}}),
    ("venue address", {"venue": {"location": {"latitude": -6.2, "longitude": 106.8},
                                 "title": "Rumah", "address": "3174    0145    0690    0011"}}),
    ("venue split over title and address", {"venue": {
        "location": {"latitude": -6.2, "longitude": 106.8}, "title": "3174 0145",
        "address": "0690 0011"}}),
    ("poll question", {"poll": _poll("NIK 3174014506900011 benar?", "ya", "tidak")}),
    ("poll option", {"poll": _poll("yang mana?", "0001 2345 67890", "lain")}),
    ("contact", {"contact": {"phone_number": "+6281234567890", "first_name": "Ibu"}}),
    ("superscript text", {"text": "³¹⁷⁴⁰¹⁴⁵⁰⁶⁹⁰⁰⁰¹¹"}),
    ("newline-separated text", {"text": "3174\n\n0145\n\n0690\n\n0011"}),
]
HARMLESS: list[tuple[str, dict[str, Any]]] = [
    ("a location", {"location": {"latitude": -6.2, "longitude": 106.8}}),
    ("a venue", {"venue": {"location": {"latitude": -6.2, "longitude": 106.8},
                           "title": "Puskesmas", "address": "Jl. Mawar No. 12"}}),
    ("a document", {"document": {"file_id": "d3", "file_unique_id": "u6",
                                 "file_name": "foto_2026.jpg"}}),
]


async def test_every_message_kind_with_a_nik_is_deleted_in_any_state(
        bot: BotHarness, chat: EmulatedChat) -> None:
    await consent(chat)
    for state in ("idle", "asking for the identifier"):
        if state != "idle":
            await chat.send("/tambah_kk")
        for kind, fields in KINDS:
            sent = bot.emulator.user_sends_kind(1001, fields)
            await bot.settle()
            assert sent.deleted, f"{kind} ({state}) was left in the chat"
        for kind, fields in HARMLESS:
            sent = bot.emulator.user_sends_kind(1001, fields)
            await bot.settle()
            assert not sent.deleted, f"{kind} ({state}) was deleted"


async def test_in_a_group_a_contact_and_a_file_name_are_deleted_too(bot: BotHarness) -> None:
    bot.chat(-100500, chat_type="supergroup", title="Keluarga")
    for kind, fields in KINDS:
        sent = bot.emulator.user_sends_kind(-100500, fields, user_id=77)
        await bot.settle()
        assert sent.deleted, f"{kind} in a group was left"
