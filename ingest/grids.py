"""The grid as ingest sees it: a GridLocator in memory, reloaded when a re-import bumps its version.

The worker only reads the locator; checking the version (a new connection and a query, 5 ms here
and several times that when the host is slow) is ``refresh()``'s, which ingest's refresher thread
calls every ``grid_reload_s``: a check in the worker's round held every message that came meanwhile."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg

from grid.locate import GridLocator
from grid.store import grid_version

log = logging.getLogger("gridwatch.ingest.grid")


class GridCache:
    def __init__(self, dsn: str, connect: Callable[[], psycopg.Connection] | None = None):
        self.dsn = dsn
        self._connect = connect or (lambda: psycopg.connect(self.dsn, application_name="gridwatch-ingest-grid"))
        self._locator: GridLocator | None = None

    def locator(self) -> GridLocator | None:
        """The current locator (None while no grid is imported: fixes are stored untagged); no I/O."""
        return self._locator

    def refresh(self) -> None:
        """Load the grid if a re-import changed it (or none is loaded yet); a database error keeps what is loaded."""
        try:
            with self._connect() as conn:
                version = grid_version(conn)
                if version is None or (self._locator is not None and self._locator.version == version):
                    return
                started = time.monotonic()
                self._locator = GridLocator.from_db(conn)
        except psycopg.Error as exc:
            log.error("could not check the grid (%s); keeping the one in memory", exc)
            return
        log.info("grid loaded: %d level-2 grids, version %s, in %.0f ms", len(self._locator), version,
                 (time.monotonic() - started) * 1000)
