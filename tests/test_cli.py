"""The real `yolo-gfl` console script in a subprocess: train, val, predict, export, and argument errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from yolo_gfl.cli import main
from yolo_gfl.options import OPTIONS

# A boolean yolo_gfl option, whatever its name: these tests are about the command line's forms, not one option.
SWITCH = next(name for name, option in OPTIONS.items() if isinstance(option.default, bool))


def console_script() -> list[str]:
    exe = shutil.which("yolo-gfl") or os.path.join(os.path.dirname(sys.executable), "yolo-gfl")
    assert os.path.exists(exe), "the README install (pip install -e .) provides the yolo-gfl console script"
    return [exe]


def plain_yolo() -> list[str]:
    """Ultralytics' `yolo` command as its console script runs it, under this interpreter (where yolo_gfl is
    installed; a `yolo` found first on PATH may belong to another Python)."""
    return [sys.executable, "-c", "import sys; from ultralytics.cfg import entrypoint; sys.exit(entrypoint())"]


def run(args, cwd, timeout=600):
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_VERBOSE": "True"}  # conftest quiets in-process runs only
    return subprocess.run(console_script() + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_train_val_predict_export_through_console_script(tmp_path, coco128_yaml, val_images):
    common = ["imgsz=64", "device=cpu", "plots=False"]
    project = f"project={tmp_path / 'runs'}"  # absolute: Ultralytics puts a relative project under its runs_dir
    r = run(["train", "model=yolov8n-gfl.yaml", f"data={coco128_yaml}", "epochs=1", "batch=8", "fraction=0.1",
             "workers=0", project, "name=cli", *common], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    best = tmp_path / "runs" / "cli" / "weights" / "best.pt"
    assert best.exists() and (tmp_path / "runs" / "cli" / "results.csv").exists()

    r = run(["val", f"model={best}", f"data={coco128_yaml}", "batch=16", project, "name=val", *common], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "all" in r.stdout + r.stderr  # Ultralytics' metrics table
    assert (tmp_path / "runs" / "val").is_dir()

    r = run(["predict", f"model={best}", f"source={val_images[0]}", "conf=0.0001", project, "name=pred",
             "imgsz=64", "device=cpu"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert list((tmp_path / "runs" / "pred").glob("*.jpg"))  # the annotated image, saved as `yolo predict` does

    r = run(["export", f"model={best}", "format=onnx", "imgsz=64"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert best.with_suffix(".onnx").exists()


@pytest.mark.parametrize(
    "args,words",
    [
        (["train", "epoch=3"], ["'epoch' is not a valid argument", "epochs"]),
        (["train", "cls_loss=focal"], ["cls_loss", "'focal'", "bce | vfl | qfl"]),
        (["train", f"{SWITCH}=perhaps"], [SWITCH, "True | False"]),
        (["train", "epochs=abc"], ["epochs", "must be an int"]),
        (["trian"], ["unknown mode 'trian'", "train"]),
        (["val", "cls_loss=vfl", "model=x.pt"], ["cls_loss", "train only"]),
        (["val"], ["needs a model"]),
        (["predict", "model=missing.pt"], ["missing.pt does not exist"]),
        (["train", "imgsz"], ["key=value", "imgsz=640"]),
        (["segment", "train"], ["task 'segment'", "detectors"]),
        (["track", "model=x.pt"], ["'track'", "plain 'yolo'"]),
        (["train", "val"], ["more than one mode"]),
        (["train", "resume"], ["'resume' needs the checkpoint", "last.pt"]),
        (["train", "cfg=missing.yaml"], ["missing.yaml does not exist", "copy-cfg"]),
        (["train", "shwo"], ["'shwo' is neither", "show"]),
    ],
)
def test_bad_arguments_exit_nonzero_naming_them(args, words, tmp_path, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert not any(tmp_path.iterdir())  # nothing started: the test's own folder, where default runs land, is empty


def test_bad_argument_through_real_script_and_module(tmp_path, isolated_env):
    work = tmp_path / "work"  # runs_dir, datasets_dir and weights_dir are tmp_path/runs, ... in isolated_env
    work.mkdir()
    r = subprocess.run(console_script() + ["train", "cls_loss=focal"], cwd=work, env=isolated_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "cls_loss" in r.stderr
    r = subprocess.run([sys.executable, "-m", "yolo_gfl", "train", "lr=0.1"], cwd=work, env=isolated_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "'lr' is not a valid argument" in r.stderr and "lr0" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "work"] and not any(work.iterdir())


def test_help_lists_modes_variants_and_options(capsys):
    assert main(["help"]) == 0
    out = capsys.readouterr().out
    assert all(w in out for w in ("train", "export", "yolov8-gfl.yaml", "cls_loss", SWITCH, "vfl_alpha"))
    assert main(["cfg"]) == 0 and "epochs=100" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,mode,expected",
    [
        (["train", "resume", "model=last.pt"], "train", {"resume": True, "model": "last.pt"}),
        (["detect", "train", "model=yolo11n-gfl.yaml"], "train", {"model": "yolo11n-gfl.yaml"}),
        (["train", "detect", "task=detect", "epochs=1"], "train", {"epochs": 1}),
        (["predict", "model=b.pt", "show_labels", "save_txt", "half"], "predict",
         {"model": "b.pt", "show_labels": True, "save_txt": True, "half": True}),
        (["export", "model=b.pt", "dynamic", "simplify", "nms"], "export",
         {"model": "b.pt", "dynamic": True, "simplify": True, "nms": True}),
        (["train", SWITCH, "cls_loss=vfl"], "train", {SWITCH: True, "cls_loss": "vfl"}),
        (["val", "model=b.pt", "coco", "calibration", "paper"], "val",
         {"model": "b.pt", "coco": True, "calibration": True, "paper": True}),
        (["--mode=val", "--model=b.pt", "imgsz", "=", "96"], "val", {"model": "b.pt", "imgsz": 96}),
    ],
)
def test_command_forms_parse_as_yolo_does(argv, mode, expected):
    from yolo_gfl.cli import parse

    assert parse(argv) == (mode, expected)


def test_cfg_file_gives_defaults_and_command_line_wins(tmp_path, monkeypatch):
    from ultralytics.utils import YAML

    from yolo_gfl.cli import parse

    monkeypatch.chdir(tmp_path)
    assert main(["copy-cfg"]) == 0
    cfg = tmp_path / "default_copy.yaml"
    text = YAML.load(cfg)
    YAML.save(cfg, {**text, "epochs": 7, "imgsz": 96, "mode": "val", "cls_loss": "vfl"})
    mode, args = parse([f"cfg={cfg}", "imgsz=128"])
    assert mode == "val" and args == {"epochs": 7, "imgsz": 128, "cls_loss": "vfl"}  # unchanged keys stay defaults


def test_special_commands_through_real_script(tmp_path):
    from yolo_gfl import __version__

    env_dir = tmp_path / "config"  # Ultralytics' settings file goes here, not into the user's settings
    for argv in (["version"], ["--version"]):
        r = run(argv, tmp_path, timeout=120)
        assert r.returncode == 0 and r.stdout.strip() == __version__, r.stderr[-2000:]

    def run_cfg(argv):
        env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(env_dir)}
        return subprocess.run(console_script() + argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)

    r = run_cfg(["settings", f"runs_dir={tmp_path / 'myruns'}"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert str(tmp_path / "myruns") in (env_dir / "Ultralytics" / "settings.json").read_text()  # Ultralytics' file, updated

    r = run_cfg(["copy-cfg"])
    assert r.returncode == 0 and (tmp_path / "default_copy.yaml").is_file(), r.stderr[-2000:]

    r = run_cfg(["checks"])
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-2000:]
    assert "torch" in out and f"yolo_gfl {__version__}" in out and "export format=onnx" in out


@pytest.mark.slow
def test_task_first_train_yolo11_then_plain_yolo_val(tmp_path, coco128_yaml):
    project = f"project={tmp_path / 'runs'}"
    r = run(["detect", "train", "model=yolo11n-gfl.yaml", f"data={coco128_yaml}", "epochs=1", "batch=8",
             "fraction=0.1", "workers=0", "imgsz=64", "device=cpu", project, "name=y11", "exist_ok"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    best = tmp_path / "runs" / "y11" / "weights" / "best.pt"
    assert best.exists()
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_VERBOSE": "True"}
    r = subprocess.run([*plain_yolo(), "val", f"model={best}", f"data={coco128_yaml}", "imgsz=64", "batch=16", "device=cpu",
                        "plots=False", project, "name=val"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "all" in r.stdout + r.stderr  # Ultralytics' metrics table
    import torch

    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    model = ckpt["ema"] or ckpt["model"]
    assert any("C2PSA" in str(layer) for layer in model.yaml["backbone"])  # YOLO11's architecture, not YOLOv8's
    assert model.variant.quality is True and model.variant.cls_loss == "bce"  # -gfl: stock's loss on J


@pytest.mark.slow
def test_bare_resume_continues_a_killed_run_with_its_variant(tmp_path, coco128_yaml):
    import signal
    import time

    import torch

    run_dir = tmp_path / "runs" / "killed"
    last = run_dir / "weights" / "last.pt"
    argv = ["train", "model=yolov8n-qfl.yaml", f"data={coco128_yaml}", "epochs=6", "batch=8", "fraction=0.25",
            "workers=0", "imgsz=64", "device=cpu", "plots=False", "val=False", f"project={tmp_path / 'runs'}",
            "name=killed", "qfl_beta=1.5", "quality"]  # a train-argument variant: resume must keep it
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    proc = subprocess.Popen(console_script() + argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 420
    while not last.exists():  # written at the end of epoch 1
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline, "no last.pt after 7 minutes"
        time.sleep(0.05)
    while True:  # freeze the run, and kill it once the checkpoint on disk is whole: a fixed wait lost the race on a
        os.kill(proc.pid, signal.SIGSTOP)  # loaded machine (a half-written last.pt, 'Ran out of input')
        try:
            killed_at = torch.load(last, map_location="cpu", weights_only=False)["epoch"]
            break
        except Exception:  # noqa: BLE001 -- still being written
            assert time.monotonic() < deadline, "last.pt never loaded"
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(60)
    assert 0 <= killed_at < 5, "the run finished before the kill; nothing left to resume"

    r = run(["train", "resume", f"model={last}"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = (run_dir / "results.csv").read_text().splitlines()[1:]
    epochs = [int(float(row.split(",")[0])) for row in rows]
    # A kill between an epoch's results.csv row and its last.pt leaves that row behind; Ultralytics then trains the
    # epoch again from the checkpoint and writes it once more. Every epoch must be there, in order, ending at 6.
    assert sorted(set(epochs)) == [1, 2, 3, 4, 5, 6] and epochs == sorted(epochs) and epochs[-1] == 6, epochs
    final = torch.load(last, map_location="cpu", weights_only=False)
    assert final["epoch"] == -1  # finished
    variant = (final["ema"] or final["model"]).variant
    assert variant.cls_loss == "qfl" and variant.qfl_beta == 1.5 and variant.quality is True
