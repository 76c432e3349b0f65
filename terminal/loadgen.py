"""A fast publisher of schema-valid fixes for benchmarks (bench/ingest.py uses it).

Unlike the simulator, it does not give each terminal a session: a few MQTT connections publish for
many terminal ids (the terminal id is in the topic, and ingest authorizes by topic; binding client
ids to topics with ACLs is a production-broker matter). Each fix's ``ts`` is the moment it was
handed to the connection, and that moment is recorded per (terminal_id, seq), so a consumer can
measure publish -> stored latency.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import TypeAdapter

from schemas.gps import GpsFix
from schemas.topics import Channel, Topics
from terminal.mqtt import ConnectionOptions, MqttConnection, NetworkLoop

_FIXES = TypeAdapter(list[GpsFix])


@dataclass
class LoadStats:
    n_fixes: int = 0
    n_messages: int = 0
    n_terminals: int = 0
    started_at: float = 0.0  # epoch seconds of the first publish
    elapsed_s: float = 0.0  # first publish -> last PUBACK
    publish_s: float = 0.0  # first publish -> last publish
    pubacks: int = 0
    publish_times: dict[tuple[str, int], float] = field(default_factory=dict)  # (terminal, seq) -> epoch s
    terminal_ids: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Fixes per second, first publish to last PUBACK."""
        return self.n_fixes / self.elapsed_s if self.elapsed_s else 0.0


def publish_fixes(
    n_fixes: int,
    n_terminals: int,
    host: str,
    port: int,
    rate: float | None = None,
    batch: int = 1,
    *,
    prefix: str = "gw/v1",
    connections: int = 4,
    terminal_prefix: str | None = None,
    seq_start: int | None = None,
    username: str | None = None,
    password: str | None = None,
    window: int = 20_000,
    timeout_s: float = 600.0,
) -> LoadStats:
    """Publish ``n_fixes`` fixes for ``n_terminals`` terminals (round robin), QoS 1, over
    ``connections`` sessions; ``rate`` fixes/s if given (else as fast as the broker acknowledges,
    at most ``window`` un-acknowledged messages); ``batch`` fixes per message (a JSON array when
    > 1, the fixes of one terminal with consecutive seq). Returns when every message is PUBACKed.
    """
    topics = Topics(prefix)
    tp = terminal_prefix or f"lg{uuid.uuid4().hex[:6]}-"
    tids = [f"{tp}{i:05d}" for i in range(n_terminals)]
    base = seq_start if seq_start is not None else time.time_ns() // 1_000_000
    seqs = {t: itertools.count(base) for t in tids}
    gps_topics = {t: topics.terminal(t, Channel.GPS) for t in tids}
    stats = LoadStats(n_terminals=n_terminals, terminal_ids=tids)

    loop = NetworkLoop(name="gw-loadgen")
    unacked: set[tuple[int, int]] = set()
    conns: list[MqttConnection] = []
    for k in range(connections):

        def on_published(mid: int, k: int = k) -> None:
            unacked.discard((k, mid))
            stats.pubacks += 1

        conn = MqttConnection(
            loop,
            ConnectionOptions(
                host=host, port=port, client_id=f"{tp}pub{k}", clean_start=True, session_expiry_s=0,
                username=username, password=password, max_inflight=1000,
            ),
            on_published=on_published,
        )
        conns.append(conn)

    # messages to send, in order: (terminal, count of fixes)
    plan: list[tuple[str, int]] = []
    left = n_fixes
    i = 0
    while left > 0:
        k = min(batch, left)
        plan.append((tids[i % n_terminals], k))
        left -= k
        i += 1
    pos = 0
    t_first = 0.0
    t_last_pub = 0.0
    done = False
    rr = itertools.cycle(range(connections))

    def send_one(tid: str, k: int) -> None:
        nonlocal t_first, t_last_pub
        now = time.time()
        ts = datetime.fromtimestamp(now, UTC)
        fixes = [GpsFix(seq=next(seqs[tid]), ts=ts, lat=28.26, lon=117.03, acc_m=5.0, speed_mps=1.3, heading_deg=90.0, battery_pct=80.0) for _ in range(k)]
        payload = fixes[0].model_dump_json(exclude_none=True).encode() if k == 1 else _FIXES.dump_json(fixes, exclude_none=True)
        c = next(rr)
        mid = conns[c].publish(gps_topics[tid], payload)
        unacked.add((c, mid))
        for f in fixes:
            stats.publish_times[(tid, f.seq)] = now
        if not t_first:
            t_first = now
        t_last_pub = now
        stats.n_messages += 1
        stats.n_fixes += k

    def pump() -> None:
        nonlocal pos, done
        if not all(c.connected for c in conns):
            loop.call_later(0.01, pump)
            return
        if rate is None:
            n = max(0, min(1000, window - len(unacked)))
        else:
            elapsed = time.time() - (t_first or time.time())
            due_fixes = int(rate * elapsed) + batch
            n = max(0, (due_fixes - stats.n_fixes + batch - 1) // batch)
            n = min(n, 2000)
        for _ in range(n):
            if pos >= len(plan):
                break
            send_one(*plan[pos])
            pos += 1
        if pos < len(plan):
            if rate is None:
                loop.call_soon(pump) if n else loop.call_later(0.001, pump)
            else:
                loop.call_later(0.002, pump)
        else:
            done = True

    for c in conns:
        c.open()
    loop.call_soon(pump)
    loop.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if done and not unacked:
                break
            time.sleep(0.005)
        else:
            raise TimeoutError(f"loadgen: {len(unacked)} messages not acknowledged after {timeout_s} s")
        t_end = time.time()
    finally:
        loop.run_sync(lambda: [c.close(graceful=True) for c in conns])
        loop.stop()
    stats.started_at = t_first
    stats.elapsed_s = t_end - t_first
    stats.publish_s = t_last_pub - t_first
    return stats
