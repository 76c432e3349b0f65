"""The demo city: real Yingtan divisions on synthetic shapes, with synthetic people and entities.

``generate(cfg)`` is pure and deterministic for a seed: it reads only the shipped data in
grid/data/yingtan/, repairs the (invalid) county outlines, tiles each county into its real
townships and each township into its real villages (Voronoi cells of seeds clipped to the parent,
seeds denser near town centres), groups villages into officer patches, and makes people,
terminals and market entities. ``write()`` puts the result in the same files a real bureau would
import; the CLI then imports them with grid.importer, so the demo exercises the real path.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from grid.adjacency import adjacent_pairs, neighbours
from grid.data import YINGTAN_DIR
from grid.geometry import area_m2
from grid.csvfiles import ENTITY_COLUMNS
from grid.importer import STANDARD_FILES
from grid.locate import GridLocator
from grid.model import BranchOffice, Level1Grid, Level2Grid, Person, Role, Terminal
from grid import synth, uscc
from grid.teams import officer_patches, split_officers
from grid.tiling import clean_outlines, partition, sample_points

FILES = {**STANDARD_FILES, "city": "city.geojson"}
TERMINAL_MODEL = "GW-T1 simulated"
# how strongly each kind of township attracts businesses (streets are the town centres)
TOWNSHIP_PULL = {"street": 6.0, "town": 2.5, "township": 1.0, "other": 0.6}


@dataclass(frozen=True, slots=True)
class DemoConfig:
    seed: int = 20180601
    entities: int = 70_000
    officers: int = 116


@dataclass(slots=True)
class DemoCity:
    config: DemoConfig
    branches: list[BranchOffice]
    level1: list[Level1Grid]
    level2: list[Level2Grid]
    counties: dict[str, BaseGeometry]
    people: list[Person]
    terminals: list[Terminal]
    entities: list[dict]
    notes: list[str] = field(default_factory=list)


def load_divisions(path: Path = YINGTAN_DIR / "divisions.csv") -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def load_outlines(path: Path = YINGTAN_DIR / "counties.geojson") -> tuple[dict[str, BaseGeometry], dict[str, tuple]]:
    """County outlines as published (invalid) and their label points."""
    data = json.loads(path.read_text(encoding="utf-8"))
    geoms = {f["properties"]["code"]: shape(f["geometry"]) for f in data["features"]}
    centres = {f["properties"]["code"]: tuple(f["properties"]["centre"]) for f in data["features"] if f["properties"].get("centre")}
    return geoms, centres


def _size(geom: BaseGeometry) -> float:
    """Typical width in degrees: sqrt of the area."""
    return math.sqrt(geom.area)


def _town_seeds(rng: np.random.Generator, county: BaseGeometry, centre: tuple, towns: list[dict]) -> dict[str, tuple]:
    """Seeds of a county's townships: streets packed round the county seat, the rest spread out."""
    w = _size(county)
    sigma = min(0.12 * w, 0.03)
    seeds: dict[str, tuple] = {}
    streets = [t for t in towns if t["kind"] == "street"]
    parks = [t for t in towns if t["kind"] == "other" and any(k in t["official_name"] for k in ("园区", "新区", "示范园"))]
    rest = [t for t in towns if t not in streets and t not in parks]
    for group, kw in ((streets, dict(centre=centre, sigma=sigma, min_dist=0.6 * sigma)),
                      (parks, dict(centre=centre, sigma=2.5 * sigma, min_dist=0.6 * sigma)),
                      (rest, dict(min_dist=0.55 * w / math.sqrt(max(len(towns), 1))))):
        pts = sample_points(rng, county, len(group), existing=list(seeds.values()), **kw)
        seeds.update({t["code"]: p for t, p in zip(group, pts, strict=True)})
    return seeds


def _village_seeds(rng: np.random.Generator, town: BaseGeometry, centre: tuple, villages: list[dict]) -> dict[str, tuple]:
    """Seeds of a township's villages: communities near its centre, villages denser towards it."""
    w = _size(town)
    n = len(villages)
    seeds: dict[str, tuple] = {}
    comm = [v for v in villages if v["kind"] == "community"]
    rest = [v for v in villages if v["kind"] != "community"]
    if comm:
        s = 0.18 * w
        pts = sample_points(rng, town, len(comm), centre=centre, sigma=s, min_dist=0.5 * s / math.sqrt(len(comm)))
        seeds.update({v["code"]: p for v, p in zip(comm, pts, strict=True)})
    if rest:
        pts = sample_points(rng, town, len(rest), min_dist=0.5 * w / math.sqrt(n), existing=list(seeds.values()),
                            bias=(centre, 0.35 * w))
        seeds.update({v["code"]: p for v, p in zip(rest, pts, strict=True)})
    return seeds


