"""Demo city: counts as configured, no gaps or overlaps, officer patches, deterministic."""

import collections
import hashlib

import shapely

from grid import uscc
from grid.adjacency import adjacent_pairs, neighbours
from grid.coverage import check_coverage
from grid.democity import DemoConfig, counts, generate, write
from grid.locate import GridLocator
from grid.model import Role

SMALL_ENTITIES = 3000  # as tests/grid/conftest.py builds small_city


def test_counts_as_configured(small_city):
    c = counts(small_city)
    assert c["branch_office"] == 3 and c["grid_level1"] == 59 and c["grid_level2"] == 528
    assert c["level1_supervisor"] == 59 and c["level2_supervisor"] == 116
    assert c["co_manager"] == 528 and c["informant"] == 528
    assert c["terminal"] == 59 + 116 + 528
    assert c["market_entity"] == SMALL_ENTITIES
    assert all(t.terminal_id.startswith("T") and len(t.terminal_id) == 6 for t in small_city.terminals)


def test_real_codes_per_county(small_city):
    per = collections.Counter(g.parent for g in small_city.level1)
    assert per == {"360602": 8, "360603": 18, "360681": 33}
    county = {g.code: g.parent for g in small_city.level1}
    per2 = collections.Counter(county[g.parent] for g in small_city.level2)
    assert per2 == {"360602": 94, "360603": 174, "360681": 260}


def test_no_gaps_or_overlaps(small_city):
    city = shapely.union_all(list(small_city.counties.values()))
    rep = check_coverage({g.code: (g.parent, g.geometry) for g in small_city.level2},
                         {g.code: g.geometry for g in small_city.level1}, city=city)
    assert rep.ok, [str(i) for i in rep.issues[:20]]
    assert all(g.geometry.is_valid and not g.geometry.is_empty for g in small_city.level1 + small_city.level2)
    assert 3400 < rep.city_area_km2 < 3700  # Yingtan: about 3,557 km²


def test_officers_cover_four_to_five_adjacent_grids_each(small_city):
    adj = neighbours(adjacent_pairs({g.code: g.geometry for g in small_city.level2}))
    officers = [p for p in small_city.people if p.role == Role.LEVEL2_SUPERVISOR]
    covered = collections.Counter(g for p in officers for g in p.grids)
    assert set(covered) == {g.code for g in small_city.level2} and set(covered.values()) == {1}
    for p in officers:
        assert 4 <= len(p.grids) <= 5
        seen, todo = {p.grids[0]}, [p.grids[0]]
        while todo:
            for m in adj[todo.pop()] & set(p.grids) - seen:
                seen.add(m)
                todo.append(m)
        assert seen == set(p.grids), f"{p.person_id} patch not connected"


def test_entities_valid_inside_and_synthetic(small_city):
    loc = GridLocator((g.code, g.parent, g.geometry) for g in small_city.level2)
    refs = loc.locate_many([e["lon"] for e in small_city.entities], [e["lat"] for e in small_city.entities])
    assert all(r is not None for r in refs)
    assert all(uscc.is_valid(e["uscc"]) for e in small_city.entities)
    assert len({e["uscc"] for e in small_city.entities}) == SMALL_ENTITIES
    assert all(e["synthetic"] for e in small_city.entities) and all(p.synthetic for p in small_city.people)
    # density follows the town centres: the 8 urban-core units of 月湖区 (3.8% of the area) hold far more
    yuehu = sum(r.grid1_code.startswith("360602") for r in refs) / len(refs)
    assert yuehu > 0.10


def _hash(out):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def test_deterministic_for_a_seed(tmp_path, small_city_dir):
    again = generate(DemoConfig(seed=11, entities=SMALL_ENTITIES))
    write(again, tmp_path / "b")
    assert _hash(small_city_dir) == _hash(tmp_path / "b")
    other = generate(DemoConfig(seed=12, entities=SMALL_ENTITIES))
    write(other, tmp_path / "c")
    assert _hash(tmp_path / "c")["grids.geojson"] != _hash(small_city_dir)["grids.geojson"]


def test_default_counts():
    city = generate()
    c = counts(city)
    assert (c["grid_level1"], c["grid_level2"], c["level2_supervisor"], c["market_entity"]) == (59, 528, 116, 70_000)
    assert c["co_manager"] + c["informant"] == 1056
