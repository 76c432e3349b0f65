"""The grid as ingest sees it: a GridLocator in memory, reloaded when a re-import bumps its version."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg

from grid.locate import GridLocator
from grid.store import grid_version

log = logging.getLogger("gridwatch.ingest.grid")


class GridCache:
    def __init__(self, dsn: str, check_every_s: float, connect: Callable[[], psycopg.Connection] | None = None):
        self.dsn = dsn
        self._connect = connect or (lambda: psycopg.connect(self.dsn, application_name="gridwatch-ingest-grid"))
        self.check_every_s = check_every_s
        self._locator: GridLocator | None = None
        self._checked = float("-inf")

    def locator(self) -> GridLocator | None:
        """The current locator (None while no grid is imported: fixes are stored untagged)."""
        now = time.monotonic()
        if now - self._checked >= self.check_every_s:
            self._checked = now
            self._reload_if_changed()
        return self._locator

    def _reload_if_changed(self) -> None:
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
