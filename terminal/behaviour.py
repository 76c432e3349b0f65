"""What a virtual field officer does: pure, seeded, no network, no clock.

A :class:`VirtualOfficer` is advanced with ``tick(now, dt)`` (simulated seconds) and answers with
:class:`Action` records (a fix, an event, going offline or online); the simulator turns them into
protocol messages. Given the same seed, region and sequence of ticks it does the same things.

The working day, compressed into cycles:

* **patrol** (``patrol.started`` … ``patrol.ended``): walk (1.2–1.6 m/s) or drive (8–15 m/s) between
  random waypoints inside the officer's region; a GPS fix every tick while moving.
* **inspections** during a patrol: go to a market entity of the grid, ``inspection.started``, stay
  (stationary: heartbeats instead of fixes), ``inspection.completed`` with checklist answers, a result
  (a few serious violations), photo references with sha256, both signatures, QR pushed.
* **reports** (complaints, tips, clues; some serious), a rare **SOS**.
* **breaks**: stationary, indoors, a ``heartbeat`` event every few ticks instead of fixes.
* now and then the network drops for a few minutes (the client buffers), and now and then the
  officer wanders outside the region (a waypoint 100–500 m beyond its border) and comes back.

* **orders** (terminal.response): a verified command handed to :meth:`VirtualOfficer.receive_command`
  is answered like a person would (``accepted`` after a delay, some ``rejected``, a few never);
  an accepted order with a place sends the officer there (phase ``response``: walking, or driving
  when far), ``done`` some minutes after arriving, then back to patrol.

Positions stay inside the region except while ``off_region_reason`` is set ("wander", "dispatch"
while an order takes the officer elsewhere, "returning" on the way back).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from schemas.commands import Command
from schemas.events import (
    Attachment,
    ChecklistAnswer,
    EventKind,
    HeartbeatBody,
    InspectionCompletedBody,
    InspectionMode,
    InspectionResult,
    InspectionStartedBody,
    PatrolEndedBody,
    PatrolStartedBody,
    ReportBody,
    ReportCategory,
    Signature,
    SosBody,
)
from terminal.region import Entity, Region, bearing, metres, offset, toward
from terminal.response import AckAction, OrderResponder, ResponseConfig


# --- outputs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FixAction:
    lat: float
    lon: float
    speed_mps: float
    heading_deg: float
    acc_m: float
    battery_pct: float


@dataclass(frozen=True)
class EventAction:
    kind: EventKind
    body: object  # the body model of that kind
    lat: float | None
    lon: float | None


@dataclass(frozen=True)
class NetworkAction:
    online: bool


Action = FixAction | EventAction | NetworkAction | AckAction


@dataclass
class BehaviourConfig:
    walk_mps: tuple[float, float] = (1.2, 1.6)
    drive_mps: tuple[float, float] = (8.0, 15.0)
    drive_share: float = 0.3  # officers who drive on a patrol
    patrol_s: tuple[float, float] = (3600, 3 * 3600)
    break_s: tuple[float, float] = (600, 2400)
    inspection_s: tuple[float, float] = (600, 1800)
    inspections_per_hour: float = 1.0
    reports_per_hour: float = 0.3
    serious_report_share: float = 0.1
    serious_violation_share: float = 0.03
    sos_per_hour: float = 0.002
    offline_per_hour: float = 0.15
    offline_s: tuple[float, float] = (60, 900)
    wander_per_hour: float = 0.1
    heartbeat_every_ticks: int = 6
    start_on_patrol: bool = True
    response: ResponseConfig = field(default_factory=ResponseConfig)  # answering orders


CHECKLIST = {
    "food": ["licence-displayed", "health-certificates", "storage-temperature", "expiry-dates", "food-additives", "pest-control"],
    "drug": ["licence-displayed", "pharmacist-on-duty", "prescription-records", "storage-conditions", "expiry-dates"],
    "equipment": ["registration-certificate", "annual-inspection", "maintenance-records", "emergency-phone"],
    "general": ["licence-displayed", "price-labels", "weights-and-measures", "product-quality", "fire-exits"],
}
REPORT_TEXT = {
    ReportCategory.COMPLAINT: ["消费者投诉商品质量问题", "Customer complains about short weight", "投诉价格欺诈"],
    ReportCategory.TIP: ["群众举报无证经营", "Tip: expired food on sale", "举报销售假冒伪劣产品"],
    ReportCategory.CLUE: ["巡查发现占道经营", "Found unlabelled imported goods", "发现电梯年检标志过期"],
    ReportCategory.CONSULTATION: ["经营者咨询营业执照变更", "Question about food licence renewal"],
    ReportCategory.HELP: ["请求执法支援", "Need backup: owner refuses inspection"],
}
SERIOUS_TEXT = ["发现疑似食物中毒事件", "Suspected counterfeit drugs in quantity", "电梯困人事故隐患"]

Phase = Literal["patrol", "inspection", "break", "response"]
ARRIVED_M = 5.0  # within this of the order's place the officer stands at it


class VirtualOfficer:
    """One officer's behaviour. ``now`` is simulated seconds since the start of the simulation."""

    def __init__(
        self,
        terminal_id: str,
        region: Region,
        *,
        seed: int | str = 0,
        config: BehaviourConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.id = terminal_id
        self.clock = clock  # only for signature times inside inspection records
        self.now = 0.0
        self.region = region
        self.cfg = config or BehaviourConfig()
        self.rng = random.Random(f"{seed}:{terminal_id}")
        self.pos = region.random_point(self.rng)
        self.waypoint = self.pos
        self.speed = 0.0
        self.heading = self.rng.uniform(0, 360)
        self.battery = self.rng.uniform(60, 100)
        self.drives = self.rng.random() < self.cfg.drive_share
        self.phase: Phase = "break"
        self.phase_until = 0.0
        self.online = True
        self.online_at = 0.0
        self.off_region_reason: str | None = None
        self.patrol_id: str | None = None
        self.patrol_distance = 0.0
        self.inspection: InspectionStartedBody | None = None
        self.target_entity: Entity | None = None
        self.ticks = 0
        self.counter = 0
        self.return_to: tuple[float, float] | None = None
        # its own stream, so answers do not depend on how many ticks came before the order
        self.orders = OrderResponder(random.Random(f"{seed}:{terminal_id}:orders"), self.cfg.response)
        if not self.cfg.start_on_patrol:
            self.phase_until = self.rng.uniform(*self.cfg.break_s)

    # --- the public step ------------------------------------------------------------------
    def tick(self, now: float, dt: float) -> list[Action]:
        """Advance ``dt`` simulated seconds to ``now``; return what the terminal sends."""
        self.ticks += 1
        self.now = now
        out: list[Action] = []
        hours = dt / 3600.0
        self._network(now, hours, out)
        out.extend(self.orders.due(now))
        destination = self.orders.destination
        if destination is not None and (self.phase != "response" or destination != self.waypoint):
            self._head_for(destination)
        elif destination is None and self.phase == "response":
            self._end_response(now, out)
        if self.phase == "response":
            self._response_step(now, dt)
            out.append(self._fix())
        elif self.phase == "break" and now >= self.phase_until:
            self._start_patrol(now, out)
        elif self.phase == "patrol":
            if now >= self.phase_until and self.off_region_reason is None:
                self._end_patrol(now, out)
            else:
                self._patrol_step(now, dt, hours, out)
        elif self.phase == "inspection" and now >= self.phase_until:
            self._complete_inspection(now, out)
        if self.phase in ("break", "inspection"):
            self.speed = 0.0
            if self.ticks % self.cfg.heartbeat_every_ticks == 0:
                out.append(self._event(EventKind.HEARTBEAT, HeartbeatBody(battery_pct=round(self.battery, 1)), position=False))
        if self.rng.random() < self.cfg.sos_per_hour * hours:
            out.append(self._event(EventKind.SOS, SosBody(text=self.rng.choice(["遇到暴力抗法", "Threatened during inspection", "身体不适"]))))
        self.battery = max(5.0, self.battery - 0.8 * hours * (3 if self.speed > 0 else 1))
        return out

    def receive_command(self, command: Command, now: float) -> None:
        """A command the terminal verified (it has answered ``received``); the answers come out
        of later ticks as :class:`AckAction`."""
        self.orders.receive(command, now)

    # --- orders -------------------------------------------------------------------------------------
    def _head_for(self, place: tuple[float, float]) -> None:
        """Drop what the officer was doing (an inspection stays unfinished) and go to ``place``."""
        if self.phase != "response" and self.region.contains(*self.pos):
            self.return_to = self.pos  # (on a wander, return_to is already where it began)
        self.phase = "response"
        self.target_entity = None
        self.inspection = None
        self.waypoint = place
        self.speed = self.orders.travel_speed(metres(self.pos, place))
        self.off_region_reason = None if self.region.covers_segment(self.pos, place) else "dispatch"

    def _response_step(self, now: float, dt: float) -> None:
        if self.pos == self.waypoint:  # standing at the place
            self.speed = 0.0
            self.orders.arrived(now)
            return
        before = self.pos
        self.heading = bearing(before, self.waypoint)
        self.pos = toward(before, self.waypoint, self.speed * dt)
        if metres(self.pos, self.waypoint) <= ARRIVED_M:
            self.pos = self.waypoint
            self.orders.arrived(now)
        self.patrol_distance += metres(before, self.pos)
        if self.off_region_reason is None and not self.region.contains(*self.pos):
            self.off_region_reason = "dispatch"  # amended to a place outside, say

    def _end_response(self, now: float, out: list[Action]) -> None:
        """Done or stood down: back to where the officer left the patrol."""
        back = self.return_to or self.region.random_point(self.rng)
        self.phase = "patrol"
        if self.patrol_id is None:
            self._start_patrol(now, out)
        self.phase_until = max(self.phase_until, now + 600)
        self.waypoint = back
        self.off_region_reason = None if self.region.covers_segment(self.pos, back) else "returning"

    # --- phases ---------------------------------------------------------------------------------
    def _start_patrol(self, now: float, out: list[Action]) -> None:
        self.counter += 1
        self.phase = "patrol"
        self.phase_until = now + self.rng.uniform(*self.cfg.patrol_s)
        self.patrol_id = f"P-{self.id}-{self.counter}"
        self.patrol_distance = 0.0
        self.drives = self.rng.random() < self.cfg.drive_share
        self.battery = max(self.battery, self.rng.uniform(70, 100))
        grid = self.region.grid_codes[0] if self.region.grid_codes else None
        out.append(self._event(EventKind.PATROL_STARTED, PatrolStartedBody(patrol_id=self.patrol_id, grid_code=grid)))
        self._new_waypoint()

    def _end_patrol(self, now: float, out: list[Action]) -> None:
        grid = self.region.grid_codes[0] if self.region.grid_codes else None
        body = PatrolEndedBody(patrol_id=self.patrol_id or "", grid_code=grid, distance_m=round(self.patrol_distance, 1))
        out.append(self._event(EventKind.PATROL_ENDED, body))
        self.phase = "break"
        self.phase_until = now + self.rng.uniform(*self.cfg.break_s)
        self.patrol_id = None

    def _patrol_step(self, now: float, dt: float, hours: float, out: list[Action]) -> None:
        rng = self.rng
        if self.off_region_reason is None and self.target_entity is None and self.region.entities and rng.random() < self.cfg.inspections_per_hour * hours:
            self.target_entity = rng.choice(self.region.entities)
            self._set_waypoint((self.target_entity.lon, self.target_entity.lat))
        if self.off_region_reason is None and self.target_entity is None and rng.random() < self.cfg.wander_per_hour * hours:
            self._wander()
        self._move(dt)
        out.append(self._fix())
        if self.target_entity is not None and self.pos == self.waypoint:
            self._start_inspection(now, out)
            return
        if rng.random() < self.cfg.reports_per_hour * hours:
            out.append(self._report())

    def _start_inspection(self, now: float, out: list[Action]) -> None:
        e = self.target_entity
        assert e is not None
        self.counter += 1
        mode = self.rng.choices(list(InspectionMode), weights=[6, 2, 1, 1])[0]
        body = InspectionStartedBody(inspection_id=f"INS-{self.id}-{self.counter}", entity_uscc=e.uscc, mode=mode, template_id=f"{self._template(e)}-v1")
        self.inspection = body
        self.phase = "inspection"
        self.phase_until = now + self.rng.uniform(*self.cfg.inspection_s)
        out.append(self._event(EventKind.INSPECTION_STARTED, body))

    def _complete_inspection(self, now: float, out: list[Action]) -> None:
        started, e = self.inspection, self.target_entity
        assert started is not None and e is not None
        rng = self.rng
        answers = []
        for item in CHECKLIST[self._template(e)]:
            a = rng.choices(["pass", "fail", "na"], weights=[88, 8, 4])[0]
            answers.append(ChecklistAnswer(item_id=item, answer=a, note="需整改" if a == "fail" else None))
        fails = sum(a.answer == "fail" for a in answers)
        if rng.random() < self.cfg.serious_violation_share:
            result = InspectionResult.SERIOUS_VIOLATION
        elif fails == 0:
            result = InspectionResult.COMPLIANT
        else:
            result = InspectionResult.RECTIFY if fails == 1 else InspectionResult.VIOLATION
        photos = [self._attachment(f"inspections/{started.inspection_id}/photo-{i}.jpg", "image/jpeg") for i in range(rng.randint(1, 4))]
        signed = self.clock()  # wall clock: the simulator stamps with real time
        signatures = [
            Signature(signer_role="officer", name=f"执法人员{self.id[-4:]}", signed_at=signed, image=self._attachment(f"sig/{started.inspection_id}/officer.png", "image/png")),
            Signature(signer_role="entity_representative", name=(e.name or "经营者")[:20] + "代表", signed_at=signed, image=self._attachment(f"sig/{started.inspection_id}/rep.png", "image/png")),
        ]
        body = InspectionCompletedBody(
            **started.model_dump(), answers=answers, result=result, attachments=photos, signatures=signatures, qr_pushed=rng.random() < 0.9
        )
        out.append(self._event(EventKind.INSPECTION_COMPLETED, body))
        self.inspection = None
        self.target_entity = None
        self.phase = "patrol"
        self._new_waypoint()

    def _report(self) -> EventAction:
        rng = self.rng
        self.counter += 1
        category = rng.choices(list(ReportCategory), weights=[3, 3, 4, 1, 1])[0]
        serious = rng.random() < self.cfg.serious_report_share
        text = rng.choice(SERIOUS_TEXT if serious else REPORT_TEXT[category])
        entity = rng.choice(self.region.entities) if self.region.entities and rng.random() < 0.6 else None
        at = (entity.lon, entity.lat) if entity else self.pos
        body = ReportBody(
            report_id=f"R-{self.id}-{self.counter}",
            category=category,
            text=text,
            serious=serious,
            entity_uscc=entity.uscc if entity else None,
            lat=round(at[1], 6),
            lon=round(at[0], 6),
            attachments=[self._attachment(f"reports/{self.id}/{self.counter}.jpg", "image/jpeg")] if rng.random() < 0.7 else [],
        )
        return self._event(EventKind.REPORT, body)

    # --- network ----------------------------------------------------------------------------------
    def _network(self, now: float, hours: float, out: list[Action]) -> None:
        if self.online and self.rng.random() < self.cfg.offline_per_hour * hours:
            self.online = False
            self.online_at = now + self.rng.uniform(*self.cfg.offline_s)
            out.append(NetworkAction(online=False))
        elif not self.online and now >= self.online_at:
            self.online = True
            out.append(NetworkAction(online=True))

    # --- movement ---------------------------------------------------------------------------------
    def _speed(self) -> float:
        return self.rng.uniform(*(self.cfg.drive_mps if self.drives else self.cfg.walk_mps))

    def _move(self, dt: float) -> None:
        if self.pos == self.waypoint:
            if self.off_region_reason == "wander":
                self.off_region_reason = "returning"
                self.waypoint = self._back_inside()
            else:
                self._new_waypoint()
        self.speed = self._speed()
        before = self.pos
        self.heading = bearing(before, self.waypoint) if before != self.waypoint else self.heading
        self.pos = toward(before, self.waypoint, self.speed * dt)
        moved = metres(before, self.pos)
        self.patrol_distance += moved
        if dt > 0 and moved < self.speed * dt:
            self.speed = moved / dt
        if self.off_region_reason == "returning" and self.pos == self.waypoint:
            self.off_region_reason = None

    def _set_waypoint(self, target: tuple[float, float]) -> None:
        """Go to ``target`` if the straight way stays inside the region, else stop short of leaving."""
        if self.off_region_reason is not None or self.region.covers_segment(self.pos, target):
            self.waypoint = target
            return
        self.waypoint = self._reachable_near(target)

    def _new_waypoint(self) -> None:
        self._set_waypoint(self.region.random_point(self.rng))

    def _reachable_near(self, target: tuple[float, float]) -> tuple[float, float]:
        """A point toward ``target`` reachable in a straight line without leaving the region."""
        for _ in range(30):
            cand = self.region.random_point(self.rng)
            if self.region.covers_segment(self.pos, cand):
                return cand
        radius = 200.0
        for _ in range(60):
            cand = offset(self.pos, self.rng.uniform(0, 360), self.rng.uniform(0, radius))
            if self.region.covers_segment(self.pos, cand):
                return cand
            radius = max(1.0, radius * 0.8)
        return self.pos

    def _wander(self) -> None:
        """A deliberate excursion: a point 100–500 m outside the region's border, then back."""
        boundary = self.region.geometry.boundary
        p = boundary.interpolate(self.rng.uniform(0, 1), normalized=True)
        for _ in range(20):
            cand = offset((p.x, p.y), self.rng.uniform(0, 360), self.rng.uniform(100, 500))
            if not self.region.contains(*cand):
                self.off_region_reason = "wander"
                self.return_to = self.pos
                self.waypoint = cand
                return

    def _back_inside(self) -> tuple[float, float]:
        return self.return_to or self.region.random_point(self.rng)

    # --- builders -----------------------------------------------------------------------------------
    def _fix(self) -> FixAction:
        return FixAction(
            lat=round(self.pos[1], 7),
            lon=round(self.pos[0], 7),
            speed_mps=round(self.speed, 2),
            heading_deg=round(self.heading, 1) % 360.0,
            acc_m=round(self.rng.uniform(3, 15 if self.drives else 25), 1),
            battery_pct=round(self.battery, 1),
        )

    def _event(self, kind: EventKind, body: object, *, position: bool = True) -> EventAction:
        if position:
            return EventAction(kind, body, round(self.pos[1], 7), round(self.pos[0], 7))
        return EventAction(kind, body, None, None)

    def _attachment(self, key: str, media_type: str) -> Attachment:
        digest = hashlib.sha256(self.rng.randbytes(32)).hexdigest()
        return Attachment(key=key, media_type=media_type, size_bytes=self.rng.randint(20_000, 3_000_000), sha256=digest)

    @staticmethod
    def _template(e: Entity) -> str:
        ind = e.industry.lower()
        if "food" in ind or "餐" in ind or "食" in ind:
            return "food"
        if "drug" in ind or "药" in ind:
            return "drug"
        if "equip" in ind or "电梯" in ind:
            return "equipment"
        return "general"
