"""The Bot API stand-in keeps Telegram's rules, so tests catch what Telegram would reject."""

from __future__ import annotations

import pytest

from bot.devtools.emulator import NOT_MODIFIED, QUERY_INVALID, BotApiEmulator, parse_html


async def call(em: BotApiEmulator, method: str, **params: object) -> tuple[int, dict]:
    return await em.handle(method, dict(params))


def test_html_rules() -> None:
    assert parse_html("<b>Halo</b> &lt;3 &amp; &#x27;ok&#39;") == (
        "Halo <3 & 'ok'", [("b", 0, 4)])
    for bad in ("<script>x</script>", "a < b", "<b>open", "x</b>", "&nbsp;", "Tom & Jerry",
                '<a>no href</a>', "<br/>"):
        with pytest.raises(Exception, match="can't parse entities"):
            parse_html(bad)


async def test_send_rules() -> None:
    em = BotApiEmulator()
    em.open_chat(1)
    assert (await call(em, "sendMessage", chat_id=2, text="x"))[0] == 400
    status, body = await call(em, "sendMessage", chat_id=1, text="a" * 4097)
    assert status == 400 and body["description"] == "Bad Request: message is too long"
    assert (await call(em, "sendMessage", chat_id=1, text="a" * 4096))[0] == 200
    assert (await call(em, "sendMessage", chat_id=1, text="  "))[0] == 400
    status, body = await call(em, "sendMessage", chat_id=1, text="<x>", parse_mode="HTML")
    assert status == 400 and "can't parse entities" in body["description"]
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "x" * 65}]]}
    status, body = await call(em, "sendMessage", chat_id=1, text="t", reply_markup=markup)
    assert body["description"] == "Bad Request: BUTTON_DATA_INVALID"
    assert (await call(em, "frobnicate"))[0] == 404
    assert len(em.errors) == 6


async def test_edit_delete_and_callback_rules() -> None:
    em = BotApiEmulator()
    em.open_chat(1)
    _, sent = await call(em, "sendMessage", chat_id=1, text="<b>x</b>", parse_mode="HTML",
                         reply_markup={"inline_keyboard": [[{"text": "A",
                                                             "callback_data": "a"}]]})
    message_id = sent["result"]["message_id"]
    user_message = em.user_sends(1, "halo")
    assert user_message.message_id == message_id + 1, "ids are per chat, shared with the user"
    same = {"chat_id": 1, "message_id": message_id, "text": "<b>x</b>", "parse_mode": "HTML",
            "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}}
    status, body = await em.handle("editMessageText", same)
    assert status == 400 and body["description"] == NOT_MODIFIED
    assert (await em.handle("editMessageText", {**same, "text": "y"}))[0] == 200
    query = em.user_taps(1, message_id, "a")
    assert (await call(em, "answerCallbackQuery", callback_query_id=query))[0] == 200
    status, body = await call(em, "answerCallbackQuery", callback_query_id=query)
    assert status == 400 and body["description"] == QUERY_INVALID
    assert (await call(em, "deleteMessage", chat_id=1, message_id=user_message.message_id)
            )[0] == 200
    assert (await call(em, "deleteMessage", chat_id=1, message_id=user_message.message_id)
            )[0] == 400


async def test_http_form_parameters_are_decoded() -> None:
    em = BotApiEmulator()
    em.open_chat(5)
    status, body = await em.handle("sendMessage", {
        "chat_id": "5", "text": "hai",
        "reply_markup": '{"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}'})
    assert status == 200 and body["result"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "A"


async def test_a_second_poller_gets_a_conflict_like_on_telegram() -> None:
    import asyncio

    em = BotApiEmulator()
    first = asyncio.create_task(call(em, "getUpdates", timeout=1))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(call(em, "getUpdates", timeout=1))
    status, body = await first
    assert status == 409 and body["description"].startswith("Conflict: terminated by other")
    em.open_chat(1)
    em.user_sends(1, "/start")
    status, body = await second
    assert status == 200 and body["result"][0]["message"]["text"] == "/start"
