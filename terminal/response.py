"""How a virtual officer answers orders: pure, seeded, in simulated seconds.

The terminal client has already answered ``received`` (at once, when online) and checked the
signature, the address and the expiry; what is left is the person. An :class:`OrderResponder`
keeps one :class:`Response` per order and, asked with :meth:`OrderResponder.due` as simulated
time passes, gives the acks the officer sends:

* most officers ``accepted`` after a human delay (seconds to a minute), some ``rejected`` with a
  note, a few never answer at all;
* an accepted order with a place makes :attr:`OrderResponder.destination` that place (the officer
  walks there, or drives when it is far); ``done`` some minutes after :meth:`arrived`; an order
  without a place is ``done`` after some minutes of work;
* an amendment (same ``order_id``, action ``amend``) replaces the place and is ``accepted`` in turn;
  the ``done`` names the latest command the platform tracks the recipient on;
* a cancellation stops the response (``accepted``: standing down) and the officer goes back to patrol.

An officer busy with another order that has a place turns a second one with a place down.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from schemas.ack import AckStatus
from schemas.commands import Command, CommandAction, CommandKind

Place = tuple[float, float]  # lon, lat


@dataclass(frozen=True)
class AckAction:
    """Send ``status`` for ``command_id`` (an action of the officer, like a fix or an event)."""

    command_id: UUID
    status: AckStatus
    note: str | None = None


@dataclass
class ResponseConfig:
    silent_share: float = 0.05  # never answer beyond the client's automatic ``received``
    reject_share: float = 0.08
    accept_s: tuple[float, float] = (5.0, 60.0)  # reading the order and deciding
    reject_s: tuple[float, float] = (10.0, 90.0)
    acknowledge_s: tuple[float, float] = (3.0, 20.0)  # answering an amendment or a cancellation
    walk_mps: tuple[float, float] = (1.3, 1.5)
    drive_mps: tuple[float, float] = (8.0, 12.0)
    drive_beyond_m: float = 800.0  # farther than this, the officer takes the car
    on_site_s: tuple[float, float] = (120.0, 900.0)  # at the place before reporting done
    work_s: tuple[float, float] = (300.0, 1800.0)  # an order without a place
    read_s: tuple[float, float] = (5.0, 40.0)  # a message: read, then done


REJECT_NOTES = ["正在处理其他紧急任务", "Off duty today", "车辆故障", "On sick leave today", "In court this morning"]
BUSY_NOTE = "Busy with another order"


class Disposition(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    SILENT = "silent"


@dataclass
class Response:
    """One officer's part in one order."""

    key: str  # the order id (the command id for a command outside any order)
    command_id: UUID  # the latest issue/amendment: the platform tracks the recipient on it
    disposition: Disposition
    place: Place | None
    kind: CommandKind
    accepted: bool = False
    arrived_at: float | None = None
    done: bool = False
    cancelled: bool = False

    @property
    def active(self) -> bool:
        return self.disposition is Disposition.ACCEPT and not self.done and not self.cancelled


@dataclass(order=True)
class _Planned:
    due: float
    n: int  # keeps the order of equal due times
    order: str = field(compare=False)
    ack: AckAction = field(compare=False)
    finishes: bool = field(default=False, compare=False)  # a ``done`` that ends the response


