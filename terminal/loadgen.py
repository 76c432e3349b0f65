"""A fast publisher of schema-valid fixes for benchmarks (bench/ingest.py uses it).

Unlike the simulator, it does not give each terminal a session: a few MQTT connections publish for
many terminal ids (the terminal id is in the topic, and ingest authorizes by topic; binding client
ids to topics with ACLs is a production-broker matter). Each fix's ``ts`` is the moment it was
handed to the connection, and that moment is recorded per (terminal_id, seq), so a consumer can
measure publish -> stored latency.

It writes pre-encoded MQTT packets on plain sockets (terminal/wire.py), one thread, no client
library: through paho it cost about 80 µs of CPU per fix and topped out near 12,000 fixes/s on
its own, so on two cores a "full load" run measured the publisher more than the consumers. The
payload is the same JSON the ``GpsFix`` model writes (a unit test holds them equal).
"""

from __future__ import annotations

import itertools
import selectors
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.topics import Channel, Topics
from terminal import wire

# One reference fix; only seq and ts change. Key order and number formats as GpsFix.model_dump_json
# (exclude_none) writes them, so consumers parse what a terminal sends.
_FIX_JSON = '{"seq":%d,"ts":"%s","lat":28.26,"lon":117.03,"acc_m":5.0,"speed_mps":1.3,"heading_deg":90.0,"battery_pct":80.0}'


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


def fix_json(seq: int, epoch_s: float) -> str:
    """The load generator's fix ``seq`` stamped ``epoch_s``, as GpsFix's JSON."""
    return _FIX_JSON % (seq, datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


class _Session:
    """One MQTT connection: its socket, what waits to be written, what waits for a PUBACK."""

    def __init__(self, host: str, port: int, client_id: str, username: str | None, password: str | None):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(wire.connect(client_id, username, password))
        self.inbuf = bytearray()
        while True:
            got, used = wire.packets(self.inbuf)
            if got:
                kind, body = got[0]
                del self.inbuf[:used]
                if kind != wire.CONNACK or wire.connack_reason(body) != 0:
                    raise wire.WireError(f"{client_id}: connection refused (packet 0x{kind:02x}, reason {body[1:2].hex()})")
                break
            chunk = self.sock.recv(4096)
            if not chunk:
                raise wire.WireError(f"{client_id}: broker closed the connection before CONNACK")
            self.inbuf += chunk
        self.sock.setblocking(False)
        self.out = bytearray()
        self.unacked: set[int] = set()
        self._ids = itertools.cycle(range(1, 65536))

    def publish(self, topic: bytes, payload: bytes) -> None:
        pid = next(self._ids)
        self.unacked.add(pid)
        self.out += wire.publish_qos1(topic, pid, payload)

    def flush(self) -> None:
        if self.out:
            try:
                sent = self.sock.send(self.out)
            except BlockingIOError:
                return
            del self.out[:sent]

    def read(self) -> tuple[int, int]:
        """Take what the broker sent: (PUBACKs, refused PUBACKs)."""
        try:
            chunk = self.sock.recv(1 << 16)
        except BlockingIOError:
            return 0, 0
        if not chunk:
            raise wire.WireError("broker closed the connection")
        self.inbuf += chunk
        got, used = wire.packets(self.inbuf)
        del self.inbuf[:used]
        acked = refused = 0
        for kind, body in got:
            if kind == wire.PUBACK:
                pid, reason = wire.puback(body)
                if pid in self.unacked:
                    self.unacked.remove(pid)
                    acked += 1
                    refused += reason >= 0x80
        return acked, refused

    def close(self) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.sendall(self.out + wire.DISCONNECT_NORMAL)
        except OSError:
            pass
        self.sock.close()


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
    ``connections`` sessions; ``rate`` fixes/s if given (else as fast as the broker acknowledges),
    at most ``window`` un-acknowledged messages either way; ``batch`` fixes per message (a JSON
    array when > 1, the fixes of one terminal with consecutive seq). Returns when every message
    is PUBACKed; raises wire.WireError if the broker refused any.
    """
    topics = Topics(prefix)
    tp = terminal_prefix or f"lg{uuid.uuid4().hex[:6]}-"
    tids = [f"{tp}{i:05d}" for i in range(n_terminals)]
    base = seq_start if seq_start is not None else time.time_ns() // 1_000_000
    seqs = {t: itertools.count(base) for t in tids}
    gps_topics = {t: wire.topic_field(topics.terminal(t, Channel.GPS)) for t in tids}
    stats = LoadStats(n_terminals=n_terminals, terminal_ids=tids)
    plan = _plan(tids, n_fixes, batch)
    per_session = min(window // connections + 1, 60_000)  # packet ids: 65,535 per connection
    sessions = [_Session(host, port, f"{tp}pub{k}", username, password) for k in range(connections)]
    sel = selectors.DefaultSelector()
    for s in sessions:
        sel.register(s.sock, selectors.EVENT_READ, s)
    refused, pos, t_end = 0, 0, 0.0
    deadline = time.monotonic() + timeout_s
    rr = itertools.cycle(sessions)

    def send_one(tid: str, k: int) -> None:
        now = time.time()
        seq0 = next(seqs[tid])
        items = [fix_json(seq0, now)] + [fix_json(next(seqs[tid]), now) for _ in range(k - 1)]
        payload = (items[0] if k == 1 else "[" + ",".join(items) + "]").encode()
        session = next(rr)
        while len(session.unacked) >= per_session:
            session = next(rr)
        session.publish(gps_topics[tid], payload)
        for seq in range(seq0, seq0 + k):
            stats.publish_times[(tid, seq)] = now
        stats.started_at = stats.started_at or now
        stats.publish_s = now - stats.started_at
        stats.n_messages += 1
        stats.n_fixes += k

    try:
        while pos < len(plan) or any(s.unacked for s in sessions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"loadgen: {sum(len(s.unacked) for s in sessions)} messages not acknowledged after {timeout_s} s")
            room = connections * per_session - sum(len(s.unacked) for s in sessions)
            if rate is None:
                due = room
            else:
                elapsed = time.time() - (stats.started_at or time.time())
                due = min(room, (int(rate * elapsed) + batch - stats.n_fixes + batch - 1) // batch)
            for _ in range(max(0, min(due, 2000, len(plan) - pos))):
                send_one(*plan[pos])
                pos += 1
            for s in sessions:
                s.flush()
            busy = any(s.out for s in sessions) or (rate is None and pos < len(plan) and room > 0)
            for key, _ in sel.select(0 if busy else 0.001):
                acked, bad = key.data.read()
                stats.pubacks += acked
                refused += bad
                t_end = time.time()
    finally:
        for s in sessions:
            s.close()
        sel.close()
    if refused:
        raise wire.WireError(f"loadgen: the broker refused {refused} of {stats.n_messages} messages (not authorised?)")
    stats.elapsed_s = t_end - stats.started_at
    return stats


def _plan(tids: list[str], n_fixes: int, batch: int) -> list[tuple[str, int]]:
    """Messages to send, in order: (terminal, count of fixes), the terminals round robin."""
    plan, left, i = [], n_fixes, 0
    while left > 0:
        k = min(batch, left)
        plan.append((tids[i % len(tids)], k))
        left -= k
        i += 1
    return plan
