"""Frozen records of the territory and the registry.

They mirror the registry tables in docs/architecture.md one to one, so the importer, the demo
city and the dashboard speak the same vocabulary. Geometries are shapely objects in WGS-84
lon/lat (the coordinate system the platform stores).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from shapely.geometry.base import BaseGeometry


class Role(StrEnum):
    """A person's role in the two-level grid (the ``person.role`` column)."""

    LEVEL1_SUPERVISOR = "level1_supervisor"  # branch-office head / township leader, one level-1 grid
    LEVEL2_SUPERVISOR = "level2_supervisor"  # enforcement officer, one or more level-2 grids
    CO_MANAGER = "co_manager"  # 协管员, one level-2 grid
    INFORMANT = "informant"  # 信息员, one level-2 grid


class EntityKind(StrEnum):
    ENTERPRISE = "enterprise"
    INDIVIDUAL_BUSINESS = "individual_business"
    FARMER_COOP = "farmer_coop"


RISK_LEVELS = ("A", "B", "C", "D")  # A = lowest risk


@dataclass(frozen=True, slots=True)
class GridRef:
    """Where a point lies: its level-2 grid and that grid's level-1 parent."""

    grid2_code: str
    grid1_code: str


@dataclass(frozen=True, slots=True)
class BranchOffice:
    code: str
    name_zh: str
    name_en: str
    synthetic: bool = False


@dataclass(frozen=True, slots=True)
class Level1Grid:
    """A township or street (乡镇/街道), supervised by a branch office."""

    code: str
    name_zh: str
    name_en: str
    parent: str  # branch_office.code
    geometry: BaseGeometry
    synthetic: bool = False


@dataclass(frozen=True, slots=True)
class Level2Grid:
    """An administrative village or community (村/社区), one officer's patch."""

    code: str
    name_zh: str
    name_en: str
    parent: str  # grid_level1.code
    geometry: BaseGeometry
    synthetic: bool = False


@dataclass(frozen=True, slots=True)
class Person:
    person_id: str
    name: str
    role: Role
    phone: str = ""
    grids: tuple[str, ...] = ()  # person_grid rows: level-1 code for supervisors, level-2 codes otherwise
    synthetic: bool = False


@dataclass(frozen=True, slots=True)
class Terminal:
    terminal_id: str
    person_id: str
    model: str = ""


@dataclass(frozen=True, slots=True)
class MarketEntity:
    uscc: str
    name: str
    kind: EntityKind
    industry: str
    licence_food: bool
    licence_drug: bool
    licence_special_equipment: bool
    address: str
    lat: float
    lon: float
    registered_on: dt.date
    risk_level: str
    grid2_code: str | None = None
    grid1_code: str | None = None
    synthetic: bool = False


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one input record: reported, never raised, so good rows still load."""

    source: str  # file name
    where: str  # "line 12" or "feature 3 (code 360602001001)"
    reason: str
    kept: bool = False  # the record was still stored (repaired, or stored with no grid): a warning
    repaired: bool = False  # its geometry was repaired (--repair)

    def __str__(self) -> str:
        tag = " [repaired]" if self.repaired else " [kept]" if self.kept else ""
        return f"{self.source}: {self.where}: {self.reason}{tag}"


@dataclass(slots=True)
class Report:
    """What an import or a check did: counts per table and every problem met."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, table: str, n: int) -> None:
        self.counts[table] = self.counts.get(table, 0) + n

    @property
    def errors(self) -> list[Problem]:
        """Problems whose record was not stored."""
        return [p for p in self.problems if not p.kept]
