"""Issue #18 item 3: no personal data over plain HTTP to another host.

Every URL setting follows one rule (`bot/config.py::_private_transport`): https, or plain
http to this machine only (127.0.0.0/8, ::1, `localhost`). Anything that merely looks like
a loopback address is refused with exit 2 and one line naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import URL_SETTINGS, SettingsError, load_settings
from tests.process import TOKEN, cli

#: (url, accepted) — lookalikes of a loopback address first, then the allowed forms.
TABLE: list[tuple[str, bool]] = [
    ("http://api.telegram.org", False),
    ("http://bpjs.example.id/vclaim", False),
    ("http://10.0.0.5/x", False),
    ("http://192.168.1.2:8081", False),
    ("http://0.0.0.0:8081", False),
    ("http://localhost.evil.example", False),
    ("http://localhost.evil.example:8081/x", False),
    ("http://127.0.0.1.evil.example", False),
    ("http://127.0.0.1.nip.io", False),
    ("http://127.0.0.1@evil.example", False),
    ("http://127.0.0.1:80@evil.example", False),
    ("http://user:pass@127.0.0.1:9", False),
    ("http://evil.example@127.0.0.1:9", False),
    ("http://127.0.0.1\\@evil.example", False),
    ("http://127.0.0.1%2eevil.example", False),
    ("http://[::ffff:127.0.0.1]:9", False),
    ("http://[::ffff:7f00:1]:9", False),
    ("http://[::1%25lo]:9", False),
    ("http://[::]:9", False),
    ("http://127.1:9", False),
    ("http://2130706433:9", False),
    ("http://0x7f.0.0.1:9", False),
    ("http://0177.0.0.1:9", False),
    ("http://localhost.:9", False),
    ("http://localhostevil.example", False),
    ("HTTP://evil.example", False),
    ("Http://localhost.evil.example", False),
    ("ftp://127.0.0.1/x", False),
    ("ws://127.0.0.1:9", False),
    ("//evil.example", False),
    ("https://", False),
    ("https://user:secret@bpjs.example.id", False),
    # what is allowed
    ("https://api.telegram.org", True),
    ("HTTPS://apijkn.bpjs-kesehatan.go.id/vclaim-rest", True),
    ("http://127.0.0.1:8081", True),
    ("http://127.9.8.7:8081/x", True),
    ("http://localhost:8081", True),
    ("HTTP://LOCALHOST:8081", True),
    ("http://[::1]:8081/bot", True),
]


#: What each setting needs beside it to be read at all.
CONTEXT: dict[str, dict[str, object]] = {
    "SMS_GATEWAY_URL": {"otp_sender": "http", "sms_gateway_token": "rahasia"},
    "WEBHOOK_URL": {"webhook_listen": "127.0.0.1", "webhook_port": 8443,
                    "webhook_secret": "s3cret"},
}


@pytest.mark.parametrize("setting", URL_SETTINGS)
def test_every_url_setting_refuses_plain_http_to_another_host(setting: str) -> None:
    for url, ok in TABLE:
        try:
            settings = load_settings(env_file=None, **{setting.lower(): url},
                                     **CONTEXT.get(setting, {}))
        except SettingsError as exc:
            assert not ok, (setting, url, str(exc))
            line = str(exc)
            assert "\n" not in line and f"invalid setting {setting}:" in line, line
            assert "secret" not in line and "pass" not in line, "no user info is echoed"
        else:
            assert ok, (setting, url, "accepted")
            assert getattr(settings, setting.lower()) == url.rstrip("/")


def test_over_http_run_refuses_a_bot_api_in_clear_text(tmp_path: Path) -> None:
    """`python -m bot run` with the token bound for another host over plain http: exit 2,
    one line naming TELEGRAM_API_URL, and neither the token nor anything else is sent."""
    for name, url in (("TELEGRAM_API_URL", "http://localhost.evil.example:8081"),
                      ("VCLAIM_BASE_URL", "http://127.0.0.1.evil.example/vclaim"),
                      ("PCARE_BASE_URL", "http://127.0.0.1@evil.example/pcare")):
        result = cli(tmp_path, "run", timeout=30, TELEGRAM_BOT_TOKEN=TOKEN, **{name: url})
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0], lines
        assert TOKEN not in result.stderr
