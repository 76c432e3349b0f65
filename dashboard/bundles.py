"""Scripts the page loads besides Dash's own: the charts' plotly.js.

dcc.Graph would load plotly's full bundle (4.8 MB, about 0.8 s of main-thread evaluation on the
2-core reference machine, enough to delay the map's first render by that much when it landed
first). The charts use scatter, bar and pie only: plotly's *basic* bundle (1.2 MB, the same
plotly.js version as the Python package's, MIT, dashboard/vendor) draws them, and
assets/charts_later.js loads it once the map is drawn. Served gzipped (compressed once per
worker) and cached for good: the file name carries the version.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import flask

VENDOR = Path(__file__).with_name("vendor")
PLOTLY_VERSION = "4.1.1"  # tests/dashboard/test_bundles.py: equal to the plotly package's plotly.js
PLOTLY_JS = VENDOR / f"plotly-basic-{PLOTLY_VERSION}.min.js"
PLOTLY_URL = f"/vendor/{PLOTLY_JS.name}"
IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def _gzipped(path: Path) -> bytes:
    return gzip.compress(path.read_bytes(), compresslevel=6)


def register(server: flask.Flask) -> None:
    @server.get("/vendor/<name>")
    def vendor_script(name: str):
        if name != PLOTLY_JS.name:  # only the one file: no path from the request reaches the file system
            flask.abort(404)
        if "gzip" in (flask.request.headers.get("Accept-Encoding") or ""):
            resp = flask.Response(_gzipped(PLOTLY_JS), mimetype="text/javascript")
            resp.headers["Content-Encoding"] = "gzip"
        else:
            resp = flask.Response(PLOTLY_JS.read_bytes(), mimetype="text/javascript")
        resp.headers["Cache-Control"] = IMMUTABLE
        resp.headers["Vary"] = "Accept-Encoding"
        return resp
