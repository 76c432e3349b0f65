"""One typed settings object for every Gridwatch process.

Every field is read from a ``GRIDWATCH_<FIELD>`` environment variable (upper case).
Defaults are what ``deploy/setup`` starts on a local machine, so a local run needs none.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDWATCH_", extra="forbid", frozen=True)

    # --- MQTT broker (the project's own Mosquitto, deploy/mosquitto/gridwatch.conf) ---
    mqtt_host: str = Field("127.0.0.1", description="MQTT broker host")
    mqtt_port: int = Field(1884, description="MQTT broker port (the project-local broker)")
    mqtt_username: str | None = Field(None, description="MQTT user name, if the broker needs one")
    mqtt_password: str | None = Field(None, description="MQTT password")
    mqtt_secrets_file: Path = Field(
        Path("var/secrets/mqtt.json"), description="Broker passwords this host knows (user name -> password, mode 0600; ./gw setup writes the platform's, "
        "the simulator adds its terminals'): a process connects as its client id's entry, unless GRIDWATCH_MQTT_USERNAME is set"
    )
    mqtt_dev_account: bool = Field(
        True, description="./gw setup makes the broker account gridwatch-dev (every data topic, any client id) that tests and benches use; false on a production broker"
    )
    mqtt_tls_ca: Path | None = Field(
        None, description="CA certificate (PEM) of the broker's: set, every client connects with TLS and checks the broker's name (point GRIDWATCH_MQTT_PORT at the TLS listener)"
    )
    mqtt_tls_port: int | None = Field(
        None, description="Broker: also listen with TLS on this port (./gw setup adds the listener and, if the files below are missing, makes a self-signed CA and server certificate)"
    )
    mqtt_tls_bind: str = Field("127.0.0.1", description="Broker: address of the TLS listener (0.0.0.0 for terminals on the network)")
    mqtt_tls_certfile: Path = Field(Path("var/tls/server.crt"), description="Broker: the TLS listener's certificate (PEM)")
    mqtt_tls_keyfile: Path = Field(Path("var/tls/server.key"), description="Broker: its private key (PEM)")
    mqtt_tls_cafile: Path = Field(Path("var/tls/ca.crt"), description="Broker: the CA that signed it (what clients get as GRIDWATCH_MQTT_TLS_CA)")
    mqtt_tls_require_client_cert: bool = Field(
        False, description="Broker: the TLS listener admits only clients showing a certificate signed by that CA (mutual TLS; `python -m broker cert issue NAME` makes one), password still checked"
    )
    mqtt_tls_client_cert: Path | None = Field(
        None, description="The certificate (PEM) this process shows a broker that requires one; its key in GRIDWATCH_MQTT_TLS_CLIENT_KEY"
    )
    mqtt_tls_client_key: Path | None = Field(None, description="The private key (PEM) of GRIDWATCH_MQTT_TLS_CLIENT_CERT")
    topic_prefix: str = Field("gw/v1", description="Prefix of every protocol topic")
    mqtt_session_expiry_s: int = Field(
        7 * 24 * 3600, description="How long the broker keeps ingest's session (and queued fixes) while ingest is away"
    )
    ingest_client_id: str = Field("gridwatch-ingest-1", description="MQTT client id of this ingest process (unique per process)")
    ingest_share_group: str = Field("ingest", description="Shared-subscription group that ingest processes split the load in")

    # --- PostgreSQL / TimescaleDB ---
    pg_dsn: str = Field(
        "postgresql://postgres@127.0.0.1:5433/gridwatch", description="PostgreSQL DSN (the project-local TimescaleDB cluster)"
    )
    retention_days: int = Field(400, description="Days of GPS history kept (a year plus margin)")
    partitions_ahead_days: int = Field(7, description="Native-partition mode: days of partitions created ahead")

    # --- Redis (live state; rebuilt from PostgreSQL when empty) ---
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL for live state")
    redis_prefix: str = Field("gw:", description="Prefix of every Redis key (lets several cities or test runs share one Redis)")
    event_stream_maxlen: int = Field(100_000, description="Approximate length kept of the Redis stream of new events")

    # --- Ingest ---
    ingest_batch_max: int = Field(2000, description="Flush a batch at this many messages ...")
    ingest_batch_ms: int = Field(
        40, description="... or once its first message arrived this many milliseconds ago, whichever comes first"
    )
    ingest_idle_ms: float = Field(
        5.0, description="... or as soon as no message arrived for this long (low load: no fixed window of latency)"
    )
    ingest_queue_max: int = Field(200_000, description="Bound of the in-process receive queue")
    max_payload_bytes: int = Field(64 * 1024, description="Payloads larger than this are dead-lettered")
    max_future_skew_s: int = Field(300, description="A timestamp further than this in the future is rejected")
    max_past_age_days: int = Field(30, description="A timestamp older than this is rejected (terminal clock reset)")
    stats_interval_s: float = Field(10.0, description="Seconds between throughput summaries in the log")
    grid_reload_s: float = Field(
        30.0, description="Seconds between ingest's checks for a re-imported grid and a changed terminal registry"
    )

    # --- Ingest hardening (issue 14: a hung server or one message never stops ingest) ---
    redis_connect_timeout_s: float = Field(5.0, description="Ingest: seconds to wait for a Redis connection before the call fails")
    redis_socket_timeout_s: float = Field(
        10.0, description="Ingest: seconds to wait for a Redis reply; a timeout marks live state for a rebuild, it never blocks storing"
    )
    pg_connect_timeout_s: int = Field(10, description="Ingest: seconds to wait for a PostgreSQL connection (then retried with backoff)")
    pg_statement_timeout_s: float = Field(
        60.0, description="Ingest: a statement running longer is cancelled and its batch retried, unacknowledged (0 = no limit)"
    )
    pg_idle_in_transaction_timeout_s: float = Field(
        60.0, description="Ingest: PostgreSQL ends an ingest session left idle inside a transaction this long (0 = no limit)"
    )
    ingest_queue_max_bytes: int = Field(
        256 * 2**20, description="Bound of the receive queue in bytes (payload + topic + 256 per message); when full, "
        "ingest stops reading from the broker, which holds the rest"
    )
    accept_unregistered: bool = Field(
        False, description="Ingest: store messages from terminal ids not in the registry (table terminal); "
        "false quarantines them as dead letters (unregistered_terminal) that never reach live state"
    )

    # --- Delivery receipts and subscription (issue 14: a broker restart must not lose fixes) ---
    ingest_receipts: bool = Field(
        True, description="Ingest: after each commit, tell each terminal which of its seqs are stored "
        "({prefix}/rcpt/t/{id}, QoS 0); terminals re-send what no receipt names. Off only to measure their cost"
    )
    ingest_receipt_interval_s: float = Field(
        5.0, description="Ingest: at most one receipt per terminal this often (seqs stored meanwhile are coalesced). "
        "Well inside a terminal's 30 s wait before it re-sends; at 1 s a terminal sending a fix a second got a receipt "
        "per fix, doubling the broker's messages (and, with two ingest processes, each sent its own)"
    )
    ingest_shared: bool = Field(
        False, description="Ingest: subscribe through the shared group GRIDWATCH_INGEST_SHARE_GROUP (several ingest "
        "processes split the load). Mosquitto 2.0 does not restore a shared subscription after a broker restart: "
        "a single ingest uses a plain one (the default), which the broker keeps"
    )
    ingest_shared_session_expiry_s: int = Field(
        600, description="Ingest, shared only: session expiry of each member, so a member that never returns leaves "
        "the group (and stops being queued for) after this long; terminals re-send what its queue held"
    )

    # --- Live state semantics ---
    online_window_s: int = Field(120, description="A terminal is online when its last fix or heartbeat is younger than this")
    timezone: str = Field("Asia/Shanghai", description="Time zone of the bureau: 'today' starts at its midnight")

    # --- City ---
    city_code: str = Field("3606", description="Division code of the city (Yingtan)")
    city_bbox: Annotated[tuple[float, float, float, float], NoDecode] = Field(
        (116.60, 27.75, 117.55, 28.72),
        description="lon_min, lat_min, lon_max, lat_max (four numbers, comma-separated): grid geometry outside is rejected",
    )

    # --- Emergency orders (orders/: the dispatcher process signs and publishes what is committed) ---
    orders_client_id: str = Field("gridwatch-orders-1", description="MQTT client id of the orders dispatcher")
    order_signing_key: Path = Field(
        Path("var/keys/order_signing.pem"), description="Ed25519 private key (PEM) that signs orders: only on the dispatcher's host"
    )
    order_public_key: Path = Field(
        Path("var/keys/order_signing.pub.pem"), description="The matching public key (PEM), provisioned to terminals"
    )
    order_resend_critical_s: float = Field(30.0, description="A critical order's recipient silent this long is re-sent to")
    order_resend_urgent_s: float = Field(60.0, description="... an urgent order's")
    order_resend_normal_s: float = Field(300.0, description="... a normal order's")
    order_resends: int = Field(1, description="Re-sends to a silent recipient before it counts as no answer and an alert is raised")
    order_arrive_m: float = Field(150.0, description="A recipient within this of the order's place has arrived (unless the order says)")
    order_poll_s: float = Field(0.5, description="Dispatcher: seconds between checks of the outbox, re-sends, expiry and arrivals")

    # --- Alerts engine (alerts/: rules over what ingest stored; alerts with a lifecycle) ---
    alerts_poll_s: float = Field(0.25, description="Alerts engine: longest wait between reads of new events (ingest's Redis stream only wakes it sooner)")
    alerts_state_s: float = Field(2.0, description="Alerts engine: seconds between evaluations of the condition rules, reminders and clearing")
    alerts_overlap_s: float = Field(30.0, description="Events are re-read this far behind the committed mark (a batch committed late); ones already evaluated are skipped")
    alerts_sweep_s: float = Field(900.0, description="Once a minute the engine re-reads this far back, for events committed later still (a database outage)")
    alerts_batch_max: int = Field(5000, description="Alerts engine: most events evaluated in one transaction")
    alerts_duty_hours: str = Field(
        "*=08:00-18:00",
        description="Duty hours per person role in the bureau's time zone, every day: role=HH:MM-HH:MM, comma-separated; '*' is every other role (e.g. *=08:00-18:00,informant=09:00-17:00)",
    )
    alerts_offline_s: float = Field(900.0, description="A terminal silent this long during its duty hours raises an offline alert")
    alerts_outside_grid_s: float = Field(900.0, description="An officer outside their grids and the adjacent ones this long during duty hours raises an alert")
    alerts_low_battery_pct: float = Field(15.0, description="Battery at or under this (percent) during duty hours raises a low-battery alert ...")
    alerts_battery_clear_pct: float = Field(25.0, description="... cleared once the battery is at or above this")
    alerts_surge_min_reports: int = Field(5, description="Surge: at least this many reports in a level-2 grid in the last hour ...")
    alerts_surge_p: float = Field(1e-4, description="... and a Poisson tail probability under this against the grid's own smoothed hourly rate")
    alerts_surge_baseline_days: int = Field(28, description="Surge: days of history that make a grid's baseline hourly rate")
    alerts_remind_s: float = Field(120.0, description="An open critical alert reminds the duty officer this often until someone acknowledges it")

    @field_validator("alerts_duty_hours")
    @classmethod
    def _duty_hours(cls, value: str) -> str:
        for part in (p.strip() for p in value.split(",") if p.strip()):
            role, sep, span = part.partition("=")
            start, dash, end = span.partition("-")
            if not (sep and dash and role.strip() and _is_hhmm(start) and _is_hhmm(end, allow_24=True)):
                raise ValueError(f"alerts_duty_hours: {part!r} is not role=HH:MM-HH:MM")
        return value

    # --- Dashboard ---
    language: Literal["zh-CN", "en"] = Field("zh-CN", description="Interface language of the wall")
    tile_url: str | None = Field(None, description="Base map tile URL template; none gives a plain dark map")
    tile_attribution: str = Field("", description="Attribution shown for the tiles")
    wall_refresh_ms: int = Field(
        250, ge=100, description="How often the wall asks for what changed (nothing new: a 204 from a few Redis reads); bounds fix-to-screen latency"
    )
    wall_rotate_s: int = Field(0, description="Wall mode: seconds per level-1 grid in the focus rotation (0 = off)")

    # --- Web sign-in (issue 15: dashboard/auth/; users are in the database: python -m dashboard.users) ---
    web_bind: str = Field(
        "127.0.0.1:8050", description="Address gunicorn serves the web on (host:port); anything but loopback needs a real GRIDWATCH_WEB_SECRET"
    )
    web_secret: str = Field(
        "change-me", description="Key signing the web's session cookie: at least 32 bytes (python -c 'import secrets; print(secrets.token_urlsafe(32))'); the default is refused unless the web is bound to loopback"
    )
    web_secure_cookies: bool = Field(False, description="Mark the session cookie Secure (set when the web is served behind TLS)")
    web_proxy_hops: int = Field(
        0, ge=0, le=5, description="Reverse proxies in front of the web whose X-Forwarded-For/-Proto are believed (0 = none: the peer address is the client)"
    )
    web_session_idle_s: int = Field(12 * 3600, ge=60, description="A web session unused this long is ended (a wall polling every second stays signed in)")
    web_signin_window_s: int = Field(900, ge=1, description="Window of the sign-in rate limits (seconds) ...")
    web_signin_max_per_user: int = Field(5, ge=1, description="... failed sign-ins allowed per user name in the window, then refused until it passes")
    web_signin_max_per_address: int = Field(20, ge=1, description="... failed sign-ins allowed per client address in the window")
    web_wall_addresses: str = Field(
        "", description="Comma-separated addresses or networks (CIDR) whose browsers get the read-only wall without a token (e.g. 10.1.2.0/28); empty = wall tokens only"
    )

    @field_validator("web_wall_addresses")
    @classmethod
    def _wall_addresses(cls, value: str) -> str:
        import ipaddress

        for part in (p.strip() for p in value.split(",") if p.strip()):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"web_wall_addresses: {part!r} is not an address or network (CIDR)") from None
        return value

    log_level: str = Field("INFO", description="Log level of every process")
    log_format: Literal["json", "text"] = Field("text", description="json for log shippers, text for a terminal")

    @field_validator("city_bbox", mode="before")
    @classmethod
    def _bbox_from_text(cls, value):
        """Accept ``116.6,27.75,117.55,28.72`` (as documented) and ``[116.6, ...]``."""
        if isinstance(value, str):
            parts = [p for p in value.strip().strip("[]()").split(",") if p.strip()]
            try:
                value = tuple(float(p) for p in parts)
            except ValueError:
                raise ValueError(f"city_bbox must be four comma-separated numbers lon_min,lat_min,lon_max,lat_max; got {value!r}") from None
        if isinstance(value, (tuple, list)):
            if len(value) != 4:
                raise ValueError(f"city_bbox needs four numbers lon_min,lat_min,lon_max,lat_max; got {len(value)}")
            lon0, lat0, lon1, lat1 = (float(v) for v in value)
            if not (-180 <= lon0 < lon1 <= 180 and -90 <= lat0 < lat1 <= 90):
                raise ValueError(f"city_bbox must be lon_min<lon_max, lat_min<lat_max in degrees; got {value!r}")
        return value

    def mqtt_login(self, account: str) -> tuple[str, str | None] | None:
        """(user name, password) to connect as ``account`` (a client id: gridwatch-ingest-1, a terminal id):
        GRIDWATCH_MQTT_USERNAME/PASSWORD if set, else the account's entry in mqtt_secrets_file, else none."""
        if self.mqtt_username:
            return self.mqtt_username, self.mqtt_password
        try:
            password = json.loads(self.mqtt_secrets_file.read_text()).get(account)
        except (OSError, ValueError, AttributeError):
            return None
        return (account, password) if isinstance(password, str) else None

    def mqtt_tls_context(self) -> ssl.SSLContext | None:
        """TLS that verifies the broker's certificate and name against mqtt_tls_ca, and shows the
        broker mqtt_tls_client_cert when one is set; None for plain TCP."""
        if self.mqtt_tls_ca is None:
            return None
        context = ssl.create_default_context(cafile=str(self.mqtt_tls_ca))
        if self.mqtt_tls_client_cert is not None:
            context.load_cert_chain(self.mqtt_tls_client_cert, self.mqtt_tls_client_key)
        return context

    def secure_mqtt_client(self, client, account: str) -> None:
        """Give a paho client the login and TLS of ``account`` (no paho import here: duck-typed)."""
        self.refresh_mqtt_login(client, account)
        context = self.mqtt_tls_context()
        if context is not None:
            client.tls_set_context(context)

    def refresh_mqtt_login(self, client, account: str) -> None:
        """The login of ``account`` as the secrets file has it now: called again before a reconnect,
        a password rotated on the running broker (``python -m broker account rotate``) is taken up
        without a restart."""
        login = self.mqtt_login(account)
        if login:
            client.username_pw_set(*login)

    def as_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` (an environment) with every GRIDWATCH_* replaced by these settings: for a child process."""
        env = {k: v for k, v in base.items() if not k.startswith("GRIDWATCH_")}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, (tuple, list)):
                value = ",".join(str(v) for v in value)
            env[f"GRIDWATCH_{name.upper()}"] = str(value)
        return env


def _is_hhmm(text: str, allow_24: bool = False) -> bool:
    """``HH:MM`` with 00<=HH<=23 (``24:00`` too as an end of day)."""
    h, sep, m = text.strip().partition(":")
    if not (sep and h.isdigit() and m.isdigit() and len(m) == 2):
        return False
    return (0 <= int(h) <= 23 and 0 <= int(m) <= 59) or (allow_24 and int(h) == 24 and int(m) == 0)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment.

    A bad value stops the process with one line per bad variable, not a traceback."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = [f"  GRIDWATCH_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()]
        raise SystemExit("Gridwatch settings are not valid:\n" + "\n".join(lines)) from None


def settings_table_markdown() -> str:
    """The configuration table of the README, generated from the one settings object."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "—" if default is None else ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
        lines.append(f"| `GRIDWATCH_{name.upper()}` | `{shown}` | {field.description or ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(settings_table_markdown())
