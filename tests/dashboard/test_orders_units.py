"""Pure parts of the order console and board: form -> draft, amend form -> amendment, the
board's summary of an order, the wall overlay, the bearer header."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dashboard.orders_board import build_amendment
from dashboard.orders_console import build_draft, problems
from dashboard.orders_data import overlay, split_people, summarize
from dashboard.tokens import bearer
from schemas.orders import OrderState, OrderView, RecipientState, RecipientView

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
BASE = {"order-title": "Fire", "order-lat": 28.2, "order-lon": 117.0}


@pytest.mark.parametrize("fields, target", [
    ({"order-target": "all"}, {"type": "all"}),
    ({"order-target": "grids", "order-grids": ["A1", "B2"], "order-adjacent": ["on"]},
     {"type": "grids", "codes": ["A1", "B2"], "include_adjacent": True}),
    ({"order-target": "people", "order-people": ["p:P1", "t:T9", "junk"]},
     {"type": "people", "person_ids": ["P1"], "terminal_ids": ["T9"]}),
    ({"order-target": "nearest", "order-n": 3}, {"type": "nearest", "lat": 28.2, "lon": 117.0, "n": 3}),
    ({"order-target": "radius", "order-radius": 800}, {"type": "radius", "lat": 28.2, "lon": 117.0, "radius_m": 800.0}),
])
def test_every_target_kind_from_the_form(fields, target):
    draft = build_draft({**BASE, **fields, "order-expiry": 30, "order-deadline": 10}, NOW)
    assert draft.target.model_dump(mode="json") == target
    assert draft.expires_at == NOW + timedelta(minutes=30) and draft.deadline == NOW + timedelta(minutes=10)
    assert draft.kind == "emergency" and draft.priority == "critical"  # the form's defaults


def test_bad_forms_are_refused_with_the_field_named():
    with pytest.raises(ValidationError) as e:
        build_draft({**BASE, "order-target": "radius", "order-lat": None, "order-lon": None, "order-radius": 100}, NOW)
    assert "target" in problems(e.value)
    with pytest.raises(ValidationError) as e:
        build_draft({**BASE, "order-target": "grids", "order-grids": []}, NOW)
    assert "codes" in problems(e.value)
    with pytest.raises(ValidationError):
        build_draft({**BASE, "order-lon": None}, NOW)  # half a place
    with pytest.raises(ValidationError):
        build_draft({**BASE, "order-target": "people", "order-people": []}, NOW)


def test_amend_form():
    assert build_amendment(None, " ", None, [], None, None, NOW) is None
    a = build_amendment("New", None, 15, ["on"], 28.1, 117.2, NOW)
    assert (a.title, a.body, a.lat, a.lon, a.expires_at) == ("New", None, 28.1, 117.2, NOW + timedelta(minutes=15))
    with pytest.raises(ValueError):
        build_amendment(None, None, None, ["on"], None, 117.2, NOW)


def _view(target: dict, recipients: list[tuple]) -> OrderView:
    recs = [RecipientView(terminal_id=tid, person_name=name, grid2_code=g2, state=stt, state_at=NOW,
                          arrived_at=NOW if arrived else None, reason=reason)
            for tid, name, g2, stt, arrived, reason in recipients]
    counts = {s: 0 for s in RecipientState}
    for r in recs:
        counts[r.state] += 1
    return OrderView(order_id=uuid.uuid4(), command_id=uuid.uuid4(), state=OrderState.ACTIVE, revision=0, kind="emergency",
                     priority="critical", title="<b>Fire</b>", body="", lat=28.2, lon=117.0, place_radius_m=150,
                     target=target, created_by="duty", created_at=NOW, deadline=None, expires_at=None, counts=counts,
                     recipients=recs)


def test_summary_counts_per_state_grid_person_and_the_silent():
    v = _view({"type": "grids", "codes": ["L1"], "include_adjacent": True}, [
        ("T1", "Li", "G1", "received", False, None),
        ("T2", "Wang", "G1", "sent", False, None),
        ("T3", "Zhao", "G2", "rejected", False, "sick"),
        ("T4", None, "G3", "accepted", True, None),
    ])
    s = summarize(v)
    assert s["counts"] == {"received": 1, "sent": 1, "rejected": 1, "accepted": 1} and s["total"] == 4
    assert s["grids"] == [["G1", {"received": 1, "sent": 1}], ["G2", {"rejected": 1}], ["G3", {"accepted": 1}]]
    assert s["silent"] == ["Wang"]
    assert [p[0] for p in s["people"]] == ["Wang", "Li", "T4", "Zhao"]  # forward states in order, then refusals
    assert ["Zhao", "T3", "rejected", "sick", 0] in s["people"] and ["T4", "T4", "accepted", "", 1] in s["people"]
    assert s["title"] == "<b>Fire</b>"  # kept as text; the board renders it as text
    ov = overlay([s])[0]
    assert ov["grids"] == ["L1", "G1", "G2", "G3"]  # the chosen grid and, with adjacent, where recipients are
    assert ov["rec"] == [["T1", "received", 0], ["T2", "sent", 0], ["T3", "rejected", 0], ["T4", "accepted", 1]]
    assert ov["pr"] == 150 and ov["r"] is None
    radius = summarize(_view({"type": "radius", "lat": 28.2, "lon": 117.0, "radius_m": 500}, []))
    assert overlay([radius])[0]["r"] == 500 and overlay([radius])[0]["grids"] == []


def test_split_people():
    assert split_people(["p:A", "t:B", "p:", "x:C", "t:D"]) == (["A"], ["B", "D"])
    assert split_people(None) == ([], [])


@given(st.text(max_size=80))
def test_bearer_never_crashes_and_only_takes_bearer(header):
    tok = bearer(header)
    assert tok is None or (header.strip().lower().startswith("bearer ") and tok == tok.strip() and tok)


def test_bearer_examples():
    assert bearer("Bearer abc") == "abc" and bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None and bearer("Bearer") is None and bearer(None) is None
