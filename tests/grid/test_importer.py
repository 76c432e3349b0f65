"""Importer against a real PostgreSQL: round trip, bad rows and geometry reported, idempotent re-import."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid import store
from grid.cli import main as cli
from grid.importer import import_files
from grid.locate import GridLocator
from grid.model import GridRef

BBOX = (116.60, 27.75, 117.55, 28.72)
ROOT = Path(__file__).resolve().parents[2]


def _files(d):
    return {k: d / v for k, v in {"branches": "branch_offices.csv", "grids": "grids.geojson", "people": "people.csv",
                                  "terminals": "terminals.csv", "entities": "entities.csv"}.items()}


def _counts(conn):
    return {t: store.count(conn, t) for t in ("branch_office", "grid_level1", "grid_level2", "grid_adjacency",
                                              "person", "person_grid", "terminal", "market_entity")}


def test_round_trip(conn, small_city, small_city_dir):
    rep = import_files(conn, bbox=BBOX, **_files(small_city_dir))
    assert rep.problems == []
    c = _counts(conn)
    assert c["grid_level1"] == 59 and c["grid_level2"] == 528 and c["person"] == len(small_city.people)
    assert c["terminal"] == len(small_city.terminals) and c["market_entity"] == len(small_city.entities)
    assert c["grid_adjacency"] % 2 == 0 and c["grid_adjacency"] > 2 * 528
    # the stored geometry gives the same answers as the generated one
    loc = GridLocator.from_db(conn)
    assert loc.version == store.grid_version(conn) and len(loc) == 528
    g = small_city.level2[100]
    p = g.geometry.representative_point()
    assert loc.locate(p.x, p.y) == GridRef(g.code, g.parent)
    # every entity got the grid its point lies in
    e = small_city.entities[0]
    row = conn.execute("SELECT grid2_code, grid1_code, registered_on::text, synthetic FROM market_entity "
                       "WHERE uscc = %s", (e["uscc"],)).fetchone()
    assert row[0] == loc.locate(e["lon"], e["lat"]).grid2_code and row[2] == e["registered_on"] and row[3] is True
    assert conn.execute("SELECT count(*) FROM market_entity WHERE grid2_code IS NULL").fetchone()[0] == 0
    officer = next(p for p in small_city.people if p.role == "level2_supervisor")
    got = {r[0] for r in conn.execute("SELECT grid_code FROM person_grid WHERE person_id = %s", (officer.person_id,))}
    assert got == set(officer.grids)


def test_reimport_is_idempotent_and_bumps_version(conn, small_city_dir):
    import_files(conn, bbox=BBOX, **_files(small_city_dir))
    before, v1 = _counts(conn), store.grid_version(conn)
    rep = import_files(conn, bbox=BBOX, **_files(small_city_dir))
    assert rep.errors == [] and _counts(conn) == before
    assert store.grid_version(conn) != v1


def _write_csv(path, header, rows):
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


SQ = [[117.0, 28.0], [117.01, 28.0], [117.01, 28.01], [117.0, 28.01], [117.0, 28.0]]
SQ2 = [[117.01, 28.0], [117.02, 28.0], [117.02, 28.01], [117.01, 28.01], [117.01, 28.0]]
BOWTIE = [[117.0, 28.0], [117.01, 28.01], [117.01, 28.0], [117.0, 28.01], [117.0, 28.0]]


def _feat(code, level, parent, ring, **extra):
    props = {"code": code, "name_zh": f"网格{code}", "name_en": f"Grid {code}", "level": level, "parent": parent,
             **extra}
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [ring]}}


@pytest.fixture
def bad_files(tmp_path):
    _write_csv(tmp_path / "b.csv", ["code", "name_zh", "name_en", "synthetic"], [["BR1", "测试分局", "Test", "true"]])
    feats = [
        _feat("L1", 1, "BR1", [[117.0, 28.0], [117.02, 28.0], [117.02, 28.01], [117.0, 28.01], [117.0, 28.0]]),
        _feat("A", 2, "L1", SQ),
        _feat("B", 2, "L1", SQ2),
        _feat("BOW", 2, "L1", BOWTIE),  # feature 4: self-intersecting
        _feat("OPEN", 2, "L1", SQ[:-1]),  # feature 5: unclosed ring
        _feat("FAR", 2, "L1", [[120.0, 30.0], [120.01, 30.0], [120.01, 30.01], [120.0, 30.0]]),  # 6: outside bbox
        _feat("ORPHAN", 2, "NOPE", SQ2),  # 7: unknown parent
        {"type": "Feature", "properties": {"name_zh": "无编码"}, "geometry": None},  # 8: no code
        _feat("A", 2, "L1", SQ),  # 9: duplicate
        "not a feature",  # 10
        {"type": "Feature", "properties": {"code": "JUNK", "name_zh": "坏", "level": 2, "parent": "L1"},
         "geometry": {"type": "Polygon"}},  # 11: no coordinates
        _feat("LV3", 3, "L1", SQ2),  # 12: bad level
    ]
    (tmp_path / "g.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    _write_csv(tmp_path / "p.csv", ["person_id", "name", "role", "phone", "grids", "synthetic"], [
        ["P1", "王伟", "level2_supervisor", "13300000000", "A;B", "true"],  # line 2 ok
        ["P2", "李娜", "janitor", "", "A", "true"],  # line 3 bad role
        ["P3", "张敏", "co_manager", "", "A;B", "true"],  # line 4 two grids
        ["P4", "刘洋", "informant", "", "ZZZ", "true"],  # unknown grid (reported by person id)
        ["P1", "王伟", "level2_supervisor", "", "A", "true"],  # line 6 duplicate
    ])
    _write_csv(tmp_path / "t.csv", ["terminal_id", "person_id", "model"],
               [["T00001", "P1", "x"], ["bad id!", "P1", "x"], ["T00003", "NOBODY", "x"]])
    good = "91350100M000100Y43"
    _write_csv(tmp_path / "e.csv", ["uscc", "name", "kind", "industry", "licence_food", "licence_drug",
                                    "licence_special_equipment", "address", "lat", "lon", "registered_on",
                                    "risk_level", "synthetic"], [
        [good, "好吃餐馆", "individual_business", "catering", "true", "false", "false", "x", "28.005", "117.005",
         "2020-01-02", "B", "true"],  # line 2 ok, in A
        ["91350100M000100Y44", "坏码", "enterprise", "", "", "", "", "", "28.005", "117.005", "", "A", ""],  # 3
        ["911100001000080343", "远方", "enterprise", "", "", "", "", "", "30.5", "120.5", "", "A", ""],  # 4 outside
        ["91440300708461136T", "x", "enterprise", "", "maybe", "", "", "", "28.0", "117.0", "", "A", ""],  # 5 bool
        ["91440300708461136T", "x", "enterprise", "", "", "", "", "", "north", "117.0", "", "A", ""],  # 6 lat
        [good, "again", "enterprise", "", "", "", "", "", "28.0", "117.0", "", "A", ""],  # 7 duplicate of line 2
    ])
    return tmp_path


def test_bad_rows_and_geometry_reported_good_rows_load(conn, bad_files):
    d = bad_files
    rep = import_files(conn, branches=d / "b.csv", grids=d / "g.geojson", people=d / "p.csv", terminals=d / "t.csv",
                       entities=d / "e.csv", bbox=BBOX)
    msgs = [str(p) for p in rep.problems]
    text = "\n".join(msgs)

    def has(*parts):
        return any(all(x in m for x in parts) for m in msgs)

    assert has("g.geojson", "feature 4 (code BOW)", "Self-intersection"), text
    assert has("feature 5 (code OPEN)", "not closed"), text
    assert has("feature 6 (code FAR)", "outside the city bbox"), text
    assert has("code ORPHAN", "unknown level-1 parent"), text
    assert has("feature 8", "no 'code' property"), text
    assert has("feature 9 (code A)", "duplicate code"), text
    assert has("feature 10", "no 'code' property"), text
    assert has("feature 11 (code JUNK)", "unreadable coordinates"), text
    assert has("feature 12 (code LV3)", "expected 1 or 2"), text
    assert has("p.csv", "line 3", "janitor"), text
    assert has("p.csv", "line 4", "exactly one grid"), text
    assert has("p.csv", "person P4", "unknown level-2 grid"), text
    assert has("p.csv", "line 6", "duplicate person_id"), text
    assert has("t.csv", "line 3", "terminal_id"), text
    assert has("t.csv", "terminal T00003", "unknown person"), text
    assert has("e.csv", "line 3", "check character"), text
    assert has("e.csv", "line 5", "not a boolean"), text
    assert has("e.csv", "line 6", "lat/lon not numbers"), text
    assert has("e.csv", "line 7", "duplicate uscc", "first on line 2"), text
    assert has("e.csv", "outside every level-2 grid", "[kept]"), text
    assert {r[0] for r in conn.execute("SELECT code FROM grid_level2")} == {"A", "B"}
    assert {r[0] for r in conn.execute("SELECT person_id FROM person")} == {"P1"}
    assert {r[0] for r in conn.execute("SELECT terminal_id FROM terminal")} == {"T00001"}
    rows = dict(conn.execute("SELECT uscc, grid2_code FROM market_entity").fetchall())
    assert rows == {"91350100M000100Y43": "A", "911100001000080343": None}
    assert store.count(conn, "grid_adjacency") == 2  # A-B both ways


def test_repair_keeps_polygonal_part(conn, bad_files):
    d = bad_files
    rep = import_files(conn, branches=d / "b.csv", grids=d / "g.geojson", bbox=BBOX, repair=True)
    bow = [p for p in rep.problems if "BOW" in p.where]
    assert len(bow) == 1 and bow[0].repaired and "kept the polygonal part" in bow[0].reason
    geom = conn.execute("SELECT geom FROM grid_level2 WHERE code = 'BOW'").fetchone()[0]
    assert geom["type"] in ("Polygon", "MultiPolygon")
    assert any("OPEN" in p.where and not p.kept for p in rep.problems)  # an open ring is never guessed closed


def test_regridding_relocates_stored_entities(conn, bad_files):
    d = bad_files
    import_files(conn, branches=d / "b.csv", grids=d / "g.geojson", entities=d / "e.csv", bbox=BBOX)
    # move grid A away: the entity at (117.005, 28.005) is now in no grid
    feats = [_feat("A", 2, "L1", SQ2)]
    (d / "g2.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    import_files(conn, grids=d / "g2.geojson", bbox=BBOX)
    assert conn.execute("SELECT grid2_code FROM market_entity WHERE uscc = '91350100M000100Y43'").fetchone()[0] is None


def test_cli_demo_if_empty_and_check(grid_pg_dsn, conn, tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli(["--dsn", grid_pg_dsn, "-q", "demo", "--entities", "500", "--out", str(out)]) == 0
    assert (out / "README.md").read_text(encoding="utf-8").startswith("# Gridwatch demo city (SYNTHETIC DATA)")
    assert store.count(conn, "market_entity") == 500
    assert cli(["--dsn", grid_pg_dsn, "-q", "demo", "--if-empty", "--entities", "900", "--out", str(out)]) == 0
    assert store.count(conn, "market_entity") == 500  # skipped
    assert cli(["--dsn", grid_pg_dsn, "-q", "check", "--outline", str(out / "city.geojson")]) == 0
    assert "gaps 0.0 m², overlaps 0.0 m²" in capsys.readouterr().out
    assert cli(["--dsn", grid_pg_dsn, "-q", "import", "--dir", str(out)]) == 0


# ------------------------------------------------------------------ CSV encodings (issue 13)
ENTITY_HEADER = ["uscc", "name", "kind", "industry", "licence_food", "licence_drug", "licence_special_equipment",
                 "address", "lat", "lon", "registered_on", "risk_level", "synthetic"]
ENTITY_ROWS = [
    ["91350100M000100Y43", "鹰潭市月湖区好吃餐馆", "individual_business", "catering", "是", "否", "否", "胜利西路8号",
     "28.005", "117.005", "2020-01-02", "B", "true"],
    ["911100001000080343", "江西龙虎山药房有限公司", "enterprise", "", "", "", "", "", "28.006", "117.006", "", "A", ""],
]
NAMES = {"91350100M000100Y43": "鹰潭市月湖区好吃餐馆", "911100001000080343": "江西龙虎山药房有限公司"}


def _write_encoded(path, header, rows, encoding, bom=b""):
    """A CSV as Excel saves it: CRLF lines in ``encoding`` (GBK for a Chinese Excel's "CSV")."""
    text = "\r\n".join(",".join(r) for r in [header, *rows]) + "\r\n"
    path.write_bytes(bom + text.encode(encoding))
    return path


@pytest.fixture
def grid_files(tmp_path):
    _write_encoded(tmp_path / "b.csv", ["code", "name_zh", "name_en", "synthetic"], [["BR1", "月湖分局", "Yuehu", "true"]], "gbk")
    feats = [_feat("L1", 1, "BR1", [[117.0, 28.0], [117.02, 28.0], [117.02, 28.01], [117.0, 28.01], [117.0, 28.0]]),
             _feat("A", 2, "L1", SQ)]
    (tmp_path / "g.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("encoding,bom,used", [("gbk", b"", "gb18030 (GBK)"), ("gb18030", b"", "gb18030 (GBK)"),
                                               ("utf-8", b"\xef\xbb\xbf", "utf-8 with BOM"), ("utf-8", b"", "utf-8")])
