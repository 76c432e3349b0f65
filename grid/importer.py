"""Import a bureau's files: grid boundaries (GeoJSON) and branch offices, people, terminals and
market entities (CSV).

Contract: every bad row or feature is reported with its line number / feature index and a
reason, good rows still load, a re-import updates rather than duplicates, and one bad feature
never stops the import. Parsing and validation are pure (``read_*`` return records and
Problems); ``import_files`` does the database part in one transaction and bumps
gw_meta('grid_version') when grids changed, so ingest reloads its locator.

GeoJSON property mapping (``GeoJsonMapping``; override with ``--map field=property``):
``code``, ``name_zh``, ``name_en``, ``level`` (1 or 2), ``parent`` (level-1: its branch-office
code, level-2: its level-1 code), ``branch`` (level-1: the branch-office code, preferred over
``parent``), ``synthetic``. Coordinates must be WGS-84 lon/lat (convert GCJ-02 first).

CSV files: columns and encodings in grid/csvfiles.py (UTF-8 with or without BOM, else GB18030,
the GBK superset a Chinese Excel saves as "CSV", detected per file and logged; ``encoding=``
(``--encoding``) forces one).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from grid import store
from grid.adjacency import adjacent_pairs
from grid.csvfiles import ENTITY_COLUMNS, RowError, parse_bool, read_branches, read_entities, read_people, read_terminals
from grid.geometry import area_m2, check_geojson, dumps_geojson
from grid.locate import GridLocator
from grid.model import (Level1Grid, Level2Grid, Person, Problem, Report, Role, Terminal)

log = logging.getLogger(__name__)

STANDARD_FILES = {
    "branches": "branch_offices.csv",
    "grids": "grids.geojson",
    "people": "people.csv",
    "terminals": "terminals.csv",
    "entities": "entities.csv",
}


@dataclass(frozen=True, slots=True)
class GeoJsonMapping:
    """Which feature property holds each grid field."""

    code: str = "code"
    name_zh: str = "name_zh"
    name_en: str = "name_en"
    level: str = "level"
    parent: str = "parent"
    branch: str = "branch"
    synthetic: str = "synthetic"

    def with_overrides(self, pairs: Iterable[str]) -> GeoJsonMapping:
        """Apply ``field=property`` overrides (the CLI's ``--map``)."""
        known = {f.name for f in fields(self)}
        changes = {}
        for pair in pairs:
            key, _, prop = pair.partition("=")
            if key not in known or not prop:
                raise ValueError(f"bad mapping {pair!r}: use field=property with field one of {sorted(known)}")
            changes[key] = prop
        return replace(self, **changes)


# ------------------------------------------------------------------ readers (pure)


def read_grids(path: Path, bbox: tuple[float, float, float, float], repair: bool = False,
               mapping: GeoJsonMapping = GeoJsonMapping()) -> tuple[list[Level1Grid], list[Level2Grid], list[Problem]]:
    """Level-1 and level-2 grids of a GeoJSON FeatureCollection, and the problems met."""
    src = path.name
    problems: list[Problem] = []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        feats = data["features"] if isinstance(data, dict) else None
        if not isinstance(feats, list):
            raise ValueError("not a FeatureCollection")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [], [], [Problem(src, "file", f"unreadable GeoJSON: {exc}")]
    l1: list[Level1Grid] = []
    l2: list[Level2Grid] = []
    seen: dict[str, int] = {}
    for i, feat in enumerate(feats, start=1):
        props = (feat or {}).get("properties") or {} if isinstance(feat, dict) else {}
        code = str(props.get(mapping.code) or "").strip()
        where = f"feature {i}" + (f" (code {code})" if code else "")
        try:
            if not code:
                raise RowError(f"no '{mapping.code}' property")
            if code in seen:
                raise RowError(f"duplicate code, first seen in feature {seen[code]}; kept the first")
            name_zh = str(props.get(mapping.name_zh) or "").strip()
            if not name_zh:
                raise RowError(f"no '{mapping.name_zh}' property")
            level = str(props.get(mapping.level) or "").strip()
            if level not in ("1", "2"):
                raise RowError(f"'{mapping.level}' is {props.get(mapping.level)!r}, expected 1 or 2")
            parent = str(props.get(mapping.branch if level == "1" else mapping.parent) or
                         (props.get(mapping.parent) if level == "1" else "") or "").strip()
            if not parent:
                raise RowError(f"no {'branch' if level == '1' else 'parent'} code")
            synthetic = parse_bool(props.get(mapping.synthetic))
        except RowError as exc:
            problems.append(Problem(src, where, str(exc)))
            continue
        checked = check_geojson(feat.get("geometry"), bbox, repair)
        if checked.problem:
            problems.append(Problem(src, where, checked.problem, kept=checked.repaired, repaired=checked.repaired))
        if checked.geometry is None:
            continue
        seen[code] = i
        name_en = str(props.get(mapping.name_en) or "").strip()
        if level == "1":
            l1.append(Level1Grid(code, name_zh, name_en, parent, checked.geometry, synthetic))
        else:
            l2.append(Level2Grid(code, name_zh, name_en, parent, checked.geometry, synthetic))
    return l1, l2, problems


# ------------------------------------------------------------------ database


def _centroid(geom) -> tuple[float, float]:
    c = geom.representative_point() if geom.centroid.is_empty else geom.centroid
    return c.y, c.x


def _write_grids(conn, rep: Report, src: str, l1: list[Level1Grid], l2: list[Level2Grid]) -> None:
    branches = store.existing_codes(conn, "branch_office")
    ok1 = []
    for g in l1:
        if g.parent not in branches:
            rep.problems.append(Problem(src, f"code {g.code}", f"unknown branch office {g.parent!r} "
                                        "(import branch offices first, e.g. --branches)"))
        else:
            ok1.append(g)
    rows = [(g.code, g.name_zh, g.name_en, g.parent, dumps_geojson(g.geometry, 9), *_centroid(g.geometry), g.synthetic)
            for g in ok1]
    rep.add("grid_level1", store.upsert(conn, "grid_level1", ("code", "name_zh", "name_en", "branch_code", "geom",
                                                            "centroid_lat", "centroid_lon", "synthetic"), ("code",), rows))
    level1 = store.existing_codes(conn, "grid_level1")
    ok2 = []
    for g in l2:
        if g.parent not in level1:
            rep.problems.append(Problem(src, f"code {g.code}", f"unknown level-1 parent {g.parent!r}"))
        else:
            ok2.append(g)
    rows = [(g.code, g.name_zh, g.name_en, g.parent, dumps_geojson(g.geometry, 9), *_centroid(g.geometry),
             area_m2(g.geometry) / 1e6, g.synthetic) for g in ok2]
    rep.add("grid_level2", store.upsert(conn, "grid_level2", ("code", "name_zh", "name_en", "level1_code", "geom",
                                                            "centroid_lat", "centroid_lon", "area_km2", "synthetic"),
                                        ("code",), rows))


def _write_people(conn, rep: Report, src: str, people: list[Person]) -> None:
    l1, l2 = store.existing_codes(conn, "grid_level1"), store.existing_codes(conn, "grid_level2")
    ok = []
    for p in people:
        want = l1 if p.role == Role.LEVEL1_SUPERVISOR else l2
        bad = [g for g in p.grids if g not in want]
        if bad:
            lvl = 1 if p.role == Role.LEVEL1_SUPERVISOR else 2
            rep.problems.append(Problem(src, f"person {p.person_id}", f"unknown level-{lvl} grid(s) {', '.join(bad)}"))
        else:
            ok.append(p)
    rep.add("person", store.upsert(conn, "person", ("person_id", "name", "role", "phone", "synthetic"), ("person_id",),
                                   [(p.person_id, p.name, p.role.value, p.phone, p.synthetic) for p in ok]))
    links = [(p.person_id, g, p.role.value) for p in ok for g in p.grids]
    rep.add("person_grid", store.replace_person_grids(conn, [p.person_id for p in ok], links))


def _write_terminals(conn, rep: Report, src: str, terminals: list[Terminal]) -> None:
    persons = store.existing_codes(conn, "person", "person_id")
    ok = []
    for t in terminals:
        if t.person_id not in persons:
            rep.problems.append(Problem(src, f"terminal {t.terminal_id}", f"unknown person {t.person_id!r}"))
        else:
            ok.append(t)
    rep.add("terminal", store.upsert(conn, "terminal", ("terminal_id", "person_id", "model"), ("terminal_id",),
                                     [(t.terminal_id, t.person_id, t.model) for t in ok]))


def _write_entities(conn, rep: Report, src: str, entities: list[dict], locator: GridLocator) -> None:
    t0 = time.monotonic()
    g2, g1 = locator.codes_many(np.array([e["lon"] for e in entities], dtype=float),
                                np.array([e["lat"] for e in entities], dtype=float))
    outside = 0
    rows = []
    for e, a, b in zip(entities, g2.tolist(), g1.tolist(), strict=True):
        if a is None:
            outside += 1
            if outside <= 50:
                rep.problems.append(Problem(src, f"uscc {e['uscc']}", f"location ({e['lon']}, {e['lat']}) is outside "
                                            "every level-2 grid; stored with no grid", kept=True))
        rows.append((*(e[c] for c in ENTITY_COLUMNS[:-1]), e["synthetic"], a, b))
    if outside > 50:
        rep.problems.append(Problem(src, "…", f"{outside - 50} more entities outside every grid; stored with no grid",
                                    kept=True))
    log.info("entities: %d located in %.2fs (%d outside every grid)", len(rows), time.monotonic() - t0, outside)
    n = 0
    for start in range(0, len(rows), 20_000):
        n += store.upsert(conn, "market_entity", (*ENTITY_COLUMNS, "grid2_code", "grid1_code"), ("uscc",),
                          rows[start:start + 20_000])
        log.info("entities: %d/%d written", min(start + 20_000, len(rows)), len(rows))
    rep.add("market_entity", n)


def relocate_entities(conn, locator: GridLocator) -> int:
    """Re-assign every stored entity to the (re-imported) grid; returns how many changed."""
    rows = conn.execute("SELECT uscc, lon, lat, grid2_code FROM market_entity WHERE lon IS NOT NULL").fetchall()
    if not rows:
        return 0
    g2, g1 = locator.codes_many(np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
    changed = [(r[0], a, b) for r, a, b in zip(rows, g2.tolist(), g1.tolist(), strict=True) if a != r[3]]
    if changed:
        conn.execute("CREATE TEMP TABLE _relocate (uscc text, grid2_code text, grid1_code text) ON COMMIT DROP")
        with conn.cursor().copy("COPY _relocate FROM STDIN") as copy:
            for row in changed:
                copy.write_row(row)
        conn.execute("UPDATE market_entity m SET grid2_code = r.grid2_code, grid1_code = r.grid1_code "
                     "FROM _relocate r WHERE m.uscc = r.uscc")
        conn.execute("DROP TABLE _relocate")
    return len(changed)


def import_files(
    conn,
    *,
    branches: Path | None = None,
    grids: Path | None = None,
    people: Path | None = None,
    terminals: Path | None = None,
    entities: Path | None = None,
    bbox: tuple[float, float, float, float] = (116.60, 27.75, 117.55, 28.72),
    repair: bool = False,
    mapping: GeoJsonMapping = GeoJsonMapping(),
    encoding: str | None = None,
) -> Report:
    """Import whichever files are given, in dependency order, in one transaction.

    ``bbox``: Settings.city_bbox. ``encoding``: of the CSV files (default: detected per file).
    Returns a Report (rows written per table, problems).
    A grid import recomputes grid_adjacency over all level-2 grids, re-assigns stored entities
    and sets a new gw_meta('grid_version').
    """
    rep = Report()
    t0 = time.monotonic()
    parsed: dict[str, tuple] = {}
    for name, path, reader in (("branches", branches, read_branches), ("people", people, read_people),
                               ("terminals", terminals, read_terminals), ("entities", entities, read_entities)):
        if path is not None:
            recs, probs = reader(Path(path), encoding)
            parsed[name] = (Path(path).name, recs)
            rep.problems += probs
            log.info("%s: %d rows read, %d rejected (%.2fs)", Path(path).name, len(recs), len(probs),
                     time.monotonic() - t0)
    if grids is not None:
        l1, l2, probs = read_grids(Path(grids), bbox, repair, mapping)
        parsed["grids"] = (Path(grids).name, (l1, l2))
        rep.problems += probs
        log.info("%s: %d level-1 and %d level-2 grids read, %d problems (%.2fs)", Path(grids).name, len(l1), len(l2),
                 len(probs), time.monotonic() - t0)
    with conn.transaction():
        if "branches" in parsed:
            src, recs = parsed["branches"]
            rep.add("branch_office", store.upsert(conn, "branch_office", ("code", "name_zh", "name_en", "synthetic"),
                                                  ("code",), [(b.code, b.name_zh, b.name_en, b.synthetic) for b in recs]))
        locator = None
        if "grids" in parsed:
            src, (l1, l2) = parsed["grids"]
            _write_grids(conn, rep, src, l1, l2)
            all2 = store.load_level2(conn)
            pairs = adjacent_pairs({c: g for c, _, g in all2})
            rep.add("grid_adjacency", store.replace_adjacency(conn, pairs))
            version = store.bump_grid_version(conn)
            locator = GridLocator(all2, version=version)
            moved = relocate_entities(conn, locator)
            log.info("grids: %d adjacent pairs, %d stored entities re-assigned, grid_version %s (%.2fs)",
                     len(pairs), moved, version, time.monotonic() - t0)
        if "people" in parsed:
            _write_people(conn, rep, *parsed["people"])
        if "terminals" in parsed:
            _write_terminals(conn, rep, *parsed["terminals"])
        if "entities" in parsed:
            locator = locator or GridLocator.from_db(conn)
            _write_entities(conn, rep, *parsed["entities"], locator)
    log.info("import done in %.2fs: %s", time.monotonic() - t0, rep.counts)
    return rep
