"""The fault suite's short version, as CI runs it: nothing lost, nothing stored twice.

bench/faults.py starts everything it breaks on its own (a local broker, its own database, Redis
prefix and topic prefix): the shared services are never restarted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_short_fault_suite_loses_and_doubles_nothing(tmp_path, base_settings) -> None:
    out = tmp_path / "faults.json"
    run = subprocess.run([sys.executable, "-m", "bench.faults", "--short", "--json", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.exists(), f"the fault suite did not finish:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    rows = {r["name"]: r for r in json.loads(out.read_text())}
    assert {"ingest-kill", "broker-restart", "broker-kill"} <= set(rows), run.stdout
    for name, r in rows.items():
        assert r["fixes_made"] > 0 and r["events_made"] > 0, (name, r)
        assert (r["fixes_lost"], r["fixes_duplicated"], r["events_lost"], r["events_duplicated"]) == (0, 0, 0, 0), (name, r, run.stdout)
        assert r["fixes_stored"] == r["fixes_made"] and r["events_stored"] == r["events_made"], (name, r)
        assert r["gap_terminals"] == 0 and r["buffer_dropped"] == 0 and r["unconfirmed_at_end"] == 0, (name, r)
        assert r["catch_up_s"] is not None, f"{name}: live state never caught up"
    assert run.returncode == 0, run.stdout
