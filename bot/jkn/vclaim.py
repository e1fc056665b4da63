"""The BPJS VClaim bridging client (``JKN_BACKEND=vclaim``).

The protocol (signature headers, encrypted and compressed answers) lives in
:mod:`bot.jkn.bridging`. VClaim gives status, class, type, FKTP, the phone on file and the
service history; it has no arrears and no family list, so its participants say so
(``arrears_known=False``, ``family_known=False``).
Never logs the secret, the user key, an identifier or a decrypted body.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.identity import Identifier, IdKind, normalise_phone
from bot.jkn.base import (
    Capability,
    JknBadResponse,
    JknNotFound,
    Participant,
    Visit,
)
from bot.jkn.bridging import (
    DEFAULT_TIMEOUT,
    BridgingClient,
    decrypt_response,
    encrypt_response,
    sign,
    text_of,
)

__all__ = [
    "DEFAULT_TIMEOUT", "HISTORY_PATH", "HISTORY_PATH_OLDER", "VClaimBackend",
    "decrypt_response", "encrypt_response", "participant_from_peserta", "sign",
    "visit_from_histori",
]

#: Service history, as the current catalogue spells it.
HISTORY_PATH = "/monitoring/HistoriPelayanan/NoKartu/{card}/tglMulai/{start}/tglAkhir/{end}"
#: The older spelling (``tglAwal``) some deployments still route; tried once when the
#: gateway answers HTTP 404 to :data:`HISTORY_PATH` (docs/decisions.md).
HISTORY_PATH_OLDER = ("/monitoring/HistoriPelayanan/NoKartu/{card}/tglAwal/{start}/"
                      "tglAkhir/{end}")
LABEL = "VClaim"


def participant_from_peserta(peserta: dict[str, Any], nik: str = "") -> Participant:
    """Map a VClaim ``peserta`` object to the bot's model. ``nik`` (the NIK looked up, if
    any) stands in for an empty ``nik``; without either the NIK is unknown (``""``)."""
    try:
        status = peserta.get("statusPeserta") or {}
        code = text_of(status, "kode")
        phone_raw = text_of(peserta.get("mr"), "noTelepon")
        age_text = text_of(peserta.get("umur"), "umurSekarang")
        digits = "".join(ch for ch in age_text.split(" ")[0] if ch.isascii() and ch.isdigit())
        return Participant(
            name=str(peserta["nama"]), nik=text_of(peserta, "nik").strip() or nik,
            card=str(peserta["noKartu"]),
            sex=str(peserta.get("sex") or ""), birth_date=str(peserta.get("tglLahir") or ""),
            age=int(digits) if digits else None, status_code=code,
            status_text=text_of(status, "keterangan") or "-", active=code == "0",
            type_text=text_of(peserta.get("jenisPeserta"), "keterangan") or "-",
            class_text=text_of(peserta.get("hakKelas"), "keterangan") or "-",
            fktp_code=text_of(peserta.get("provUmum"), "kdProvider"),
            fktp_name=text_of(peserta.get("provUmum"), "nmProvider") or "-",
            tmt=peserta.get("tglTMT"), tat=peserta.get("tglTAT"),
            phone=normalise_phone(phone_raw) if phone_raw else None,
            arrears_known=False, family_known=False, source=LABEL,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise JknBadResponse(f"malformed peserta: {type(exc).__name__}") from None


def visit_from_histori(item: dict[str, Any]) -> Visit:
    """Map one ``histori[]`` entry; ``tglSep`` must be a yyyy-mm-dd date."""
    try:
        visit_date = date.fromisoformat(str(item["tglSep"])[:10]).isoformat()
    except (KeyError, ValueError) as exc:
        raise JknBadResponse(f"malformed histori: {type(exc).__name__}") from None
    discharge = text_of(item, "tglPlgSep")[:10] or None
    return Visit(
        date=visit_date, facility=text_of(item, "ppkPelayanan") or "-",
        poli=text_of(item, "poli"), inpatient=text_of(item, "jnsPelayanan").strip() == "1",
        diagnosis=text_of(item, "diagnosa"), discharge_date=discharge,
    )


class VClaimBackend(BridgingClient):
    """Async VClaim client with timeouts and one retry on connection errors."""

    name = "vclaim"
    label = LABEL
    capabilities = frozenset({Capability.HISTORY})

    async def lookup(self, identifier: Identifier) -> Participant:
        kind = "nik" if identifier.kind is IdKind.NIK else "nokartu"
        today = self._today().isoformat()
        data = await self._get(f"/Peserta/{kind}/{identifier.value}/tglSEP/{today}")
        if not isinstance(data, dict) or not isinstance(data.get("peserta"), dict):
            raise JknBadResponse("vclaim: no peserta in response")
        return participant_from_peserta(
            data["peserta"], identifier.value if identifier.kind is IdKind.NIK else "")

    async def history(self, card: str, start: date, end: date) -> list[Visit]:
        """Service history (``monitoring/HistoriPelayanan``) between two dates, newest first.

        A ``201`` saying "nothing there" is an empty list; a ``201`` with any other message
        is BPJS refusing the request (:class:`JknInvalidRequest`), never "no visits".
        """
        dates = {"card": card, "start": start.isoformat(), "end": end.isoformat()}
        try:
            data = await self._get(HISTORY_PATH.format(**dates),
                                   older=HISTORY_PATH_OLDER.format(**dates))
        except JknNotFound:
            return []
        if data is None or (isinstance(data, dict) and set(data) <= {"histori"}
                            and data.get("histori") is None):
            return []
        items = data.get("histori") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise JknBadResponse("vclaim: no histori in response")
        visits = [visit_from_histori(item) for item in items if isinstance(item, dict)]
        return sorted(visits, key=lambda visit: visit.date, reverse=True)
