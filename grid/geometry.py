"""Geometry checks and repairs shared by the importer, the coverage check and the demo city.

Everything is WGS-84 lon/lat, the coordinate system the platform stores. Areas and lengths in
metres use a local Lambert cylindrical equal-area projection (spherical Earth): exact enough for
reporting gaps in m² and for telling a shared border from a shared corner, with no pyproj.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

EARTH_R = 6_371_008.8  # mean radius, metres


def to_metric(geom: BaseGeometry, lat0: float) -> BaseGeometry:
    """Project lon/lat to an equal-area plane in metres around latitude ``lat0``."""
    k = math.cos(math.radians(lat0))

    def project(xy: np.ndarray) -> np.ndarray:
        out = np.empty_like(xy)
        out[:, 0] = EARTH_R * np.radians(xy[:, 0]) * k
        out[:, 1] = EARTH_R * np.sin(np.radians(xy[:, 1])) / k
        return out

    return shapely.transform(geom, project)


def area_m2(geom: BaseGeometry, lat0: float | None = None) -> float:
    """Area in square metres (0 for empty or non-polygonal geometry)."""
    if geom.is_empty:
        return 0.0
    if lat0 is None:
        lat0 = geom.centroid.y
    return to_metric(geom, lat0).area


def length_m(geom: BaseGeometry, lat0: float | None = None) -> float:
    """Length in metres (approximate: the equal-area plane distorts lengths by < 1% over a city)."""
    if geom.is_empty:
        return 0.0
    if lat0 is None:
        lat0 = geom.centroid.y
    return to_metric(geom, lat0).length


def polygonal_part(geom: BaseGeometry) -> BaseGeometry:
    """The polygons in ``geom`` (what ``make_valid`` keeps of a self-intersecting ring), as one geometry."""
    if geom.is_empty:
        return shapely.MultiPolygon()
    parts = shapely.get_parts(geom)
    polys = [p for p in parts if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty]
    if not polys:
        return shapely.MultiPolygon()
    return shapely.union_all(polys)


@dataclass(frozen=True, slots=True)
class Checked:
    """A checked geometry: the geometry to store (or None) and what was wrong with the input."""

    geometry: BaseGeometry | None
    problem: str | None = None
    repaired: bool = False


def _rings(coords_geojson: dict) -> list[list]:
    t = coords_geojson.get("type")
    c = coords_geojson.get("coordinates")
    if t == "Polygon":
        return list(c or [])
    if t == "MultiPolygon":
        return [r for poly in (c or []) for r in poly]
    return []


def check_geojson(
    geom_json: dict | None,
    bbox: tuple[float, float, float, float],
    repair: bool = False,
) -> Checked:
    """Check a GeoJSON geometry for a grid boundary; repair it only when asked.

    Rejected (problem, no geometry): missing, not a (Multi)Polygon, an unclosed ring, outside
    ``bbox`` (lon_min, lat_min, lon_max, lat_max), or invalid (e.g. "Ring Self-intersection")
    without ``repair``. With ``repair`` an invalid polygon is replaced by the polygonal part of
    ``make_valid`` and reported as repaired. An unclosed ring is never guessed closed: a file
    that lost its last vertex may have lost more.
    """
    if not geom_json or not isinstance(geom_json, dict):
        return Checked(None, "no geometry")
    if geom_json.get("type") not in ("Polygon", "MultiPolygon"):
        return Checked(None, f"geometry type {geom_json.get('type')!r} is not Polygon or MultiPolygon")
    try:
        for i, ring in enumerate(_rings(geom_json)):
            if len(ring) < 4:
                return Checked(None, f"ring {i} has {len(ring)} positions, a closed ring needs at least 4")
            if list(ring[0][:2]) != list(ring[-1][:2]):
                return Checked(None, f"ring {i} is not closed (first position {ring[0][:2]} != last {ring[-1][:2]})")
        geom = shape(geom_json)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, shapely.errors.GEOSException) as exc:
        return Checked(None, f"unreadable coordinates: {exc}")
    if geom.is_empty:
        return Checked(None, "empty geometry")
    x0, y0, x1, y1 = geom.bounds
    if x0 < bbox[0] or y0 < bbox[1] or x1 > bbox[2] or y1 > bbox[3]:
        return Checked(
            None, f"outside the city bbox {bbox}: bounds ({x0:.5f}, {y0:.5f}, {x1:.5f}, {y1:.5f})"
        )
    if geom.is_valid:
        return Checked(geom) if geom.area > 0 else Checked(None, "polygon has no area")
    why = explain_validity(geom)
    if not repair:
        return Checked(None, f"invalid geometry: {why} (use --repair to keep the polygonal part of make_valid)")
    fixed = polygonal_part(shapely.make_valid(geom))
    if fixed.is_empty:
        return Checked(None, f"invalid geometry: {why}; make_valid left no polygon")
    note = (
        f"invalid geometry: {why}; kept the polygonal part of make_valid "
        f"({len(shapely.get_parts(fixed))} polygon(s), {area_m2(fixed) / 1e6:,.2f} km²)"
    )
    return Checked(fixed, note, repaired=True)


def to_geojson(geom: BaseGeometry, decimals: int = 7) -> dict:
    """GeoJSON dict of ``geom``; coordinates rounded to ``decimals`` (7 ≈ 1 cm) to keep files small."""
    rounded = shapely.transform(geom, lambda xy: np.round(xy, decimals))
    return mapping(rounded)


def dumps_geojson(geom: BaseGeometry, decimals: int = 7) -> str:
    return json.dumps(to_geojson(geom, decimals), separators=(",", ":"))


def explain_validity_all(items) -> list[tuple[str, str]]:
    """(code, reason) of every invalid geometry in (code, geometry) pairs."""
    return [(code, explain_validity(g)) for code, g in items if not g.is_valid]