def build_grids(cfg: DemoConfig, divisions: list[dict]):
    """(branches, level-1, level-2, cleaned counties, town centres, notes) — the map."""
    rng = np.random.default_rng([cfg.seed, 1])
    raw, label_points = load_outlines()
    counties, notes = clean_outlines(raw)
    by_level = {lv: [d for d in divisions if d["level"] == lv] for lv in ("county", "township", "village")}
    branches = [BranchOffice(c["code"], f"{c['name_zh'][:-1]}分局", f"{c['name_en'].rsplit(' ', 1)[0]} Branch Office",
                             synthetic=True) for c in by_level["county"]]
    level1: list[Level1Grid] = []
    level2: list[Level2Grid] = []
    centres: dict[str, tuple] = {}
    for county in by_level["county"]:
        cgeom = counties[county["code"]]
        cp = label_points.get(county["code"])
        if cp is None or not cgeom.contains(shapely.Point(cp)):
            p = cgeom.representative_point()
            cp = (p.x, p.y)
        towns = [t for t in by_level["township"] if t["parent_code"] == county["code"]]
        seeds = _town_seeds(rng, cgeom, cp, towns)
        centres.update(seeds)
        tgeoms = partition(cgeom, seeds)
        for t in towns:
            level1.append(Level1Grid(t["code"], t["name_zh"], t["name_en"], county["code"], tgeoms[t["code"]], True))
            vills = [v for v in by_level["village"] if v["parent_code"] == t["code"]]
            if not vills:
                notes.append(f"{t['code']} {t['name_zh']}: no villages listed; left without level-2 grids")
                continue
            vseeds = _village_seeds(rng, tgeoms[t["code"]], seeds[t["code"]], vills)
            centres.update(vseeds)
            vgeoms = partition(tgeoms[t["code"]], vseeds)
            level2 += [Level2Grid(v["code"], v["name_zh"], v["name_en"], t["code"], vgeoms[v["code"]], True) for v in vills]
    return branches, level1, level2, counties, centres, notes


def build_people(cfg: DemoConfig, level1: list[Level1Grid], level2: list[Level2Grid], notes: list[str]):
    """Level-1 supervisors, officers over patches of adjacent grids, a co-manager and an informant per grid."""
    rng = random.Random(cfg.seed * 7 + 2)
    adj = neighbours(adjacent_pairs({g.code: g.geometry for g in level2}))
    county_of = {g.code: g.parent for g in level1}
    per_county: dict[str, list[str]] = {}
    for g in level2:
        per_county.setdefault(county_of[g.parent], []).append(g.code)
    officers = split_officers({c: len(v) for c, v in per_county.items()}, cfg.officers)
    people: list[Person] = []

    def add(role: Role, grids: tuple[str, ...]) -> None:
        people.append(Person(f"P{len(people) + 1:05d}", synth.person_name(rng), role, synth.phone(rng), grids, True))

    for g in level1:
        add(Role.LEVEL1_SUPERVISOR, (g.code,))
    for county in sorted(per_county):
        patches, bad = officer_patches(per_county[county], adj, officers[county], rng)
        if bad:
            notes.append(f"{county}: {bad} officer patch(es) off the size range or not connected")
        for patch in patches:
            add(Role.LEVEL2_SUPERVISOR, tuple(patch))
    for g in level2:
        add(Role.CO_MANAGER, (g.code,))
        add(Role.INFORMANT, (g.code,))
    carriers = [p for p in people if p.role != Role.INFORMANT]  # informants report through WeChat
    terminals = [Terminal(f"T{i + 1:05d}", p.person_id, TERMINAL_MODEL) for i, p in enumerate(carriers)]
    return people, terminals


