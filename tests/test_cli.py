"""The real `yolo-gfl` console script in a subprocess: train, val, predict, export, and argument errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from yolo_gfl.cli import main


def console_script() -> list[str]:
    exe = shutil.which("yolo-gfl") or os.path.join(os.path.dirname(sys.executable), "yolo-gfl")
    assert os.path.exists(exe), "the README install (pip install -e .) provides the yolo-gfl console script"
    return [exe]


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
        (["train", "dgqp=perhaps"], ["dgqp", "True | False"]),
        (["train", "epochs=abc"], ["epochs", "must be an int"]),
        (["trian"], ["unknown mode 'trian'", "train"]),
        (["val", "cls_loss=vfl", "model=x.pt"], ["cls_loss", "train only"]),
        (["val"], ["needs a model"]),
        (["predict", "model=missing.pt"], ["missing.pt does not exist"]),
        (["train", "imgsz"], ["key=value"]),
    ],
)
def test_bad_arguments_exit_nonzero_naming_them(args, words, tmp_path, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert not any(tmp_path.iterdir()) and not os.path.exists("runs/detect/train")  # nothing started


def test_bad_argument_through_real_script_and_module(tmp_path):
    r = run(["train", "cls_loss=focal"], tmp_path, timeout=120)
    assert r.returncode == 2 and "cls_loss" in r.stderr
    r = subprocess.run([sys.executable, "-m", "yolo_gfl", "train", "lr=0.1"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "'lr' is not a valid argument" in r.stderr and "lr0" in r.stderr
    assert not any(tmp_path.iterdir())


def test_help_lists_modes_variants_and_options(capsys):
    assert main(["help"]) == 0
    out = capsys.readouterr().out
    assert all(w in out for w in ("train", "export", "yolov8-gfl.yaml", "cls_loss", "dgqp", "vfl_alpha"))
    assert main(["cfg"]) == 0 and "epochs=100" in capsys.readouterr().out
