"""Password hashing: argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile).

Verification of an unknown user runs against a dummy hash, so the time taken does not tell
which user names exist."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("gridwatch: no such user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored`` (None: an unknown user, always False, same cost)."""
    try:
        return _hasher.verify(stored or _DUMMY, password or "") and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """The stored hash uses older parameters than today's defaults (re-hash at the next sign-in)."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True
