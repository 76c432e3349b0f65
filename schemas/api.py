"""The HTTP API's own envelope types (dashboard/api.py); the orders themselves are schemas/orders.py.

The OpenAPI document (docs/api/openapi.json) is generated from these and from schemas/orders.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, RootModel

from schemas.orders import OrderView


class ApiError(BaseModel):
    """Any refusal other than a validation error (401, 404, 409)."""

    error: str = Field(description="What is wrong, for a person to read")


class ValidationProblem(BaseModel):
    """One problem with a request body, as pydantic reports it."""

    loc: list[str | int] = Field(description="Where in the body, e.g. ['target', 'grids', 'codes']")
    msg: str
    type: str = Field(description="pydantic's error type, or value_error for the desk's refusals")
    input: Any = None
    url: str | None = None


class ValidationErrors(RootModel[list[ValidationProblem]]):
    """422: the body does not match the model (pydantic's errors), or the desk refused it
    (unknown grids, people or terminals; nobody reached; an expiry in the past; nothing to change)."""


class OrderList(BaseModel):
    """Active orders (newest first), then recently ended ones."""

    active: list[OrderView]
    recent: list[OrderView] = Field(description="Cancelled, expired or closed within the last day, newest first")


class ChangeAccepted(BaseModel):
    """An amendment or cancellation was committed; ``command_id`` is the new command the recipients get."""

    order_id: UUID
    command_id: UUID


class AuditEntry(BaseModel):
    """One line of an order's append-only audit trail."""

    at: datetime
    actor: str = Field(description="Duty officer, 'api:<token name>', a terminal id, or 'system'")
    action: str = Field(description="schemas.orders.AuditAction: create, amend, cancel, expire, close, sent, resend,"
                                    " no_answer, alert, arrived, state:<state>")
    command_id: UUID | None = None
    terminal_id: str | None = None
    detail: dict[str, Any] = {}


class AuditTrail(BaseModel):
    order_id: UUID
    entries: list[AuditEntry]
