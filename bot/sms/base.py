"""The sender interface and the OTP message text."""

from __future__ import annotations

from typing import Protocol

from bot import texts


class SmsError(Exception):
    """The SMS could not be handed to the gateway (timeout, refusal, network).

    ``maybe_delivered``: the gateway may have sent it anyway (a timeout or a 5xx after the
    request went out), so the send still counts against the caps; only a failure that
    certainly happened before delivery (refused connection, 4xx) costs nothing."""

    def __init__(self, message: str, *, maybe_delivered: bool = False) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


class SmsSender(Protocol):
    async def send(self, phone_e164: str, message: str) -> None:
        """Deliver ``message`` to ``phone_e164`` or raise :class:`SmsError`."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def otp_message(code: str, ttl_seconds: int) -> str:
    return texts.SMS_OTP.format(code=code, minutes=max(1, ttl_seconds // 60))
