"""``python -m ingest [run | rebuild-live | forget-session CLIENT_ID]`` — the ingest service and its operator commands."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import psycopg

from ingest.connections import redis_client
from ingest.service import IngestService
from ingest.store_redis import LiveStore
from schemas.logs import setup_logging
from schemas.settings import get_settings
from schemas.topics import RedisKeys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "rebuild-live", "forget-session"],
                        help="run: the service (default); rebuild-live: restore Redis live state from PostgreSQL; "
                        "forget-session: end the broker session of an ingest process retired for good")
    parser.add_argument("client_id", nargs="?", help="forget-session: the retired process's GRIDWATCH_INGEST_CLIENT_ID")
    args = parser.parse_args(argv)
    settings = get_settings()
    setup_logging(settings)
    if args.command == "rebuild-live":
        live = LiveStore(redis_client(settings), RedisKeys(settings.redis_prefix),
                         settings.timezone, settings.event_stream_maxlen)
        with psycopg.connect(settings.pg_dsn) as conn:
            live.rebuild(conn)
        return 0
    if args.command == "forget-session":
        if not args.client_id:
            parser.error("forget-session needs the CLIENT_ID of the retired ingest process")
        forget_session(settings, args.client_id)
        return 0
    service = IngestService(settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: service.stop())
    login = settings.mqtt_login(settings.ingest_client_id)
    logging.getLogger("gridwatch.ingest").info(
        "ingest starting: broker %s:%s as %s, store %s", settings.mqtt_host, settings.mqtt_port,
        login[0] if login else "nobody (no password: run ./gw setup)", settings.pg_dsn.rsplit("@", 1)[-1])
    service.run()
    return 0


def forget_session(settings, client_id: str) -> None:
    """Connect as ``client_id`` with a clean start and no session expiry, then disconnect: the broker
    drops that session, its subscription and its queue. For a shared-group member that will never
    return (scaled down, renamed), which would otherwise hold its share of the stream until its
    session expires. Never run it for a process that is running (it would be disconnected)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    settings.secure_mqtt_client(client, client_id)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect(settings.mqtt_host, settings.mqtt_port, clean_start=True, properties=props)
    client.loop_start()
    client.disconnect()
    client.loop_stop()
    logging.getLogger("gridwatch.ingest").info("broker session of %s ended (its queue discarded)", client_id)


if __name__ == "__main__":
    sys.exit(main())
