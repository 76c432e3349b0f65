"""Which terminal ids the registry (table ``terminal``) knows, as ingest sees it.

Messages from other ids are quarantined (dead letter ``unregistered_terminal``) unless
GRIDWATCH_ACCEPT_UNREGISTERED is set, so a misconfigured or hostile client cannot fill the
live map. The set is loaded once and re-read when the table changes (``refresh()``, which
ingest's refresher thread calls every ``grid_reload_s``, like the grid's; the worker's round does
no periodic query); an id not in it is looked up by primary key before its message is judged, so
a terminal registered a moment before it first speaks is accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import psycopg

log = logging.getLogger("gridwatch.ingest.registry")

# Changes when a terminal is added, removed or renamed; one pass over a small primary key.
_FINGERPRINT = "SELECT count(*), coalesce(sum(hashtext(terminal_id)::bigint), 0) FROM terminal"


class _Session:
    """One autocommit connection of one thread, opened on first use and again after an error."""

    def __init__(self, connect: Callable[[], psycopg.Connection]):
        self._connect = connect
        self._conn: psycopg.Connection | None = None

    def query(self, sql: str, params=None) -> list:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
            self._conn.autocommit = True
        try:
            return self._conn.execute(sql, params).fetchall()
        except psycopg.Error:
            self.close()  # the next call reconnects
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


class TerminalRegistry:
    def __init__(self, connect: Callable[[], psycopg.Connection]):
        self._lookups = _Session(connect)  # the worker's: ids it has not seen
        self._checks = _Session(connect)  # the refresher's: has the table changed?
        self._ids: set[str] | None = None
        self._fingerprint: tuple[int, int] | None = None

    def registered(self, terminal_ids: Iterable[str]) -> set[str]:
        """The registered ids, current for ``terminal_ids`` (the ids of the batch about to be decoded).

        Raises psycopg.Error when the database cannot answer for an id it has not seen: the
        caller treats that as an outage (nothing judged, nothing acknowledged)."""
        if self._ids is None:
            self._reload_if_changed(self._lookups)
        ids = self._ids
        unknown = {t for t in terminal_ids if t not in ids}
        if unknown:
            found = self._lookups.query("SELECT terminal_id FROM terminal WHERE terminal_id = ANY(%s)", (list(unknown),))
            ids.update(r[0] for r in found)
        return ids

    def refresh(self) -> None:
        """Re-read the ids if the table changed; a database error keeps the ones in memory."""
        try:
            self._reload_if_changed(self._checks)
        except psycopg.Error as exc:  # nothing loaded yet: the worker's next batch tries, and waits for it
            log.error("could not read the terminal registry (%s); the next batch will try again", exc)

    def close(self) -> None:
        self._lookups.close()
        self._checks.close()

    def _reload_if_changed(self, session: _Session) -> None:
        try:
            fingerprint = tuple(session.query(_FINGERPRINT)[0])
            if self._ids is not None and fingerprint == self._fingerprint:
                return
            ids = {r[0] for r in session.query("SELECT terminal_id FROM terminal")}
        except psycopg.Error as exc:
            if self._ids is None:
                raise
            log.error("could not check the terminal registry (%s); keeping the %d ids in memory", exc, len(self._ids))
            return
        self._ids, self._fingerprint = ids, fingerprint
        log.info("terminal registry loaded: %d terminals", len(ids))
