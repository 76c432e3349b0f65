"""Point → grid assignment: the function ingest calls on every batch of fixes.

The level-2 polygons are loaded once into a shapely 2 STRtree; a query returns bounding-box
candidates and a vectorised ``intersects`` on prepared polygons settles them. Geofences come
from memory, never from a query per fix.

Border rule: a point is in a grid when it lies inside the polygon *or on its boundary*
(closed sets), so a point on the outer city boundary is still assigned. A point on a border
shared by several grids (or in an overlap an untidy import left) gets exactly one grid: the
one with the **lowest level-2 code** (plain string order). Points outside every grid get
``None`` — ingest tags them as unassigned and never drops them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from grid.model import GridRef


class GridLocator:
    """Immutable spatial index over level-2 grids; build once, share between threads."""

    __slots__ = ("_codes", "_parents", "_polys", "_tree", "_refs", "version")

    def __init__(
        self,
        grids: Iterable[tuple[str, str, BaseGeometry]],
        version: str | None = None,
    ) -> None:
        """``grids``: (grid2_code, grid1_code, polygon) triples; ``version``: gw_meta grid_version."""
        rows = sorted(grids, key=lambda g: g[0])  # tree index order == code order: min index wins ties
        self._codes = np.array([r[0] for r in rows], dtype=object)
        self._parents = np.array([r[1] for r in rows], dtype=object)
        self._refs = [GridRef(r[0], r[1]) for r in rows]
        self._polys = np.array([r[2] for r in rows], dtype=object)
        shapely.prepare(self._polys)
        self._tree = shapely.STRtree(self._polys)
        self.version = version

    def __len__(self) -> int:
        return len(self._refs)

    @property
    def codes(self) -> Sequence[str]:
        return tuple(self._codes)

    def locate(self, lon: float, lat: float) -> GridRef | None:
        """The grid of one point, or None outside every grid (lowest code on shared borders)."""
        if not (np.isfinite(lon) and np.isfinite(lat)):
            return None
        pt = shapely.Point(lon, lat)
        cand = self._tree.query(pt)
        if cand.size == 0:
            return None
        cand.sort()
        for i in cand:
            if self._polys[i].intersects(pt):
                return self._refs[i]
        return None

    def locate_index(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Index into ``codes`` for each point, -1 outside every grid. The vectorised core."""
        lons = np.asarray(lons, dtype=float)
        lats = np.asarray(lats, dtype=float)
        n = lons.shape[0]
        out = np.full(n, -1, dtype=np.int64)
        if n == 0 or not self._refs:
            return out
        finite = np.isfinite(lons) & np.isfinite(lats)
        pts = shapely.points(np.where(finite, lons, 0.0), np.where(finite, lats, 0.0))
        inp, tree_idx = self._tree.query(pts)  # bounding-box candidates
        if inp.size == 0:
            return out
        hit = shapely.intersects(self._polys[tree_idx], pts[inp]) & finite[inp]
        inp, tree_idx = inp[hit], tree_idx[hit]
        # lowest code wins: sort by (point, tree index), keep the first pair of each point
        order = np.lexsort((tree_idx, inp))
        inp, tree_idx = inp[order], tree_idx[order]
        first = np.ones(inp.size, dtype=bool)
        first[1:] = inp[1:] != inp[:-1]
        out[inp[first]] = tree_idx[first]
        return out

    def locate_many(self, lons: Sequence[float] | np.ndarray, lats: Sequence[float] | np.ndarray) -> list[GridRef | None]:
        """The grid of each point (None outside), for a batch of fixes or entities."""
        idx = self.locate_index(np.asarray(lons), np.asarray(lats))
        refs = self._refs
        return [refs[i] if i >= 0 else None for i in idx.tolist()]

    def codes_many(self, lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(grid2_codes, grid1_codes) object arrays, None outside: ready for a COPY column."""
        idx = self.locate_index(lons, lats)
        inside = idx >= 0
        g2 = np.full(idx.shape[0], None, dtype=object)
        g1 = np.full(idx.shape[0], None, dtype=object)
        g2[inside] = self._codes[idx[inside]]
        g1[inside] = self._parents[idx[inside]]
        return g2, g1

    @classmethod
    def from_db(cls, conn) -> GridLocator:
        """Load every level-2 grid (geom jsonb) with its parent code, and the grid version.

        ``conn``: an open psycopg 3 connection (the caller owns it and its transaction).
        """
        from grid.store import grid_version, load_level2

        version = grid_version(conn)
        return cls(load_level2(conn), version=version)


def assign_grid(locator: GridLocator, lon: float, lat: float) -> GridRef | None:
    """Public alias of ``GridLocator.locate``: level-2 grid and its level-1 of a point, or None."""
    return locator.locate(lon, lat)
