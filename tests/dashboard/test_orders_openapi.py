"""The OpenAPI document: generated from the pydantic models, served by the app, committed, fresh."""

from __future__ import annotations

import json
import subprocess
import sys

from dashboard import api
from dashboard.app import create_app
from schemas.orders import OrderDraft


def test_committed_openapi_is_what_the_models_give():
    assert api.OPENAPI_FILE.exists(), "docs/api/openapi.json missing: run `python -m dashboard.api openapi > docs/api/openapi.json`"
    assert api.OPENAPI_FILE.read_text() == api.openapi_text(), (
        "docs/api/openapi.json is stale: run `python -m dashboard.api openapi > docs/api/openapi.json` and commit it")
    check = subprocess.run([sys.executable, "-m", "dashboard.api", "openapi", "--check"], cwd=api.OPENAPI_FILE.parents[2],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr


def test_document_covers_every_operation_from_the_models():
    doc = json.loads(api.OPENAPI_FILE.read_text())
    ops = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert ops == {("/api/v1/orders", "post"), ("/api/v1/orders", "get"), ("/api/v1/orders/{order_id}", "get"),
                   ("/api/v1/orders/{order_id}/cancel", "post"), ("/api/v1/orders/{order_id}/amend", "post"),
                   ("/api/v1/orders/{order_id}/audit", "get")}
    create = doc["paths"]["/api/v1/orders"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/OrderDraft")
    assert {"201", "401", "422"} <= set(create["responses"])
    assert doc["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    # The draft's schema is pydantic's own (same fields, same limits).
    ours = doc["components"]["schemas"]["OrderDraft"]
    assert set(ours["properties"]) == set(OrderDraft.model_json_schema()["properties"])
    assert ours["properties"]["title"]["maxLength"] == 200
    assert set(doc["components"]["schemas"]["OrderDraft"]["properties"]["target"]["discriminator"]["mapping"]) == {
        "all", "grids", "people", "nearest", "radius"}


def test_served_document_is_the_committed_one_and_no_cdn_pages(settings):
    client = create_app(settings).server.test_client()
    resp = client.get("/api/v1/docs/openapi.json")
    assert resp.status_code == 200
    assert resp.get_json() == json.loads(api.OPENAPI_FILE.read_text())
    # Swagger UI / Redoc pages fetch scripts from a CDN: not served.
    for ui in ("swagger", "redoc", "scalar", "rapidoc"):
        page = client.get(f"/api/v1/docs/{ui}/")
        assert page.status_code == 404
        assert b"cdn" not in page.data.lower() and b"unpkg" not in page.data.lower()
