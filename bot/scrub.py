"""What the scrubber deletes: every user message that may carry a NIK, a card number or a
code, whatever kind of message carries the text (one grammar: bot/identity.py).

Used by the scrubber that runs before every handler (handlers/start.py) and by the update
processor for an update it drops because the chat's backlog is full (bot/processor.py):
a dropped message is still deleted when it carries one.
"""

from __future__ import annotations

from collections.abc import Iterator

from telegram import Message, Update

from bot.identity import carries_identifier


def message_texts(message: Message) -> Iterator[str]:
    """Every piece of text a user can put in a message: its text or caption, a file's
    name, an audio's title and performer, a venue's title and address, a poll's question
    and options, a checklist's title and tasks, a quote, web-app data."""
    yield message.text or ""
    yield message.caption or ""
    for media in (message.document, message.audio, message.video, message.animation):
        if media is not None:
            yield media.file_name or ""
    if message.audio is not None:
        yield message.audio.title or ""
        yield message.audio.performer or ""
    if message.venue is not None:
        yield message.venue.title
        yield message.venue.address
        yield message.venue.foursquare_id or ""
        yield message.venue.google_place_id or ""
    if message.poll is not None:
        yield message.poll.question
        yield from (option.text for option in message.poll.options)
        yield message.poll.explanation or ""
    if message.checklist is not None:
        yield message.checklist.title
        yield from (task.text for task in message.checklist.tasks)
    if message.quote is not None:
        yield message.quote.text
    if message.web_app_data is not None:
        yield message.web_app_data.data


def must_scrub(message: Message) -> bool:
    """A shared contact (a phone number) always; any other message when some text in it
    may be a NIK, a card number or a code."""
    if message.contact is not None:
        return True
    texts = list(message_texts(message))
    return any(carries_identifier(text) for text in texts) or carries_identifier(
        "\n".join(texts))


def user_message(update: object) -> Message | None:
    """The user's message an update carries (new or edited), never a bot message."""
    if not isinstance(update, Update):
        return None
    return update.message or update.edited_message
