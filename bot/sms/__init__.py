"""OTP delivery: a console sender for the demo and an HTTP gateway sender."""

from bot.sms.base import SmsError, SmsSender, otp_message

__all__ = ["SmsError", "SmsSender", "otp_message"]
