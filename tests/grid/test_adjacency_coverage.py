import shapely

from grid.adjacency import adjacent_pairs, neighbours
from grid.coverage import check_coverage
from grid.geometry import area_m2

D = 0.01  # ~1 km cells near Yingtan


def _square(i, j, x0=117.0, y0=28.0):
    return shapely.box(x0 + i * D, y0 + j * D, x0 + (i + 1) * D, y0 + (j + 1) * D)


def test_edges_are_adjacent_corners_are_not():
    grids = {f"{i}{j}": _square(i, j) for i in range(2) for j in range(2)}
    assert adjacent_pairs(grids) == [("00", "01"), ("00", "10"), ("01", "11"), ("10", "11")]
    assert neighbours(adjacent_pairs(grids))["00"] == {"01", "10"}


def test_clean_tiling_has_no_issues():
    l2 = {f"{i}{j}": ("P", _square(i, j)) for i in range(3) for j in range(3)}
    l1 = {"P": shapely.box(117.0, 28.0, 117.0 + 3 * D, 28.0 + 3 * D)}
    rep = check_coverage(l2, l1)
    assert rep.ok, [str(i) for i in rep.issues]


def test_gap_and_overlap_are_reported_in_m2():
    parent = shapely.box(117.0, 28.0, 117.0 + 2 * D, 28.0 + D)
    a = shapely.box(117.0, 28.0, 117.0 + 0.6 * D, 28.0 + D)
    b = shapely.box(117.0 + 0.5 * D, 28.0, 117.0 + 0.9 * D, 28.0 + D)  # overlaps a by 0.1 D
    c = shapely.box(117.0 + 1.0 * D, 28.0, 117.0 + 2 * D, 28.0 + D)  # leaves a 0.1 D gap
    rep = check_coverage({"A": ("P", a), "B": ("P", b), "C": ("P", c)}, {"P": parent})
    kinds = sorted(i.kind for i in rep.issues)
    assert kinds == ["gap", "overlap"]
    strip = area_m2(shapely.box(117.0, 28.0, 117.0 + 0.1 * D, 28.0 + D))
    assert abs(rep.total("gap") - strip) / strip < 1e-6
    assert abs(rep.total("overlap") - strip) / strip < 1e-6
    assert 1.0e5 < strip < 1.2e5  # 0.001° x 0.01° at 28° N: ~98 m x 1,112 m


def test_stray_and_tolerance():
    parent = shapely.box(117.0, 28.0, 117.0 + D, 28.0 + D)
    child = shapely.box(117.0, 28.0, 117.0 + D + 1e-9, 28.0 + D)  # 0.1 mm wider: noise
    assert check_coverage({"A": ("P", child)}, {"P": parent}).ok
    child = shapely.box(117.0, 28.0, 117.0 + 1.1 * D, 28.0 + D)
    rep = check_coverage({"A": ("P", child)}, {"P": parent})
    assert [i.kind for i in rep.issues] == ["stray"]