def build_entities(cfg: DemoConfig, divisions: list[dict], level1: list[Level1Grid], level2: list[Level2Grid],
                   centres: dict[str, tuple]) -> list[dict]:
    """Market entities: density follows the town centres (streets pull most), valid USCCs."""
    nrng = np.random.default_rng([cfg.seed, 3])
    rng = random.Random(cfg.seed * 7 + 3)
    info = {d["code"]: d for d in divisions}
    pull = np.array([TOWNSHIP_PULL.get(info[g.code]["kind"], 1.0) * (0.5 + math.sqrt(g.geometry.area) * 4)
                     for g in level1])
    counts = nrng.multinomial(cfg.entities, pull / pull.sum())
    lons: list[float] = []
    lats: list[float] = []
    for g, n in zip(level1, counts.tolist(), strict=True):
        geom, (cx, cy), w = g.geometry, centres[g.code], _size(g.geometry)
        shapely.prepare(geom)
        villages = [v for v in level2 if v.parent == g.code]
        vc = np.array([centres[v.code] for v in villages]) if villages else np.array([[cx, cy]])
        got_x: list[np.ndarray] = []
        got_y: list[np.ndarray] = []
        have = 0
        while have < n:
            m = max(64, 2 * (n - have))
            near_town = nrng.random(m) < 0.6
            pick = vc[nrng.integers(0, len(vc), m)]
            mx = np.where(near_town, cx, pick[:, 0])
            my = np.where(near_town, cy, pick[:, 1])
            s = np.where(near_town, 0.15 * w, 0.03 * w)
            xs, ys = nrng.normal(mx, s), nrng.normal(my, s)
            ok = shapely.contains_xy(geom, xs, ys)
            got_x.append(xs[ok])
            got_y.append(ys[ok])
            have += int(ok.sum())
        lons += np.concatenate(got_x)[:n].tolist() if n else []
        lats += np.concatenate(got_y)[:n].tolist() if n else []
    locator = GridLocator((v.code, v.parent, v.geometry) for v in level2)
    idx = locator.locate_index(np.array(lons), np.array(lats))
    codes = locator.codes
    county_of = {g.code: g.parent for g in level1}
    seen: set[str] = set()
    rows = []
    for lon, lat, i in zip(lons, lats, idx.tolist(), strict=True):
        v = info[codes[i]] if i >= 0 else None
        t = info[v["parent_code"]] if v else None
        cty = info[county_of[t["code"]]] if t else info[level1[0].parent]
        kind = synth.pick_kind(rng)
        ind = synth.pick_industry(rng, kind)
        while True:
            code = uscc.generate(rng, cty["code"], kind)
            if code not in seen:
                seen.add(code)
                break
        place = (v["name_zh"][:-1] if v else "")[:3]
        rows.append({
            "uscc": code, "name": synth.entity_name(rng, kind, ind, cty["name_zh"], place), "kind": kind,
            "industry": ind.key, "licence_food": rng.random() < ind.food, "licence_drug": rng.random() < ind.drug,
            "licence_special_equipment": rng.random() < ind.special_equipment,
            "address": synth.address(rng, cty["name_zh"], t["name_zh"] if t else "", v["name_zh"] if v else ""),
            "lat": round(lat, 6), "lon": round(lon, 6), "registered_on": synth.registered_on(rng).isoformat(),
            "risk_level": synth.risk_level(rng, ind), "synthetic": True,
        })
    return rows


def generate(cfg: DemoConfig = DemoConfig(), progress=lambda msg: None) -> DemoCity:
    """The whole demo city in memory; same seed, same city. ``progress`` gets one line per stage."""
    divisions = load_divisions()
    branches, level1, level2, counties, centres, notes = build_grids(cfg, divisions)
    progress(f"demo: {len(level1)} level-1 and {len(level2)} level-2 grids tiled")
    people, terminals = build_people(cfg, level1, level2, notes)
    progress(f"demo: {len(people)} people, {len(terminals)} terminals")
    entities = build_entities(cfg, divisions, level1, level2, centres)
    progress(f"demo: {len(entities)} market entities")
    return DemoCity(cfg, branches, level1, level2, counties, people, terminals, entities, notes)


# ---------------------------------------------------------------- files


def _csv(path: Path, columns, rows) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)


def _b(v: bool) -> str:
    return "true" if v else "false"


def _feature(props: dict, geom: BaseGeometry) -> dict:
    return {"type": "Feature", "properties": props, "geometry": mapping(geom)}


