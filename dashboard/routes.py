"""Flask routes beside the Dash app: the map layers (served once, gzip + ETag + Cache-Control).
Sign-in, sessions and who may read them: dashboard/auth/web.py (the layers need at least a
wall session).

The layers are built from the registry once per grid version and kept gzipped in Redis
(shared by every worker); the ETag is the grid version, so a browser revalidates cheaply
and a re-import invalidates everything at once.
"""

from __future__ import annotations

import gzip
import logging

import flask
import orjson

from dashboard import live_delta, queries
from dashboard.auth import web as auth_web
from dashboard.deps import Deps

log = logging.getLogger("gridwatch.dashboard")
BLOB_TTL_S = 3600
# private: the layers are behind sign-in now, no shared cache may keep them
CACHE_CONTROL = "private, max-age=60, must-revalidate"
LAYER_FORMAT = 2  # bump when the GeoJSON properties change: cached blobs of the old shape are not served


def current_grid_version(deps: Deps) -> str:
    def compute() -> str:
        with deps.pool.connection() as conn:
            return queries.grid_version(conn)

    return deps.cached("grid_version", 5, compute)


def _blob(deps: Deps, name: str, build) -> bytes:
    """gzip bytes of ``build()`` cached in Redis under ``name`` (which includes the grid version)."""
    key = deps.cache_key(f"blob:{name}")
    raw = deps.redis.get(key)
    if raw is None:
        body = build()
        raw = gzip.compress(body if isinstance(body, bytes) else body.encode(), compresslevel=6)
        deps.redis.set(key, raw, ex=BLOB_TTL_S)
    return raw


def _serve(deps: Deps, kind: str, build) -> flask.Response:
    version = current_grid_version(deps)
    etag = f"{kind}-f{LAYER_FORMAT}-{version}-{deps.settings.language}"
    if flask.request.if_none_match.contains(etag):
        resp = flask.Response(status=304)
    else:
        gz = _blob(deps, f"{kind}:f{LAYER_FORMAT}:{version}:{deps.settings.language}", build)
        if "gzip" in (flask.request.headers.get("Accept-Encoding") or ""):
            resp = flask.Response(gz, mimetype="application/geo+json")
            resp.headers["Content-Encoding"] = "gzip"
        else:
            resp = flask.Response(gzip.decompress(gz), mimetype="application/geo+json")
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = CACHE_CONTROL
    resp.headers["Vary"] = "Accept-Encoding, Cookie"
    return resp


def register(server: flask.Flask, deps: Deps) -> None:
    @server.get("/api/grids.geojson")
    def grids_geojson():
        level = flask.request.args.get("level", "2")
        if level not in ("1", "2"):
            flask.abort(400)

        def build() -> bytes:
            with deps.pool.connection() as conn:
                return orjson.dumps(queries.grids_geojson(conn, int(level), deps.settings.language))

        return _serve(deps, f"grids{level}", build)

    @server.get("/api/entities.geojson")
    def entities_geojson():
        def build() -> str:
            with deps.pool.connection() as conn:
                return queries.entities_geojson_text(conn)

        return _serve(deps, "entities", build)

    builder = live_delta.Builder(deps)

    @server.get("/api/live")
    def live_changes():
        """What changed since the snapshot the screen has (dashboard/live_delta.py); behind the
        same wall gate as the layers (auth/web.py: WALL_ROUTES)."""
        args = flask.request.args
        builder.touch()
        body = live_delta.answer(deps, args.get("s"), args.get("m", "officers"), args.get("gh"), builder=builder)
        resp = flask.Response(status=204) if body is None else flask.Response(body, mimetype="application/json")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @server.get("/healthz")
    def healthz():
        return {"ok": True}


def signed_in_officer() -> str | None:
    """The signed-in user when they may change state (a duty officer or administrator whose
    session is live in the database), else None. Checked inside every state-changing callback."""
    return auth_web.signed_in_officer()
