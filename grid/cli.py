"""``python -m grid``: demo | import | check.

    python -m grid demo [--seed N] [--out DIR] [--if-empty] [--entities 70000] [--officers 116] [--no-import]
    python -m grid import [--dir DIR] [--branches F] [--grids F] [--people F] [--terminals F] [--entities F]
                          [--repair] [--map field=property ...] [--encoding gbk]
    python -m grid check [--outline city.geojson] [--tolerance-m2 1]

The database is Settings.pg_dsn (env GRIDWATCH_PG_DSN) unless --dsn is given.
Exit status: 0 all good, 1 some rows/features rejected or coverage issues found, 2 usage/connection error.
"""

from __future__ import annotations

import argparse
import codecs
import json
import logging
import sys
import time
from pathlib import Path

import psycopg
from shapely.geometry import shape

log = logging.getLogger("grid")


def _settings():
    from schemas.settings import get_settings

    return get_settings()


def _connect(dsn: str | None):
    dsn = dsn or _settings().pg_dsn
    try:
        return psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        sys.exit(f"cannot connect to PostgreSQL at {dsn}: {exc}".strip())


def _print_report(rep) -> None:
    for table, n in rep.counts.items():
        print(f"  {table}: {n} rows written")
    for p in rep.problems[:200]:
        print(f"  {p}")
    if len(rep.problems) > 200:
        print(f"  … {len(rep.problems) - 200} more problems")
    print(f"  {len(rep.errors)} rejected, {len(rep.problems) - len(rep.errors)} warnings")


def _sync_broker_grids(conn, dsn: str | None) -> None:
    """Terminals' broker accounts follow the registry just imported (broker.sync): the grids whose
    command topics each may read. Only for the city's own database (GRIDWATCH_PG_DSN), whose
    terminals the broker serves, and only where this host keeps the broker's admin password."""
    from broker import sync
    from broker.control import ControlError, DynsecControl

    s = _settings()
    if dsn not in (None, s.pg_dsn):
        log.info("registry imported into another database than GRIDWATCH_PG_DSN: broker accounts left as they are")
        return
    try:
        with DynsecControl(s) as broker:
            print(sync.report(sync.sync_terminal_grids(s, conn, broker), dry_run=False))
    except ControlError as exc:
        log.warning("terminals' broker grids not synced (%s); run `python -m broker terminal sync` where the "
                    "broker's admin password is kept", exc)


def cmd_import(a) -> int:
    from grid.importer import STANDARD_FILES, GeoJsonMapping, import_files

    paths = {}
    if a.dir:
        paths = {k: Path(a.dir) / v for k, v in STANDARD_FILES.items() if (Path(a.dir) / v).exists()}
    for k in STANDARD_FILES:
        if getattr(a, k):
            paths[k] = Path(getattr(a, k))
    if not paths:
        print("nothing to import: give --dir or at least one file", file=sys.stderr)
        return 2
    mapping = GeoJsonMapping().with_overrides(a.map or [])
    if a.encoding:
        try:
            codecs.lookup(a.encoding)
        except LookupError:
            print(f"unknown encoding {a.encoding!r} (e.g. utf-8, gbk, gb18030)", file=sys.stderr)
            return 2
    with _connect(a.dsn) as conn:
        rep = import_files(conn, bbox=tuple(_settings().city_bbox), repair=a.repair, mapping=mapping, encoding=a.encoding,
                           **paths)
        _print_report(rep)
        _sync_broker_grids(conn, a.dsn)
    return 1 if rep.errors else 0


def cmd_check(a) -> int:
    from grid import store
    from grid.coverage import check_coverage
    from grid.geometry import explain_validity_all

    city = None
    if a.outline:
        import shapely

        feats = json.loads(Path(a.outline).read_text(encoding="utf-8"))["features"]
        city = shapely.union_all([shape(f["geometry"]) for f in feats])
    with _connect(a.dsn) as conn:
        l1 = store.load_level1(conn)
        l2 = store.load_level2(conn)
        version = store.grid_version(conn)
    bad = explain_validity_all([(c, g) for c, _, g in l1 + l2])
    rep = check_coverage({c: (p, g) for c, p, g in l2}, {c: g for c, _, g in l1}, city=city, tol_m2=a.tolerance_m2)
    print(f"grid_version {version}: {rep.level1_count} level-1 and {rep.level2_count} level-2 grids, "
          f"city {rep.city_area_km2:,.1f} km²")
    for code, why in bad:
        print(f"  invalid geometry {code}: {why}")
    for issue in rep.issues:
        print(f"  {issue}")
    print(f"  gaps {rep.total('gap'):,.1f} m², overlaps {rep.total('overlap'):,.1f} m², strays {rep.total('stray'):,.1f} m²"
          f" (pieces under {a.tolerance_m2} m² ignored)")
    return 1 if (bad or rep.issues) else 0


def cmd_demo(a) -> int:
    from grid import democity, store
    from grid.importer import import_files

    conn = None
    if not a.no_import:
        conn = _connect(a.dsn)
        if a.if_empty and store.count(conn, "grid_level2") > 0:
            print("grid_level2 already has rows: demo city not generated (--if-empty)")
            return 0
    t0 = time.monotonic()
    cfg = democity.DemoConfig(seed=a.seed, entities=a.entities, officers=a.officers)
    city = democity.generate(cfg, progress=log.info)
    out = Path(a.out)
    democity.write(city, out)
    log.info("wrote %s in %.1fs: %s", out, time.monotonic() - t0, democity.counts(city))
    for note in city.notes:
        log.info("repair: %s", note)
    if conn is None:
        return 0
    with conn:
        rep = import_files(conn, bbox=tuple(_settings().city_bbox),
                           **{k: out / v for k, v in democity.FILES.items() if k != "city"})
        _print_report(rep)
        _sync_broker_grids(conn, a.dsn)
    log.info("demo city ready in %.1fs", time.monotonic() - t0)
    return 1 if rep.errors else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m grid", description="Grids, registry and demo city.")
    ap.add_argument("--dsn", help="PostgreSQL DSN (default: Settings.pg_dsn)")
    ap.add_argument("-q", "--quiet", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="generate the demo city files and import them")
    d.add_argument("--seed", type=int, default=20180601)
    d.add_argument("--out", default="var/demo-city")
    d.add_argument("--if-empty", action="store_true", help="do nothing when grid_level2 already has rows")
    d.add_argument("--entities", type=int, default=70_000)
    d.add_argument("--officers", type=int, default=116)
    d.add_argument("--no-import", action="store_true", help="only write the files")
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("import", help="import grid/registry files")
    i.add_argument("--dir", help="folder with the standard file names (as the demo writes them)")
    for k in ("branches", "grids", "people", "terminals", "entities"):
        i.add_argument(f"--{k}", help=f"{k} file")
    i.add_argument("--repair", action="store_true", help="keep the polygonal part of invalid polygons")
    i.add_argument("--map", action="append", metavar="FIELD=PROPERTY", help="GeoJSON property mapping override")
    i.add_argument("--encoding", help="encoding of the CSV files, e.g. gbk (default: detected per file: UTF-8 with or"
                                      " without BOM, else GB18030/GBK; the log says which)")
    i.set_defaults(func=cmd_import)

    c = sub.add_parser("check", help="coverage and geometry report of the stored grids")
    c.add_argument("--outline", help="GeoJSON of the city outline the level-1 grids must cover")
    c.add_argument("--tolerance-m2", type=float, default=1.0)
    c.set_defaults(func=cmd_check)

    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if a.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return a.func(a)
