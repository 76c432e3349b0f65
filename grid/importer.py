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

CSV columns (header row required, extra columns ignored). Encoding: UTF-8 with or without BOM,
else GB18030 (a superset of GBK, what a Chinese Excel saves as "CSV"), detected per file and
logged; ``encoding=`` (``--encoding``) forces one. A file that does not decode is rejected
whole with its first undecodable line (a half-decoded file would store wrong names):
* branch offices: code, name_zh, name_en, synthetic
* people: person_id, name, role, phone, grids (';'-separated codes), synthetic
* terminals: terminal_id, person_id, model
* entities: uscc, name, kind, industry, licence_food, licence_drug, licence_special_equipment,
  address, lat, lon, registered_on (YYYY-MM-DD), risk_level (A-D), synthetic
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from grid import store, uscc
from grid.adjacency import adjacent_pairs
from grid.geometry import area_m2, check_geojson, dumps_geojson
from grid.locate import GridLocator
from grid.model import (BranchOffice, EntityKind, Level1Grid, Level2Grid, Person, Problem, Report, RISK_LEVELS,
                        Role, Terminal)

log = logging.getLogger(__name__)

TERMINAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # same rule as schemas.topics.TERMINAL_ID_PATTERN
TRUE = {"true", "t", "1", "yes", "y", "是"}
FALSE = {"false", "f", "0", "no", "n", "否", ""}
STANDARD_FILES = {
    "branches": "branch_offices.csv",
    "grids": "grids.geojson",
    "people": "people.csv",
    "terminals": "terminals.csv",
    "entities": "entities.csv",
}
ENTITY_COLUMNS = ("uscc", "name", "kind", "industry", "licence_food", "licence_drug", "licence_special_equipment",
                  "address", "lat", "lon", "registered_on", "risk_level", "synthetic")


class RowError(ValueError):
    """A reason a row is rejected."""


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


def parse_bool(value: str | bool | None) -> bool:
    if isinstance(value, bool):
        return value
    v = (value or "").strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise RowError(f"not a boolean: {value!r}")


def _need(row: dict, col: str) -> str:
    v = (row.get(col) or "").strip()
    if not v:
        raise RowError(f"{col} is empty")
    return v


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


class UndecodableFile(ValueError):
    """The bytes do not decode: ``line`` is the first line that fails under ``encoding``."""

    def __init__(self, encoding: str, line: int, message: str):
        super().__init__(message)
        self.encoding, self.line = encoding, line


def _undecodable(data: bytes, exc: UnicodeDecodeError, hint: str) -> UndecodableFile:
    line = data[: exc.start].decode(exc.encoding, errors="replace").count("\n") + 1
    bad = data[exc.start: exc.end]
    return UndecodableFile(exc.encoding, line, f"cannot be decoded as {exc.encoding} (bytes {bad.hex(' ')}); {hint}")


_WIDE = re.compile("[\u0800-\ufffc\ufffe-\U0010ffff]")  # three- and four-byte UTF-8 characters, U+FFFD aside


def _mostly_utf8(data: bytes) -> bool:
    """UTF-8 but for a few bad bytes (a damaged UTF-8 file), as against GBK text. Chinese in UTF-8
    takes three bytes; GBK pairs that happen to be valid UTF-8 are two-byte sequences (three-byte
    ones by chance are rare), so only three-byte characters count as evidence. GB18030 decodes
    almost any bytes: it must not get a damaged UTF-8 file, whose names it would turn into wrong ones."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    wide = sum(1 for _ in _WIDE.finditer(text))
    return wide >= 4 * bad


_NOT_CJK = re.compile(r"[^\x00-\x7f\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def _gbk_posing_as_utf8(data: bytes, text: str) -> bool:
    """Valid UTF-8 that is GBK: some GBK pairs are also UTF-8 two-byte sequences (鹰潭 is), which
    decode to Cyrillic- or Arabic-range letters. Chinese in UTF-8 takes three bytes, so a file
    whose UTF-8 reading has no three-byte character but whose GB18030 reading is all Chinese is
    GBK (only short files can fall here: a long GBK file is never valid UTF-8)."""
    if text.isascii() or max(text) >= "\u0800":
        return False
    try:
        return _NOT_CJK.search(data.decode("gb18030")) is None
    except UnicodeDecodeError:
        return False


def _strict(data: bytes, codec: str) -> str:
    """``data`` decoded under ``codec``, strictly; a UTF-8 BOM is dropped (never part of the header)."""
    if codecs.lookup(codec).name == "utf-8" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]  # error offsets (and so line numbers) count from here
    return data.decode(codec)


def decode_csv(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding used) of a CSV file's bytes; raises UndecodableFile.

    ``encoding`` forces one (strict). Otherwise UTF-8 (a BOM is dropped), then GB18030 (GBK),
    both strict: UTF-8 first because GBK text is almost never valid UTF-8, while any UTF-8 would
    decode, wrongly, as GB18030."""
    body = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    if encoding:
        try:
            return _strict(data, encoding), encoding
        except UnicodeDecodeError as exc:
            raise _undecodable(exc.object, exc, f"is --encoding {encoding} right?") from None
    try:
        text = _strict(data, "utf-8")
        if not _gbk_posing_as_utf8(body, text):
            return text, "utf-8 with BOM" if body is not data else "utf-8"
    except UnicodeDecodeError as exc:
        if _mostly_utf8(body):
            raise _undecodable(body, exc, "the rest is UTF-8: the file is damaged there") from None
    try:
        return data.decode("gb18030"), "gb18030 (GBK)"
    except UnicodeDecodeError as exc:
        raise _undecodable(data, exc, "neither UTF-8 nor GB18030/GBK: save it as UTF-8 or give --encoding") from None


