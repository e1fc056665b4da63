"""One typed settings object, read from the environment and `.env`, validated at start.

A bad value never reaches the bot: :func:`load_settings` raises :class:`SettingsError` with
one line that names the setting and what is allowed, and the CLI turns that into exit 2.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import difflib
import ipaddress
import logging
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from dotenv import dotenv_values
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TOKEN_RE = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")

#: What each setting allows, in the words of the one-line error message. ``{low}`` and
#: ``{high}`` are the setting's ``Field`` limits (:func:`allowed` fills them in).
ALLOWED: dict[str, str] = {
    "TELEGRAM_BOT_TOKEN": "a bot token of the form 123456:ABC-secret (required for `run`)",
    "TELEGRAM_API_URL": "an https URL such as https://api.telegram.org, or http to a loopback "
                        "address (a local Bot API server)",
    "KK_DATA_DIR": "a writable directory",
    "KK_MASTER_KEY": "base64 of exactly 32 bytes (see `python -m bot keygen`)",
    "KK_DATABASE_URL": "empty (SQLite in KK_DATA_DIR) or a postgresql:// URL",
    "KK_MAX_ACCOUNTS": "an integer from {low} to {high}",
    "KK_SESSION_DAYS": "an integer from {low} to {high}",
    "JKN_BACKEND": "'sandbox', 'vclaim' or 'pcare'",
    "VCLAIM_BASE_URL": "an https URL, or http to a loopback address (required when "
                       "JKN_BACKEND=vclaim)",
    "VCLAIM_CONS_ID": "the consumer id (required when JKN_BACKEND=vclaim)",
    "VCLAIM_SECRET_KEY": "the consumer secret (required when JKN_BACKEND=vclaim)",
    "VCLAIM_USER_KEY": "the service user key (required when JKN_BACKEND=vclaim)",
    "PCARE_BASE_URL": "an https URL, or http to a loopback address (required when "
                      "JKN_BACKEND=pcare)",
    "PCARE_CONS_ID": "the consumer id (required when JKN_BACKEND=pcare)",
    "PCARE_SECRET_KEY": "the consumer secret (required when JKN_BACKEND=pcare)",
    "PCARE_USER_KEY": "the service user key (required when JKN_BACKEND=pcare)",
    "PCARE_USERNAME": "the PCare user name (required when JKN_BACKEND=pcare)",
    "PCARE_PASSWORD": "the PCare password (required when JKN_BACKEND=pcare)",
    "PCARE_APP_CODE": "the PCare application code, digits (default 095)",
    "OTP_SENDER": "'console' (sandbox only) or 'http'",
    "SMS_GATEWAY_URL": "an https URL, or http to a loopback address (required when "
                       "OTP_SENDER=http)",
    "SMS_GATEWAY_TOKEN": "the gateway's bearer token (required when OTP_SENDER=http)",
    "SMS_MAX_PER_HOUR": "an integer from {low} to {high} (codes per hour, all chats together)",
    "STATUS_REFRESH_SECONDS": "an integer from {low} to {high}",
    "REMINDER_TIME": "a time of day HH:MM (24 hours, Asia/Jakarta), e.g. 07:00",
    "OTP_TTL_SECONDS": "an integer from {low} to {high}",
    "OTP_MAX_ATTEMPTS": "an integer from {low} to {high}",
    "OTP_RESEND_SECONDS": "an integer from {low} to {high}",
    "WEBHOOK_URL": "an https URL Telegram can reach, or http to a loopback address (a local "
                   "Bot API server; enables webhook mode)",
    "WEBHOOK_LISTEN": "the address to listen on, e.g. 0.0.0.0 (required with WEBHOOK_URL)",
    "WEBHOOK_PORT": "a port from {low} to {high} (required with WEBHOOK_URL)",
    "WEBHOOK_SECRET": "1-256 characters of A-Z a-z 0-9 _ - (required with WEBHOOK_URL)",
    "LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    "LOG_FORMAT": "'plain' (default) or 'json' (one JSON object a line)",
    "HEALTH_LISTEN": "host:port for /healthz and /metrics in polling mode, e.g. "
                     "127.0.0.1:9464; empty or 'off' turns it off",
    "HEALTH_WINDOW_SECONDS": "an integer from 1 to 3600 (Telegram must have answered within "
                             "this many seconds for /healthz to say ok)",
    "TELEGRAM_CONFLICT_EXIT_SECONDS": "an integer from 0 to 86400 (seconds after a 409 "
                                      "Conflict before the bot exits with status 3)",
    "OPERATOR_CHAT_IDS": "chat ids separated by commas, e.g. 12345678,87654321 (the "
                         "operators' own private chats; empty: none)",
    "RETENTION_DAYS": "an integer from {low} to {high}: days without activity before a "
                      "chat's data is erased (0 turns it off; else at least 14)",
}

_SECRET_NAMES = {
    "TELEGRAM_BOT_TOKEN", "KK_MASTER_KEY", "KK_DATABASE_URL", "VCLAIM_SECRET_KEY",
    "VCLAIM_USER_KEY",
    "PCARE_SECRET_KEY", "PCARE_USER_KEY", "PCARE_PASSWORD", "SMS_GATEWAY_TOKEN",
    "WEBHOOK_SECRET",
}
_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_CHAT_ID_RE = re.compile(r"^-?[0-9]{1,19}$")
#: The shortest RETENTION_DAYS: the warning goes a week ahead, so it must come after a week.
MIN_RETENTION_DAYS = 14
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
#: What each real backend cannot start without.
_BACKEND_SETTINGS = {
    "vclaim": ("vclaim_base_url", "vclaim_cons_id", "vclaim_secret_key", "vclaim_user_key"),
    "pcare": ("pcare_base_url", "pcare_cons_id", "pcare_secret_key", "pcare_user_key",
              "pcare_username", "pcare_password"),
}


class SettingsError(Exception):
    """A setting is missing or invalid; ``str(exc)`` is the one line shown to the operator."""

    def __init__(self, name: str, detail: str | None = None) -> None:
        self.name = name
        text = f"invalid setting {name}: expected {allowed(name)}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


#: Every setting that holds a URL; one rule (:func:`_private_transport`) for all of them.
URL_SETTINGS = ("TELEGRAM_API_URL", "VCLAIM_BASE_URL", "PCARE_BASE_URL", "SMS_GATEWAY_URL",
                "WEBHOOK_URL")


def _check_url(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().rstrip("/")
    if not _URL_RE.match(value):
        raise ValueError("not an http(s) URL")
    if not _private_transport(value):
        raise ValueError("plain http only to 127.0.0.0/8, ::1 or localhost; anything else "
                         "would carry tokens and personal data in clear text")
    return value


class Settings(BaseSettings):
    """Every setting (.env.example). Field names are the environment names in lower case."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        case_sensitive=False,
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    kk_data_dir: Path = Path("./data")
    kk_master_key: SecretStr | None = None
    #: Unset: SQLite in KK_DATA_DIR; ``postgresql://…``: PostgreSQL (docs/decisions.md 46).
    kk_database_url: SecretStr | None = None
    kk_max_accounts: int = Field(default=3, ge=1, le=10)
    kk_session_days: int = Field(default=30, ge=1, le=365)
    jkn_backend: Literal["sandbox", "vclaim", "pcare"] = "sandbox"
    vclaim_base_url: str | None = None
    vclaim_cons_id: str | None = None
    vclaim_secret_key: SecretStr | None = None
    vclaim_user_key: SecretStr | None = None
    pcare_base_url: str | None = None
    pcare_cons_id: str | None = None
    pcare_secret_key: SecretStr | None = None
    pcare_user_key: SecretStr | None = None
    pcare_username: str | None = None
    pcare_password: SecretStr | None = None
    pcare_app_code: str = "095"
    otp_sender: Literal["console", "http"] = "console"
    sms_gateway_url: str | None = None
    sms_gateway_token: SecretStr | None = None
    sms_max_per_hour: int = Field(default=200, ge=1, le=100_000)
    status_refresh_seconds: int = Field(default=300, ge=0, le=86_400)
    reminder_time: str = "07:00"
    otp_ttl_seconds: int = Field(default=300, ge=1, le=600)
    otp_max_attempts: int = Field(default=5, ge=1, le=10)
    otp_resend_seconds: int = Field(default=60, ge=0, le=600)
    webhook_url: str | None = None
    webhook_listen: str | None = None
    webhook_port: int | None = Field(default=None, ge=1, le=65535)
    webhook_secret: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    #: Where KK_MASTER_KEY came from when it was not the environment (a credential file).
    _key_origin: str = PrivateAttr(default="KK_MASTER_KEY")
    log_format: Literal["plain", "json"] = "plain"
    health_listen: str = "127.0.0.1:9464"
    health_window_seconds: int = Field(default=120, ge=1, le=3600)
    telegram_conflict_exit_seconds: int = Field(default=60, ge=0, le=86_400)
    operator_chat_ids: str = ""
    retention_days: int = Field(default=365, ge=0, le=3650)

    @field_validator("kk_database_url", mode="after")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
                ("postgresql://", "postgres://")):
            raise ValueError("KK_DATABASE_URL must start with postgresql:// (unset: SQLite "
                             "in KK_DATA_DIR)")
        return value

    @property
    def database_url(self) -> str | None:
        """The PostgreSQL URL when the store is PostgreSQL, else None (SQLite)."""
        return self.kk_database_url.get_secret_value() if self.kk_database_url else None

    @field_validator("log_level", "jkn_backend", "otp_sender", "log_format", mode="before")
    @classmethod
    def _normalise_choice(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("telegram_api_url", "vclaim_base_url", "pcare_base_url", "sms_gateway_url",
                     "webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_url(value)

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("health_listen")
    @classmethod
    def _health_listen(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in ("", "off"):
            return ""
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError("not host:port")
        return value

    @field_validator("operator_chat_ids")
    @classmethod
    def _operator_chat_ids(cls, value: str) -> str:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        for part in parts:
            if not _CHAT_ID_RE.match(part) or not 0 < abs(int(part)) < 2 ** 63:
                raise ValueError("not a chat id")
        return ",".join(parts)

    @field_validator("retention_days")
    @classmethod
    def _retention_days(cls, value: int) -> int:
        if 0 < value < MIN_RETENTION_DAYS:
            raise ValueError(f"under {MIN_RETENTION_DAYS}")
        return value

    @field_validator("pcare_app_code")
    @classmethod
    def _app_code(cls, value: str) -> str:
        if not value.strip().isascii() or not value.strip().isdigit():
            raise ValueError("not digits")
        return value.strip()

    @field_validator("reminder_time")
    @classmethod
    def _reminder_time(cls, value: str) -> str:
        if not _TIME_RE.match(value.strip()):
            raise ValueError("not HH:MM")
        return value.strip()

    @field_validator("telegram_bot_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not TOKEN_RE.match(value.get_secret_value().strip()):
            raise ValueError("malformed token")
        return value

    @field_validator("kk_master_key")
    @classmethod
    def _master_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_master_key(value.get_secret_value())
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_RE.match(value.get_secret_value()):
            raise ValueError("bad characters or length")
        return value

    # -- derived values -------------------------------------------------------------------

    @property
    def token(self) -> str:
        """The bot token; only call after :meth:`require_token`."""
        assert self.telegram_bot_token is not None
        return self.telegram_bot_token.get_secret_value().strip()

    @property
    def env_master_key(self) -> str | None:
        """KK_MASTER_KEY as given, or None when the key file is used."""
        return self.kk_master_key.get_secret_value() if self.kk_master_key else None

    @property
    def reminder_at(self) -> dt.time:
        """REMINDER_TIME as a time of day (Asia/Jakarta)."""
        hours, minutes = self.reminder_time.split(":")
        return dt.time(int(hours), int(minutes))

    @property
    def database_path(self) -> Path:
        return self.kk_data_dir / "kk.sqlite3"

    @property
    def master_key_path(self) -> Path:
        return self.kk_data_dir / "master.key"

    @property
    def health_address(self) -> tuple[str, int] | None:
        """HEALTH_LISTEN as (host, port), or None when it is off."""
        if not self.health_listen:
            return None
        host, _, port = self.health_listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def key_source(self) -> str:
        """Where the master key comes from, for the start-up line (never the key)."""
        return self._key_origin if self.kk_master_key else f"key file {self.master_key_path}"

    @property
    def operator_ids(self) -> frozenset[int]:
        """OPERATOR_CHAT_IDS as chat ids (empty: no operator chat)."""
        return frozenset(int(part) for part in self.operator_chat_ids.split(",") if part)

    @property
    def log_level_number(self) -> int:
        return int(logging.getLevelName(self.log_level))

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redactor."""
        values = [getattr(self, name.lower()) for name in sorted(_SECRET_NAMES)]
        return [v.get_secret_value().strip() for v in values if isinstance(v, SecretStr)]

    def require_token(self) -> None:
        if self.telegram_bot_token is None:
            raise SettingsError("TELEGRAM_BOT_TOKEN", "missing")

    def check_consistency(self) -> None:
        """Cross-field rules that a single field validator cannot see."""
        for name in _BACKEND_SETTINGS.get(self.jkn_backend, ()):
            if getattr(self, name) is None:
                raise SettingsError(name.upper(), "missing")
        if self.otp_sender == "console" and self.jkn_backend != "sandbox":
            raise SettingsError("OTP_SENDER", f"console would print real codes; use http "
                                              f"with JKN_BACKEND={self.jkn_backend}")
        if self.otp_sender == "http":
            for name in ("sms_gateway_url", "sms_gateway_token"):
                if getattr(self, name) is None:
                    raise SettingsError(name.upper(), "missing")
        if self.webhook_url is not None:
            for name in ("webhook_listen", "webhook_port", "webhook_secret"):
                if getattr(self, name) is None:
                    raise SettingsError(name.upper(), "missing")

    def ensure_data_dir(self) -> None:
        try:
            self.kk_data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError("KK_DATA_DIR", exc.strerror or "cannot create") from None
        if not self.kk_data_dir.is_dir() or not os.access(self.kk_data_dir, os.W_OK | os.X_OK):
            raise SettingsError("KK_DATA_DIR", "not a writable directory")


def limits(name: str) -> tuple[int, int] | None:
    """A numeric setting's range as its ``Field`` declares it (the one place it is written)."""
    field = Settings.model_fields.get(name.lower())
    if field is None:
        return None
    low = next((m.ge for m in field.metadata if getattr(m, "ge", None) is not None), None)
    high = next((m.le for m in field.metadata if getattr(m, "le", None) is not None), None)
    return None if low is None or high is None else (int(low), int(high))


def allowed(name: str) -> str:
    """What a setting allows, for its one-line error message."""
    text = ALLOWED.get(name, "a valid value")
    found = limits(name)
    return text.format(low=found[0], high=found[1]) if found else text


def _private_transport(url: str) -> bool:
    """https anywhere; plain http only to this machine: 127.0.0.0/8, ::1 or `localhost`.

    The host must read the same to :func:`urllib.parse.urlsplit` and to httpx (which makes
    the connection), and a URL with user info (``http://127.0.0.1@evil.example``) or any
    other spelling of an address (``127.1``, ``0x7f.0.0.1``, ``::ffff:127.0.0.1``, a zone
    id, ``localhost.``) is refused rather than guessed at.
    """
    try:
        parts = urlsplit(url)
        seen_by_httpx = httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return False
    host = parts.hostname or ""
    if "@" in parts.netloc or "\\" in url or seen_by_httpx.userinfo or host != seen_by_httpx.host:
        return False
    scheme = parts.scheme.lower()
    if scheme == "https":
        return bool(host)
    if scheme != "http":
        return False
    if host == "localhost":
        return True
    if _IPV4_RE.match(host):
        return ipaddress.IPv4Address(host) in _LOOPBACK_V4
    return host == "::1"


_IPV4_RE = re.compile(r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
                      r"(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$")
_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")


def decode_master_key(text: str) -> bytes:
    """Decode a base64 master key, raising ValueError unless it is exactly 32 bytes."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != 32:
        raise ValueError(f"decodes to {len(raw)} bytes, not 32")
    return raw


def load_settings(*, env_file: str | None = ".env", **overrides: Any) -> Settings:
    """Read and validate all settings; raise :class:`SettingsError` naming the first bad one."""
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "SETTINGS"
        value = error.get("input")
        if name in URL_SETTINGS and error["type"] == "value_error":
            # the reason, never the value: a URL may carry user info or a token
            raise SettingsError(name, str(error.get("ctx", {}).get("error", "")) or None) \
                from None
        shown = "" if name in _SECRET_NAMES or value is None else f"got {str(value)[:40]!r}"
        raise SettingsError(name, shown or None) from None
    if _explicitly_empty("HEALTH_LISTEN", env_file):
        settings.health_listen = ""
    if settings.kk_master_key is None:
        _key_from_credentials(settings)
    settings.check_consistency()
    return settings


#: The key as a credential file: systemd's LoadCredential=, or a secret mounted in a container.
CREDENTIAL_NAME = "master.key"


def _key_from_credentials(settings: Settings) -> None:
    """``$CREDENTIALS_DIRECTORY/master.key`` stands for KK_MASTER_KEY when that is unset:
    the key then lives outside the data directory and outside its backups."""
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    if not folder:
        return
    path = Path(folder) / CREDENTIAL_NAME
    if not path.is_file():
        return
    try:
        text = path.read_text(encoding="ascii").strip()
        decode_master_key(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SettingsError("KK_MASTER_KEY", f"credential {path}: {exc}") from None
    settings.kk_master_key = SecretStr(text)
    settings._key_origin = f"credential {path}"


def _explicitly_empty(name: str, env_file: str | None) -> bool:
    """``NAME=`` given on purpose (empty values are otherwise taken as unset)."""
    for key, value in os.environ.items():
        if key.upper() == name:
            return not value.strip()
    if env_file and Path(env_file).is_file():
        for key, found in dotenv_values(env_file).items():
            if key.upper() == name:
                return not (found or "").strip()
    return False


#: Prefixes of this program's settings: an unknown name with one of them is likely a typo.
OUR_PREFIXES = ("KK_", "JKN_", "VCLAIM_", "PCARE_", "OTP_", "SMS_", "WEBHOOK_", "TELEGRAM_",
                "REMINDER_", "HEALTH_", "LOG_", "STATUS_", "OPERATOR_", "RETENTION_")


def unknown_settings(env_file: str | None = ".env",
                     environ: dict[str, str] | None = None) -> list[str]:
    """One warning line for each name in the environment or ``.env`` that looks like one of
    ours but is not, with the nearest real name when there is a close one."""
    known = sorted(name.upper() for name in Settings.model_fields)
    names = {key.upper() for key in (os.environ if environ is None else environ)}
    if env_file and Path(env_file).is_file():
        names |= {key.upper() for key in dotenv_values(env_file)}
    lines = []
    for name in sorted(names):
        if name in known or not name.startswith(OUR_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else " (ignored)"
        lines.append(f"{name} is not a setting{hint}")
    return lines
