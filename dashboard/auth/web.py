"""The Flask side of sign-in: who is asking (checked on every request), what each route and
callback needs, sign-in and sign-out with a CSRF token, and the wall token.

The session cookie (signed with GRIDWATCH_WEB_SECRET, HttpOnly, SameSite=Lax, Secure behind
TLS) holds only a random session id and the form's CSRF token; the session itself is a row of
``web_session``, looked up once per request: sign-out deletes it, and so does removing the
user, a new password or a role change. A forged cookie names no live session.

Callbacks are gated before Dash runs them (``callback_level``): anonymous visitors run only
the page router; a wall session runs the wall's live feeds; everything else needs a signed-in
user. Changes (orders, alerts) are also checked inside their callbacks (``signed_in_officer``).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit

import flask

from dashboard.auth import audit, store
from dashboard.auth.model import ANONYMOUS, Access, Level, WebAction
from dashboard.auth.ratelimit import SigninLimiter
from schemas.logs import fields

log = logging.getLogger("gridwatch.dashboard.auth")
EXT = "gridwatch_deps"
COOKIE = "gw_session"

# The page router renders the sign-in page for anyone; these feed the read-only wall.
OPEN_CALLBACKS = ("_pages_",)
WALL_CALLBACKS = ("chart-activity.", "alert-feed.", "orders-overlay.")
WALL_ROUTES = ("/api/grids.geojson", "/api/entities.geojson", "/api/live")


def callback_level(output: str) -> Level:
    """The least access that may run the callback whose Dash output key is ``output``. Pure."""
    first = (output or "").lstrip(".")
    if first.startswith(OPEN_CALLBACKS):
        return Level.ANONYMOUS
    if first.startswith(WALL_CALLBACKS):
        return Level.WALL
    return Level.VIEWER  # details, replay, the orders console and board, and anything added later


def safe_back(url: str | None, host: str) -> str:
    """Where to go after sign-in: a path on this site taken from ``url`` (the Referer), else "/".

    ``https://evil//evil/x`` has the path ``//evil/x``, which a browser reads as another site:
    only a same-host URL whose path is a plain absolute path comes back. Pure."""
    if not url:
        return "/"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "/"
    if parts.scheme not in ("", "http", "https") or (parts.netloc and parts.netloc != host):
        return "/"
    path = parts.path or "/"
    # Browsers drop tabs and newlines and read "\" as "/": "/\t/evil" and "/\evil" are other sites too.
    if not path.startswith("/") or path[1:2] in ("/", "\\") or any(c == "\\" or ord(c) < 0x21 for c in path):
        return "/"
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("signin", "token")]
    return path + (f"?{urlencode(query)}" if query else "")


def _with_query(path: str, **params: str) -> str:
    return path + ("&" if "?" in path else "?") + urlencode(params)


@lru_cache(maxsize=8)
def _networks(spec: str) -> tuple:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip())


def _deps():
    return flask.current_app.extensions.get(EXT)


def client_address() -> str | None:
    """The client's address (ProxyFix has applied X-Forwarded-For when GRIDWATCH_WEB_PROXY_HOPS > 0)."""
    return flask.request.remote_addr


def current_access() -> Access:
    """Who is asking, looked up once per request; ANONYMOUS outside a request."""
    if not flask.has_request_context():
        return ANONYMOUS
    acc = flask.g.get("gw_access")
    if acc is None:
        acc = _resolve()
        flask.g.gw_access = acc
    return acc


def _resolve() -> Access:
    deps = _deps()
    if deps is None:
        return ANONYMOUS
    sid = flask.session.get("sid")
    if sid:
        with deps.pool.connection() as conn:
            acc = store.find_session(conn, str(sid), deps.settings.web_session_idle_s)
        if acc is not None:
            return acc
        flask.session.pop("sid", None)  # ended, removed or forged: forget it
    nets = _networks(deps.settings.web_wall_addresses)
    addr = client_address()
    if nets and addr:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return ANONYMOUS
        if any(ip in n for n in nets):
            return Access(Level.WALL, f"addr:{addr}")
    return ANONYMOUS


def signed_in_officer() -> str | None:
    """The signed-in user when they may change state (duty officer, administrator), else None."""
    return current_access().officer


def csrf_token() -> str:
    """This browser's CSRF token for the sign-in and sign-out forms (kept in the signed cookie)."""
    tok = flask.session.get("csrf")
    if not tok:
        tok = flask.session["csrf"] = secrets.token_urlsafe(24)
    return tok


def _csrf_ok(value: str | None) -> bool:
    expected = flask.session.get("csrf")
    return bool(expected and value) and hmac.compare_digest(str(expected).encode(), str(value).encode())


def _refuse(acc: Access, what: str) -> flask.Response:
    status = 401 if acc.level is Level.ANONYMOUS else 403
    log.info("refused %s to %s", what, acc.name or "an anonymous visitor",
             extra=fields(path=flask.request.path, address=client_address()))
    resp = flask.jsonify({"error": "sign in first" if status == 401 else "not allowed for this sign-in"})
    resp.status_code = status
    return resp


