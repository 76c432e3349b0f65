"""Which level-2 grids touch: officers of adjacent grids enforce together, and the command
center asks for "the officers of this grid and its neighbours".

Two grids are adjacent when they share a border of positive length (at least ``min_shared_m``);
touching at a corner does not count. Borders from real files rarely match to the last bit, so
the shared length is measured as the part of one boundary lying within ``eps_deg`` of the
other polygon, not as an exact boundary intersection.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from grid.geometry import EARTH_R


def adjacent_pairs(
    grids: Mapping[str, BaseGeometry],
    min_shared_m: float = 1.0,
    eps_deg: float = 1e-6,
) -> list[tuple[str, str]]:
    """Sorted pairs (a, b), a < b, of grids sharing at least ``min_shared_m`` metres of border."""
    codes = sorted(grids)
    if len(codes) < 2:
        return []
    polys = np.array([grids[c] for c in codes], dtype=object)
    tree = shapely.STRtree(polys)
    grown = shapely.buffer(polys, eps_deg, quad_segs=2)
    i, j = tree.query(grown, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    if i.size == 0:
        return []
    shared = shapely.intersection(shapely.boundary(polys[j]), grown[i])
    lat0 = float(np.mean([p.centroid.y for p in polys[: min(50, len(polys))]]))
    # degrees of arc -> metres, averaging the east-west and north-south scales (borders run any way)
    m_per_deg = EARTH_R * np.pi / 180 * (1 + np.cos(np.radians(lat0))) / 2
    lengths = shapely.length(shared) * m_per_deg
    ok = lengths >= min_shared_m
    return sorted((codes[a], codes[b]) for a, b in zip(i[ok].tolist(), j[ok].tolist(), strict=True))


def neighbours(pairs: list[tuple[str, str]]) -> dict[str, set[str]]:
    """Adjacency sets from pairs, both directions."""
    out: dict[str, set[str]] = {}
    for a, b in pairs:
        out.setdefault(a, set()).add(b)
        out.setdefault(b, set()).add(a)
    return out
