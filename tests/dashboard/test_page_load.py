"""What the wall's first page load fetches besides Dash's own bundles (dashboard/bundles.py):
the charts' plotly.js basic bundle, served once compressed and cached for good, named and
preloaded by the page's head for a visitor who may see the map; regenerator-runtime in place
of Dash's whole browser polyfill."""

from __future__ import annotations

import gzip

import pytest

from dashboard import bundles
from dashboard.app import create_app
from tests.dashboard.auth_support import wall_client


@pytest.fixture(scope="module")
def app(settings, known_live):
    return create_app(settings)


def test_vendored_plotly_is_the_plotly_packages_version_and_basic():
    from plotly.offline import get_plotlyjs_version

    # dcc.Graph is built against the plotly.js of the Python package: the basic bundle must be the same release.
    assert bundles.PLOTLY_VERSION == get_plotlyjs_version()
    head = bundles.PLOTLY_JS.read_bytes()[:200].decode()
    assert f"plotly.js (basic - minified) v{bundles.PLOTLY_VERSION}" in head
    assert (bundles.VENDOR / "LICENSE.plotly.js").read_text().startswith("MIT License")


def test_plotly_bundle_gzip_immutable_for_anyone_and_nothing_else(app):
    anon = app.server.test_client()  # a library, not data: no sign-in needed
    r = anon.get(bundles.PLOTLY_URL, headers={"Accept-Encoding": "gzip, br"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Cache-Control"] == bundles.IMMUTABLE and "Accept-Encoding" in r.headers["Vary"]
    assert gzip.decompress(r.data) == bundles.PLOTLY_JS.read_bytes()
    plain = anon.get(bundles.PLOTLY_URL, headers={"Accept-Encoding": "identity"})
    assert plain.data == bundles.PLOTLY_JS.read_bytes() and "Content-Encoding" not in plain.headers
    rr = anon.get(bundles.REGENERATOR_URL, headers={"Accept-Encoding": "gzip"})
    assert rr.status_code == 200 and b"regeneratorRuntime = runtime" in gzip.decompress(rr.data)
    sc = anon.get(bundles.SUPERCLUSTER_URL, headers={"Accept-Encoding": "gzip"})
    assert sc.status_code == 200 and b".Supercluster=" in gzip.decompress(sc.data)
    assert (bundles.VENDOR / "LICENSE.supercluster").read_text().startswith("ISC License")
    for other in ("/vendor/LICENSE.plotly.js", "/vendor/plotly.min.js"):
        assert anon.get(other).status_code == 404, other
    sneaky = anon.get("/vendor/..%2Fbundles.py")  # not this route's: Dash's page router answers with its HTML
    assert b"PLOTLY_JS" not in sneaky.data and "javascript" not in sneaky.headers["Content-Type"]


def test_head_names_plotly_and_preloads_it_only_for_the_wall(app, known_db):
    anon = app.server.test_client().get("/wall").data.decode()
    assert f'<meta name="gw-plotly-js" content="{bundles.PLOTLY_URL}">' in anon
    assert f'<meta name="gw-supercluster-js" content="{bundles.SUPERCLUSTER_URL}">' in anon
    assert 'rel="preload"' not in anon  # the sign-in page downloads nothing it will not use
    wall = wall_client(app, known_db).get("/wall").data.decode()
    assert f'<link rel="preload" href="{bundles.PLOTLY_URL}" as="script">' in wall
    assert "charts_later.js" in wall and "plotly.min.js" not in wall
    for chunk in bundles.LAZY_CHUNKS:  # the lazily mounted components' scripts, from the first byte
        assert f'<link rel="preload" href="/_dash-component-suites/{chunk}" as="script">' in wall
        assert app.server.test_client().get(f"/_dash-component-suites/{chunk}").status_code == 200, chunk


def test_polyfill_replaced_by_regenerator_runtime_in_place(app):
    scripts = app._generate_scripts_html()
    assert "/dash/deps/polyfill@" in scripts  # what Dash itself would send
    swapped = bundles.without_polyfill(scripts)
    assert "polyfill@" not in swapped
    # the same place: before react and every component bundle, so the global is there when they run
    assert swapped.index(bundles.REGENERATOR_URL) < swapped.index("react@") < swapped.index("dash_leaflet")
    for page in ("/", "/wall"):
        html = app.server.test_client().get(page).data.decode()
        assert "polyfill@" not in html and f'<script src="{bundles.REGENERATOR_URL}"></script>' in html
