"""Grid assignment throughput: GridLocator (STRtree) vs a naive loop over every polygon.

Runs on the 528 level-2 polygons of the demo city (generated in memory, no database), with points
drawn like real fixes: mostly inside the city, some outside. All three ways are measured in the
same run on one core and must agree on every point they share.

    .venv/bin/python bench/grid_locate.py [--points 200000] [--naive-points 2000] [--seed 20180601]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grid.democity import DemoConfig, build_grids, load_divisions  # noqa: E402
from grid.locate import GridLocator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--naive-points", type=int, default=2_000)
    ap.add_argument("--single-points", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=2_000, help="locate_many batch size (ingest's batch)")
    ap.add_argument("--seed", type=int, default=20180601)
    a = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    _, _, level2, _, _, _ = build_grids(DemoConfig(seed=a.seed), load_divisions())
    grids = [(g.code, g.parent, g.geometry) for g in level2]
    t = time.perf_counter()
    loc = GridLocator(grids)
    loc.locate(0.0, 0.0)  # the STRtree is built lazily by its first query
    build_s = time.perf_counter() - t
    verts = sum(shapely.get_num_coordinates(g) for _, _, g in grids)

    # like real fixes: 90% inside the city (uniform over its area), 10% anywhere around it
    rng = np.random.default_rng(a.seed)
    city = shapely.union_all([g for _, _, g in grids])
    x0, y0, x1, y1 = city.bounds
    n_in = int(a.points * 0.9)
    cx, cy = rng.uniform(x0, x1, 4 * n_in), rng.uniform(y0, y1, 4 * n_in)
    keep = shapely.contains_xy(city, cx, cy)
    lons = np.concatenate([cx[keep][:n_in], rng.uniform(x0 - 0.05, x1 + 0.05, a.points - n_in)])
    lats = np.concatenate([cy[keep][:n_in], rng.uniform(y0 - 0.05, y1 + 0.05, a.points - n_in)])
    order = rng.permutation(a.points)
    lons, lats = lons[order], lats[order]

    t = time.perf_counter()
    idx = np.concatenate([loc.locate_index(lons[i:i + a.batch], lats[i:i + a.batch])
                          for i in range(0, a.points, a.batch)])
    many_s = time.perf_counter() - t
    t = time.perf_counter()
    refs = loc.locate_many(lons[: a.batch * 10], lats[: a.batch * 10])
    refs_s = time.perf_counter() - t

    n1 = min(a.single_points, a.points)
    t = time.perf_counter()
    single = [loc.locate(x, y) for x, y in zip(lons[:n1].tolist(), lats[:n1].tolist())]
    single_s = time.perf_counter() - t

    polys = [g for _, _, g in sorted(grids)]
    codes = [c for c, _, _ in sorted(grids)]
    nn = min(a.naive_points, a.points)
    t = time.perf_counter()
    naive = []
    for x, y in zip(lons[:nn].tolist(), lats[:nn].tolist()):
        p = shapely.Point(x, y)
        naive.append(next((c for c, poly in zip(codes, polys) if poly.contains(p)), None))
    naive_s = time.perf_counter() - t

    many_codes = [codes[i] if i >= 0 else None for i in idx.tolist()]
    assert [r.grid2_code if r else None for r in single] == many_codes[:n1], "locate and locate_many disagree"
    assert naive == many_codes[:nn], "naive loop and locator disagree"
    assert [r.grid2_code if r else None for r in refs] == many_codes[: len(refs)]

    rate = {"locate_many (index)": a.points / many_s, "locate_many (GridRef list)": len(refs) / refs_s,
            "locate (one point)": n1 / single_s, "naive loop": nn / naive_s}
    inside = float(np.mean(idx >= 0))
    print(f"{len(grids)} level-2 polygons, {verts:,} vertices; index built in {build_s * 1000:.1f} ms; "
          f"{inside:.0%} of points inside the city")
    for name, r in rate.items():
        print(f"  {name:28s} {r:>12,.0f} points/s   ({r / rate['naive loop']:,.0f}x naive)")
    target = 100_000
    ok = rate["locate_many (index)"] >= target
    print(f"target ≥{target:,} points/s on one core: {'met' if ok else 'NOT met'} "
          f"(batch {a.batch}, locate_many/locate = {rate['locate_many (index)'] / rate['locate (one point)']:.1f}x)")


if __name__ == "__main__":
    main()
