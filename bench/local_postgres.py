"""A throwaway PostgreSQL 15 cluster with TimescaleDB preloaded, on a free port, for a fault run
or a benchmark.

The project cluster (127.0.0.1:5433) is shared: nobody may stop it, nor reconfigure it. A run
that stops PostgreSQL, or needs a setting of its own (bench/ingest.py: commit timestamps), does it
to a cluster of its own, made here the way ``./gw setup`` makes the project's (``initdb`` and
``pg_ctl`` as the ``postgres`` user, trust on loopback, deploy/postgres/gridwatch.conf).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.local_broker import free_port

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*args: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *args], cwd="/", check=True, capture_output=True, text=True)


class LocalPostgres:
    """``settings``: lines added after the project's configuration; ``small``: 128 MB of shared
    buffers, for a cluster that runs beside the project's without competing for memory."""

    def __init__(self, port: int | None = None, dbname: str = "gridwatch_faults", settings: tuple[str, ...] = (),
                 small: bool = True):
        self.port = port or free_port()
        self.dbname = dbname
        self.settings = settings
        self.small = small
        # under /tmp, not the checkout: the postgres user must be able to reach it
        self.dir = Path(tempfile.mkdtemp(prefix="gw-faults-pg-"))
        os.chmod(self.dir, 0o755)
        self.data = self.dir / "data"
        self.log = self.dir / "postgresql.log"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={self.dbname}"

    def init(self) -> LocalPostgres:
        shutil.chown(self.dir, "postgres", "postgres")
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                     "--auth-host=trust", "-E", "UTF8", "--locale=C.UTF-8")
        conf = [f"port = {self.port}", "listen_addresses = '127.0.0.1'", f"unix_socket_directories = '{self.dir}'"]
        project = ROOT / "deploy" / "postgres" / "gridwatch.conf"
        text = "\n".join(conf) + "\n" + (project.read_text() if project.exists() else "")
        if "timescaledb" not in text:
            text += "\nshared_preload_libraries = 'timescaledb'\n"
        if self.small:
            text += "\nshared_buffers = 128MB  # a throwaway cluster next to the project's: stay small\n"
        text += "".join(f"\n{line}" for line in self.settings) + "\n"
        (self.data / "postgresql.conf").open("a").write("\n" + text + "\n")
        return self

    def start(self) -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
