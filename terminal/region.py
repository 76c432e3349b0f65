"""Where a virtual officer works, and the plane geometry it walks by.

A :class:`Region` is the union of an officer's grids with the market entities inside them. The
distance, bearing and step helpers treat a few kilometres of lon/lat as a plane (equirectangular,
scaled at the mean latitude): metres of error over a grid, plenty for a simulated walk.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from shapely import prepared
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class Entity:
    uscc: str
    lat: float
    lon: float
    name: str = ""
    industry: str = ""


@dataclass
class Region:
    """Where an officer works: the union of its grids, with the entities inside them."""

    geometry: BaseGeometry  # Polygon or MultiPolygon, lon/lat
    grid_codes: tuple[str, ...] = ()
    entities: list[Entity] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._prepared = prepared.prep(self.geometry)

    def contains(self, lon: float, lat: float) -> bool:
        return self._prepared.covers(Point(lon, lat))

    def covers_segment(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        if a == b:
            return self.contains(*a)
        return self._prepared.covers(LineString([a, b]))

    def random_point(self, rng: random.Random) -> tuple[float, float]:
        minx, miny, maxx, maxy = self.geometry.bounds
        for _ in range(1000):
            p = (rng.uniform(minx, maxx), rng.uniform(miny, maxy))
            if self.contains(*p):
                return p
        rp = self.geometry.representative_point()
        return rp.x, rp.y


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Metres from ``a`` to ``b`` (lon, lat)."""
    lat = math.radians((a[1] + b[1]) / 2)
    dx = (b[0] - a[0]) * M_PER_DEG_LAT * math.cos(lat)
    dy = (b[1] - a[1]) * M_PER_DEG_LAT
    return math.hypot(dx, dy)


def bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Degrees from north, clockwise, of the way from ``a`` to ``b``."""
    lat = math.radians((a[1] + b[1]) / 2)
    dx = (b[0] - a[0]) * math.cos(lat)
    dy = b[1] - a[1]
    return math.degrees(math.atan2(dx, dy)) % 360.0


def toward(a: tuple[float, float], b: tuple[float, float], step_m: float) -> tuple[float, float]:
    """``step_m`` metres from ``a`` on the way to ``b``; ``b`` itself when it is nearer."""
    d = metres(a, b)
    if d <= step_m or d == 0:
        return b
    f = step_m / d
    return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f


def offset(p: tuple[float, float], bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """The point ``distance_m`` metres from ``p`` in the direction ``bearing_deg``."""
    lat = math.radians(p[1])
    dy = distance_m * math.cos(math.radians(bearing_deg)) / M_PER_DEG_LAT
    dx = distance_m * math.sin(math.radians(bearing_deg)) / (M_PER_DEG_LAT * max(0.1, math.cos(lat)))
    return p[0] + dx, p[1] + dy
