"""JKN participant backends: a deterministic sandbox and the VClaim and PCare bridging
clients."""

from bot.jkn.base import (
    Capability,
    FamilyMember,
    JknBackend,
    JknBadResponse,
    JknCredentialsRejected,
    JknError,
    JknInvalidRequest,
    JknNotFound,
    JknTimeout,
    JknUnavailable,
    JknUnsupported,
    Participant,
    Visit,
)

__all__ = [
    "Capability", "FamilyMember", "JknBackend", "JknBadResponse", "JknCredentialsRejected",
    "JknError", "JknInvalidRequest", "JknNotFound", "JknTimeout", "JknUnavailable",
    "JknUnsupported", "Participant", "Visit",
]
