"""The documentation stays true to the code: generated tables are current, every option and CLI mode is documented,
every relative link resolves, every command a reader may paste passes yolo_gfl's own argument checks (the README's
first training also runs, at tiny settings), and imports point down the package's layers."""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT, YOLOV8N_PT, load_module
from yolo_gfl import cli
from yolo_gfl.options import EXPERIMENTAL_OPTIONS, OPTIONS

README = ROOT / "README.md"
DOCS = ROOT / "docs"
LAB = DOCS / "lab"
PAGES = [README, *sorted(DOCS.rglob("*.md")), ROOT / "benchmarks" / "README.md"]
README_MAX_LINES = 150  # the front door (issue 36, item 4): the rest lives in docs/
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _build_module():
    return load_module("docs_build", DOCS / "build.py")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def _blocks(page: Path, *langs: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(page.read_text()) if m.group(1) in langs]


def _commands(page: Path) -> list[str]:
    """The shell commands of a page's bash blocks: continuation lines joined, comments dropped."""
    out = []
    for block in _blocks(page, "bash", "sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def test_generated_blocks_match_the_code():
    build = _build_module()
    assert build.stale_pages() == [], "run: python docs/build.py"
    assert "<!-- generated: options -->" in (DOCS / "variants.md").read_text()


def test_every_option_and_cli_mode_is_documented():
    variants = (DOCS / "variants.md").read_text()
    missing = [name for name in {**OPTIONS, **EXPERIMENTAL_OPTIONS} if f"`{name}`" not in variants]
    assert not missing, f"options not in docs/variants.md: {missing}"
    from yolo_gfl.configs import model_cfg_names

    configs = [re.sub(r"^(yolov8|yolo11)-", r"\1n-", name) for name in model_cfg_names()]
    assert [c for c in configs if f"`{c}`" not in README.read_text()] == [], "a shipped config is missing in README"
    text = "\n".join(p.read_text() for p in PAGES)
    undocumented = [mode for mode in cli.MODES if f"yolo-gfl {mode} " not in text]
    assert not undocumented, f"CLI modes with no example in README.md or docs/: {undocumented}"


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(FENCE.sub("", page.read_text())):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no heading '#{anchor}' in {dest.name})")
    assert not broken, "broken links: " + "; ".join(broken)


def test_every_page_is_reachable_from_the_index():
    """docs/index.md links every reference page and every lab page (directly or through docs/lab/index.md)."""
    def linked(page: Path) -> set[Path]:
        return {(page.parent / target.partition("#")[0]).resolve()
                for target in LINK.findall(FENCE.sub("", page.read_text()))
                if not re.match(r"[a-z]+:", target) and target.partition("#")[0]}

    reached = linked(DOCS / "index.md") | linked(LAB / "index.md")
    missing = [p.relative_to(ROOT).as_posix() for p in sorted(DOCS.rglob("*.md"))
               if p != DOCS / "index.md" and p.resolve() not in reached]
    assert not missing, f"pages no index links to: {missing}"


def test_readme_is_a_front_door():
    """The README stays short; the research notes live in docs/lab/, each page opening with its current answer."""
    assert len(README.read_text().splitlines()) <= README_MAX_LINES
    pages = [p for p in sorted(LAB.glob("*.md")) if p.name != "index.md"]
    assert pages, "docs/lab/ holds the research notes"
    for page in pages:
        first = page.read_text().split("\n\n", 2)
        assert first[0].startswith("# ") and first[1].startswith("**The answer"), \
            f"{page.name}: a lab page opens with its question and then its current answer"


def test_python_blocks_compile():
    for page in PAGES:
        for i, block in enumerate(_blocks(page, "python")):
            compile(block, f"{page.name} python block {i + 1}", "exec")


@cache
def _help(script: str) -> str:
    return subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=120).stdout


def _stand_in_files(args: dict, cwd: Path) -> None:
    """Create the checkpoints and folders a command names, so the checks see them exist: copies of the stock
    checkpoint where it is there (the zoo's eval_only reads them), else empty files (the CLI checks only existence)."""
    names = [v for k, v in args.items() if k in ("model", "pretrained", "source")]
    names += str(args.get("models", "")).split(",")
    for name in filter(None, map(str, names)):
        path = cwd / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        elif name.endswith(".pt") and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(YOLOV8N_PT, path) if YOLOV8N_PT.exists() else path.touch()


