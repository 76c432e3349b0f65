"""A project-local Mosquitto with the project's own configuration, on a free port, stopped by PID.

The project broker (127.0.0.1:1884) is shared by every process and helper on the machine: a test
or a fault run that restarts or kills a broker must do it to a broker of its own. This starts
``mosquitto -c`` (in the foreground, so the PID is ours) with a copy of
deploy/mosquitto/gridwatch.conf: port, persistence folder, log and PID file changed, nothing else.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "mosquitto" / "gridwatch.conf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class LocalBroker:
    def __init__(self, workdir: Path, port: int | None = None):
        self.dir = Path(workdir)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "log" / "mosquitto.log"

    def write_config(self) -> None:
        for sub in ("mosquitto", "log", "run"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        text = CONFIG.read_text().replace("@VAR@", str(self.dir)).replace("@PORT@", str(self.port))
        # run as whoever runs us (the template drops root to the mosquitto user, who may not reach our folder)
        text = text.replace("\nuser mosquitto\n", f"\nuser {getpass.getuser()}\n")
        self.conf.write_text(text)

    def start(self, timeout: float = 10.0) -> LocalBroker:
        if not self.conf.exists():
            self.write_config()
        Path("/run/mosquitto").mkdir(exist_ok=True)  # Debian's build wants it even with our config
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], cwd="/", stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"local mosquitto on :{self.port} did not start; log:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self, kill: bool = False, timeout: float = 15.0) -> None:
        """SIGTERM (a clean stop: the broker saves its state) or SIGKILL (a crash: what came since
        the last autosave is gone)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        while _listening(self.port):
            time.sleep(0.05)

    def restart(self, kill: bool = False, down_s: float = 0.0) -> None:
        self.stop(kill=kill)
        time.sleep(down_s)
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else "(no log)"
