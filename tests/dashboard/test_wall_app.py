"""Callbacks and routes through Flask's test client: the same HTTP path the browser uses."""

import gzip
import json

import pytest

from dashboard.app import create_app
from tests.dashboard.auth_support import wall_client


@pytest.fixture(scope="module")
def app(settings, known_live):
    return create_app(settings)


def _call(client, app, output_key: str, inputs: list, state: list, changed: list):
    key = next(k for k in app.callback_map if output_key in k)
    cb = app.callback_map[key]
    outputs = [{"id": o.split(".")[0], "property": o.split(".")[1]} for o in key.strip(".").split("...")] if key.startswith("..") else [
        {"id": key.split(".")[0], "property": key.split(".")[1]}]
    body = {"output": key, "outputs": outputs if key.startswith("..") else outputs[0], "inputs": inputs, "state": state, "changedPropIds": changed}
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json"), cb


def test_refresh_callback_then_no_update(app, known_live, known_db, live_on_the_clock):
    inputs = [{"id": "live-tick", "property": "n_intervals", "value": 1}, {"id": "measure", "property": "value", "value": "officers"}]
    # Live positions are not for anonymous visitors.
    resp, _ = _call(app.server.test_client(), app, "live-data.data", inputs, [{"id": "live-state", "property": "data", "value": {}}],
                    ["live-tick.n_intervals"])
    assert resp.status_code == 401
    client = wall_client(app, known_db)  # the read-only wall may
    resp, _ = _call(client, app, "live-data.data", inputs, [{"id": "live-state", "property": "data", "value": {}}], ["live-tick.n_intervals"])
    assert resp.status_code == 200, resp.data[:500]
    out = resp.get_json()["response"]
    data, state = out["live-data"]["data"], out["live-state"]["data"]
    assert {r[0] for r in data["t"]} == {"T1", "T2", "T3"} and data["c"]["online"] == 2
    # Same version, asked again within the re-send period: no update (HTTP 204).
    resp2, _ = _call(client, app, "live-data.data", inputs, [{"id": "live-state", "property": "data", "value": state}], ["live-tick.n_intervals"])
    assert resp2.status_code == 204


def test_geojson_routes_gzip_and_etag(app, known_db):
    anon = app.server.test_client()
    assert anon.get("/api/grids.geojson?level=2").status_code == 401
    assert anon.get("/api/entities.geojson").status_code == 401
    client = wall_client(app, known_db)
    r = client.get("/api/grids.geojson?level=2", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    assert "max-age" in r.headers["Cache-Control"] and "v-test-1" in r.headers["ETag"]
    fc = json.loads(gzip.decompress(r.data))
    assert {f["properties"]["code"] for f in fc["features"]} == {"360602001001", "360602001002", "360602002001"}
    assert fc["features"][0]["properties"]["tooltip"] == "江边村"
    r304 = client.get("/api/grids.geojson?level=2", headers={"If-None-Match": r.headers["ETag"]})
    assert r304.status_code == 304 and not r304.data
    ents = json.loads(client.get("/api/entities.geojson").data)
    assert len(ents["features"]) == 2 and ents["features"][0]["properties"]["r"] in "AC"
    assert len(json.loads(client.get("/api/grids.geojson?level=1").data)["features"]) == 2


def test_pages_render_and_no_cdn(app):
    client = app.server.test_client()
    html = client.get("/").data.decode()
    assert "unpkg" not in html and "cdn" not in html.lower()
    assert "gridwatch.js" in html
    assert client.get("/wall").status_code == 200


def test_details_callbacks(app, settings, known_live):
    from dashboard.callbacks import grid_details, terminal_details
    from dashboard.deps import Deps

    deps = Deps(settings)
    g = json.dumps([c.to_plotly_json() if hasattr(c, "to_plotly_json") else c for c in grid_details(deps, "360602001001", now=known_live)], default=lambda o: o.to_plotly_json(), ensure_ascii=False)
    assert "张建国" in g and "李明" in g and "赵协" in g and "检查完成 4" in g
    body, track = terminal_details(deps, "T1", now=known_live)
    s = json.dumps(body, default=lambda o: o.to_plotly_json(), ensure_ascii=False)
    assert "李明" in s and "江边村" in s and "90%" in s and "检查开始 I9" in s
    assert len(track) == 30 and track[0] == [28.2 + 10 * 0.0001, 117.0 + 10 * 0.0001]


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("wall", [False, True])
def test_layouts_build_in_both_languages(settings, language, wall):
    from dashboard.pages.layout import page

    s = settings.model_copy(update={"language": language})
    with create_app(s).server.test_request_context("/"):
        tree = page(s, wall=wall)
    text = json.dumps(tree.to_plotly_json(), default=lambda o: o.to_plotly_json(), ensure_ascii=False)
    assert ("鹰潭" in text) == (language == "zh-CN")
    assert '"gw-map"' in text and '"ctr-online"' in text


def test_warm_runs_the_refresh_callback(settings, known_live, rds):
    from dashboard.app import warm
    from dashboard.deps import Deps

    app = create_app(settings)
    rds.delete(Deps(settings).cache_key("terminal_meta"))
    assert warm(app) > 0
    assert rds.get(Deps(settings).cache_key("terminal_meta")) is not None  # the callback really ran


def test_tiles_only_when_configured(settings):
    from dashboard.components import live_map

    def urls(s):
        return [c.url for c in live_map(s).children if type(c).__name__ == "TileLayer"]

    assert urls(settings) == []  # no tile server: the plain dark background
    tiled = settings.model_copy(update={"tile_url": "http://tiles.intranet/{z}/{x}/{y}.png"})
    assert urls(tiled) == ["http://tiles.intranet/{z}/{x}/{y}.png"]
