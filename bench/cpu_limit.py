"""A slow host on demand: this process and every process it starts from here on (broker,
PostgreSQL, consumers, load generator) share a CPU quota, through the kernel's cgroup ``cpu``
controller (v1 ``cpu.cfs_quota_us`` or v2 ``cpu.max``; needs root).

This machine's own speed drifts by about 2x from hour to hour; a quota makes "the host gives us
less CPU" repeatable, so two versions of the code can be compared under the same shortage. The
quota is a total over 100 ms periods: a group that spends it early waits for the next period,
the stalls a busy neighbour on a shared host causes. Redis is the machine's and stays outside.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PERIOD_US = 100_000
V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")


def _v2_has_cpu() -> bool:
    try:
        return "cpu" in (V2 / "cgroup.subtree_control").read_text().split()
    except OSError:
        return False


@contextmanager
def cpu_limit(cpus: float) -> Iterator[None]:
    """Run the body (and every child started in it) within ``cpus`` CPUs in all."""
    name = f"gridwatch-bench-{os.getpid()}"
    quota = str(max(1000, int(cpus * PERIOD_US)))
    if (V1 / "cpu.cfs_quota_us").exists():
        root, group = _own_group(V1, "cpu"), V1 / name
        group.mkdir()
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(quota)
    elif _v2_has_cpu():
        root, group = _own_group(V2, ""), V2 / name
        group.mkdir()
        (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
    else:
        raise RuntimeError("--cpu-limit needs the cgroup cpu controller (v1 at /sys/fs/cgroup/cpu, or v2 with cpu enabled)"
                           " and root")
    (group / "cgroup.procs").write_text(str(os.getpid()))
    try:
        yield
    finally:
        _release(group, root)


def _own_group(mount: Path, controller: str) -> Path:
    """The group this process is in now (of ``controller``; "" for cgroup v2), to go back to."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or controllers == controller:
            return mount / path.lstrip("/")
    return mount


def _release(group: Path, root: Path) -> None:
    """Move whatever is still in the group back to where this process came from (this process; a
    helper that lives as long as it, such as multiprocessing's resource tracker) and remove the
    group: the run is over."""
    for _ in range(50):
        for pid in [str(os.getpid()), *(group / "cgroup.procs").read_text().split()]:
            try:
                (root / "cgroup.procs").write_text(pid)
            except OSError:  # it exited meanwhile
                pass
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.1)
    print(f"could not remove {group}: remove it with rmdir once its processes are gone", file=sys.stderr)
