"""The HTTP API for the city's decision-command platform: the duty desk's order operations.

    POST /api/v1/orders                    OrderDraft        -> 201 OrderCreated
    GET  /api/v1/orders                                      -> OrderList (active + recent)
    GET  /api/v1/orders/{order_id}                           -> OrderView with recipients
    POST /api/v1/orders/{order_id}/cancel  OrderCancellation -> ChangeAccepted
    POST /api/v1/orders/{order_id}/amend   OrderAmendment    -> ChangeAccepted
    GET  /api/v1/orders/{order_id}/audit                     -> AuditTrail
    GET  /api/v1/docs/openapi.json         the OpenAPI document (no UI pages: they load from a CDN)

Every call needs ``Authorization: Bearer <token>`` (``python -m dashboard.tokens create``);
a missing, unknown or revoked token is a 401 before the body is looked at. The audit records
the caller as ``api:<token name>``. Bodies are validated by spectree against the pydantic
models of schemas/orders.py (422 with pydantic's errors); the same models give the OpenAPI
document, committed as docs/api/openapi.json:

    python -m dashboard.api openapi > docs/api/openapi.json
    python -m dashboard.api openapi --check     # exit 1 when the committed file is stale
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from uuid import UUID

import flask
from spectree import Response, SpecTree
from spectree.models import SecurityScheme, SecuritySchemeData

from dashboard import orders_data, tokens
from dashboard.deps import Deps
from schemas.api import ApiError, AuditEntry, AuditTrail, ChangeAccepted, OrderList, ValidationErrors
from schemas.orders import OrderAmendment, OrderCancellation, OrderCreated, OrderDraft, OrderView

log = logging.getLogger("gridwatch.dashboard.api")

PREFIX = "/api/v1"
DOCS_PATH = "api/v1/docs"
OPENAPI_FILE = Path(__file__).resolve().parents[1] / "docs" / "api" / "openapi.json"
TAG = "orders"
DESCRIPTION = (
    "Emergency orders of the Gridwatch command center for the city's decision-command platform. "
    "Authenticate with `Authorization: Bearer <token>` (tokens are made by the bureau with "
    "`python -m dashboard.tokens create --name NAME`). Orders are committed with their resolved "
    "recipients, then signed and published to the terminals by the dispatcher; each recipient's "
    "state moves queued → sent → received → accepted → done (or rejected, expired, no_answer, cancelled)."
)


def _refuse(status: int, message: str, **headers: str) -> None:
    resp = flask.make_response(ApiError(error=message).model_dump(), status)
    resp.headers.update(headers)
    flask.abort(resp)


def _authenticate(deps: Deps):
    """spectree's ``before`` hook: runs before the body's validation error is returned, so no
    token means 401 whatever the body. Puts the actor on ``flask.g``."""

    def before(req, resp, req_validation_error, instance, model_adapter) -> None:
        token = tokens.bearer(req.headers.get("Authorization"))
        if token is None:
            _refuse(401, "send Authorization: Bearer <token>", **{"WWW-Authenticate": 'Bearer realm="gridwatch"'})
        with deps.pool.connection() as conn:
            info = tokens.verify(conn, token)
        if info is None:
            log.warning("API call refused: unknown or revoked token", extra={"fields": {"path": req.path}})
            _refuse(401, "the token is unknown or revoked",
                    **{"WWW-Authenticate": 'Bearer realm="gridwatch", error="invalid_token"'})
        flask.g.api_actor = f"api:{info.name}"
        if req_validation_error is not None:
            log.info("API %s %s: invalid body from %s", req.method, req.path, flask.g.api_actor)

    return before


def make_spec(deps: Deps) -> SpecTree:
    return SpecTree(
        "flask",
        title="Gridwatch orders API",
        description=DESCRIPTION,
        version="1.0.0",
        path=DOCS_PATH,
        filename="openapi.json",
        page_templates={},  # Swagger/Redoc pages fetch their scripts from a CDN: serve the JSON only
        mode="strict",  # only the routes below, not Dash's
        security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(type="http", scheme="bearer"))],
        security={"bearer": []},
        before=_authenticate(deps),
        validation_error_model=ValidationErrors,
        # Plain model names, one component per model (our names are unique across schemas/).
        naming_strategy=lambda model: model.__name__,
        nested_naming_strategy=lambda _parent, child: child,
    )


def register(server: flask.Flask, deps: Deps) -> SpecTree:
    """Add the API routes and the OpenAPI route to ``server``."""
    spec = make_spec(deps)
    settings = deps.settings
    refused = {"HTTP_401": ApiError}

    @server.post(f"{PREFIX}/orders")
    @spec.validate(json=OrderDraft, resp=Response(HTTP_201=OrderCreated, **refused), tags=[TAG])
    def create_order():
        """Create an order: resolve its recipients, commit, hand it to the dispatcher."""
        draft: OrderDraft = flask.request.context.json
        if draft is None:
            _refuse(415, "send the order as application/json")
        desk = _desk()
        try:
            with deps.pool.connection() as conn:
                created = desk.issue(conn, deps.redis, settings, draft, flask.g.api_actor, "api")
        except ValueError as exc:  # unknown grids/people/terminals, nobody reached, expiry in the past
            return _unprocessable(exc)
        deps.cache_drop("orders:board")
        log.info("order created over the API", extra={"fields": {
            "order": str(created.order_id), "by": flask.g.api_actor, "recipients": created.recipients}})
        return created, 201

    @server.get(f"{PREFIX}/orders")
    @spec.validate(resp=Response(HTTP_200=OrderList, **refused), tags=[TAG])
    def list_orders():
        """Active orders with their counts, then those ended within the last day."""
        desk = _desk()
        with deps.pool.connection() as conn:
            active = desk.board(conn, orders_data.BOARD_LIMIT * 5)
            ended = (desk.order(conn, oid, recipients=False) for oid in orders_data.recent_order_ids(conn))
            recent = [v for v in ended if v is not None]
        return OrderList(active=active, recent=recent)

    @server.get(f"{PREFIX}/orders/<uuid:order_id>")
    @spec.validate(resp=Response(HTTP_200=OrderView, HTTP_404=ApiError, **refused), tags=[TAG])
    def get_order(order_id: UUID):
        """One order with every recipient's state."""
        desk = _desk()
        with deps.pool.connection() as conn:
            view = desk.order(conn, order_id, recipients=True)
        if view is None:
            return ApiError(error="no such order"), 404
        return view

    def change(order_id: UUID, apply):
        desk = _desk()
        try:
            with deps.pool.connection() as conn:
                command_id = apply(conn)
        except desk.OrderNotActive as exc:
            return ApiError(error=str(exc)), 409
        except ValueError as exc:  # nothing to change, half a place, an expiry in the past
            return _unprocessable(exc)
        deps.cache_drop("orders:board")
        return ChangeAccepted(order_id=order_id, command_id=command_id)

    @server.post(f"{PREFIX}/orders/<uuid:order_id>/cancel")
    @spec.validate(json=OrderCancellation,
                   resp=Response(HTTP_200=ChangeAccepted, HTTP_404=ApiError, HTTP_409=ApiError, **refused), tags=[TAG])
    def cancel_order(order_id: UUID):
        """Cancel an active order: a stand-down command goes to the same recipients."""
        body: OrderCancellation = flask.request.context.json or OrderCancellation()
        if not _exists(deps, order_id):
            return ApiError(error="no such order"), 404
        return change(order_id, lambda conn: _desk().cancel(conn, settings, order_id, body, flask.g.api_actor))

    @server.post(f"{PREFIX}/orders/<uuid:order_id>/amend")
    @spec.validate(json=OrderAmendment,
                   resp=Response(HTTP_200=ChangeAccepted, HTTP_404=ApiError, HTTP_409=ApiError, **refused), tags=[TAG])
    def amend_order(order_id: UUID):
        """Amend an active order (what is not given stays): the new revision goes to the same recipients."""
        body: OrderAmendment = flask.request.context.json
        if body is None:
            _refuse(415, "send the amendment as application/json")
        if not _exists(deps, order_id):
            return ApiError(error="no such order"), 404
        return change(order_id, lambda conn: _desk().amend(conn, settings, order_id, body, flask.g.api_actor))

    @server.get(f"{PREFIX}/orders/<uuid:order_id>/audit")
    @spec.validate(resp=Response(HTTP_200=AuditTrail, HTTP_404=ApiError, **refused), tags=[TAG])
    def order_audit(order_id: UUID):
        """The order's append-only audit trail: who did what, when (creation, changes, every recipient's state)."""
        if not _exists(deps, order_id):
            return ApiError(error="no such order"), 404
        with deps.pool.connection() as conn:
            rows = _desk().audit(conn, order_id)
        return AuditTrail(order_id=order_id, entries=[AuditEntry.model_validate(r) for r in rows])

    @server.route(f"{PREFIX}/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def api_not_found(rest: str):
        # Without this, Dash's page routing would answer any unknown /api/v1/... path with the app's HTML.
        return ApiError(error=f"no such API path: {PREFIX}/{rest}").model_dump(), 404

    spec.register(server)
    return spec


def _unprocessable(exc: ValueError):
    """A refusal by the desk, in the same shape as a validation error (422, pydantic's error list)."""
    from orders.targeting import UnknownTarget

    where = "target" if isinstance(exc, (UnknownTarget, _desk().NoRecipients)) else "body"
    return [{"loc": [where], "msg": str(exc), "type": "value_error"}], 422


def _desk():
    """orders.desk, imported on first use (the OpenAPI document is built without it)."""
    from orders import desk

    return desk


def _exists(deps: Deps, order_id: UUID) -> bool:
    with deps.pool.connection() as conn:
        return conn.execute("SELECT 1 FROM emergency_order WHERE order_id = %s", (order_id,)).fetchone() is not None


# ---------------------------------------------------------------- the document
def openapi_document(settings=None) -> dict:
    """The OpenAPI document, built on a bare Flask app (no service is contacted)."""
    from schemas.settings import Settings

    server = flask.Flask("gridwatch.api")
    spec = register(server, Deps(settings or Settings()))
    with server.app_context():
        return spec.spec


def openapi_text(doc: dict | None = None) -> str:
    return json.dumps(doc if doc is not None else openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.api",
                                     description="The orders HTTP API's OpenAPI document")
    sub = parser.add_subparsers(dest="command", required=True)
    o = sub.add_parser("openapi", help="print the OpenAPI document (commit it as docs/api/openapi.json)")
    o.add_argument("--check", action="store_true", help=f"exit 1 if {OPENAPI_FILE} differs from what the models give")
    args = parser.parse_args(argv)
    text = openapi_text()
    if args.check:
        if not OPENAPI_FILE.exists() or OPENAPI_FILE.read_text() != text:
            print(f"{OPENAPI_FILE} is stale: run `python -m dashboard.api openapi > docs/api/openapi.json`",
                  file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
