"""The running broker's account store, over ``$CONTROL/dynamic-security/v1`` as the admin account.

A thin adapter: ``broker.accounts`` builds the commands; this sends them, waits for the answer
(matched by correlation data) and raises on any error the caller did not say it tolerates.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable

import paho.mqtt.client as mqtt

from broker import accounts, secrets
from schemas.settings import Settings

log = logging.getLogger("gridwatch.broker")

REQUEST = "$CONTROL/dynamic-security/v1"
BATCH = 200  # commands per request: one JSON message each way, answered in one
RESPONSE = "$CONTROL/dynamic-security/v1/response"


class ControlError(RuntimeError):
    """The broker refused the admin account, did not answer, or a command failed."""


class DynsecControl:
    """``with DynsecControl(settings) as broker: broker.run(accounts.revoke_terminal("T1"))``"""

    def __init__(self, settings: Settings, timeout_s: float = 10.0):
        self.settings, self.timeout_s = settings, timeout_s
        password = secrets.load(settings.mqtt_secrets_file).get(accounts.ADMIN)
        if password is None:
            raise ControlError(f"no {accounts.ADMIN} password in {settings.mqtt_secrets_file}: run ./gw setup")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=accounts.ADMIN, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(accounts.ADMIN, password)
        context = settings.mqtt_tls_context()
        if context is not None:
            self.client.tls_set_context(context)
        self._ready = threading.Event()
        self._refused: str | None = None
        self._answers: dict[str, dict] = {}
        self._answered = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message

    def __enter__(self) -> DynsecControl:
        try:
            self.client.connect(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30)
        except OSError as exc:
            raise ControlError(f"cannot reach the broker at {self.settings.mqtt_host}:{self.settings.mqtt_port}: {exc}") from exc
        self.client.loop_start()
        if not self._ready.wait(self.timeout_s) or self._refused:
            self.__exit__()
            raise ControlError(f"the broker at {self.settings.mqtt_host}:{self.settings.mqtt_port} refused "
                               f"{accounts.ADMIN}: {self._refused or 'no answer'} (not this checkout's broker, or "
                               "an old anonymous one: see README, Broker accounts)")
        return self

    def __exit__(self, *exc) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            self._ready.set()
            return
        client.subscribe(RESPONSE, qos=1)

    def _on_message(self, client, userdata, message) -> None:
        try:
            answer = json.loads(message.payload)
        except ValueError:
            return
        with self._answered:
            for response in answer.get("responses", []):
                if "correlationData" in response:
                    self._answers[response["correlationData"]] = response
            self._answered.notify_all()

    def run(self, commands: list[dict], tolerate: Iterable[str] = ()) -> list[dict]:
        """Send ``commands`` in one request; return their responses in order. An error is raised
        unless its text is in ``tolerate`` (e.g. "Role already exists")."""
        tolerate = set(tolerate)
        tagged = [{**c, "correlationData": uuid.uuid4().hex} for c in commands]
        self.client.publish(REQUEST, json.dumps({"commands": tagged}), qos=1)
        keys = [c["correlationData"] for c in tagged]
        with self._answered:
            if not self._answered.wait_for(lambda: all(k in self._answers for k in keys), self.timeout_s):
                raise ControlError(f"the broker did not answer {[c['command'] for c in commands]} within {self.timeout_s:.0f} s")
            responses = [self._answers.pop(k) for k in keys]
        for cmd, response in zip(commands, responses):
            error = response.get("error")
            if error and error not in tolerate:
                raise ControlError(f"{cmd['command']} {_subject(cmd)}: {error}")
        return responses

    def run_batched(self, commands: list[dict], tolerate: Iterable[str] = ()) -> None:
        """Many commands, BATCH to a request (one JSON message each way per request)."""
        for i in range(0, len(commands), BATCH):
            self.run(commands[i:i + BATCH], tolerate)


def _subject(cmd: dict) -> str:
    return cmd.get("username") or cmd.get("rolename") or ""
