"""Fixtures for the schema tests: minimal valid payloads, one change per test makes them invalid."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def fix() -> dict[str, Any]:
    return {"seq": 1, "ts": "2025-06-01T09:30:00+08:00", "lat": 28.26, "lon": 117.03}


@pytest.fixture
def attachment() -> dict[str, Any]:
    return {"key": "inspections/1/a.jpg", "media_type": "image/jpeg", "size_bytes": 1024, "sha256": "a" * 64}


@pytest.fixture
def ack() -> dict[str, Any]:
    return {"command_id": "6f1d3c1e-2b7a-4c1e-9f3a-0a5b2c7d8e90", "ts": "2025-06-01T01:30:00Z", "status": "received"}
