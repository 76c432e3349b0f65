"""A batch PostgreSQL refuses is stored message by message; only the refused ones become dead letters."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import psycopg

from ingest.pipeline import Received, decode_batch
from ingest.service import IngestService


def test_refused_message_is_isolated_and_the_rest_stored(test_settings, pg_dsn):
    service = IngestService(test_settings)
    service.pg.connect()
    t = "TISO" + uuid.uuid4().hex[:6]
    now = datetime.now(timezone.utc).isoformat()
    topic = f"{test_settings.topic_prefix}/t/{t}/gps"
    batch = [Received(topic, f'{{"seq": {i}, "ts": "{now}", "lat": 28.2, "lon": 117.0}}'.encode(), time.time())
             for i in range(4)]
    write = service.pg.write

    def write_with_one_corrupt_row(decoded):
        # Decode guards against every value we know PostgreSQL refuses; to exercise the fallback
        # for one we do not know yet, corrupt a decoded row on its way to the (real) database.
        for f in decoded.fixes:
            if f.seq == 1:
                f.extra = '{"note": "\\u0000"}'  # jsonb refuses NUL: UntranslatableCharacter, a DataError
        return write(decoded)

    service.pg.write = write_with_one_corrupt_row
    try:
        stored = service._store_until_done(batch, decode_batch(batch, service.topics, service.limits), None)
    finally:
        service.pg.close()
    assert sorted(f.seq for f in stored.fixes) == [0, 2, 3]
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM gps_fix WHERE terminal_id = %s", (t,)).fetchone()[0] == 3
        rows = conn.execute("SELECT reason, detail, payload FROM dead_letter WHERE topic = %s", (topic,)).fetchall()
    assert [(r[0], bytes(r[2])) for r in rows] == [("store_rejected", batch[1].payload)]
    assert "UntranslatableCharacter" in rows[0][1]
