"""Unified social credit code (统一社会信用代码, GB 32100-2015).

18 characters: registration authority (1), entity category (1), division code (6),
organisation code (9, GB 11714 with its own check character), check character (1).
The alphabet leaves out I, O, S, V and Z; the check character is
``31 - sum(value(c_i) * 3**i mod 31) mod 31`` over the first 17 characters.
Only the final check character is validated: individual businesses often carry an
organisation-code part that does not follow GB 11714, and the bureau still registers them.
"""

from __future__ import annotations

import random

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1, 3, 9, 27, 19, 26, ...

# (registration authority, category) for the entity kinds the registry holds: 9 = market regulation.
KIND_PREFIX = {"enterprise": "91", "individual_business": "92", "farmer_coop": "93"}

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def check_char(first17: str) -> str:
    """The 18th character for the first 17; ValueError on a character outside the alphabet."""
    if len(first17) != 17:
        raise ValueError("need exactly 17 characters")
    try:
        total = sum(_VALUE[c] * w for c, w in zip(first17.upper(), WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} not allowed in a USCC") from None
    return ALPHABET[(31 - total % 31) % 31]


def validation_error(code: str) -> str | None:
    """Why ``code`` is not a valid USCC, or None when it is."""
    if not isinstance(code, str) or len(code) != 18:
        return "a USCC has 18 characters"
    code = code.upper()
    bad = [c for c in code if c not in _VALUE]
    if bad:
        return f"character {bad[0]!r} not allowed in a USCC"
    if check_char(code[:17]) != code[17]:
        return f"check character is {code[17]!r}, expected {check_char(code[:17])!r}"
    return None


def is_valid(code: str) -> bool:
    return validation_error(code) is None


def org_code_check(body8: str) -> str:
    """GB 11714 check character of an 8-character organisation code body (digits here)."""
    total = sum(int(c, 36) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def generate(rng: random.Random, division: str, kind: str = "enterprise") -> str:
    """A well-formed synthetic USCC registered in ``division`` (6 digits) for an entity kind."""
    if len(division) != 6 or not division.isdigit():
        raise ValueError("division must be a 6-digit code")
    body = "".join(rng.choice("0123456789") for _ in range(8))
    first17 = KIND_PREFIX[kind] + division + body + org_code_check(body)
    return first17 + check_char(first17)
