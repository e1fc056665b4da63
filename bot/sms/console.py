"""Prints the SMS to the terminal (the demo's phone)."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.identity import mask_phone


class ConsoleSender:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, phone_e164: str, message: str) -> None:
        stream = self._stream or sys.stdout
        stream.write(f"[SMS ke {mask_phone(phone_e164)}] {message}\n")
        stream.flush()

    async def aclose(self) -> None:
        """Nothing to release."""
