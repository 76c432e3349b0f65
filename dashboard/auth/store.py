"""Users, wall tokens and web sessions in PostgreSQL (db/migrations/0014_users.sql).

Every change to a user or wall token writes the web audit in the same transaction. A new
password, a role change, or removing a user ends that user's sessions; revoking a wall token
ends the walls it opened. Session ids and wall tokens are random 32-byte values of which only
the SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg

from dashboard.auth import audit, passwords
from dashboard.auth.model import ROLE_LEVEL, Access, Level, Role, WebAction, check_password, check_user_name
from dashboard.auth.model import WALL_NAME

SEEN_EVERY_S = 60  # a session's last_seen_at is written at most this often (not once per poll)


class UserError(ValueError):
    """A user or wall-token change that cannot be done (bad name, name taken, unknown name)."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    role: Role
    created_at: datetime
    password_set_at: datetime
    sessions: int


@dataclass(frozen=True, slots=True)
class WallInfo:
    name: str
    created_at: datetime
    last_used_at: datetime | None
    sessions: int


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


# ---------------------------------------------------------------- users
def create_user(conn: psycopg.Connection, name: str, role: Role, password: str, actor: str) -> None:
    check_user_name(name)
    check_password(password)
    role = Role(role)
    try:
        with conn.transaction():
            conn.execute("INSERT INTO web_user (name, role, password_hash) VALUES (%s, %s, %s)",
                         (name, role.value, passwords.hash_password(password)))
            audit.record(conn, actor, WebAction.USER_CREATED, subject=name, detail={"role": role.value})
    except psycopg.errors.UniqueViolation:
        raise UserError(f"a user named {name!r} exists already") from None


def set_password(conn: psycopg.Connection, name: str, password: str, actor: str) -> None:
    """New password; the user's sessions end (a stolen cookie dies with the old password)."""
    check_password(password)
    with conn.transaction():
        row = conn.execute("UPDATE web_user SET password_hash = %s, password_set_at = now() WHERE name = %s RETURNING name",
                           (passwords.hash_password(password), name)).fetchone()
        if row is None:
            raise UserError(f"no user named {name!r}")
        ended = conn.execute("DELETE FROM web_session WHERE user_name = %s", (name,)).rowcount
        audit.record(conn, actor, WebAction.USER_PASSWORD, subject=name, detail={"sessions_ended": ended})


def set_role(conn: psycopg.Connection, name: str, role: Role, actor: str) -> None:
    role = Role(role)
    with conn.transaction():
        row = conn.execute("UPDATE web_user SET role = %s WHERE name = %s RETURNING name", (role.value, name)).fetchone()
        if row is None:
            raise UserError(f"no user named {name!r}")
        ended = conn.execute("DELETE FROM web_session WHERE user_name = %s", (name,)).rowcount
        audit.record(conn, actor, WebAction.USER_ROLE, subject=name, detail={"role": role.value, "sessions_ended": ended})


def remove_user(conn: psycopg.Connection, name: str, actor: str) -> None:
    """Remove the user; their sessions go with them (ON DELETE CASCADE), checked on the next request."""
    with conn.transaction():
        ended = conn.execute("SELECT count(*) FROM web_session WHERE user_name = %s", (name,)).fetchone()[0]
        row = conn.execute("DELETE FROM web_user WHERE name = %s RETURNING role", (name,)).fetchone()
        if row is None:
            raise UserError(f"no user named {name!r}")
        audit.record(conn, actor, WebAction.USER_REMOVED, subject=name, detail={"role": row[0], "sessions_ended": ended})


def list_users(conn: psycopg.Connection) -> list[UserInfo]:
    rows = conn.execute(
        "SELECT u.name, u.role, u.created_at, u.password_set_at, count(s.id_hash)"
        " FROM web_user u LEFT JOIN web_session s ON s.user_name = u.name GROUP BY u.name ORDER BY u.name"
    ).fetchall()
    return [UserInfo(r[0], Role(r[1]), r[2], r[3], r[4]) for r in rows]


def check_credentials(conn: psycopg.Connection, name: str, password: str) -> Role | None:
    """The user's role when ``password`` is theirs, else None (an unknown name costs the same time)."""
    row = conn.execute("SELECT password_hash, role FROM web_user WHERE name = %s", (name,)).fetchone() if name else None
    if not passwords.verify(row[0] if row else None, password):
        return None
    if passwords.needs_rehash(row[0]):
        conn.execute("UPDATE web_user SET password_hash = %s WHERE name = %s", (passwords.hash_password(password), name))
    return Role(row[1])


