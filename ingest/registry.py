"""Which terminal ids the registry (table ``terminal``) knows, as ingest sees it.

Messages from other ids are quarantined (dead letter ``unregistered_terminal``) unless
GRIDWATCH_ACCEPT_UNREGISTERED is set, so a misconfigured or hostile client cannot fill the
live map. The set is loaded once and re-read when the table changes (checked every
``check_every_s``, like the grid); an id not in it is looked up by primary key before its
message is judged, so a terminal registered a moment before it first speaks is accepted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import psycopg

log = logging.getLogger("gridwatch.ingest.registry")

# Changes when a terminal is added, removed or renamed; one pass over a small primary key.
_FINGERPRINT = "SELECT count(*), coalesce(sum(hashtext(terminal_id)::bigint), 0) FROM terminal"


class TerminalRegistry:
    def __init__(self, connect: Callable[[], psycopg.Connection], check_every_s: float):
        self._connect = connect
        self.check_every_s = check_every_s
        self._conn: psycopg.Connection | None = None
        self._ids: set[str] | None = None
        self._fingerprint: tuple[int, int] | None = None
        self._checked = float("-inf")

    def registered(self, terminal_ids: Iterable[str]) -> set[str]:
        """The registered ids, current for ``terminal_ids`` (the ids of the batch about to be decoded).

        Raises psycopg.Error when the database cannot answer for an id it has not seen: the
        caller treats that as an outage (nothing judged, nothing acknowledged)."""
        now = time.monotonic()
        if self._ids is None or now - self._checked >= self.check_every_s:
            self._checked = now
            self._reload_if_changed()
        unknown = {t for t in terminal_ids if t not in self._ids}
        if unknown:
            found = self._query("SELECT terminal_id FROM terminal WHERE terminal_id = ANY(%s)", (list(unknown),))
            self._ids.update(r[0] for r in found)
        return self._ids

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _reload_if_changed(self) -> None:
        try:
            fingerprint = tuple(self._query(_FINGERPRINT)[0])
            if self._ids is not None and fingerprint == self._fingerprint:
                return
            ids = {r[0] for r in self._query("SELECT terminal_id FROM terminal")}
        except psycopg.Error as exc:
            if self._ids is None:
                raise
            log.error("could not check the terminal registry (%s); keeping the %d ids in memory", exc, len(self._ids))
            return
        self._ids, self._fingerprint = ids, fingerprint
        log.info("terminal registry loaded: %d terminals", len(ids))

    def _query(self, sql: str, params=None) -> list:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
            self._conn.autocommit = True
        try:
            return self._conn.execute(sql, params).fetchall()
        except psycopg.Error:
            self.close()  # the next call reconnects
            raise
