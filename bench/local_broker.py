"""A project-local Mosquitto with the project's own configuration, on a free port, stopped by PID.

The project broker (127.0.0.1:1884) is shared by every process and helper on the machine: a test
or a fault run that restarts or kills a broker must do it to a broker of its own. This starts
``mosquitto -c`` (in the foreground, so the PID is ours) with a copy of
deploy/mosquitto/gridwatch.conf: port, persistence folder, log and PID file changed, nothing else —
so the same accounts too: the platform's, with this checkout's passwords (broker.conf). With
``tls=True`` it also listens with TLS on a second port, with a self-signed CA made for it
(``require_client_cert=True``: and admits only clients with a certificate from that CA).
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from broker import conf
from schemas.settings import Settings


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
    def __init__(self, workdir: Path, port: int | None = None, tls: bool = False, require_client_cert: bool = False):
        self.dir = Path(workdir)
        self.port = port or free_port()
        tls_files = {"mqtt_tls_cafile": self.dir / "tls" / "ca.crt", "mqtt_tls_certfile": self.dir / "tls" / "server.crt",
                     "mqtt_tls_keyfile": self.dir / "tls" / "server.key"}
        self.settings = Settings().model_copy(update={"mqtt_tls_port": free_port() if tls else None, **tls_files,
                                                      "mqtt_tls_require_client_cert": require_client_cert})
        self.proc: subprocess.Popen | None = None
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "log" / "mosquitto.log"

    def write_config(self) -> None:
        for sub in ("mosquitto", "log", "run"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        conf.ensure_tls_files(self.settings)
        conf.init_accounts(conf.dynsec_file(self.dir), self.settings)
        # run as whoever runs us (the template drops root to the mosquitto user, who may not reach our folder)
        self.conf.write_text(conf.render(self.dir, self.port, self.settings, user=getpass.getuser()))

    @property
    def tls_port(self) -> int | None:
        return self.settings.mqtt_tls_port

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
