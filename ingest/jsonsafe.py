"""Unknown fields as JSON that every reader of ``extra`` can take back.

A terminal may send fields this version does not know; they are kept in ``extra`` but never
trusted. Some JSON the readers accept cannot be written back as is: orjson refuses integers
outside 64 bits and nesting deeper than 254 levels, and the readers downstream (alerts, the
wall, the operator's tools) parse with orjson too. Rather than lose the fix or the SOS that
carried such a field, the offending value is replaced by a short text saying what it was.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_EXTRA_DEPTH = 32  # far deeper than any real extension needs; far below orjson's 254
_INT64 = (-(2**63), 2**63 - 1)


def sanitize(value: Any, depth: int = 0) -> Any:
    """``value`` with every int outside 64 bits as its decimal text and anything nested deeper
    than MAX_EXTRA_DEPTH replaced by a marker (JSON types only, as a JSON reader makes them)."""
    if isinstance(value, bool) or value is None or isinstance(value, (float, str)):
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else str(value)
    if depth >= MAX_EXTRA_DEPTH:
        return f"(dropped: nested deeper than {MAX_EXTRA_DEPTH} levels)"
    if isinstance(value, dict):
        return {str(k): sanitize(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v, depth + 1) for v in value]
    return str(value)  # not produced by a JSON reader; kept as text, never trusted


def extra_json(extra: dict[str, Any]) -> str | None:
    """The unknown fields as JSON text (None when there are none); never raises for JSON input."""
    if not extra:
        return None
    return orjson.dumps(sanitize(extra)).decode()
