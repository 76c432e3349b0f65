"""Partition a polygon into child polygons that tile it exactly: the demo city's map maker.

Children are Voronoi cells of seed points clipped to the parent, so they cannot overlap and
their union is the parent up to floating-point noise. Clipping a non-convex parent can cut a
cell into pieces; pieces cut off from their seed are handed to the neighbour sharing the longest
border, as are leftovers (noise or holes), so every child is one believable patch around its seed.
Pure functions: numpy Generator in, geometry out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from grid.geometry import area_m2, polygonal_part

# Every overlay runs on a fixed precision grid (1e-9 degrees, 0.1 mm): GEOS snap-rounding is then
# fully robust and neighbours computed separately share their edges exactly, so the tiling has
# no noise slivers. Outputs are on the grid too, so a re-import reproduces them bit for bit.
GRID = 1e-9


def sample_points(
    rng: np.random.Generator,
    region: BaseGeometry,
    n: int,
    centre: tuple[float, float] | None = None,
    sigma: float | None = None,
    min_dist: float = 0.0,
    existing: Sequence[tuple[float, float]] = (),
    bias: tuple[tuple[float, float], float] | None = None,
) -> list[tuple[float, float]]:
    """``n`` points inside ``region``: uniform, or Gaussian around ``centre`` (``sigma`` degrees),
    at least ``min_dist`` degrees from each other and from ``existing`` (relaxed when crowded).
    ``bias`` = (centre, sigma) thins uniform points far from a centre, so density falls off
    with distance but never to zero (villages stay spread over the countryside)."""
    shapely.prepare(region)
    x0, y0, x1, y1 = region.bounds
    out: list[tuple[float, float]] = []
    taken = list(existing)
    dist = min_dist
    tries = 0
    while len(out) < n:
        m = 256
        if centre is not None and sigma:
            xs = rng.normal(centre[0], sigma, m)
            ys = rng.normal(centre[1], sigma, m)
        else:
            xs = rng.uniform(x0, x1, m)
            ys = rng.uniform(y0, y1, m)
        inside = shapely.contains_xy(region, xs, ys)
        if bias is not None:
            (bx, by), bs = bias
            keep_p = 0.25 + 0.75 * np.exp(-((xs - bx) ** 2 + (ys - by) ** 2) / (2 * bs * bs))
            inside &= rng.random(m) < keep_p
        for x, y in zip(xs[inside].tolist(), ys[inside].tolist(), strict=True):
            if len(out) >= n:
                break
            if dist > 0 and taken:
                t = np.asarray(taken)
                if np.min((t[:, 0] - x) ** 2 + (t[:, 1] - y) ** 2) < dist * dist:
                    continue
            out.append((x, y))
            taken.append((x, y))
        tries += 1
        if tries % 4 == 0:
            dist *= 0.8  # crowded: relax the spacing rather than loop forever
        if tries > 400:
            raise RuntimeError("could not place seed points inside the region")
    return out


def _best_neighbour(piece: BaseGeometry, cells: Mapping[str, BaseGeometry], exclude: str | None) -> str | None:
    """The cell sharing the longest border with ``piece`` (None if none touches it)."""
    grown = piece.buffer(1e-7, quad_segs=1)
    best, best_len = None, 0.0
    for code, cell in cells.items():
        if code == exclude or cell.is_empty or not cell.intersects(grown):
            continue
        shared = cell.boundary.intersection(grown).length
        if shared > best_len or (shared == best_len and best is not None and code < best):
            best, best_len = code, shared
    return best


def partition(
    parent: BaseGeometry,
    seeds: Mapping[str, tuple[float, float]],
) -> dict[str, BaseGeometry]:
    """Tile ``parent`` into one child per seed (code -> (lon, lat), every seed inside ``parent``)."""
    codes = sorted(seeds)
    parent = shapely.set_precision(parent, GRID)
    if len(codes) == 1:
        return {codes[0]: parent}
    pts = shapely.multipoints([seeds[c] for c in codes])
    x0, y0, x1, y1 = parent.bounds
    pad = max(x1 - x0, y1 - y0)
    frame = shapely.box(x0 - pad, y0 - pad, x1 + pad, y1 + pad)
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame, ordered=True))
    shapely.prepare(parent)
    out = {c: polygonal_part(shapely.intersection(cell, parent, grid_size=GRID)) for c, cell in zip(codes, cells, strict=True)}

    # pieces cut off from their seed go to the neighbour with the longest shared border
    for code in codes:
        parts = shapely.get_parts(out[code])
        if len(parts) < 2:
            continue
        seed = shapely.Point(seeds[code])
        home = [p for p in parts if p.intersects(seed)] or [max(parts, key=lambda p: p.area)]
        keep = list(home)
        for p in parts:
            if any(p is h for h in home):
                continue
            to = _best_neighbour(p, out, exclude=code)
            if to is None:
                keep.append(p)
            else:
                out[to] = shapely.union(out[to], p, grid_size=GRID)
        out[code] = shapely.union_all(keep, grid_size=GRID)

    # leftovers (noise, or parent area no clipped cell reached) go to their best neighbour
    covered = shapely.union_all(list(out.values()), grid_size=GRID)
    for piece in shapely.get_parts(polygonal_part(shapely.difference(parent, covered, grid_size=GRID))):
        to = _best_neighbour(piece, out, exclude=None)
        if to is not None:
            out[to] = shapely.union(out[to], piece, grid_size=GRID)
    return {c: polygonal_part(g) for c, g in out.items()}


def clean_outlines(
    outlines: Mapping[str, BaseGeometry],
    max_hole_m2: float = 2_000_000.0,
    min_island_m2: float = 50_000.0,
) -> tuple[dict[str, BaseGeometry], list[str]]:
    """Make county outlines a clean tiling of the city; returns (outlines, notes on what changed).

    Steps, each reported: keep the polygonal part of ``make_valid``; fill holes smaller than
    ``max_hole_m2`` (self-intersection artefacts, not enclaves); drop detached islands smaller
    than ``min_island_m2`` (stray quantisation cells; the outline around them is filled); give area claimed by two outlines
    to the lower code; hand pin-holes between outlines to the neighbour with the longest border.
    """
    notes: list[str] = []
    fixed: dict[str, BaseGeometry] = {}
    for code in sorted(outlines):
        geom = outlines[code]
        if not geom.is_valid:
            why = shapely.is_valid_reason(geom)
            geom = polygonal_part(shapely.make_valid(geom))
            notes.append(f"{code}: {why}; kept the polygonal part of make_valid "
                         f"({len(shapely.get_parts(geom))} polygons)")
        parts = list(shapely.get_parts(geom))
        biggest = max(parts, key=lambda p: p.area)
        small = [p for p in parts if p is not biggest and area_m2(p) < min_island_m2]
        if small:
            parts = [p for p in parts if not any(p is q for q in small)]
            notes.append(f"{code}: dropped {len(small)} detached island(s) < {min_island_m2:,.0f} m² "
                         f"({sum(area_m2(p) for p in small):,.0f} m² in all)")
        polys = []
        filled = 0
        for p in parts:
            holes = [r for r in p.interiors if area_m2(shapely.Polygon(r)) >= max_hole_m2]
            filled += len(p.interiors) - len(holes)
            polys.append(shapely.Polygon(p.exterior, holes))
        geom = shapely.union_all(polys, grid_size=GRID)
        if filled:
            notes.append(f"{code}: filled {filled} pin-hole(s) smaller than {max_hole_m2:,.0f} m²")
        fixed[code] = geom
    claimed = shapely.Polygon()
    for code in sorted(fixed):
        overlap = shapely.intersection(fixed[code], claimed, grid_size=GRID)
        a = area_m2(polygonal_part(overlap)) if not overlap.is_empty else 0.0
        if a > 0:
            fixed[code] = polygonal_part(shapely.difference(fixed[code], claimed, grid_size=GRID))
            notes.append(f"{code}: removed {a:,.0f} m² also claimed by a lower-coded outline")
        claimed = shapely.union(claimed, fixed[code], grid_size=GRID)
    shells = shapely.union_all([shapely.Polygon(p.exterior) for p in shapely.get_parts(claimed)], grid_size=GRID)
    holes = polygonal_part(shapely.difference(shells, claimed, grid_size=GRID))
    n, total = 0, 0.0
    for piece in shapely.get_parts(holes):
        a = area_m2(piece)
        if a >= max_hole_m2:
            continue
        to = _best_neighbour(piece, fixed, exclude=None)
        if to is not None:
            fixed[to] = shapely.union(fixed[to], piece, grid_size=GRID)
            n, total = n + 1, total + a
    if n:
        notes.append(f"filled {n} pin-hole(s) between outlines ({total:,.0f} m²)")
    return {c: polygonal_part(g) for c, g in fixed.items()}, notes
