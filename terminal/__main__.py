"""``python -m terminal simulate ...``: run the fleet simulator (see terminal/simulator.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from schemas.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    s = get_settings()
    parser = argparse.ArgumentParser(prog="python -m terminal")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="run virtual terminals against the broker")
    sim.add_argument("--terminals", type=int, default=None, help="at most this many terminals (default: every one in the registry)")
    sim.add_argument("--synthetic", type=int, default=None, metavar="N", help="N terminals around Yingtan without a registry (load tests)")
    sim.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per real second (default 1)")
    sim.add_argument("--interval-s", type=float, default=5.0, help="simulated seconds between GPS fixes (default 5)")
    sim.add_argument("--duration-s", type=float, default=None, help="real seconds to run (default: until Ctrl-C)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--mqtt-host", default=s.mqtt_host)
    sim.add_argument("--mqtt-port", type=int, default=s.mqtt_port)
    sim.add_argument("--prefix", default=s.topic_prefix, help="topic prefix")
    sim.add_argument("--pg-dsn", default=s.pg_dsn, help="registry database")
    sim.add_argument("--state-dir", type=Path, default=None, help="persist each terminal's seq and offline buffer here")
    sim.add_argument("--progress-s", type=float, default=5.0, help="seconds between progress lines")
    sim.add_argument(
        "--order-public-key", type=Path, default=s.order_public_key,
        help=f"the platform's Ed25519 public key (PEM) the terminals verify orders with (default {s.order_public_key})",
    )
    fb = sub.add_parser("fleet-bench", help="measure N terminal sessions on one network thread")
    fb.add_argument("--terminals", type=int, default=1000)
    fb.add_argument("--fixes-per-terminal", type=int, default=20)
    fb.add_argument("--steady-s", type=float, default=10.0, help="seconds of one fix per terminal per second")
    fb.add_argument("--mqtt-host", default=s.mqtt_host)
    fb.add_argument("--mqtt-port", type=int, default=s.mqtt_port)
    args = parser.parse_args(argv)
    if args.command == "fleet-bench":
        from broker.dev import dev_settings
        from terminal.measure import fleet_bench

        dev = dev_settings(s)  # made-up terminal ids: no accounts of their own, the development one
        print(fleet_bench(args.terminals, args.mqtt_host, args.mqtt_port, args.fixes_per_terminal, args.steady_s,
                          username=dev.mqtt_username, password=dev.mqtt_password))
        return 0
    logging.basicConfig(level=s.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("terminal.simulate")

    from terminal.simulator import Simulator, install_sigint, load_registry, synthetic_specs

    if args.synthetic is not None:
        specs = synthetic_specs(args.synthetic, seed=args.seed)
        # Their ids are in no registry: ingest quarantines them unless told to accept them.
        log.warning("synthetic terminals are not in the registry: run ingest with GRIDWATCH_ACCEPT_UNREGISTERED=true "
                    "or their messages go to the dead letters (unregistered_terminal)")
    else:
        try:
            specs = load_registry(args.pg_dsn, limit=args.terminals)
        except Exception as exc:  # psycopg.Error and a missing table alike: say what and where
            log.error("cannot read the terminal registry at %s: %s", args.pg_dsn, exc)
            return 2
        if not specs:
            log.error(
                "the registry at %s has no terminals of people with grids: import the demo city first "
                "(see the grid/ README), or run with --synthetic N",
                args.pg_dsn,
            )
            return 2
    if args.terminals is not None:
        specs = specs[: args.terminals]
    platform_key = None
    if args.order_public_key.exists():
        from schemas.signing import key_id, load_public_key

        try:
            platform_key = load_public_key(args.order_public_key)
        except (ValueError, OSError) as exc:
            log.error("cannot use %s as the platform's Ed25519 public key (PEM): %s; fix it or pass --order-public-key", args.order_public_key, exc)
            return 2
        log.info("terminals verify orders with %s (key id %s)", args.order_public_key, key_id(platform_key))
    else:
        log.warning("no platform public key at %s (make one with `python -m orders keygen`)", args.order_public_key)
    log.info(
        "simulating %d terminals against %s:%d (prefix %s), fix every %.1f simulated s, speed-up x%g",
        len(specs), args.mqtt_host, args.mqtt_port, args.prefix, args.interval_s, args.speedup,
    )
    passwords = _terminal_passwords(s, args.prefix, specs, log)
    if passwords is None:
        return 2
    simulator = Simulator(
        specs,
        host=args.mqtt_host,
        port=args.mqtt_port,
        prefix=args.prefix,
        username=s.mqtt_username,
        password=s.mqtt_password,
        passwords=passwords,
        tls=s.mqtt_tls_context(),
        interval_s=args.interval_s,
        speedup=args.speedup,
        seed=args.seed,
        state_dir=args.state_dir,
        progress_every_s=args.progress_s,
        platform_key=platform_key,
    )
    install_sigint(simulator)
    stats = simulator.run_for(args.duration_s)
    log.info(
        "stopped after %.0f s (%.0f simulated): %d fixes (%.0f/s), %d events %s, %d acks, %d commands (%d refused), "
        "%d offline episodes",
        stats.elapsed_s, stats.sim_elapsed_s, stats.fixes, stats.fixes_per_s, stats.events, stats.events_by_kind,
        stats.acks, stats.commands, stats.refused, stats.offline_episodes,
    )
    return 0


def _terminal_passwords(s, prefix: str, specs: list, log: logging.Logger) -> dict[str, str] | None:
    """Each simulated terminal logs in as itself, like a real one: accounts the broker lacks are
    provisioned (as the admin, kept in Settings.mqtt_secrets_file). Not with an explicit
    GRIDWATCH_MQTT_USERNAME: then every terminal shares that account (a test run)."""
    if s.mqtt_username:
        log.info("every terminal connects as %s (GRIDWATCH_MQTT_USERNAME)", s.mqtt_username)
        return {}
    from broker.control import ControlError
    from broker.provision import ensure_terminals

    try:
        passwords = ensure_terminals(s.model_copy(update={"topic_prefix": prefix}), {t.terminal_id: t.grids for t in specs})
    except ControlError as exc:
        log.error("cannot provision the terminals' broker accounts: %s", exc)
        return None
    log.info("%d terminals log in with accounts of their own (passwords in %s)", len(passwords), s.mqtt_secrets_file)
    return passwords


if __name__ == "__main__":
    sys.exit(main())
