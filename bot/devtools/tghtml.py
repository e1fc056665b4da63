"""Telegram's HTML subset: what a message written in parse mode HTML shows.

Used by the Bot API stand-in to accept or refuse messages exactly as Telegram does, and by
the tests to read what a message shows.
"""

from __future__ import annotations

from html.parser import HTMLParser

ALLOWED_TAGS = frozenset({
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "tg-spoiler", "span", "blockquote", "tg-emoji",
})
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class HtmlError(ValueError):
    """Telegram would refuse this text ("can't parse entities")."""


class _EntityParser(HTMLParser):
    """Allowed tags, four named entities, numeric references; anything else fails."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.plain: list[str] = []
        self.length = 0
        self.stack: list[tuple[str, int]] = []
        self.entities: list[tuple[str, int, int]] = []

    def _fail(self, message: str) -> None:
        raise HtmlError(message)

    def _add(self, text: str) -> None:
        self.plain.append(text)
        self.length += len(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self._fail(f'Unsupported start tag "{tag}"')
        attributes = dict(attrs)
        if tag == "a" and not attributes.get("href"):
            self._fail('Can\'t find "href" attribute of tag "a"')
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            self._fail('Tag "span" must have class "tg-spoiler"')
        self.stack.append((tag, self.length))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            self._fail(f'Unmatched end tag "{tag}"')
        name, start = self.stack.pop()
        self.entities.append((name, start, self.length))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._fail(f'Unsupported start tag "{tag}"')

    def handle_data(self, data: str) -> None:
        if "<" in data or "&" in data:
            self._fail("Unsupported start tag or unescaped character")
        self._add(data)

    def handle_entityref(self, name: str) -> None:
        if name not in NAMED_ENTITIES:
            self._fail(f'Unsupported HTML entity "&{name};"')
        self._add(NAMED_ENTITIES[name])

    def handle_charref(self, name: str) -> None:
        try:
            code = int(name[1:], 16) if name[:1] in "xX" else int(name)
            self._add(chr(code))
        except (ValueError, OverflowError):
            self._fail(f'Unsupported HTML entity "&#{name};"')

    def handle_comment(self, data: str) -> None:
        self._fail("Unsupported comment")

    def handle_decl(self, decl: str) -> None:
        self._fail("Unsupported declaration")


def parse(text: str) -> tuple[str, list[tuple[str, int, int]]]:
    """The plain text and the (tag, start, end) entities of an HTML message."""
    parser = _EntityParser()
    parser.feed(text)
    parser.close()
    if parser.rawdata:
        raise HtmlError("Unsupported start tag or unescaped character")
    if parser.stack:
        raise HtmlError(f'Can\'t find end tag corresponding to start tag "{parser.stack[-1][0]}"')
    return "".join(parser.plain), parser.entities
