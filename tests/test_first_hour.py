"""The first hour of a new user (issue 35): every path a command reads is checked before anything starts, a bad one
gets one line and exit code 2 and leaves nothing on disk, names Ultralytics resolves itself keep working, and the suite
does not depend on the folder it is started from."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from yolo_gfl import cli_checks
from yolo_gfl.cli import main
from yolo_gfl.cli_checks import PathCheckError, check_data, check_model, check_paths, check_source, check_weights

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
YOLOV8N_PT = ROOT.parent / "shared" / "weights" / "yolov8n.pt"  # beside the checkout, as in conftest


def yolo_gfl_script() -> str:
    exe = shutil.which("yolo-gfl") or os.path.join(os.path.dirname(sys.executable), "yolo-gfl")
    assert os.path.exists(exe), "the README install (pip install -e .) provides the yolo-gfl console script"
    return exe


def fake_checkpoint() -> str:
    """A file that passes the cheap checkpoint check (a zip archive, as torch.save writes): a copy of the stock
    checkpoint where it is there, else a tiny torch file."""
    if YOLOV8N_PT.exists():
        shutil.copyfile(YOLOV8N_PT, "ckpt.pt")
    else:
        import torch

        torch.save({"epoch": -1}, "ckpt.pt")
    return "ckpt.pt"


def write(path: str, text: str) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
    return path


def image_folder(folder: str) -> str:
    import cv2
    import numpy as np

    Path(folder).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(f"{folder}/a.jpg", np.zeros((32, 32, 3), np.uint8))
    return folder


# (set-up, arguments, words the one line must hold). The set-up runs in the test's empty working folder.
def _none():
    pass


BAD = {
    "model name typo": (_none, ["train", "model=yolov8n-gfll.yaml", "data=synthetic-n8-v4-i64"],
                        ["model=yolov8n-gfll.yaml", "did you mean yolov8n-gfl.yaml"]),
    "model YAML path missing": (_none, ["train", "model=cfg/mine.yaml", "data=synthetic"],
                                ["model=cfg/mine.yaml", "does not exist"]),
    "model YAML is a folder": (lambda: os.mkdir("m.yaml"), ["train", "model=m.yaml", "data=synthetic"],
                               ["model=m.yaml", "is a folder", "model config"]),
    "model YAML is a data YAML": (lambda: write("d.yaml", "train: a\nval: b\nnames: {0: x}\n"),
                                  ["train", "model=d.yaml", "data=synthetic"], ["model=d.yaml", "not a model config",
                                                                                 "data="]),
    "model checkpoint missing": (_none, ["predict", "model=missing.pt"], ["model=missing.pt", "does not exist"]),
    "model checkpoint not a checkpoint": (lambda: write("fake.pt", "hello"), ["val", "model=fake.pt"],
                                          ["model=fake.pt", "not a PyTorch checkpoint"]),
    "official checkpoint offline": (_none, ["val", "model=yolov8n.pt", "data=synthetic"],
                                    ["model=yolov8n.pt", "offline", "github.com/ultralytics/assets", "path/to/"]),
    "exported model missing": (_none, ["predict", "model=best.onnx"], ["model=best.onnx", "does not exist"]),
    "model a folder, not an export": (lambda: os.mkdir("adir"), ["val", "model=adir", "data=synthetic"],
                                      ["model=adir", "exported model"]),
    "data missing": (_none, ["train", "data=nonexistent.yaml"], ["data=nonexistent.yaml", "does not exist",
                                                                 "synthetic"]),
    "data name typo": (_none, ["train", "data=coco12.yaml"], ["data=coco12.yaml", "coco128.yaml"]),
    "data is a folder without YAML": (lambda: os.mkdir("adir"), ["train", "data=adir"],
                                      ["data=adir", "folder", "no YAML"]),
    "data empty": (lambda: write("empty.yaml", ""), ["train", "data=empty.yaml"], ["data=empty.yaml", "is empty"]),
    "data invalid YAML": (lambda: write("bad.yaml", "train: [a, b\nval: c\n"), ["train", "data=bad.yaml"],
                          ["data=bad.yaml", "not valid YAML", "line"]),
    "data without val": (lambda: write("half.yaml", "train: a\nnames: {0: x}\n"), ["train", "data=half.yaml"],
                         ["data=half.yaml", "val:"]),
    "data image folder missing": (lambda: write("noimg.yaml", "path: nowhere\ntrain: images/train\nval: images/val\n"
                                                              "names: {0: x}\n"), ["train", "data=noimg.yaml"],
                                  ["data=noimg.yaml", "do not exist", "images/train"]),
    "data image folder empty": (lambda: (os.makedirs("ds/images/train"), os.makedirs("ds/images/val"),
                                         write("ds/data.yaml", "train: images/train\nval: images/val\n"
                                                               "names: {0: x}\n")),
                                ["train", "data=ds/data.yaml"], ["data=ds/data.yaml", "no images"]),
    "data not YAML": (lambda: write("data.txt", "train: a\n"), ["train", "data=data.txt"], ["data=data.txt",
                                                                                           ".yaml"]),
    "shipped data set offline": (_none, ["train", "data=coco128.yaml"],
                                 ["data=coco128.yaml", "offline", "coco128.zip", "data=path/to/"]),
    "default data set offline": (_none, ["train", "model=yolov8n-gfl.yaml"], ["coco8", "offline"]),
    "synthetic option out of range": (_none, ["train", "data=synthetic-i100"], ["data=synthetic-i100", "imgsz",
                                                                                "multiple of 32"]),
    "synthetic name malformed": (_none, ["train", "data=synthetic-x5"], ["data=synthetic-x5", "synthetic[-s<seed>]"]),
    "val data missing": (fake_checkpoint, ["val", "model=ckpt.pt", "data=missing.yaml"], ["data=missing.yaml"]),
    "val split absent": (lambda: (fake_checkpoint(), image_folder("ds/images"),
                                  write("ds/data.yaml", "train: images\nval: images\nnames: {0: x}\n")),
                         ["val", "model=ckpt.pt", "data=ds/data.yaml", "split=test"], ["test:", "split=val"]),
    "pretrained missing": (_none, ["train", "pretrained=/nonexistent.pt", "data=synthetic"],
                           ["pretrained=/nonexistent.pt", "does not exist"]),
    "pretrained official offline": (_none, ["train", "pretrained=yolov8s.pt", "data=synthetic"],
                                    ["pretrained=yolov8s.pt", "offline", "yolov8s.pt"]),
    "pretrained not a checkpoint": (lambda: write("w.pt", "text"), ["train", "pretrained=w.pt", "data=synthetic"],
                                    ["pretrained=w.pt", "not a PyTorch checkpoint"]),
    "resume target missing": (_none, ["train", "resume=missing/last.pt"], ["resume=missing/last.pt",
                                                                           "does not exist"]),
    "resume checkpoint missing": (_none, ["train", "resume", "model=missing/last.pt"], ["model=missing/last.pt",
                                                                                       "does not exist"]),
    "project is a file": (lambda: write("afile", "x"), ["train", "project={cwd}/afile", "data=synthetic"],
                          ["afile", "is a file"]),
    "run name under a file": (lambda: write("afile", "x"), ["val", "model=yolov8n-gfl.yaml", "data=synthetic",
                                                          "project={cwd}", "name=afile/val"], ["name=afile/val",
                                                                                              "is a file"]),
    "cfg is a folder": (lambda: os.mkdir("c.yaml"), ["train", "cfg=c.yaml"], ["cfg=c.yaml", "folder"]),
    "cfg empty": (lambda: write("c.yaml", ""), ["train", "cfg=c.yaml"], ["cfg=c.yaml", "empty"]),
    "predict source missing": (fake_checkpoint, ["predict", "model=ckpt.pt", "source=missing/"],
                               ["source=missing/", "does not exist"]),
    "predict source folder without images": (lambda: (fake_checkpoint(), os.mkdir("empty")),
                                             ["predict", "model=ckpt.pt", "source=empty"], ["source=empty", "folder"]),
    "predict source not an image": (lambda: (fake_checkpoint(), write("notes.xyz", "x")),
                                    ["predict", "model=ckpt.pt", "source=notes.xyz"], ["source=notes.xyz", "image"]),
    "predict glob matches nothing": (fake_checkpoint, ["predict", "model=ckpt.pt", "source=none/*.jpg"],
                                     ["source=none/*.jpg", "matches no"]),
    "export model missing": (_none, ["export", "model=missing.pt"], ["model=missing.pt", "does not exist"]),
    "export int8 data missing": (fake_checkpoint, ["export", "model=ckpt.pt", "format=openvino", "quantize=int8",
                                                   "data=missing.yaml"], ["data=missing.yaml"]),
    "analyze data missing": (fake_checkpoint, ["analyze", "model=ckpt.pt", "data=missing.yaml"],
                             ["data=missing.yaml"]),
    "analyze model missing": (_none, ["analyze", "model=missing.pt", "data=synthetic"], ["model=missing.pt"]),
    "zoo model typo": (_none, ["zoo", "models=yolov8n-gfll.yaml", "data=synthetic-n8-v4-i64", "epochs=1"],
                       ["yolov8n-gfll.yaml", "did you mean yolov8n-gfl.yaml"]),
    "zoo data empty": (lambda: write("empty.yaml", ""), ["zoo", "models=yolov8n.yaml", "data=empty.yaml"],
                       ["data=empty.yaml", "is empty"]),
    "zoo data folder": (lambda: os.mkdir("adir"), ["zoo", "models=yolov8n.yaml", "data=adir"], ["data=adir",
                                                                                               "folder"]),
}


def entries(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_path_gets_one_line_code_2_and_leaves_nothing(case, tmp_path, capsys):
    setup, argv, words = BAD[case]
    setup()
    before = entries(tmp_path)
    assert main([a.replace("{cwd}", str(tmp_path)) for a in argv]) == 2
    out, err = capsys.readouterr()
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3 and "Traceback" not in err, out + err
    assert all(w.lower() in err.lower() for w in words), err
    assert entries(tmp_path) == before  # no run folder, no data set, nothing (runs without project= land here too)


# A few of the above through the installed console script: a new process, its own exit code and output.
SCRIPT_CASES = ["model name typo", "data missing", "pretrained missing", "data empty", "predict source missing",
                "shipped data set offline"]


def test_bad_paths_through_the_real_console_script(tmp_path, isolated_env):
    work = tmp_path / "work"
    work.mkdir()
    os.chdir(work)
    for case in SCRIPT_CASES:
        setup, argv, words = BAD[case]
        setup()
        before = entries(tmp_path)
        r = subprocess.run([yolo_gfl_script(), *argv], cwd=work, env=isolated_env, capture_output=True, text=True,
                           timeout=300)
        lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
        assert r.returncode == 2, (case, r.stdout + r.stderr)
        assert 1 <= len(lines) <= 3 and "Traceback" not in r.stderr, (case, r.stdout + r.stderr)
        assert all(w.lower() in r.stderr.lower() for w in words), (case, r.stderr)
        assert entries(tmp_path) == before, case  # runs_dir, datasets_dir and weights_dir are in tmp_path here
        if case == "pretrained missing":  # never a download attempt for a local file
            assert "github" not in (r.stdout + r.stderr).lower() and "download" not in (r.stdout + r.stderr).lower()


def test_names_ultralytics_resolves_itself_pass(tmp_path, monkeypatch, coco128_yaml, stock_pt):
    for name in ("yolov8n-gfl.yaml", "yolo11s-vfl.yaml", "yolov8n-vfnet.yaml", "yolov8n.yaml", "yolo11n.yaml"):
        check_model(name)  # yolo_gfl's and Ultralytics' configs at any scale
    shutil.copyfile(stock_pt, "yolov8n.pt")
    check_model("yolov8n.pt")  # found in the current folder, as Ultralytics does
    check_weights("pretrained", stock_pt)
    check_data(coco128_yaml)
    os.mkdir("one")
    import yaml

    content = {**yaml.safe_load(Path(coco128_yaml).read_text()), "path": str(Path(coco128_yaml).parent)}
    write("one/coco.yaml", yaml.safe_dump(content))
    check_data("one")  # a folder holding one data YAML, which Ultralytics takes
    check_data("synthetic-n8-v4-i64")
    check_data("synthetic")
    image_folder("imgs")
    for source in ("imgs", "imgs/a.jpg", "imgs/*.jpg", "0", "rtsp://camera/stream", "screen"):
        check_source(source)
    assert entries(tmp_path) == {"yolov8n.pt", "one", "one/coco.yaml", "imgs", "imgs/a.jpg"}  # nothing generated

    monkeypatch.setattr(cli_checks, "_online", lambda: True)  # online, Ultralytics downloads official names itself
    os.remove("yolov8n.pt")
    check_model("yolov8n.pt")
    check_weights("pretrained", "yolov8s.pt")
    monkeypatch.setattr(cli_checks, "DATASETS_DIR", tmp_path / "nothing-here")
    check_data("coco128.yaml")
    with pytest.raises(PathCheckError, match="does not exist"):  # a local path is never downloaded, online or not
        check_weights("pretrained", "/nonexistent.pt")


def test_checkpoint_in_weights_dir_passes(tmp_path, monkeypatch, stock_pt):
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copyfile(stock_pt, weights / "yolov8n.pt")
    monkeypatch.setattr(cli_checks, "SETTINGS", {**cli_checks.SETTINGS, "weights_dir": str(weights)})
    check_weights("model", "yolov8n.pt")  # Ultralytics' attempt_download_asset looks in its weights_dir too


def test_val_without_data_checks_the_checkpoints_data(tmp_path, stock_pt):
    shutil.copyfile(stock_pt, "stock.pt")  # trained on coco.yaml, which Ultralytics would download
    with pytest.raises(PathCheckError, match="no data= given.*coco.yaml.*offline"):
        check_paths("val", {"model": "stock.pt"}, "yolov8n-gfl.yaml")


def test_run_hint_points_at_ultralytics_runs_dir(tmp_path, monkeypatch):
    runs = tmp_path / "elsewhere"
    (runs / "detect" / "train" / "weights").mkdir(parents=True)
    (runs / "detect" / "train" / "weights" / "best.pt").write_bytes(b"PK")
    monkeypatch.setattr(cli_checks, "SETTINGS", {**cli_checks.SETTINGS, "runs_dir": str(runs)})
    with pytest.raises(PathCheckError, match=re.escape(str(runs / "detect/train/weights/best.pt"))):
        check_model("runs/detect/train/weights/best.pt")


def test_unreadable_files(tmp_path, monkeypatch, capsys):
    write("locked.yaml", "train: a\nval: a\nnames: {0: x}\n")
    write("locked.pt", "x")
    for name in ("locked.yaml", "locked.pt"):
        os.chmod(name, 0)
    if os.access("locked.yaml", os.R_OK):  # root reads any file: raise what open() raises for anyone else
        def refuse(path, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(cli_checks, "open", refuse, raising=False)
    for argv in (["train", "data=locked.yaml"], ["val", "model=locked.pt"], ["train", "pretrained=locked.pt"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "cannot be read (Permission denied)" in err and argv[-1] in err and len(err.splitlines()) == 1, err


def test_failed_start_leaves_no_empty_run_folder(tmp_path, capsys):
    """A start that passes the checks and fails inside Ultralytics (every image unreadable) removes the run folder
    it made, which holds nothing but args.yaml; the error itself is Ultralytics'."""
    os.makedirs("ds/labels/train")
    for split in ("train", "val"):
        os.makedirs(f"ds/images/{split}", exist_ok=True)
        Path(f"ds/images/{split}/a.jpg").write_bytes(b"not an image")
    write("ds/data.yaml", "train: images/train\nval: images/val\nnames: {0: x}\n")
    project = tmp_path / "runs"
    with pytest.raises(Exception):  # noqa: B017 -- whatever Ultralytics raises; the folder is the point
        main(["train", "model=yolov8n-gfl.yaml", "data=ds/data.yaml", "imgsz=64", "epochs=1", "device=cpu",
              "workers=0", f"project={project}", "name=fails"])
    assert not project.exists() or not any(project.iterdir()), list(project.rglob("*"))