# ---------------------------------------------------------------- wall tokens
def create_wall_token(conn: psycopg.Connection, name: str, actor: str) -> str:
    """Make a wall token called ``name`` and return it (the only time it is seen)."""
    if not WALL_NAME.match(name or ""):
        raise UserError("a wall token's name is 1-64 letters, digits, '.', '_' or '-'")
    token = secrets.token_urlsafe(32)
    try:
        with conn.transaction():
            conn.execute("INSERT INTO wall_token (name, token_hash) VALUES (%s, %s)", (name, digest(token)))
            audit.record(conn, actor, WebAction.WALL_TOKEN_CREATED, subject=f"wall:{name}")
    except psycopg.errors.UniqueViolation:
        raise UserError(f"a wall token named {name!r} exists already") from None
    return token


def revoke_wall_token(conn: psycopg.Connection, name: str, actor: str) -> None:
    """Delete the token; the walls it opened are signed out at their next poll."""
    with conn.transaction():
        ended = conn.execute("SELECT count(*) FROM web_session WHERE wall_name = %s", (name,)).fetchone()[0]
        if conn.execute("DELETE FROM wall_token WHERE name = %s", (name,)).rowcount == 0:
            raise UserError(f"no wall token named {name!r}")
        audit.record(conn, actor, WebAction.WALL_TOKEN_REVOKED, subject=f"wall:{name}", detail={"sessions_ended": ended})


def list_wall_tokens(conn: psycopg.Connection) -> list[WallInfo]:
    rows = conn.execute(
        "SELECT w.name, w.created_at, w.last_used_at, count(s.id_hash)"
        " FROM wall_token w LEFT JOIN web_session s ON s.wall_name = w.name GROUP BY w.name ORDER BY w.name"
    ).fetchall()
    return [WallInfo(*r) for r in rows]


def check_wall_token(conn: psycopg.Connection, token: str) -> str | None:
    """The name of the wall token ``token`` is, or None."""
    if not token or len(token) > 200:
        return None
    row = conn.execute("UPDATE wall_token SET last_used_at = now() WHERE token_hash = %s RETURNING name",
                       (digest(token),)).fetchone()
    return row[0] if row else None


# ---------------------------------------------------------------- sessions
def open_session(conn: psycopg.Connection, address: str | None, user: str | None = None, wall: str | None = None) -> str:
    """A new session for ``user`` or ``wall``; returns the session id for the (signed) cookie."""
    sid = secrets.token_urlsafe(32)
    conn.execute("INSERT INTO web_session (id_hash, user_name, wall_name, address) VALUES (%s, %s, %s, %s)",
                 (digest(sid), user, wall, address))
    return sid


def find_session(conn: psycopg.Connection, sid: str, idle_s: int) -> Access | None:
    """The access of live session ``sid``: None when it is unknown, ended, its user or token
    removed, or idle longer than ``idle_s`` (then it is deleted)."""
    if not sid or len(sid) > 200:
        return None
    h = digest(sid)
    row = conn.execute(
        "SELECT s.user_name, u.role, s.wall_name, extract(epoch FROM now() - s.last_seen_at)"
        " FROM web_session s LEFT JOIN web_user u ON u.name = s.user_name WHERE s.id_hash = %s",
        (h,),
    ).fetchone()
    if row is None:
        return None
    user, role, wall, idle = row
    if idle > idle_s:
        conn.execute("DELETE FROM web_session WHERE id_hash = %s", (h,))
        return None
    if idle > SEEN_EVERY_S:
        conn.execute("UPDATE web_session SET last_seen_at = now() WHERE id_hash = %s", (h,))
    if user is not None and role is not None:
        r = Role(role)
        return Access(ROLE_LEVEL[r], user, r, h)
    if wall is not None:
        return Access(Level.WALL, f"wall:{wall}", None, h)
    return None


def end_session(conn: psycopg.Connection, session: bytes) -> None:
    conn.execute("DELETE FROM web_session WHERE id_hash = %s", (session,))


def purge_idle(conn: psycopg.Connection, idle_s: int) -> int:
    return conn.execute("DELETE FROM web_session WHERE last_seen_at < now() - make_interval(secs => %s)", (idle_s,)).rowcount
