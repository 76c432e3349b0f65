"""The fleet simulator: virtual officers (terminal.behaviour) driving real terminal clients.

    python -m terminal simulate [--terminals N] [--speedup X] [--interval-s 5] [--duration-s D]
                                [--seed S] [--synthetic N] [--mqtt-host H] [--mqtt-port P]
                                [--order-public-key PATH]

By default every terminal in the registry (PostgreSQL: terminal → person → person_grid → grid
geometry, and the market entities of those grids) becomes a virtual officer. ``--synthetic N``
makes N terminals in square grids around Yingtan (28.26 N, 117.03 E) without a registry, for load
tests.

Time: behaviour runs in simulated time (``interval_s`` simulated seconds per tick, a tick every
``interval_s / speedup`` real seconds), but every message is stamped with the real wall clock
(UTC), so the platform's future/past timestamp checks pass at any speed-up.

Orders: every terminal verifies commands with the platform's public key (``platform_key``; the
CLI loads ``Settings.order_public_key``). Without it every order is refused (``no_key``): the
simulator says so once, loudly, at start. Verified commands go to the officer's behaviour
(terminal.response), whose answers come out of its ticks in simulated time, so ``--speedup``
shortens the human delays, the walk to the place and the time on site alike. The sessions are
persistent (clean start off, ``TerminalConfig.session_expiry_s``, a day): an officer whose network
drops gets the orders sent meanwhile when it comes back, and answers then.

In-process use (tests, benchmarks)::

    sim = Simulator(specs, host=..., port=..., prefix=..., speedup=60, seed=1)
    stats = sim.run_for(30)          # start, run 30 real seconds, stop cleanly
"""

from __future__ import annotations

import logging
import math
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry import Polygon, box, shape
from shapely.ops import unary_union

from schemas.commands import Command
from terminal.behaviour import AckAction, BehaviourConfig, EventAction, FixAction, NetworkAction, VirtualOfficer
from terminal.client import TerminalClient, TerminalConfig
from terminal.fleet import FleetTotals, TerminalFleet
from terminal.region import Entity, Region

log = logging.getLogger(__name__)

YINGTAN = (117.03, 28.26)  # lon, lat


class RegistryEmpty(RuntimeError):
    pass


@dataclass
class TerminalSpec:
    """One virtual terminal: its id, whose it is, the grids it serves and where it may walk."""

    terminal_id: str
    region: Region
    person_id: str | None = None
    role: str | None = None

    @property
    def grids(self) -> tuple[str, ...]:
        return self.region.grid_codes


@dataclass
class SimStats:
    elapsed_s: float = 0.0
    sim_elapsed_s: float = 0.0
    terminals: int = 0
    connected: int = 0
    fixes: int = 0
    events: int = 0
    acks: int = 0
    commands: int = 0
    refused: int = 0  # commands the terminals refused (bad signature, not for them, expired, no key)
    buffered: int = 0
    offline_episodes: int = 0
    events_by_kind: dict[str, int] = field(default_factory=dict)
    fleet: FleetTotals | None = None

    @property
    def fixes_per_s(self) -> float:
        return self.fixes / self.elapsed_s if self.elapsed_s else 0.0


# --- where terminals come from -------------------------------------------------------------
def load_registry(dsn: str, *, limit: int | None = None, entities_per_grid: int = 200) -> list[TerminalSpec]:
    """Every terminal of a person with grids, its region (union of its grids) and their entities."""
    import psycopg

    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            """
            SELECT t.terminal_id, p.person_id, p.role, array_agg(DISTINCT pg.grid_code ORDER BY pg.grid_code)
            FROM terminal t
            JOIN person p ON p.person_id = t.person_id
            JOIN person_grid pg ON pg.person_id = p.person_id
            GROUP BY t.terminal_id, p.person_id, p.role
            ORDER BY t.terminal_id
            """
        )
        rows = cur.fetchall()
        if limit is not None:
            rows = rows[:limit]
        codes = sorted({c for r in rows for c in r[3]})
        cur.execute("SELECT code, geom FROM grid_level2 WHERE code = ANY(%s)", (codes,))
        geoms = {code: shape(g) for code, g in cur.fetchall()}
        cur.execute("SELECT code, geom FROM grid_level1 WHERE code = ANY(%s)", (codes,))
        geoms.update({code: shape(g) for code, g in cur.fetchall()})
        cur.execute(
            """
            SELECT grid2_code, uscc, lat, lon, name, industry FROM (
                SELECT grid2_code, uscc, lat, lon, name, industry,
                       row_number() OVER (PARTITION BY grid2_code ORDER BY uscc) AS n
                FROM market_entity WHERE grid2_code = ANY(%s) AND lat IS NOT NULL AND lon IS NOT NULL
            ) e WHERE n <= %s
            """,
            (codes, entities_per_grid),
        )
        entities: dict[str, list[Entity]] = {}
        for g2, uscc, lat, lon, name, industry in cur.fetchall():
            entities.setdefault(g2, []).append(Entity(uscc, lat, lon, name, industry))
    specs = []
    for terminal_id, person_id, role, grid_codes in rows:
        parts = [geoms[c] for c in grid_codes if c in geoms]
        if not parts:
            log.warning("terminal %s: none of its grids %s has a geometry; skipped", terminal_id, grid_codes)
            continue
        region = Region(
            unary_union(parts) if len(parts) > 1 else parts[0],
            tuple(grid_codes),
            [e for c in grid_codes for e in entities.get(c, [])],
        )
        specs.append(TerminalSpec(terminal_id, region, person_id, role))
    return specs


