"""Scripts the page loads besides Dash's own: the charts' plotly.js, the entity clusters'
supercluster, and the one part of Dash's browser polyfill that the bundles use.

- dcc.Graph would load plotly's full bundle (4.8 MB, about 0.8 s of main-thread evaluation on the
  2-core reference machine, enough to delay the map's first render by that much when it landed
  first). The charts use scatter, bar and pie only: plotly's *basic* bundle (1.2 MB, the same
  plotly.js version as the Python package's) draws them, and assets/charts_later.js loads it
  once the map is drawn.
- Dash puts @babel/polyfill 7 (core-js 2 + regenerator) ahead of every script, for browsers
  without ES2017; evaluating it is a 0.1-0.2 s task at the start of every load. A wall's and an
  operator's Chromium/Firefox/Edge have all of core-js natively; of the polyfill, Dash's async
  component loader (GeoJSON, Graph, Dropdown, ...) needs only the ``regeneratorRuntime`` global,
  which regenerator-runtime defines on its own (25 KB).
- supercluster (with kdbush, ISC) indexes the 70,000 entities in a Web Worker (assets/gwentities.js):
  0.25-0.4 s that dash-leaflet's clustering GeoJSON layer spent on the main thread.

All are vendored (MIT, ISC: dashboard/vendor, licences beside them), served gzipped
(compressed once per worker) and cached for good: the file names carry the versions.
"""

from __future__ import annotations

import functools
import gzip
import re
from pathlib import Path

import flask

VENDOR = Path(__file__).with_name("vendor")
PLOTLY_VERSION = "4.1.1"  # tests/dashboard/test_page_load.py: equal to the plotly package's plotly.js
PLOTLY_JS = VENDOR / f"plotly-basic-{PLOTLY_VERSION}.min.js"
REGENERATOR_JS = VENDOR / "regenerator-runtime-0.14.1.js"
SUPERCLUSTER_JS = VENDOR / "supercluster-8.0.1.min.js"
SCRIPTS = {p.name: p for p in (PLOTLY_JS, REGENERATOR_JS, SUPERCLUSTER_JS)}  # the only files /vendor/ serves
PLOTLY_URL = f"/vendor/{PLOTLY_JS.name}"
REGENERATOR_URL = f"/vendor/{REGENERATOR_JS.name}"
SUPERCLUSTER_URL = f"/vendor/{SUPERCLUSTER_JS.name}"
IMMUTABLE = "public, max-age=31536000, immutable"
# Script chunks of the components Dash loads only when they mount (the charts, the operator's
# dropdowns and slider), by their path under /_dash-component-suites/.
LAZY_CHUNKS = ("dash/dcc/async-graph.js", "dash/dcc/async-dropdown.js", "dash/dcc/async-slider.js")
_POLYFILL_TAG = re.compile(r'<script src="[^"]*/dash/deps/polyfill@[^"]*"></script>')


def without_polyfill(scripts: str) -> str:
    """Dash's script tags with @babel/polyfill replaced by regenerator-runtime alone (same place,
    so the global exists before any bundle runs). Pure."""
    return _POLYFILL_TAG.sub(f'<script src="{REGENERATOR_URL}"></script>', scripts, count=1)


@functools.cache
def _gzipped(path: Path) -> bytes:
    return gzip.compress(path.read_bytes(), compresslevel=6)


def register(server: flask.Flask) -> None:
    @server.get("/vendor/<name>")
    def vendor_script(name: str):
        path = SCRIPTS.get(name)  # a fixed set: no path from the request reaches the file system
        if path is None:
            flask.abort(404)
        if "gzip" in (flask.request.headers.get("Accept-Encoding") or ""):
            resp = flask.Response(_gzipped(path), mimetype="text/javascript")
            resp.headers["Content-Encoding"] = "gzip"
        else:
            resp = flask.Response(path.read_bytes(), mimetype="text/javascript")
        resp.headers["Cache-Control"] = IMMUTABLE
        resp.headers["Vary"] = "Accept-Encoding"
        return resp
