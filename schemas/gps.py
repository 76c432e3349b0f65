"""GPS fixes: ``{prefix}/t/{terminal_id}/gps`` carries one GpsFix or a JSON array of them."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from schemas.base import Seq, TerminalMessage, Timestamp


class GpsFix(TerminalMessage):
    """One WGS-84 position. Terminals buffer fixes while offline and flush them later as an array."""

    seq: Seq
    ts: Timestamp
    lat: Annotated[float, Field(ge=-90, le=90, description="Latitude, WGS-84 degrees")]
    lon: Annotated[float, Field(ge=-180, le=180, description="Longitude, WGS-84 degrees")]
    acc_m: Annotated[float | None, Field(None, ge=0, le=100_000, description="Horizontal accuracy, metres")]
    speed_mps: Annotated[float | None, Field(None, ge=0, le=150, description="Ground speed, m/s")]
    heading_deg: Annotated[float | None, Field(None, ge=0, lt=360, description="Course over ground, degrees from north")]
    battery_pct: Annotated[float | None, Field(None, ge=0, le=100, description="Battery level, percent")]


# The protocol's own limit on one array. The reference terminal flushes at most 500 fixes at a
# time (terminal TerminalConfig.max_array); twice that leaves room for other clients. Ingest
# dead-letters a longer array as a whole (too_many_items) before looking at its items.
MAX_FIXES_PER_ARRAY = 1000

GpsPayload = GpsFix | Annotated[list[GpsFix], Field(min_length=1, max_length=MAX_FIXES_PER_ARRAY)]
gps_payload_adapter: TypeAdapter[GpsPayload] = TypeAdapter(GpsPayload)


def parse_gps_payload(raw: bytes) -> list[GpsFix]:
    """One fix or an array of fixes -> list; raises pydantic.ValidationError."""
    parsed = gps_payload_adapter.validate_json(raw)
    return parsed if isinstance(parsed, list) else [parsed]
