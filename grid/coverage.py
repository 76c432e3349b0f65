"""Coverage check: the bureau promises 100% grid coverage, so gaps and overlaps are reported.

* gaps: parts of a level-1 grid no level-2 child covers, and parts of the city outline no
  level-1 grid covers;
* overlaps: area claimed by two level-2 grids (anywhere in the city), or by two level-1 grids;
* strays: level-2 area lying outside its own level-1 parent.

Areas are in m² (equal-area projection, grid.geometry). Pieces smaller than ``tol_m2`` are
floating-point noise from clipping and are ignored, so a clean tiling reports nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from grid.geometry import area_m2

DEFAULT_TOL_M2 = 1.0
# Overlays run snap-rounded on a 1e-9 degree grid (0.1 mm): floating-point overlay of long shared
# borders otherwise falls back to heuristics that invent slivers of hundreds of m².
GRID = 1e-9


@dataclass(frozen=True, slots=True)
class Issue:
    kind: str  # gap | overlap | stray
    level: int  # 1 or 2: which tiling it is in
    grids: tuple[str, ...]  # the parent for a gap, the two grids for an overlap, the child for a stray
    area_m2: float
    lon: float  # a point inside the piece, to find it on the map
    lat: float

    def __str__(self) -> str:
        return (f"level-{self.level} {self.kind} {'/'.join(self.grids)}: {self.area_m2:,.1f} m² "
                f"near ({self.lon:.5f}, {self.lat:.5f})")


@dataclass(slots=True)
class CoverageReport:
    issues: list[Issue] = field(default_factory=list)
    level2_count: int = 0
    level1_count: int = 0
    city_area_km2: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.issues

    def total(self, kind: str) -> float:
        return sum(i.area_m2 for i in self.issues if i.kind == kind)


def _pieces(geom: BaseGeometry, tol_m2: float, lat0: float):
    for part in shapely.get_parts(geom):
        if part.geom_type not in ("Polygon", "MultiPolygon"):
            continue
        a = area_m2(part, lat0)
        if a >= tol_m2 and a > 0:
            p = part.representative_point()
            yield a, p.x, p.y


def _gaps(parent: BaseGeometry, children: Sequence[BaseGeometry], code: str, level: int, tol: float, lat0: float):
    covered = shapely.union_all(children, grid_size=GRID) if children else shapely.Polygon()
    return [Issue("gap", level, (code,), a, x, y) for a, x, y in _pieces(shapely.difference(parent, covered, grid_size=GRID), tol, lat0)]


def _overlaps(grids: Mapping[str, BaseGeometry], level: int, tol: float, lat0: float) -> list[Issue]:
    codes = sorted(grids)
    if len(codes) < 2:
        return []
    polys = np.array([grids[c] for c in codes], dtype=object)
    i, j = shapely.STRtree(polys).query(polys, predicate="intersects")
    keep = i < j
    out = []
    for a, b in zip(i[keep].tolist(), j[keep].tolist(), strict=True):
        inter = shapely.intersection(polys[a], polys[b], grid_size=GRID)
        for area, x, y in _pieces(inter, tol, lat0):
            out.append(Issue("overlap", level, (codes[a], codes[b]), area, x, y))
    return out


def check_coverage(
    level2: Mapping[str, tuple[str, BaseGeometry]],
    level1: Mapping[str, BaseGeometry],
    city: BaseGeometry | None = None,
    tol_m2: float = DEFAULT_TOL_M2,
) -> CoverageReport:
    """Gaps, overlaps and strays. ``level2``: code -> (level1_code, geometry); ``city``: the
    outline the level-1 grids must cover (default: their own union, i.e. only holes inside it)."""
    lat0 = float(np.mean([g.centroid.y for g in level1.values()])) if level1 else 0.0
    rep = CoverageReport(level2_count=len(level2), level1_count=len(level1))
    by_parent: dict[str, list[BaseGeometry]] = {}
    for code, (parent, geom) in sorted(level2.items()):
        by_parent.setdefault(parent, []).append(geom)
        if parent in level1:
            for a, x, y in _pieces(shapely.difference(geom, level1[parent], grid_size=GRID), tol_m2, lat0):
                rep.issues.append(Issue("stray", 2, (code,), a, x, y))
    for code, geom in sorted(level1.items()):
        rep.issues += _gaps(geom, by_parent.get(code, []), code, 2, tol_m2, lat0)
    rep.issues += _overlaps({c: g for c, (_, g) in level2.items()}, 2, tol_m2, lat0)
    rep.issues += _overlaps(dict(level1), 1, tol_m2, lat0)
    if level1:
        union1 = shapely.union_all(list(level1.values()), grid_size=GRID)
        if city is None:
            # holes enclosed by the level-1 grids are gaps; the outside is not
            shells = [shapely.Polygon(p.exterior) for p in shapely.get_parts(union1) if p.geom_type == "Polygon"]
            city = shapely.union_all(shells, grid_size=GRID)
        rep.issues += _gaps(city, [union1], "city", 1, tol_m2, lat0)
        rep.city_area_km2 = area_m2(city, lat0) / 1e6
    return rep