def _check_yolo_gfl(argv: list[str], cwd: Path, tiny_data: str) -> None:
    if argv[0] in ("help", "version", "cfg"):
        assert cli.main(argv) == 0
        return
    if argv[0] in cli.SPECIAL:  # checks, settings, copy-cfg: they report on or write the user's set-up; not run here
        return
    mode, args = cli.parse(argv)
    _stand_in_files(args, cwd)
    if mode != "zoo":
        cli.check(mode, args)
        return
    from yolo_gfl.zoo.request import check_request

    args = dict(args)
    if args.get("eval_only") and not YOLOV8N_PT.exists():
        return  # eval_only reads its checkpoints; without a real one to stand in, the parse above is all we check
    data = str(args.pop("data"))
    if data.startswith("synthetic"):  # a valid name, but checking the request would generate the whole set
        from yolo_gfl.data.synthetic import _NAME_PATTERN

        assert _NAME_PATTERN.match(data), f"{data} is not a synthetic data name"
        data = tiny_data
    top = {k: args.pop(k) for k in ("models", "epochs", "seeds", "imgsz", "name", "eval_only", "latency_runs",
                                   "throughput_batch", "jobs") if k in args}
    args.pop("project", None)
    check_request(top.get("models"), data, top.get("epochs", 10), top.get("seeds", (0,)), top.get("imgsz", 640),
                  top.get("name", "zoo"), top.get("eval_only", False), top.get("latency_runs", 50),
                  top.get("throughput_batch", 1), top.get("jobs", 1), args)


def _check_benchmark(argv: list[str]) -> None:
    script = argv[0]
    assert (ROOT / script).is_file(), f"{script} does not exist"
    flags = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("--")]
    unknown = [f for f in flags if not re.search(rf"(^|[\s,]){re.escape(f)}\b", _help(script), re.M)]
    assert not unknown, f"{script} has no flag(s) {unknown} (see its --help)"


NOT_RUN = ("pip install", "python -m pytest")  # installing, and the suite this test belongs to


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_commands_pass_the_argument_checks(page, tmp_path, monkeypatch, tiny_synthetic):
    """Each command on the page, as a user would paste it, passes the check its own tool runs before starting."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "check_paths", lambda *args: None)  # the reader's own files (tests/test_first_hour.py)
    for line in _commands(page):
        argv = shlex.split(line)
        if line.startswith(NOT_RUN):
            continue
        if argv[0] == "yolo-gfl":
            _check_yolo_gfl(argv[1:], tmp_path, tiny_synthetic)
        elif argv[:2] == ["python", "docs/build.py"]:
            assert _build_module().main(["--check"]) == 0
        elif argv[0] == "python" and argv[1].startswith("benchmarks/"):
            _check_benchmark(argv[1:])
        else:
            pytest.fail(f"{page.name}: no check for the command '{line}'; add one to tests/test_docs.py")


@pytest.fixture(scope="module")
def tiny_synthetic(tmp_path_factory) -> str:
    from yolo_gfl.data import synthetic_dataset

    return str(synthetic_dataset(n_train=8, n_val=4, imgsz=64, seed=0, root=tmp_path_factory.mktemp("ds"),
                                 progress=False))


@pytest.mark.slow
def test_readme_first_training_runs(tmp_path, tiny_synthetic):
    """The README's first training command, run through the CLI with tiny data, one epoch and 64 px."""
    line = next(c for c in _commands(README) if c.startswith("yolo-gfl train") and "synthetic" in c)
    argv = [a for a in shlex.split(line)[1:] if not a.startswith(("data=", "epochs=", "imgsz="))]
    argv += [f"data={tiny_synthetic}", "epochs=1", "imgsz=64", "workers=0", "plots=False", "device=cpu",
             f"project={tmp_path}", "name=first"]
    assert cli.main(argv) == 0
    assert (tmp_path / "first" / "weights" / "best.pt").is_file()


# Layers, bottom first: a module may import its own layer and those below it, never one above.
LAYERS = [
    {"losses", "options", "configs", "assigners", "nms", "eval", "data", "atomic"},
    {"variant"},
    {"criterion"},
    {"nn"},
    {"engine"},
    {"model", "export", "__init__"},
    {"checkpoints", "zoo", "analyze", "cli", "cli_checks", "__main__"},
]
# Known imports pointing up, each to be moved; the test fails when an entry is no longer needed, so the list cannot
# outlive the move. Empty: every import points down.
PENDING: set[tuple[str, str]] = set()


def _layer(module: str) -> int:
    top = module.split(".")[0]
    found = [i for i, names in enumerate(LAYERS) if top in names]
    assert found, f"yolo_gfl.{top} is in no layer: add it to LAYERS in tests/test_docs.py"
    return found[0]


def _imports(path: Path) -> set[str]:
    """yolo_gfl modules imported by ``path`` (relative to the package), top-level and inside functions."""
    pkg = path.relative_to(ROOT / "yolo_gfl").parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(pkg[: len(pkg) - node.level + 1])
            found.add(".".join(base + ([node.module] if node.module else [])) or "__init__")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("yolo_gfl"):
            found.add(node.module.removeprefix("yolo_gfl").lstrip(".") or "__init__")
    return found


def test_imports_point_down():
    up, seen = [], set()
    for path in sorted((ROOT / "yolo_gfl").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT / "yolo_gfl").with_suffix("").parts).removesuffix(".__init__")
        for target in _imports(path):
            if _layer(target) > _layer(module):
                if (module, target.split(".")[0]) in PENDING:
                    seen.add((module, target.split(".")[0]))
                else:
                    up.append(f"{module} -> {target}")
    assert not up, f"imports pointing up the layers: {up}"
    assert seen == PENDING, f"no longer pointing up, remove from PENDING: {sorted(PENDING - seen)}"
