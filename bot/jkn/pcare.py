"""The BPJS PCare bridging client (``JKN_BACKEND=pcare``), as FKTP clinics hold it.

``GET {base}/peserta/nik/{nik}`` and ``GET {base}/peserta/noka/{card}`` with VClaim's
signature headers plus ``X-authorization: Basic base64(username:password:app_code)``; the
answer is encrypted and compressed exactly like VClaim's (:mod:`bot.jkn.bridging`) and its
``response`` is the ``peserta`` object itself (also accepted wrapped as ``{"peserta": …}``).

PCare gives arrears (``tunggakan``, read in the unit :data:`TUNGGAKAN_UNIT` assumes) but no
family list and no service history. What each answer shape means is
:data:`bot.jkn.bridging.ANSWERS`; a null ``response`` with code 200 is also "not found".
An empty ``noKTP`` (the catalogue's own sample has one) is a participant whose NIK BPJS does
not give: found by card number, with the NIK unknown (``""``).
Never logs the secret, the user key, the password, an identifier or a decrypted body.
"""

from __future__ import annotations

import base64
import enum
import logging
import math
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx

from bot.identity import Identifier, IdKind, normalise_phone
from bot.jkn.base import (
    Capability,
    JknBadResponse,
    JknNotFound,
    JknUnsupported,
    Participant,
    Visit,
)
from bot.jkn.bridging import DEFAULT_TIMEOUT, BridgingClient, text_of

_LOGGER = logging.getLogger(__name__)
LABEL = "PCare"
DEFAULT_APP_CODE = "095"


def authorization(username: str, password: str, app_code: str = DEFAULT_APP_CODE) -> str:
    """The ``X-authorization`` header value."""
    token = base64.b64encode(f"{username}:{password}:{app_code}".encode()).decode("ascii")
    return f"Basic {token}"


def _date(value: Any) -> str | None:
    """A PCare date (dd-mm-yyyy; yyyy-mm-dd also accepted) as yyyy-mm-dd, None if unusable."""
    if not isinstance(value, str):
        return None
    text = value.strip()[:10]
    for pattern in ("%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    return None


def _age(birth: str | None, today: date) -> int | None:
    if birth is None:
        return None
    born = date.fromisoformat(birth)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _active(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("aktif is not a boolean")


class TunggakanUnit(enum.StrEnum):
    RUPIAH = "rupiah"
    MONTHS = "months"


#: The one place that says what PCare's ``tunggakan`` counts. No public source settles it
#: (docs/decisions.md, "What BPJS's answers are assumed to mean"): the catalogue calls it
#: "tunggakan" with a number, the known samples say 0. Rupiah is assumed.
TUNGGAKAN_UNIT = TunggakanUnit.RUPIAH


def arrears_of(value: Any) -> tuple[int, int] | None:
    """``tunggakan`` as (unpaid months, unpaid rupiah) in :data:`TUNGGAKAN_UNIT`; None when
    absent or not a number (arrears then unknown)."""
    number = _whole(value)
    if number is None:
        return None
    return (0, number) if TUNGGAKAN_UNIT is TunggakanUnit.RUPIAH else (number, 0)


def _whole(value: Any) -> int | None:
    """A non-negative whole number; None when absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(value, 0)
    try:
        amount = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(amount):
        return None
    return max(round(amount), 0)


def participant_from_pcare(peserta: dict[str, Any], today: date,
                           nik: str | None = None) -> Participant:
    """Map a PCare ``peserta`` object to the bot's model (age as of ``today``).

    ``nik`` (the NIK that was looked up) stands in when ``noKTP`` is empty; without either
    the NIK is unknown (``""``): the participant is still found, by card number.
    """
    try:
        nik_value = text_of(peserta, "noKTP").strip() or nik or ""
        active = _active(peserta["aktif"])
        birth = _date(peserta.get("tglLahir"))
        phone_raw = text_of(peserta, "noHP").strip()
        arrears = arrears_of(peserta.get("tunggakan"))
        if arrears is None and peserta.get("tunggakan") is not None:
            _LOGGER.warning("pcare: tunggakan is not a number; arrears unknown")
        provider = peserta.get("kdProviderPst")
        return Participant(
            name=str(peserta["nama"]), nik=nik_value,
            card=str(peserta["noKartu"]), sex=text_of(peserta, "sex"),
            birth_date=birth or "", age=_age(birth, today),
            status_code="0" if active else "1",
            status_text=text_of(peserta, "ketAktif") or ("AKTIF" if active else "TIDAK AKTIF"),
            active=active,
            type_text=text_of(peserta.get("jnsPeserta"), "nama") or "-",
            class_text=text_of(peserta.get("jnsKelas"), "nama") or "-",
            fktp_code=text_of(provider, "kdProvider"),
            fktp_name=text_of(provider, "nmProvider") or "-",
            tmt=_date(peserta.get("tglMulaiAktif")), tat=_date(peserta.get("tglAkhirBerlaku")),
            phone=normalise_phone(phone_raw) if phone_raw else None,
            unpaid_months=arrears[0] if arrears else 0,
            unpaid_amount=arrears[1] if arrears else 0,
            arrears_known=arrears is not None, family_known=False, source=LABEL,
            relation=text_of(peserta, "hubunganKeluarga") or None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise JknBadResponse(f"malformed peserta: {type(exc).__name__}") from None


class PCareBackend(BridgingClient):
    """Async PCare client: participant lookups with arrears, no family, no history."""

    name = "pcare"
    label = LABEL
    capabilities = frozenset({Capability.ARREARS})

    def __init__(self, base_url: str, cons_id: str, secret: str, user_key: str,
                 username: str, password: str, app_code: str = DEFAULT_APP_CODE, *,
                 timeout: httpx.Timeout = DEFAULT_TIMEOUT,
                 clock: Callable[[], float] = time.time,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, cons_id, secret, user_key, timeout=timeout, clock=clock,
                         transport=transport)
        self._authorization = authorization(username, password, app_code)

    def _extra_headers(self) -> dict[str, str]:
        return {"X-authorization": self._authorization}

    async def lookup(self, identifier: Identifier) -> Participant:
        kind = "nik" if identifier.kind is IdKind.NIK else "noka"
        data = await self._get(f"/peserta/{kind}/{identifier.value}")
        if isinstance(data, dict) and "peserta" in data:
            data = data["peserta"]
        if data is None:
            raise JknNotFound("pcare: null response")
        if not isinstance(data, dict):
            raise JknBadResponse("pcare: no peserta in response")
        nik = identifier.value if identifier.kind is IdKind.NIK else None
        return participant_from_pcare(data, self._today(), nik)

    async def history(self, card: str, start: date, end: date) -> list[Visit]:
        raise JknUnsupported("pcare: no service history")
