"""Roles, access levels and audit actions of the web. Pure: no I/O.

A request's access is one of five ordered levels; each route and callback names the least it
needs (dashboard/auth/web.py). A wall session (a wall token, or an allow-listed address) sees the
wall's live layers only; any signed-in user may also read details and replay; duty officers
and administrators may change things (orders, alerts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum, StrEnum

USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
WALL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_PASSWORD = 10


class Role(StrEnum):
    WALL_VIEWER = "wall_viewer"      # reads everything the operator page shows, changes nothing
    DUTY_OFFICER = "duty_officer"    # also sends, amends and cancels orders, acknowledges and resolves alerts
    ADMINISTRATOR = "administrator"  # what a duty officer may (users are managed with python -m dashboard.users)


class Level(IntEnum):
    ANONYMOUS = 0
    WALL = 1      # read-only wall: map layers, live positions, counters, charts, the alert feed
    VIEWER = 2    # a signed-in user: details, replay, the orders board
    OFFICER = 3   # may change state
    ADMIN = 4


ROLE_LEVEL = {Role.WALL_VIEWER: Level.VIEWER, Role.DUTY_OFFICER: Level.OFFICER, Role.ADMINISTRATOR: Level.ADMIN}


class WebAction(StrEnum):
    SIGNIN = "signin"
    SIGNIN_FAILED = "signin_failed"
    SIGNIN_LIMITED = "signin_limited"      # refused by the rate limit, password not checked
    SIGNOUT = "signout"
    WALL_OPENED = "wall_opened"            # a wall token opened a wall session
    WALL_TOKEN_FAILED = "wall_token_failed"
    USER_CREATED = "user_created"
    USER_PASSWORD = "user_password"
    USER_ROLE = "user_role"
    USER_REMOVED = "user_removed"
    WALL_TOKEN_CREATED = "wall_token_created"
    WALL_TOKEN_REVOKED = "wall_token_revoked"
    API_TOKEN_CREATED = "api_token_created"  # the orders API's bearer tokens (dashboard/tokens.py)
    API_TOKEN_REVOKED = "api_token_revoked"


@dataclass(frozen=True, slots=True)
class Access:
    """Who is asking: ``name`` is the user (or ``wall:<token>``, ``addr:<ip>``), None when anonymous."""

    level: Level
    name: str | None = None
    role: Role | None = None
    session: bytes | None = None  # the session row's id hash (sign-out deletes it)

    @property
    def is_user(self) -> bool:
        return self.role is not None

    @property
    def officer(self) -> str | None:
        """The user's name when they may change state, else None."""
        return self.name if self.level >= Level.OFFICER and self.role is not None else None


ANONYMOUS = Access(Level.ANONYMOUS)


def check_user_name(name: str) -> str:
    if not USER_NAME.match(name or ""):
        raise ValueError("a user name is 1-64 letters, digits, '.', '_', '@' or '-'")
    return name


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise ValueError("a password has at most 1024 characters")
    return password