def _start_session(conn, address: str | None, user: str | None = None, wall: str | None = None) -> None:
    old = flask.session.get("sid")
    if old:
        store.end_session(conn, store.digest(str(old)))
    sid = store.open_session(conn, address, user=user, wall=wall)
    # Sessions idle past the limit are deleted when seen; this clears those never seen again.
    store.purge_idle(conn, _deps().settings.web_session_idle_s)
    flask.session.clear()  # a fresh cookie: no session fixation
    flask.session["sid"] = sid
    flask.session["csrf"] = secrets.token_urlsafe(24)


def install(server: flask.Flask, deps) -> None:
    """Sessions, the request gate and the sign-in routes on ``server``."""
    settings = deps.settings
    server.extensions[EXT] = deps
    server.secret_key = settings.web_secret
    server.config.update(SESSION_COOKIE_NAME=COOKIE, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                         SESSION_COOKIE_SECURE=settings.web_secure_cookies)
    if settings.web_proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=settings.web_proxy_hops, x_proto=settings.web_proxy_hops)

    @server.after_request
    def security_headers(resp: flask.Response) -> flask.Response:
        # No framing (the console's buttons could be clicked through a hostile page), no type
        # sniffing, and no page URL handed to other sites.
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp

    def limiter() -> SigninLimiter:
        return SigninLimiter(deps.redis, settings)

    @server.before_request
    def gate():
        req = flask.request
        if req.path == "/_dash-update-component" and req.method == "POST":
            body = req.get_json(silent=True) or {}
            need = callback_level(str(body.get("output") or ""))
            acc = current_access()
            if acc.level < need:
                return _refuse(acc, f"callback {str(body.get('output'))[:60]}")
        elif req.path in WALL_ROUTES or (req.path.startswith("/api/") and not req.path.startswith("/api/v1/")):
            acc = current_access()
            if acc.level < Level.WALL:
                return _refuse(acc, req.path)
        elif req.path == "/wall" and req.method == "GET" and "token" in req.args:
            return open_wall(req.args.get("token") or "")
        return None

    def open_wall(token: str):
        addr = client_address()
        lim = limiter()
        if lim.blocked(None, addr):
            return flask.Response("too many wrong wall tokens from this address: try again later\n", 429, mimetype="text/plain")
        with deps.pool.connection() as conn:
            name = store.check_wall_token(conn, token)
            if name is None:
                lim.failed(None, addr)
                audit.record(conn, "-", WebAction.WALL_TOKEN_FAILED, address=addr)
                log.warning("wall token refused", extra=fields(address=addr))
                return flask.Response("unknown or revoked wall token\n", 403, mimetype="text/plain")
            _start_session(conn, addr, wall=name)
            audit.record(conn, f"wall:{name}", WebAction.WALL_OPENED, subject=f"wall:{name}", address=addr)
        log.info("wall %s opened", name, extra=fields(address=addr))
        # Off the URL at once: the token must not stay in the address bar, history or a Referer.
        return flask.redirect("/wall")

    @server.post("/auth/login")
    def login():
        form = flask.request.form
        addr = client_address()
        back = safe_back(flask.request.referrer, flask.request.host)
        if not _csrf_ok(form.get("csrf")):
            log.warning("sign-in refused: missing or wrong CSRF token", extra=fields(address=addr))
            return flask.Response("the sign-in form has expired: reload the page\n", 400, mimetype="text/plain")
        user = (form.get("user") or "").strip()[:64]
        password = form.get("password") or ""
        lim = limiter()
        with deps.pool.connection() as conn:
            if lim.blocked(user, addr):
                audit.record(conn, "-", WebAction.SIGNIN_LIMITED, subject=user, address=addr)
                log.warning("sign-in refused by the rate limit", extra=fields(user=user, address=addr))
                return flask.redirect(_with_query(back, signin="limited"))
            role = store.check_credentials(conn, user, password)
            if role is None:
                lim.failed(user, addr)
                audit.record(conn, "-", WebAction.SIGNIN_FAILED, subject=user, address=addr)
                log.warning("sign-in failed", extra=fields(user=user, address=addr))
                if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM web_user)").fetchone()[0]:
                    log.warning("there are no users yet: make one with "
                                "`python -m dashboard.users create NAME --role administrator`")
                return flask.redirect(_with_query(back, signin="failed"))
            _start_session(conn, addr, user=user)
            audit.record(conn, user, WebAction.SIGNIN, subject=user, address=addr, detail={"role": role.value})
        lim.succeeded(user, addr)
        log.info("%s signed in as %s", user, role.value, extra=fields(address=addr))
        return flask.redirect(back)

    @server.post("/auth/logout")
    def logout():
        if not _csrf_ok(flask.request.form.get("csrf")):
            return flask.Response("the sign-out form has expired: reload the page\n", 400, mimetype="text/plain")
        acc = current_access()
        if acc.session is not None:
            with deps.pool.connection() as conn:
                store.end_session(conn, acc.session)
                audit.record(conn, acc.name or "-", WebAction.SIGNOUT, subject=acc.name, address=client_address())
            log.info("%s signed out", acc.name)
        flask.session.clear()
        return flask.redirect("/")
