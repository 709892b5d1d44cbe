"""The zoo's files on disk: JSON written atomically, finished cell records read back, values made JSON-safe."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..atomic import write_atomic


def jsonable(value: Any) -> Any:
    """``value`` with every container made a list or dict and every other non-JSON value its string."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def read_cell(path: Path) -> dict | None:
    """A finished cell's record, or None where it is absent, unreadable or incomplete (the cell must run)."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and result.get("complete") is True else None


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temporary file, then rename), so a killed process never leaves half a file."""
    write_atomic(path, json.dumps(obj, indent=2, allow_nan=False, default=str))


def finite(x: Any) -> float | None:
    """``x`` as a float, or None where it is not a finite number (the tables print n/a)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None

