"""``yolo-gfl zoo key=value ...``: the command line's zoo mode, with its exit codes."""

from __future__ import annotations

import sys
from typing import Any

from .request import ZooCellError, ZooError
from .runner import run_zoo


def main_zoo(args: dict[str, Any]) -> int:
    """``yolo-gfl zoo key=value ...`` (parsed by the CLI): run the zoo, print the table; exit code 0, 1 or 2."""
    args = dict(args)
    args.pop("mode", None)
    if "model" in args:
        print("yolo-gfl: error: the zoo takes 'models=' (a comma-separated list), not 'model='.", file=sys.stderr)
        return 2
    if "models" in args and isinstance(args["models"], (int, float)):
        args["models"] = str(args["models"])
    try:
        run_zoo(**args)
    except ZooError as e:
        print(f"yolo-gfl: error: {e}", file=sys.stderr)
        return 2
    except ZooCellError as e:
        print(f"yolo-gfl: zoo: {e}", file=sys.stderr)
        return 1
    return 0

