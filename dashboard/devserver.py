"""Run the wall against a synthetic city: used by the browser test and bench/wall.py, and
handy for a look (``python -m dashboard.devserver --port 8050``; Ctrl-C drops everything).

It creates a scratch database on the configured cluster (migrated by db.migrate), writes the
synthetic registry and a day of events, keeps 1,000 terminals moving in Redis under a
unique key prefix, and serves the app with gunicorn (gthread) on a free port.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import redis

from dashboard import synthetic
from dashboard.auth import store as auth_store
from dashboard.auth.model import Role
from db.migrate import drop_database
from schemas.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# name -> (role, password) of the scratch database's users (a throwaway database: known passwords)
DEV_USERS = {"duty": ("duty_officer", "duty-dev-password"), "viewer": ("wall_viewer", "viewer-dev-password")}


class SyntheticWall:
    """Scratch DB + live fleet + gunicorn. Use as a context manager."""

    def __init__(self, base: Settings, *, terminals: int = 1000, entities: int = 70_000, port: int | None = None,
                 workers: int = 2, language: str | None = None, move: bool = True, log_path: Path | None = None,
                 extra: dict | None = None, demo: bool = False, users: dict[str, tuple[str, str]] | None = None):
        self.base = base
        self.n_terminals, self.n_entities = terminals, entities
        self.port = port or free_port()
        self.workers = workers
        self.move = move
        self.dbname = f"gw_wall_{uuid.uuid4().hex[:8]}"
        self.prefix = f"gwwall:{uuid.uuid4().hex[:8]}:"
        self.dsn = psycopg.conninfo.make_conninfo(base.pg_dsn, dbname=self.dbname)
        self.settings = Settings(**{**base.model_dump(), "pg_dsn": self.dsn, "redis_prefix": self.prefix,
                                    **({"language": language} if language else {}), **(extra or {})})
        self.log_path = log_path or Path(f"/tmp/{self.dbname}.log")
        self.proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.steps = 0
        self.demo = demo
        self.users = dict(users if users is not None else DEV_USERS)
        self.wall_token = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def wall_url(self) -> str:
        """The wall page opened with this server's wall token (a read-only wall session)."""
        return f"{self.url}/wall?token={self.wall_token}"

    def setup_data(self) -> None:
        from db.migrate import ensure_database, migrate

        ensure_database(self.dsn)
        migrate(self.dsn, self.base.retention_days)
        if self.demo:  # the real demo city of grid/ (python -m grid demo)
            subprocess.run([sys.executable, "-m", "grid", "--dsn", self.dsn, "-q", "demo", "--out", f"/tmp/{self.dbname}-demo"],
                           cwd=ROOT, check=True, env=self.settings.as_env(os.environ))
            with psycopg.connect(self.dsn, autocommit=True) as c:
                self.city = synthetic.city_from_db(c)
        else:
            self.city = synthetic.build_city(n_terminals=self.n_terminals, n_entities=self.n_entities)
        with psycopg.connect(self.dsn, autocommit=True) as c:
            if not self.demo:
                synthetic.write_registry(c, self.city)
            synthetic.write_history(c, self.city)
            synthetic.write_tracks(c, self.city)
            c.execute(
                "INSERT INTO alert (kind, severity, terminal_id, grid2_code, lat, lon, title, opened_at) VALUES"
                " ('sos', 'critical', %s, %s, %s, %s, %s, now() - interval '2 minutes'),"
                " ('offline', 'warning', %s, %s, %s, %s, %s, now() - interval '9 minutes')",
                (self.city.terminals[3]["terminal_id"], self.city.level2[20]["code"], self.city.level2[20]["lat"], self.city.level2[20]["lon"],
                 "紧急求助：" + self.city.terminals[3]["terminal_id"] if self.settings.language == "zh-CN" else "SOS " + self.city.terminals[3]["terminal_id"],
                 self.city.terminals[-1]["terminal_id"], self.city.level2[300]["code"], self.city.level2[300]["lat"], self.city.level2[300]["lon"],
                 ("终端离线超过10分钟：" if self.settings.language == "zh-CN" else "Offline > 10 min: ") + self.city.terminals[-1]["terminal_id"]),
            )
        # Who may look: a duty officer, a read-only viewer and a wall token (printed by main()).
        with psycopg.connect(self.dsn, autocommit=True) as c:
            for name, (role, password) in self.users.items():
                auth_store.create_user(c, name, Role(role), password, "devserver")
            self.wall_token = auth_store.create_wall_token(c, "devserver-wall", "devserver")
        self.redis = redis.Redis.from_url(self.settings.redis_url)
        self.fleet = synthetic.LiveFleet(self.city, self.redis, self.prefix, self.settings.timezone)
        self.fleet.step()
        import random

        rnd = random.Random(5)
        counts = {}
        for g in self.city.level2:
            if rnd.random() < 0.6:
                counts[(g["code"], "inspection.completed")] = rnd.randint(1, 9)
            if rnd.random() < 0.25:
                counts[(g["code"], "report")] = rnd.randint(1, 3)
        self.fleet.counts(counts)

    def _mover(self) -> None:
        while not self._stop.wait(1.0):
            self.fleet.step()
            self.steps += 1

    def pause_fleet(self) -> None:
        """Stop moving the fleet (a benchmark writes its own batches meanwhile)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=3)

    def resume_fleet(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._mover, daemon=True)
        self._thread.start()

    def start(self) -> "SyntheticWall":
        self.setup_data()
        env = self.settings.as_env(os.environ)
        env["GRIDWATCH_WEB_BIND"] = f"127.0.0.1:{self.port}"
        env["GRIDWATCH_WEB_WORKERS"] = str(self.workers)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "dashboard.app:server"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"wall did not answer on {self.url}; see {self.log_path}")
        if self.move:
            self._thread = threading.Thread(target=self._mover, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=3)
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            self.fleet.clear()
        except Exception:
            pass
        drop_database(self.dsn)

    def __enter__(self) -> "SyntheticWall":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8050)
    ap.add_argument("--terminals", type=int, default=1000)
    ap.add_argument("--entities", type=int, default=70_000)
    ap.add_argument("--language", choices=["zh-CN", "en"], default=None)
    ap.add_argument("--demo", action="store_true", help="load the demo city of grid/ (python -m grid demo) instead of rectangles")
    args = ap.parse_args()

    def _term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    with SyntheticWall(get_settings(), terminals=args.terminals, entities=args.entities, port=args.port, language=args.language, demo=args.demo) as w:
        print(f"wall on {w.url} (operator: sign in as duty / {DEV_USERS['duty'][1]}) and "
              f"{w.url}/wall?token={w.wall_token}; log {w.log_path}; Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
