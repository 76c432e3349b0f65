"""Who an order reaches: an ``OrderTarget`` resolved against the registry and live positions.

Pure: the registry and the positions are handed in (``orders.store`` loads them), so every rule
here is unit- and property-tested without services. Results are in a deterministic order:
by terminal id, or by (distance, terminal id) for the point targets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from schemas.orders import (
    EveryoneTarget,
    GridTarget,
    NearestTarget,
    OrderTarget,
    PeopleTarget,
    RadiusTarget,
    Recipient,
)

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


class UnknownTarget(ValueError):
    """The target names grids, people or terminals the registry does not have."""

    def __init__(self, what: str, names: Iterable[str]):
        self.what = what
        self.names = sorted(names)
        shown = ", ".join(self.names[:10]) + (" …" if len(self.names) > 10 else "")
        super().__init__(f"unknown {what}: {shown}")


@dataclass(frozen=True, slots=True)
class TerminalEntry:
    """A registered terminal and the person carrying it, with that person's grids."""

    terminal_id: str
    person_id: str | None = None
    person_name: str | None = None
    role: str | None = None
    grids2: tuple[str, ...] = ()  # level-2 grids the person works in (sorted)
    grids1: tuple[str, ...] = ()  # level-1 grids the person supervises (level-1 supervisors)


@dataclass(frozen=True)
class Registry:
    """The part of the registry targeting needs (db/migrations/0010_registry.sql)."""

    terminals: Mapping[str, TerminalEntry]
    level1_of: Mapping[str, str] = field(default_factory=dict)  # level-2 code -> level-1 code
    adjacency: Mapping[str, frozenset[str]] = field(default_factory=dict)  # level-2 -> adjacent level-2
    level1: frozenset[str] = frozenset()  # every level-1 code, also those without level-2 grids yet

    def level2_in(self, level1: str) -> frozenset[str]:
        return frozenset(c for c, p in self.level1_of.items() if p == level1)

    @property
    def level1_codes(self) -> frozenset[str]:
        return self.level1 | frozenset(self.level1_of.values())


@dataclass(frozen=True, slots=True)
class LivePosition:
    """A terminal's newest fix and when it was last heard from (epoch seconds)."""

    lat: float
    lon: float
    seen_ts: float


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _epoch(now: datetime | float) -> float:
    return now.timestamp() if isinstance(now, datetime) else float(now)


def is_online(pos: LivePosition | None, now: datetime | float, online_window_s: float) -> bool:
    return pos is not None and _epoch(now) - pos.seen_ts <= online_window_s


def _recipient(e: TerminalEntry, grid2: str | None = None, grid1: str | None = None,
               distance: float | None = None, level1_of: Mapping[str, str] | None = None) -> Recipient:
    g2 = grid2 if grid2 is not None else (e.grids2[0] if e.grids2 else None)
    g1 = grid1 if grid1 is not None else ((level1_of or {}).get(g2) if g2 else None) or (e.grids1[0] if e.grids1 else None)
    return Recipient(terminal_id=e.terminal_id, person_id=e.person_id, person_name=e.person_name, role=e.role,
                     grid2_code=g2, grid1_code=g1, distance_m=distance)


def grid_codes(target: GridTarget, registry: Registry) -> tuple[frozenset[str], frozenset[str]]:
    """(level-2 codes, level-1 codes) a grid target covers: level-1 codes expand to their level-2
    grids; ``include_adjacent`` adds the level-2 grids adjacent to any of those."""
    level1_codes = registry.level1_codes
    unknown = [c for c in target.codes if c not in registry.level1_of and c not in level1_codes]
    if unknown:
        raise UnknownTarget("grids", unknown)
    level1 = frozenset(c for c in target.codes if c in level1_codes and c not in registry.level1_of)
    level2 = set(c for c in target.codes if c in registry.level1_of)
    for c in level1:
        level2 |= registry.level2_in(c)
    if target.include_adjacent:
        level2 |= {n for c in list(level2) for n in registry.adjacency.get(c, ())}
    return frozenset(level2), level1


def _by_grids(target: GridTarget, registry: Registry) -> list[Recipient]:
    level2, level1 = grid_codes(target, registry)
    out = []
    for tid in sorted(registry.terminals):
        e = registry.terminals[tid]
        mine2 = sorted(set(e.grids2) & level2)
        mine1 = sorted(set(e.grids1) & level1)
        if mine2:
            out.append(_recipient(e, grid2=mine2[0], level1_of=registry.level1_of))
        elif mine1:
            out.append(_recipient(e, grid2=None, grid1=mine1[0]))
    return out


def _by_people(target: PeopleTarget, registry: Registry) -> list[Recipient]:
    people = set(target.person_ids)
    known_people = {e.person_id for e in registry.terminals.values() if e.person_id}
    unknown = sorted(people - known_people) + sorted(set(target.terminal_ids) - set(registry.terminals))
    if unknown:
        raise UnknownTarget("people or terminals (or people without a terminal)", unknown)
    chosen = set(target.terminal_ids) | {t for t, e in registry.terminals.items() if e.person_id in people}
    return [_recipient(registry.terminals[t], level1_of=registry.level1_of) for t in sorted(chosen)]


def _online_by_distance(lat: float, lon: float, registry: Registry, positions: Mapping[str, LivePosition],
                        now: float, window: float) -> list[tuple[float, str]]:
    out = []
    for tid, pos in positions.items():
        if tid in registry.terminals and is_online(pos, now, window):
            out.append((distance_m(lat, lon, pos.lat, pos.lon), tid))
    out.sort()
    return out


def resolve_targets(target: OrderTarget, registry: Registry, positions: Mapping[str, LivePosition],
                    now: datetime | float, online_window_s: float) -> list[Recipient]:
    """The recipients of ``target``: registered terminals only, each once, in a deterministic order.

    Point targets (nearest, radius) consider only terminals online now (heard from within
    ``online_window_s``) with a live position. Raises UnknownTarget for names not in the registry.
    """
    t = _epoch(now)
    if isinstance(target, EveryoneTarget):
        return [_recipient(registry.terminals[tid], level1_of=registry.level1_of) for tid in sorted(registry.terminals)]
    if isinstance(target, GridTarget):
        return _by_grids(target, registry)
    if isinstance(target, PeopleTarget):
        return _by_people(target, registry)
    if isinstance(target, NearestTarget):
        near = _online_by_distance(target.lat, target.lon, registry, positions, t, online_window_s)[: target.n]
        return [_recipient(registry.terminals[tid], distance=d, level1_of=registry.level1_of) for d, tid in near]
    if isinstance(target, RadiusTarget):
        near = _online_by_distance(target.lat, target.lon, registry, positions, t, online_window_s)
        return [_recipient(registry.terminals[tid], distance=d, level1_of=registry.level1_of)
                for d, tid in near if d <= target.radius_m]
    raise TypeError(f"not an order target: {target!r}")
