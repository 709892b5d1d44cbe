"""Regenerate the parts of docs/ that are read from the code, so they cannot drift from it.

    python docs/build.py           # rewrite every generated block in docs/**/*.md (lab notes included)
    python docs/build.py --check   # exit 1, naming the stale pages, if a block differs from the code (CI, tests)

A generated block sits between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``; NAME is a key of
``BLOCKS``. Everything outside the blocks is written by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

DOCS = Path(__file__).resolve().parent
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|")


def _option_rows(table) -> str:
    rows = ["| option | default | values | meaning |", "|---|---|---|---|"]
    rows += [f"| `{name}` | {_cell(opt.default)} | {_cell(opt.allowed())} | {_cell(opt.help)} |"
             for name, opt in table.items()]
    return "\n".join(rows) + "\n"


def options_table() -> str:
    """Every product option (``yolo_gfl.options.OPTIONS``): name, default, allowed values, meaning."""
    from yolo_gfl.options import OPTIONS

    return _option_rows(OPTIONS)


def experimental_table() -> str:
    """The experimental options (``yolo_gfl.options.EXPERIMENTAL_OPTIONS``), kept to reproduce records' probe rows."""
    from yolo_gfl.options import EXPERIMENTAL_OPTIONS

    return _option_rows(EXPERIMENTAL_OPTIONS)


def configs_table() -> str:
    """Every shipped variant config (``cfg/models``): the options its ``gfl:`` section sets; the rest are defaults."""
    from ultralytics.utils import YAML

    from yolo_gfl.configs import CFG_DIR

    rows = ["| config (every scale n/s/m/l/x) | `gfl:` section |", "|---|---|"]
    for path in sorted(CFG_DIR.glob("*.yaml")):
        gfl = YAML.load(path).get("gfl") or {}
        name = re.sub(r"^(yolov8|yolo11)-", r"\1{n,s,m,l,x}-", path.name)  # the families with shipped variants
        rows.append(f"| `{name}` | " + ", ".join(f"`{k}={v}`" for k, v in gfl.items()) + " |")
    return "\n".join(rows) + "\n"


BLOCKS: dict[str, Callable[[], str]] = {"options": options_table, "experimental": experimental_table,
                                        "configs": configs_table}


def render(text: str, page: str = "page") -> str:
    """``text`` with every generated block rewritten from the code; ValueError for a block name not in BLOCKS."""

    def fill(m: re.Match) -> str:
        name = m.group("name")
        if name not in BLOCKS:
            raise ValueError(f"{page}: unknown generated block '{name}'; known: {', '.join(BLOCKS)}")
        return m.group(1) + BLOCKS[name]() + m.group(4)

    return BLOCK.sub(fill, text)


def stale_pages() -> list[Path]:
    """The docs pages whose generated blocks differ from what the code gives now."""
    return [p for p in sorted(DOCS.rglob("*.md")) if render(p.read_text(), p.name) != p.read_text()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report stale pages (exit 1 if any)")
    args = ap.parse_args(argv)
    stale = stale_pages()
    if args.check:
        for p in stale:
            print(f"{p}: generated block out of date; run: python docs/build.py", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.write_text(render(p.read_text(), p.name))
        print(f"rewrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