def test_remove_if_empty_keeps_what_a_run_wrote(tmp_path):
    from yolo_gfl.cli import remove_if_empty

    def run_folder(name, *files):
        folder = tmp_path / name
        (folder / "weights").mkdir(parents=True)
        (folder / "args.yaml").write_text("epochs: 1\n")
        for f in files:
            (folder / f).write_text("x")
        return folder

    assert remove_if_empty(run_folder("empty")) and not (tmp_path / "empty").exists()
    for name, files in {"ckpt": ["weights/last.pt"], "csv": ["results.csv"], "plots": ["labels.jpg"]}.items():
        folder = run_folder(name, *files)
        assert not remove_if_empty(folder) and folder.is_dir()  # a training that got further keeps what it wrote
    assert not remove_if_empty(tmp_path / "never-made")


def test_readme_cli_examples_need_no_download():
    """The README's commands work offline: no data set or checkpoint that only a download provides."""
    from ultralytics.utils import ROOT as ULTRALYTICS
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    shipped = {p.name for p in (ULTRALYTICS / "cfg" / "datasets").glob("*.yaml")}
    shipped |= {p.stem for p in (ULTRALYTICS / "cfg" / "datasets").glob("*.yaml")}
    commands = re.findall(r"^yolo-gfl .*$", README.read_text(), re.M)
    assert commands
    for line in commands:
        for arg in shlex.split(line.split("#")[0])[1:]:
            key, _, value = arg.partition("=")
            for v in value.split(","):
                assert not (key == "data" and v in shipped), f"README: '{line}' downloads {v}"
                assert v not in GITHUB_ASSETS_NAMES, f"README: '{line}' downloads {v}; give a path (path/to/{v})"


