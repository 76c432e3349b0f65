"""Every MQTT topic and every Redis key Gridwatch uses, in one place.

Topic grammar (prefix default ``gw/v1``)::

    {prefix}/t/{terminal_id}/gps      terminal -> platform, one GpsFix or a JSON array of them
    {prefix}/t/{terminal_id}/event    terminal -> platform, a TerminalEvent
    {prefix}/t/{terminal_id}/ack      terminal -> platform, a CommandAck
    {prefix}/t/{terminal_id}/status   terminal -> platform, a TerminalStatus (retained; also the Last Will)
    {prefix}/cmd/all                  platform -> every terminal, a Command
    {prefix}/cmd/grid/{grid_code}     platform -> terminals of one grid
    {prefix}/cmd/t/{terminal_id}      platform -> one terminal
    {prefix}/rcpt/t/{terminal_id}     platform -> one terminal, a Receipt: which of its seqs are stored
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

TERMINAL_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_TERMINAL_ID = re.compile(TERMINAL_ID_PATTERN)


class Channel(StrEnum):
    """What a terminal publishes on: the last level of its topic."""

    GPS = "gps"
    EVENT = "event"
    ACK = "ack"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class TerminalTopic:
    terminal_id: str
    channel: Channel


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str = "gw/v1"

    def terminal(self, terminal_id: str, channel: Channel | str) -> str:
        return f"{self.prefix}/t/{terminal_id}/{Channel(channel).value}"

    def terminal_subscription(self, channel: Channel | str = "+") -> str:
        """Subscription filter for one channel of every terminal (``+`` for all channels)."""
        last = channel if channel == "+" else Channel(channel).value
        return f"{self.prefix}/t/+/{last}"

    def shared(self, group: str, topic_filter: str) -> str:
        """An MQTT v5 shared subscription: processes in one group split the messages."""
        return f"$share/{group}/{topic_filter}"

    @property
    def cmd_all(self) -> str:
        return f"{self.prefix}/cmd/all"

    def cmd_grid(self, grid_code: str) -> str:
        return f"{self.prefix}/cmd/grid/{grid_code}"

    def cmd_terminal(self, terminal_id: str) -> str:
        return f"{self.prefix}/cmd/t/{terminal_id}"

    def receipt(self, terminal_id: str) -> str:
        """Where ingest tells one terminal which of its messages are stored (schemas.receipt)."""
        return f"{self.prefix}/rcpt/t/{terminal_id}"

    def parse_terminal(self, topic: str) -> TerminalTopic | None:
        """``{prefix}/t/{id}/{channel}`` -> TerminalTopic; anything else -> None."""
        return _parse_terminal(self.prefix, topic)


# A fleet uses a few thousand topics over and over (ingest parses one per message); bounded, so a
# flood of made-up topics only evicts.
@lru_cache(maxsize=65_536)
def _parse_terminal(prefix: str, topic: str) -> TerminalTopic | None:
    head = prefix + "/t/"
    if not topic.startswith(head):
        return None
    rest = topic[len(head) :].split("/")
    if len(rest) != 2 or not _TERMINAL_ID.match(rest[0]):
        return None
    try:
        return TerminalTopic(rest[0], Channel(rest[1]))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Live-state keys. Redis keeps nothing durable: every key here is rebuilt from PostgreSQL."""

    prefix: str = "gw:"

    @property
    def last_fix(self) -> str:
        """HASH terminal_id -> compact JSON of its newest fix (lat, lon, ts, grid, battery, ...)."""
        return f"{self.prefix}live:last"

    @property
    def geo(self) -> str:
        """GEO set of the newest position of each terminal (radius search: "officers near here")."""
        return f"{self.prefix}live:geo"

    @property
    def last_seen(self) -> str:
        """ZSET terminal_id -> epoch seconds of its newest fix, event or status message."""
        return f"{self.prefix}live:seen"

    @property
    def session(self) -> str:
        """HASH terminal_id -> "1"/"0": what the terminal last said on its status topic."""
        return f"{self.prefix}live:session"

    def counters(self, day: str) -> str:
        """HASH for one local day (YYYY-MM-DD): field ``{grid2_code or '-'}|{kind}`` -> count."""
        return f"{self.prefix}count:{day}"

    @property
    def events(self) -> str:
        """STREAM of newly stored events and status changes, for the alerts engine and the wall."""
        return f"{self.prefix}stream:events"

    @property
    def built(self) -> str:
        """STRING set once live state has been rebuilt from PostgreSQL after Redis lost it."""
        return f"{self.prefix}live:built"

    @property
    def rebuild_lock(self) -> str:
        """STRING held (with a TTL) by the one ingest process rebuilding live state."""
        return f"{self.prefix}live:rebuilding"

    @property
    def version(self) -> str:
        """STRING incremented on every batch written: a cheap "anything new?" for the wall."""
        return f"{self.prefix}live:version"
