"""bench/cpu_limit.py: what runs inside the limit gets that share of the CPU, and nothing is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench import cpu_limit as cl

BUSY_S = 1.0  # wall-clock seconds the child spins


def _usable() -> bool:
    return os.geteuid() == 0 and ((cl.V1 / "cpu.cfs_quota_us").exists() or cl._v2_has_cpu())


@pytest.mark.skipif(not _usable(), reason="needs root and the cgroup cpu controller")
def test_a_child_started_inside_the_limit_gets_that_share_of_a_cpu():
    spin = f"import time\nend = time.monotonic() + {BUSY_S}\nwhile time.monotonic() < end: pass\nprint(time.process_time())"
    with cl.cpu_limit(0.2):
        started = time.monotonic()
        used = float(subprocess.run([sys.executable, "-c", spin], capture_output=True, text=True, check=True).stdout)
        elapsed = time.monotonic() - started
    assert used <= 0.2 * elapsed + 0.1, f"{used:.2f} s of CPU in {elapsed:.2f} s under a 0.2 CPU limit"
    group = f"gridwatch-bench-{os.getpid()}"
    assert not [d for root in (cl.V1, cl.V2) if root.is_dir() for d in root.iterdir() if d.name == group]
    unlimited = float(subprocess.run([sys.executable, "-c", spin], capture_output=True, text=True, check=True).stdout)
    assert unlimited > 0.5, "outside the limit the same child runs freely again"
