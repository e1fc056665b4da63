"""JKN participant backends: a deterministic sandbox and the VClaim bridging client."""

from bot.jkn.base import (
    FamilyMember,
    JknBackend,
    JknBadResponse,
    JknCredentialsRejected,
    JknError,
    JknNotFound,
    JknTimeout,
    JknUnavailable,
    Participant,
)

__all__ = [
    "FamilyMember", "JknBackend", "JknBadResponse", "JknCredentialsRejected", "JknError",
    "JknNotFound", "JknTimeout", "JknUnavailable", "Participant",
]