def synthetic_specs(n: int, *, seed: int = 0, grid_m: float = 1500.0, entities_per_grid: int = 20) -> list[TerminalSpec]:
    """``n`` terminals, one square grid each (``grid_m`` wide) in a block around Yingtan, with
    made-up entities: for load tests without a registry."""
    rng = random.Random(seed)
    side = math.ceil(math.sqrt(n))
    dlat = grid_m / 111_320.0
    dlon = grid_m / (111_320.0 * math.cos(math.radians(YINGTAN[1])))
    lon0, lat0 = YINGTAN[0] - side * dlon / 2, YINGTAN[1] - side * dlat / 2
    specs = []
    for i in range(n):
        r, c = divmod(i, side)
        poly: Polygon = box(lon0 + c * dlon, lat0 + r * dlat, lon0 + (c + 1) * dlon, lat0 + (r + 1) * dlat)
        code = f"SYN{i:06d}"
        ents = [
            Entity(
                f"9136{i:06d}{k:02d}SYNTH"[:18].ljust(18, "0").upper(),
                rng.uniform(poly.bounds[1], poly.bounds[3]),
                rng.uniform(poly.bounds[0], poly.bounds[2]),
                f"合成商户{i}-{k}",
                rng.choice(["food", "drug", "retail", "equipment"]),
            )
            for k in range(entities_per_grid)
        ]
        specs.append(TerminalSpec(f"SIM-{i:05d}", Region(poly, (code,), ents), role="synthetic"))
    return specs