def test_excel_csv_encodings_import_with_names_intact(conn, grid_files, encoding, bom, used, caplog):
    d = grid_files
    _write_encoded(d / "e.csv", ENTITY_HEADER, ENTITY_ROWS, encoding, bom)
    with caplog.at_level("INFO", logger="grid.importer"):
        rep = import_files(conn, branches=d / "b.csv", grids=d / "g.geojson", entities=d / "e.csv", bbox=BBOX)
    assert rep.errors == [], rep.problems
    assert dict(conn.execute("SELECT uscc, name FROM market_entity").fetchall()) == NAMES
    assert conn.execute("SELECT address, licence_food FROM market_entity WHERE uscc = '91350100M000100Y43'").fetchone() == ("胜利西路8号", True)
    assert conn.execute("SELECT name_zh FROM branch_office").fetchone()[0] == "月湖分局"  # a GBK file too
    assert f"e.csv: read as {used} (detected)" in caplog.text
    assert "b.csv: read as gb18030 (GBK) (detected)" in caplog.text


def test_encoding_option_forces_one(grid_pg_dsn, conn, grid_files, capsys, caplog):
    d = grid_files
    _write_encoded(d / "e.csv", ENTITY_HEADER, ENTITY_ROWS, "gbk")
    # Forced wrong: the first line the given encoding cannot read is named; nothing of the file is stored.
    assert cli(["--dsn", grid_pg_dsn, "import", "--branches", str(d / "b.csv"), "--entities", str(d / "e.csv"),
                "--encoding", "utf-8"]) == 1
    out = capsys.readouterr().out
    assert "b.csv: line 2: file rejected: cannot be decoded as utf-8" in out and "is --encoding utf-8 right?" in out
    assert "e.csv: line 2: file rejected" in out
    assert store.count(conn, "market_entity") == 0
    with caplog.at_level("INFO", logger="grid.importer"):
        assert cli(["--dsn", grid_pg_dsn, "import", "--branches", str(d / "b.csv"), "--grids", str(d / "g.geojson"),
                    "--entities", str(d / "e.csv"), "--encoding", "GBK"]) == 0
    assert dict(conn.execute("SELECT uscc, name FROM market_entity").fetchall()) == NAMES
    assert "e.csv: read as GBK (given)" in caplog.text
    assert cli(["--dsn", grid_pg_dsn, "import", "--entities", str(d / "e.csv"), "--encoding", "klingon"]) == 2
    assert "unknown encoding 'klingon'" in capsys.readouterr().err


