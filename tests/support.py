"""Helpers for tests that run Gridwatch processes and wait on real services."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from schemas.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


class ServiceProcess:
    """A Gridwatch process (``python -m <module>``) run as an operator would, logs kept for failures."""

    def __init__(self, module: str, settings: Settings, log_path: Path, *args: str):
        self.module, self.settings, self.log_path, self.args = module, settings, log_path, args
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ServiceProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", self.module, *self.args], cwd=ROOT,
                                     env=self.settings.as_env(os.environ), stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            self.proc.wait(timeout=15)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, marker: str, what: str, timeout: float = 20.0) -> "ServiceProcess":
        """Wait until the process has logged ``marker`` (it is ready); fail with its log otherwise."""
        wait_until(lambda: marker in self.log_text(), timeout=timeout, what=what, context=self.log_text)
        return self


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition", context=None):
    """Poll ``predicate`` until it is truthy; on time-out fail naming ``what`` (plus ``context()``,
    e.g. a process's log tail, so a failure in CI says why)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    extra = f"\n--- context ---\n{context()[-4000:]}" if context is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r}){extra}")


@contextmanager
def migrated_database(server_dsn: str, name: str, retention_days: int, **migrate_kw) -> Iterator[str]:
    """A new database ``name`` on the cluster of ``server_dsn``, migrated; dropped afterwards."""
    import psycopg

    from db.migrate import drop_database, ensure_database, migrate

    dsn = psycopg.conninfo.make_conninfo(server_dsn, dbname=name)
    ensure_database(dsn)
    try:
        migrate(dsn, retention_days, **migrate_kw)
        yield dsn
    finally:
        drop_database(dsn)