def write(city: DemoCity, out: Path) -> dict[str, str]:
    """Write the bureau-style files into ``out``; returns file name -> sha256."""
    out.mkdir(parents=True, exist_ok=True)
    _csv(out / FILES["branches"], ("code", "name_zh", "name_en", "synthetic"),
         [(b.code, b.name_zh, b.name_en, _b(b.synthetic)) for b in city.branches])
    feats = [_feature({"code": g.code, "name_zh": g.name_zh, "name_en": g.name_en, "level": 1, "parent": g.parent,
                       "branch": g.parent, "synthetic": g.synthetic}, g.geometry) for g in city.level1]
    feats += [_feature({"code": g.code, "name_zh": g.name_zh, "name_en": g.name_en, "level": 2, "parent": g.parent,
                        "synthetic": g.synthetic}, g.geometry) for g in city.level2]
    (out / FILES["grids"]).write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False,
                                                 separators=(",", ":")) + "\n", encoding="utf-8")
    cfeats = [_feature({"code": c, "repaired": True}, g) for c, g in sorted(city.counties.items())]
    (out / FILES["city"]).write_text(json.dumps({"type": "FeatureCollection", "features": cfeats},
                                                separators=(",", ":")) + "\n", encoding="utf-8")
    _csv(out / FILES["people"], ("person_id", "name", "role", "phone", "grids", "synthetic"),
         [(p.person_id, p.name, p.role.value, p.phone, ";".join(p.grids), _b(p.synthetic)) for p in city.people])
    _csv(out / FILES["terminals"], ("terminal_id", "person_id", "model"),
         [(t.terminal_id, t.person_id, t.model) for t in city.terminals])
    _csv(out / FILES["entities"], ENTITY_COLUMNS,
         [[_b(r[c]) if isinstance(r[c], bool) else r[c] for c in ENTITY_COLUMNS] for r in city.entities])
    (out / "README.md").write_text(_readme(city), encoding="utf-8")
    hashes = {name: hashlib.sha256((out / name).read_bytes()).hexdigest()
              for name in sorted([*FILES.values(), "README.md"])}
    manifest = {"seed": city.config.seed, "counts": counts(city), "sha256": hashes}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return hashes


def counts(city: DemoCity) -> dict[str, int]:
    roles: dict[str, int] = {}
    for p in city.people:
        roles[p.role.value] = roles.get(p.role.value, 0) + 1
    return {"branch_office": len(city.branches), "grid_level1": len(city.level1), "grid_level2": len(city.level2),
            "person": len(city.people), **roles, "terminal": len(city.terminals), "market_entity": len(city.entities)}


def _readme(city: DemoCity) -> str:
    c = counts(city)
    area = sum(area_m2(g) for g in city.counties.values()) / 1e6
    lines = [
        "# Gridwatch demo city (SYNTHETIC DATA)",
        "",
        f"Generated by `python -m grid demo --seed {city.config.seed} --entities {city.config.entities} "
        f"--officers {city.config.officers}`; the same seed gives byte-identical files.",
        "",
        "Real: the codes and names of Yingtan's 3 county-level units, 59 townships/streets and 528 villages/communities,",
        "and the county outlines (see grid/data/yingtan/SOURCES.md). **Synthetic** (flagged `synthetic=true` in every",
        "file): township and village polygons, branch-office names, every person, phone number, terminal and market",
        "entity. Do not use for anything but demos and load tests.",
        "",
        f"City area {area:,.0f} km². Counts: " + ", ".join(f"{k} {v}" for k, v in c.items()) + ".",
        "",
        "Files (the same a bureau would import with `python -m grid import --dir <this folder>`):",
        "- `branch_office.csv`: code, name_zh, name_en, synthetic".replace("branch_office.csv", FILES["branches"]),
        "- `grids.geojson`: level-1 and level-2 polygons; properties code, name_zh, name_en, level, parent, branch, synthetic",
        "- `city.geojson`: the repaired county outlines (the city the grids must cover)",
        "- `people.csv`: person_id, name, role, phone, grids (';'-separated codes), synthetic",
        "- `terminals.csv`: terminal_id, person_id, model",
        "- `entities.csv`: " + ", ".join(ENTITY_COLUMNS) + " (grid codes are assigned at import)",
        "- `manifest.json`: seed, counts, sha256 of each file",
        "",
        "Repairs and notes:",
        *[f"- {n}" for n in city.notes],
        "",
    ]
    return "\n".join(lines)
