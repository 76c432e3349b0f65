"""The flush chunker: pure."""

from __future__ import annotations

import json

from schemas.topics import Channel
from terminal.buffer import Outgoing
from terminal.chunking import chunk_outgoing


def test_chunking_respects_count_and_size_limits() -> None:
    fix = b'{"seq":1,"ts":"2025-01-01T00:00:00Z","lat":1.0,"lon":2.0}'
    items = [Outgoing(Channel.GPS, fix)] * 1200 + [Outgoing(Channel.EVENT, b"{}")] + [Outgoing(Channel.GPS, fix)] * 3
    out = chunk_outgoing(items, 500, 64 * 1024)
    assert [o.channel for o in out] == [Channel.GPS] * 3 + [Channel.EVENT, Channel.GPS]
    assert [len(json.loads(o.payload)) for o in out if o.channel is Channel.GPS] == [500, 500, 200, 3]
    small = chunk_outgoing([Outgoing(Channel.GPS, fix)] * 100, 500, 1000)
    assert all(len(o.payload) <= 1000 for o in small) and sum(len(json.loads(o.payload)) for o in small) == 100