# --- the simulator -----------------------------------------------------------------------------
class Simulator:
    """Virtual officers on a :class:`TerminalFleet`; behaviour ticks run on the fleet's loop thread."""

    def __init__(
        self,
        specs: list[TerminalSpec],
        *,
        host: str = "127.0.0.1",
        port: int = 1884,
        prefix: str = "gw/v1",
        username: str | None = None,
        password: str | None = None,
        passwords: dict[str, str] | None = None,
        tls: Any = None,
        interval_s: float = 5.0,
        speedup: float = 1.0,
        seed: int = 0,
        behaviour: BehaviourConfig | None = None,
        state_dir: Path | None = None,
        progress_every_s: float = 5.0,
        connect_rate: float = 1000.0,
        platform_key: Any = None,
    ) -> None:
        if not specs:
            raise RegistryEmpty("no terminals to simulate")
        if platform_key is None:
            log.warning(
                "NO PLATFORM PUBLIC KEY: the %d simulated terminals cannot verify orders and will refuse every "
                "one (rejected, no_key). Provision the dispatcher's public key (Settings.order_public_key, "
                "or --order-public-key).", len(specs),
            )
        self.specs = specs
        self.interval_s = interval_s
        self.speedup = speedup
        self.period = interval_s / speedup  # real seconds between ticks of one terminal
        self.progress_every_s = progress_every_s
        self.fleet = TerminalFleet(host, port, username=username, password=password, passwords=passwords, tls=tls,
                                   connect_rate=connect_rate, name="gw-sim")
        self.officers: dict[str, VirtualOfficer] = {}
        self.stats = SimStats(terminals=len(specs))
        self._rng = random.Random(seed)
        self._t0 = 0.0
        self._running = False
        self._stop = threading.Event()
        for spec in specs:
            tid = spec.terminal_id
            self.officers[tid] = VirtualOfficer(tid, spec.region, seed=seed, config=behaviour)
            officer = self.officers[tid]
            cfg = TerminalConfig(
                terminal_id=tid,
                grids=spec.grids,
                prefix=prefix,
                state_path=(state_dir / f"{tid}.state.json") if state_dir else None,
                buffer_path=(state_dir / f"{tid}.buffer.jsonl") if state_dir else None,
                platform_key=platform_key,
            )
            self.fleet.add(cfg, on_command=self._on_command, battery=lambda o=officer: round(o.battery, 1))

    # --- running ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._t0 = time.monotonic()
        self._running = True
        self.fleet.start()
        for tid in self.officers:
            # spread the terminals' ticks evenly over one period
            self.fleet.loop.call_soon_threadsafe(self._schedule_first, tid, self._rng.uniform(0, self.period))

    def _schedule_first(self, tid: str, offset: float) -> None:
        self.fleet.loop.call_later(offset, self._tick, tid, time.monotonic() + offset)

    def sim_now(self) -> float:
        return (time.monotonic() - self._t0) * self.speedup

    def _tick(self, tid: str, due: float) -> None:
        if not self._running:
            return
        officer = self.officers[tid]
        client = self.fleet.clients[tid]
        for action in officer.tick(self.sim_now(), self.interval_s):
            self._apply(client, action)
        nxt = due + self.period
        self.fleet.loop.call_later(max(0.0, nxt - time.monotonic()), self._tick, tid, nxt)

    def _apply(self, client: TerminalClient, action: object) -> None:
        if isinstance(action, FixAction):
            client.send_fix(
                action.lat, action.lon, acc_m=action.acc_m, speed_mps=action.speed_mps,
                heading_deg=action.heading_deg, battery_pct=action.battery_pct,
            )
        elif isinstance(action, EventAction):
            client.send_event(action.kind, action.body, lat=action.lat, lon=action.lon)
            k = action.kind.value
            self.stats.events_by_kind[k] = self.stats.events_by_kind.get(k, 0) + 1
        elif isinstance(action, AckAction):
            client.send_ack(action.command_id, action.status, action.note)
        elif isinstance(action, NetworkAction):
            if action.online:
                client.go_online()
            else:
                self.stats.offline_episodes += 1
                client.go_offline()

    def _on_command(self, client: TerminalClient, command: Command, topic: str) -> None:
        # on the fleet's loop thread, like the ticks: the officer needs no lock
        self.officers[client.id].receive_command(command, self.sim_now())

    def snapshot(self) -> SimStats:
        t = self.fleet.totals()
        s = self.stats
        s.elapsed_s = time.monotonic() - self._t0 if self._t0 else 0.0
        s.sim_elapsed_s = s.elapsed_s * self.speedup
        s.connected, s.fixes, s.events, s.acks, s.commands, s.buffered = t.connected, t.fixes, t.events, t.acks, t.commands, t.buffered
        s.refused = t.refused
        s.fleet = t
        return s

    def run_for(self, seconds: float | None) -> SimStats:
        """Start (if needed), run ``seconds`` of real time (None: until :meth:`request_stop`),
        logging progress, then stop cleanly. Returns the final stats."""
        if not self._running:
            self.start()
        deadline = None if seconds is None else time.monotonic() + seconds
        last_fixes, last_t = 0, time.monotonic()
        next_log = last_t + self.progress_every_s
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                self._stop.wait(min(0.2, max(0.0, (deadline or now + 1) - now)))
                now = time.monotonic()
                if now >= next_log:
                    s = self.snapshot()
                    rate = (s.fixes - last_fixes) / (now - last_t)
                    last_fixes, last_t = s.fixes, now
                    next_log = now + self.progress_every_s
                    log.info(
                        "t=%.0fs sim=%.0fs connected=%d/%d fixes=%d (%.0f/s) events=%d buffered=%d in_flight=%d acks=%d "
                        "commands=%d refused=%d offline_episodes=%d",
                        s.elapsed_s, s.sim_elapsed_s, s.connected, s.terminals, s.fixes, rate, s.events, s.buffered,
                        s.fleet.in_flight if s.fleet else 0, s.acks, s.commands, s.refused, s.offline_episodes,
                    )
        finally:
            self.stop()
        return self.snapshot()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        """Stop ticking; terminals that were offline come back to deliver their buffers, then every
        terminal publishes retained ``online: false`` and disconnects."""
        if not self._running:
            return
        self._running = False

        def resume_all() -> None:
            for c in self.fleet.clients.values():
                c.conn.resume()

        self.fleet.loop.run_sync(resume_all)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            c.buffer.unsent or not c._ready for c in self.fleet.clients.values()
        ):
            time.sleep(0.05)
        self.fleet.stop(graceful=True)


def install_sigint(sim: Simulator) -> None:
    """Ctrl-C / SIGTERM: stop cleanly (offline status published) instead of dying."""

    def handler(signum: int, frame: object) -> None:
        log.info("signal %d: stopping", signum)
        sim.request_stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
