"""``python -m orders [run]`` — the dispatcher; ``python -m orders keygen [--if-missing | --force]``
— the platform's order-signing key pair (Settings.order_signing_key, mode 0600, and
Settings.order_public_key, the file to provision to terminals)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

import redis

from schemas.logs import setup_logging
from schemas.settings import get_settings
from schemas.signing import generate_keypair, key_id, load_private_key, load_public_key

log = logging.getLogger("gridwatch.orders")


def keygen(settings, if_missing: bool, force: bool) -> int:
    priv, pub = settings.order_signing_key, settings.order_public_key
    if priv.exists() and not force:
        if if_missing:
            kid = key_id(load_private_key(priv).public_key())
            print(f"order signing key present: {priv} (kid {kid})")
            return 0
        print(f"{priv} exists: pass --force to replace it (terminals must then get the new {pub})", file=sys.stderr)
        return 2
    kid = generate_keypair(priv, pub)
    print(f"order signing key written: {priv} (private, mode 0600) and {pub} (provision to terminals); kid {kid}")
    return 0


def wait_for_key(settings, stop: threading.Event, every_s: float = 5.0):
    """The signing key; while it is missing or unreadable, say so every ``every_s`` and wait (orders
    stay queued, nothing else stops: under honcho an exiting process would stop the whole Procfile)."""
    while not stop.is_set():
        try:
            return load_private_key(settings.order_signing_key)
        except (OSError, ValueError) as exc:
            log.error("cannot load the order signing key %s (%s): run `python -m orders keygen`; orders stay "
                      "queued until then", settings.order_signing_key, exc)
        stop.wait(every_s)
    return None


def run(settings) -> int:
    from orders.dispatcher import Dispatcher
    from orders.sender import MqttOrderSender

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    key = wait_for_key(settings, stop)
    if key is None:
        return 0
    if settings.order_signing_key.stat().st_mode & 0o077:
        log.warning("%s is readable by others: chmod 600 it", settings.order_signing_key)
    kid = key_id(key.public_key())
    try:
        if key_id(load_public_key(settings.order_public_key)) != kid:
            log.warning("%s is not the public half of the signing key: terminals provisioned with it will "
                        "refuse every order", settings.order_public_key)
    except (OSError, ValueError):
        log.warning("no public key at %s: terminals need it to accept orders", settings.order_public_key)
    sender = MqttOrderSender(settings)
    dispatcher = Dispatcher(settings, sender, key, redis.Redis.from_url(settings.redis_url, decode_responses=True))
    dispatcher.stop_event = stop
    login = settings.mqtt_login(settings.orders_client_id)
    log.info("orders dispatcher starting: broker %s:%s as %s, kid %s", settings.mqtt_host, settings.mqtt_port,
             login[0] if login else "nobody (no password: run ./gw setup)", kid)
    if not sender.start():
        log.warning("broker not reachable yet at %s:%s; orders stay queued until it is",
                    settings.mqtt_host, settings.mqtt_port)
    log.info("dispatcher ready")
    try:
        dispatcher.run()
    finally:
        sender.close()
    log.info("orders dispatcher stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orders", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="the dispatcher (default)")
    kg = sub.add_parser("keygen", help="make the Ed25519 order-signing key pair")
    kg.add_argument("--if-missing", action="store_true", help="do nothing if the private key exists")
    kg.add_argument("--force", action="store_true", help="replace an existing key (rotation)")
    args = parser.parse_args(argv)
    settings = get_settings()
    setup_logging(settings)
    if args.command == "keygen":
        return keygen(settings, args.if_missing, args.force)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