def test_cwd_is_the_tests_own_folder(tmp_path):
    assert Path.cwd() == tmp_path  # conftest's autouse fixture


def run_cli_tests_from(start: Path, basetemp: Path) -> None:
    """Run the command-line tests (the ones issue 35 saw fail after the quickstart) with pytest started in ``start``,
    in a process of its own, as the README's test command would; assert they pass and leave ``start`` as it was."""
    before = entries(start)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={ROOT}",
                        "-c", str(ROOT / "pyproject.toml"), f"--basetemp={basetemp}",
                        str(ROOT / "tests" / "test_cli.py"), str(ROOT / "tests" / "test_first_hour.py"), "-k",
                        "bad_arguments or bad_path_gets"],
                       cwd=start, env={**env, "YOLO_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert re.search(r"\d+ passed", r.stdout) and "failed" not in r.stdout
    # pytest-benchmark, where installed (not a dependency of this project), makes an empty .benchmarks where pytest starts
    assert entries(start) - {".benchmarks"} == before


def test_suite_passes_started_from_a_folder_holding_runs(tmp_path):
    """Issue 35's failure: tests that looked at ./runs/detect/train failed after the quickstart had made it."""
    start = tmp_path / "start"
    (start / "runs" / "detect" / "train" / "weights").mkdir(parents=True)
    (start / "runs" / "detect" / "train" / "args.yaml").write_text("epochs: 1\n")
    if YOLOV8N_PT.exists():
        shutil.copyfile(YOLOV8N_PT, start / "runs" / "detect" / "train" / "weights" / "best.pt")
    run_cli_tests_from(start, tmp_path / "basetemp")


@pytest.mark.slow
def test_readme_quickstart_then_the_tests(tmp_path, tmp_path_factory, isolated_env):
    """Issue 35's acceptance: in a fresh folder, the README's first-training command as written but for epochs=1,
    through the installed script, with Ultralytics settings as a fresh install makes them (runs in ./runs); then the
    tests from that folder."""
    line = next(c for c in re.findall(r"^yolo-gfl train .*$", README.read_text(), re.M) if "synthetic" in c)
    argv = [("epochs=1" if a.startswith("epochs=") else a) for a in shlex.split(line)[1:]]
    assert "epochs=1" in argv
    r = subprocess.run([yolo_gfl_script(), *argv], cwd=tmp_path, env=isolated_env, capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert (tmp_path / "runs" / "detect" / "train" / "weights" / "best.pt").is_file()
    run_cli_tests_from(tmp_path, tmp_path_factory.mktemp("nested"))
