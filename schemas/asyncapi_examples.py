"""The protocol document's examples, every payload built and dumped by its own model.

Fixed times and ids, so the generated document (schemas.asyncapi) is the same on every run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, TypeAdapter

from schemas.ack import AckStatus, CommandAck
from schemas.asyncapi_commands import signed_examples
from schemas.events import (
    Attachment,
    ChecklistAnswer,
    Heartbeat,
    HeartbeatBody,
    InspectionCompleted,
    InspectionCompletedBody,
    InspectionMode,
    InspectionResult,
    InspectionStarted,
    InspectionStartedBody,
    PatrolEnded,
    PatrolEndedBody,
    PatrolStarted,
    PatrolStartedBody,
    Report,
    ReportBody,
    ReportCategory,
    Signature,
    Sos,
    SosBody,
)
from schemas.gps import GpsFix
from schemas.receipt import Receipt
from schemas.status import TerminalStatus

T0 = datetime(2025, 6, 1, 1, 30, tzinfo=UTC)
CMD_ID = UUID("6f1d3c1e-2b7a-4c1e-9f3a-0a5b2c7d8e90")
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
USCC = "91360600MA35K2LQ7K"  # check digit valid (GB 32100-2015)


def _photo(key: str) -> Attachment:
    return Attachment(key=key, media_type="image/jpeg", size_bytes=245_760, sha256=SHA)


def example_fix(seq: int = 1001, minutes: int = 0) -> GpsFix:
    return GpsFix(
        seq=seq,
        ts=T0 + timedelta(minutes=minutes),
        lat=28.2601 + 0.0004 * minutes,
        lon=117.0352 + 0.0003 * minutes,
        acc_m=6.0,
        speed_mps=1.4,
        heading_deg=32.0,
        battery_pct=81.0,
    )


def examples() -> dict[str, list[tuple[str, Any]]]:
    """Message name -> [(example name, payload as JSON-able data)], every payload dumped by its model."""

    def d(m: BaseModel) -> Any:
        return json.loads(m.model_dump_json(exclude_none=True))

    inspection = InspectionStartedBody(
        inspection_id="INS-2025-000123", entity_uscc=USCC, mode=InspectionMode.DOUBLE_RANDOM, template_id="food-retail-v3"
    )
    completed = InspectionCompletedBody(
        **inspection.model_dump(),
        answers=[
            ChecklistAnswer(item_id="licence-displayed", answer="pass"),
            ChecklistAnswer(item_id="cold-chain-temperature", answer="fail", note="freezer at -8 °C"),
        ],
        result=InspectionResult.RECTIFY,
        attachments=[_photo("inspections/INS-2025-000123/freezer.jpg")],
        signatures=[
            Signature(signer_role="officer", name="王芳", signed_at=T0 + timedelta(minutes=20), image=_photo("sig/officer.png")),
            Signature(
                signer_role="entity_representative", name="李强", signed_at=T0 + timedelta(minutes=21), image=_photo("sig/rep.png")
            ),
        ],
        qr_pushed=True,
    )
    ev = dict(lat=28.2611, lon=117.0360)
    fixes = [example_fix(1001 + i, i) for i in range(3)]
    signed = signed_examples(T0, CMD_ID)
    return {
        "GpsFix": [("one fix", d(fixes[0]))],
        "GpsFixArray": [
            ("buffered fixes flushed after reconnecting", json.loads(TypeAdapter(list[GpsFix]).dump_json(fixes, exclude_none=True)))
        ],
        "TerminalEvent": [
            ("patrol.started", d(PatrolStarted(seq=1004, ts=T0, kind="patrol.started", body=PatrolStartedBody(patrol_id="P-20250601-07", grid_code="360602001001"), **ev))),
            ("inspection.started", d(InspectionStarted(seq=1005, ts=T0 + timedelta(minutes=5), kind="inspection.started", body=inspection, **ev))),
            ("inspection.completed", d(InspectionCompleted(seq=1006, ts=T0 + timedelta(minutes=22), kind="inspection.completed", body=completed, **ev))),
            (
                "report",
                d(
                    Report(
                        seq=1007,
                        ts=T0 + timedelta(minutes=40),
                        kind="report",
                        body=ReportBody(
                            report_id="R-2025-004711",
                            category=ReportCategory.TIP,
                            text="Unlicensed sale of prescription drugs reported by a customer",
                            serious=True,
                            entity_uscc=USCC,
                            lat=28.2620,
                            lon=117.0371,
                            attachments=[_photo("reports/R-2025-004711/1.jpg")],
                        ),
                    )
                ),
            ),
            ("sos", d(Sos(seq=1008, ts=T0 + timedelta(minutes=50), kind="sos", body=SosBody(text="Threatened during inspection"), **ev))),
            ("heartbeat", d(Heartbeat(seq=1009, ts=T0 + timedelta(minutes=55), kind="heartbeat", body=HeartbeatBody(battery_pct=64.0)))),
            ("patrol.ended", d(PatrolEnded(seq=1010, ts=T0 + timedelta(hours=3), kind="patrol.ended", body=PatrolEndedBody(patrol_id="P-20250601-07", grid_code="360602001001", distance_m=5240.0), **ev))),
        ],
        "CommandAck": [
            ("received", d(CommandAck(command_id=CMD_ID, ts=T0 + timedelta(seconds=1), status=AckStatus.RECEIVED))),
            ("accepted", d(CommandAck(command_id=CMD_ID, ts=T0 + timedelta(seconds=40), status=AckStatus.ACCEPTED))),
            ("done", d(CommandAck(command_id=CMD_ID, ts=T0 + timedelta(minutes=38), status=AckStatus.DONE, note="Kitchen sealed, samples taken"))),
            ("rejected by the officer", d(CommandAck(command_id=CMD_ID, ts=T0 + timedelta(minutes=2), status=AckStatus.REJECTED, note="On sick leave today"))),
            *signed["CommandAck"],
        ],
        "TerminalStatus": [
            ("online", d(TerminalStatus(online=True, ts=T0, battery_pct=81.0, app_version="gridwatch-terminal/1.0"))),
            ("last will", d(TerminalStatus(online=False))),
        ],
        "SignedCommand": signed["SignedCommand"],
        "Receipt": [
            ("one batch", d(Receipt(seqs=[(1001, 1009)], ts=T0 + timedelta(minutes=55, seconds=1)))),
            ("after a re-send, with a seq the terminal never used", d(Receipt(seqs=[(1001, 1003), (1005, 1010)], ts=T0 + timedelta(hours=3, seconds=1)))),
        ],
    }


def command_examples() -> dict[str, list[tuple[str, Any]]]:
    """The Commands inside the signed examples, and a tampered envelope (documentation only)."""
    signed = signed_examples(T0, CMD_ID)
    return {"Command": signed["Command"], "TamperedCommand": signed["TamperedCommand"]}