class OrderResponder:
    def __init__(self, rng: random.Random, config: ResponseConfig | None = None) -> None:
        self.rng = rng
        self.cfg = config or ResponseConfig()
        self.responses: dict[str, Response] = {}
        self._planned: list[_Planned] = []
        self._n = 0

    # --- what the officer is doing ---------------------------------------------------------
    @property
    def destination(self) -> Place | None:
        """The place of the accepted order the officer is heading to (or standing at), if any."""
        r = self._current()
        return r.place if r is not None else None

    def _current(self) -> Response | None:
        for r in self.responses.values():
            if r.active and r.accepted and r.place is not None:
                return r
        return None

    def travel_speed(self, distance_m: float) -> float:
        """Walk, or drive when the place is far."""
        c = self.cfg
        return self.rng.uniform(*(c.drive_mps if distance_m > c.drive_beyond_m else c.walk_mps))

    # --- inputs ----------------------------------------------------------------------------------
    def receive(self, command: Command, now: float) -> None:
        """A command the client verified and handed over (each command_id once)."""
        key = str(command.order_id or command.command_id)
        if command.action is CommandAction.CANCEL:
            self._cancel(key, command, now)
        elif command.action is CommandAction.AMEND and key in self.responses:
            self._amend(key, command, now)
        else:
            self._issue(key, command, now)

    def arrived(self, now: float) -> None:
        """The officer has reached the destination: done after some time on site."""
        r = self._current()
        if r is None or r.arrived_at is not None:
            return
        r.arrived_at = now
        self._plan(now + self.rng.uniform(*self.cfg.on_site_s), r.key, AckAction(r.command_id, AckStatus.DONE), finishes=True)

    def due(self, now: float) -> list[AckAction]:
        """The acks whose time has come (and the state changes they carry), in time order."""
        out = []
        self._planned.sort()
        while self._planned and self._planned[0].due <= now:
            p = self._planned.pop(0)
            r = self.responses.get(p.order)
            if r is not None and p.ack.status is AckStatus.ACCEPTED and p.ack.command_id == r.command_id:
                r.accepted = True
                if r.place is None:  # nothing to go to: done after the work (or the reading)
                    span = self.cfg.read_s if r.kind is CommandKind.MESSAGE else self.cfg.work_s
                    self._plan(now + self.rng.uniform(*span), p.order, AckAction(r.command_id, AckStatus.DONE), finishes=True)
            elif r is not None and p.finishes:
                r.done = True
            out.append(p.ack)
        return out

    # --- decisions ---------------------------------------------------------------------------------
    def _issue(self, key: str, command: Command, now: float) -> None:
        place = (command.lon, command.lat) if command.lat is not None and command.lon is not None else None
        if not command.requires_ack:
            self.responses[key] = Response(key, command.command_id, Disposition.SILENT, place, command.kind)
            return
        roll = self.rng.random()
        c = self.cfg
        if roll < c.silent_share:
            disposition, note = Disposition.SILENT, None
        elif roll < c.silent_share + c.reject_share:
            disposition, note = Disposition.REJECT, self.rng.choice(REJECT_NOTES)
        elif place is not None and self._current_or_pending_with_place() is not None:
            disposition, note = Disposition.REJECT, BUSY_NOTE
        else:
            disposition, note = Disposition.ACCEPT, None
        self.responses[key] = Response(key, command.command_id, disposition, place, command.kind)
        if disposition is Disposition.ACCEPT:
            self._plan(now + self.rng.uniform(*c.accept_s), key, AckAction(command.command_id, AckStatus.ACCEPTED))
        elif disposition is Disposition.REJECT:
            self._plan(now + self.rng.uniform(*c.reject_s), key, AckAction(command.command_id, AckStatus.REJECTED, note))

    def _current_or_pending_with_place(self) -> Response | None:
        for r in self.responses.values():
            if r.active and r.place is not None:
                return r
        return None

    def _amend(self, key: str, command: Command, now: float) -> None:
        r = self.responses[key]
        if r.disposition is Disposition.SILENT:
            return
        if r.disposition is Disposition.REJECT:
            self._plan(now + self.rng.uniform(*self.cfg.reject_s), key, AckAction(command.command_id, AckStatus.REJECTED, "Still unavailable"))
            return
        if r.done:
            self._plan(now + self.rng.uniform(*self.cfg.acknowledge_s), key, AckAction(command.command_id, AckStatus.DONE, "Already done"))
            return
        if r.cancelled:
            self._plan(now + self.rng.uniform(*self.cfg.acknowledge_s), key, AckAction(command.command_id, AckStatus.REJECTED, "Already stood down"))
            return
        # A pending acceptance of the earlier revision is answered on this one instead.
        pending = [p for p in self._planned if p.order == key and p.ack.status is AckStatus.ACCEPTED]
        self._planned = [p for p in self._planned if p.order != key]
        if command.lat is not None and command.lon is not None:
            r.place = (command.lon, command.lat)
        r.command_id = command.command_id
        r.arrived_at = None  # a new place (or the same): done once there, after the time on site
        at = max([now + self.rng.uniform(*self.cfg.acknowledge_s), *(p.due for p in pending)])
        self._plan(at, key, AckAction(command.command_id, AckStatus.ACCEPTED))

    def _cancel(self, key: str, command: Command, now: float) -> None:
        r = self.responses.get(key)
        if r is not None and r.disposition is Disposition.SILENT:
            return
        if r is not None:
            r.cancelled = True
        self._planned = [p for p in self._planned if p.order != key]
        self._plan(now + self.rng.uniform(*self.cfg.acknowledge_s), key, AckAction(command.command_id, AckStatus.ACCEPTED, "Standing down"))

    def _plan(self, due: float, key: str, ack: AckAction, *, finishes: bool = False) -> None:
        # Planned items of an order are dropped when it is amended or cancelled, so a ``done``
        # planned for an earlier revision never goes out.
        self._n += 1
        self._planned.append(_Planned(due, self._n, key, ack, finishes))