def test_undecodable_file_is_a_clear_error_with_file_and_line(grid_pg_dsn, conn, grid_files):
    """Neither UTF-8 nor GB18030 (0x80 and 0xFF are never valid in GB18030): `python -m grid import`
    names the file and the line, stores nothing of it, exits 1 — no traceback."""
    d = grid_files
    good = _write_encoded(d / "e.csv", ENTITY_HEADER, ENTITY_ROWS, "gbk").read_bytes().split(b"\r\n")
    broken = b"\r\n".join([*good[:2], b"\x80\xff" + good[2]])  # line 3
    (d / "e.csv").write_bytes(broken)
    proc = subprocess.run([sys.executable, "-m", "grid", "--dsn", grid_pg_dsn, "import", "--branches", str(d / "b.csv"),
                           "--grids", str(d / "g.geojson"), "--entities", str(d / "e.csv")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "e.csv: line 3: file rejected: cannot be decoded as gb18030 (bytes 80)" in proc.stdout, proc.stdout
    assert "neither UTF-8 nor GB18030/GBK" in proc.stdout
    assert store.count(conn, "market_entity") == 0 and store.count(conn, "grid_level2") == 1  # the good files loaded


def test_damaged_utf8_is_rejected_not_read_as_gbk(tmp_path):
    """GB18030 decodes almost anything: a UTF-8 file with one bad byte must not become wrong names."""
    from grid.csvfiles import read_entities

    good = _write_encoded(tmp_path / "e.csv", ENTITY_HEADER, ENTITY_ROWS * 3, "utf-8").read_bytes()
    cut = good.index("好吃".encode()) + 1 + len(good.split(b"\r\n")[1]) + 2  # inside a character on line 3
    (tmp_path / "e.csv").write_bytes(good[:cut] + good[cut + 1:])
    recs, probs = read_entities(tmp_path / "e.csv")
    assert recs == [] and [(p.where, p.kept) for p in probs] == [("line 3", False)]
    assert "cannot be decoded as utf-8" in probs[0].reason and "the rest is UTF-8" in probs[0].reason


# Many GBK pairs are also valid UTF-8 two-byte sequences (鹰, 潭, 石, 谢, 霞, 袁, 萍 ... are): short texts of them.
CJK_WORDS = ["鹰潭", "月湖", "龙虎山", "石港", "餐馆", "药房", "有限公司", "王伟", "李娜", "谢霞", "袁萍", "（分店）", "阿依古丽·买买提", "山", "石", "叶"]


@given(rows=st.lists(st.tuples(st.sampled_from(CJK_WORDS), st.text(alphabet="abcXYZ0123 -", max_size=6)), min_size=1, max_size=8),
       encoding=st.sampled_from(["gbk", "gb18030", "utf-8", "utf-8-sig"]))
@settings(max_examples=200, deadline=None)
def test_decode_csv_round_trips_chinese_text(rows, encoding):
    from grid.csvfiles import decode_csv

    text = "name,note\r\n" + "".join(f"{w},{n}\r\n" for w, n in rows)
    got, used = decode_csv(text.encode(encoding))
    assert got == text
    assert used == ("gb18030 (GBK)" if encoding.startswith("gb") else "utf-8 with BOM" if encoding == "utf-8-sig" else "utf-8")


def test_short_text_valid_as_both_is_read_as_chinese():
    """鹰潭 in GBK is valid UTF-8 (two Cyrillic letters): with no three-byte (Chinese) UTF-8 character
    and an all-Chinese GB18030 reading, the file is GBK. A UTF-8 file with only such letters needs --encoding."""
    from grid.csvfiles import decode_csv

    assert "鹰潭".encode("gbk").decode("utf-8") == "ӥ̶"
    assert decode_csv("name\r\n鹰潭\r\n".encode("gbk")) == ("name\r\n鹰潭\r\n", "gb18030 (GBK)")
    assert decode_csv("name\r\n鹰潭\r\n".encode("utf-8"))[1] == "utf-8"
    assert decode_csv("name\r\nCafé\r\n".encode("utf-8"), "utf-8") == ("name\r\nCafé\r\n", "utf-8")