def _rows(path: Path, required: Iterable[str], encoding: str | None = None) -> tuple[list[tuple[int, dict]], list[Problem]]:
    """(line number, row) pairs of a CSV file, or a file-level problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [], [Problem(path.name, "file", f"cannot open: {exc}")]
    try:
        text, used = decode_csv(data, encoding)
    except UndecodableFile as exc:
        return [], [Problem(path.name, f"line {exc.line}", f"file rejected: {exc}")]
    log.info("%s: read as %s (%s)", path.name, used, "given" if encoding else "detected")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        return [], [Problem(path.name, "line 1", f"missing column(s): {', '.join(missing)}")]
    out = []
    for row in reader:
        out.append((reader.line_num, row))
    return out, []


def _parse(path: Path, required: tuple[str, ...], key: str, build, encoding: str | None = None) -> tuple[list, list[Problem]]:
    rows, problems = _rows(path, required, encoding)
    out, first = [], {}
    for line, row in rows:
        try:
            if None in row:
                raise RowError("more fields than the header has")
            k = (row.get(key) or "").strip()
            if k in first:
                raise RowError(f"duplicate {key} {k}, first on line {first[k]}; kept the first")
            rec = build(row)
            first[k] = line
            out.append(rec)
        except RowError as exc:
            problems.append(Problem(path.name, f"line {line}", str(exc)))
    return out, problems


def read_branches(path: Path, encoding: str | None = None) -> tuple[list[BranchOffice], list[Problem]]:
    def build(r):
        return BranchOffice(_need(r, "code"), _need(r, "name_zh"), (r.get("name_en") or "").strip(),
                            parse_bool(r.get("synthetic")))
    return _parse(path, ("code", "name_zh"), "code", build, encoding)


def read_people(path: Path, encoding: str | None = None) -> tuple[list[Person], list[Problem]]:
    def build(r):
        role = _need(r, "role")
        try:
            role = Role(role)
        except ValueError:
            raise RowError(f"role {role!r} is not one of {', '.join(x.value for x in Role)}") from None
        grids = tuple(g.strip() for g in (r.get("grids") or "").replace(",", ";").split(";") if g.strip())
        if role in (Role.CO_MANAGER, Role.INFORMANT, Role.LEVEL1_SUPERVISOR) and len(grids) != 1:
            raise RowError(f"a {role.value} has exactly one grid, got {len(grids)}")
        if role == Role.LEVEL2_SUPERVISOR and not grids:
            raise RowError("an officer (level2_supervisor) needs at least one grid")
        return Person(_need(r, "person_id"), _need(r, "name"), role, (r.get("phone") or "").strip(), grids,
                      parse_bool(r.get("synthetic")))
    return _parse(path, ("person_id", "name", "role", "grids"), "person_id", build, encoding)


def read_terminals(path: Path, encoding: str | None = None) -> tuple[list[Terminal], list[Problem]]:
    def build(r):
        tid = _need(r, "terminal_id")
        if not TERMINAL_ID.match(tid):
            raise RowError(f"terminal_id {tid!r} must match {TERMINAL_ID.pattern}")
        return Terminal(tid, _need(r, "person_id"), (r.get("model") or "").strip())
    return _parse(path, ("terminal_id", "person_id"), "terminal_id", build, encoding)


def _entity(r: dict) -> dict:
    code = _need(r, "uscc").upper()
    why = uscc.validation_error(code)
    if why:
        raise RowError(f"uscc {code}: {why}")
    kind = _need(r, "kind")
    if kind not in {k.value for k in EntityKind}:
        raise RowError(f"kind {kind!r} is not one of {', '.join(k.value for k in EntityKind)}")
    try:
        lat, lon = float(_need(r, "lat")), float(_need(r, "lon"))
    except ValueError:
        raise RowError(f"lat/lon not numbers: {r.get('lat')!r}, {r.get('lon')!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not (np.isfinite(lat) and np.isfinite(lon)):
        raise RowError(f"lat/lon out of range: {lat}, {lon}")
    reg = (r.get("registered_on") or "").strip()
    try:
        reg_d = dt.date.fromisoformat(reg) if reg else None
    except ValueError:
        raise RowError(f"registered_on {reg!r} is not YYYY-MM-DD") from None
    risk = (r.get("risk_level") or "B").strip().upper()
    if risk not in RISK_LEVELS:
        raise RowError(f"risk_level {risk!r} is not one of A, B, C, D")
    return {"uscc": code, "name": _need(r, "name"), "kind": kind, "industry": (r.get("industry") or "").strip(),
            "licence_food": parse_bool(r.get("licence_food")), "licence_drug": parse_bool(r.get("licence_drug")),
            "licence_special_equipment": parse_bool(r.get("licence_special_equipment")),
            "address": (r.get("address") or "").strip(), "lat": lat, "lon": lon, "registered_on": reg_d,
            "risk_level": risk, "synthetic": parse_bool(r.get("synthetic"))}


def read_entities(path: Path, encoding: str | None = None) -> tuple[list[dict], list[Problem]]:
    return _parse(path, ("uscc", "name", "kind", "lat", "lon"), "uscc", _entity, encoding)


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
