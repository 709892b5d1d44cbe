"""A training run SIGKILLed mid-epoch resumes: last.pt loads, resume=True keeps the variant, optimizer state and epoch
count, and the final metrics match an uninterrupted run of the same seed within the spread a change of seed gives.

tests/test_train.py::test_resume_keeps_head_and_loss already covers a run stopped by an exception raised between
epochs (train-argument variant kept after resume); this file covers a hard kill in the middle of an epoch, in a real
child process, and compares the outcome with uninterrupted runs.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from yolo_gfl import YOLOGFL
from yolo_gfl.nn import GFLDetectionModel

pytestmark = pytest.mark.slow

CHILD = '''
import json, os, sys, time
os.environ.setdefault("YOLO_OFFLINE", "1")
from yolo_gfl import YOLOGFL

cfg = json.loads(sys.argv[1])
marker = cfg.pop("park_marker", None)
model = YOLOGFL(cfg.pop("model"))
if marker:
    seen = {"batches": 0}

    def park(trainer):
        if trainer.epoch == 1:  # the second epoch is under way; the first one's last.pt is on disk
            seen["batches"] += 1
            if seen["batches"] == 2:
                with open(marker, "w") as f:
                    json.dump({"epoch": trainer.epoch, "batches": seen["batches"]}, f)
                time.sleep(600)  # parked mid-epoch until the test SIGKILLs us

    model.add_callback("on_train_batch_end", park)
model.train(**cfg)
'''

# 2 epochs of 4 batches (32 images at 64 px), one SGD step per batch (nbs=batch), no warm-up: the weights move enough for a wrong resume
# (fresh weights, lost optimizer state) to show in the final losses.
RUN = dict(model="yolov8n-gfl.yaml", epochs=2, imgsz=64, batch=8, fraction=0.25, workers=0, device="cpu", plots=False,
           seed=0, deterministic=True, val=False, optimizer="SGD", lr0=0.02, warmup_epochs=0, nbs=8, exist_ok=True,
           cls_loss="qfl", qfl_beta=1.5, cls_norm="sum")  # non-default options: resume must keep them
FINAL = ("val/box_loss", "val/cls_loss", "val/dfl_loss")


def read_results(run: Path) -> list[dict[str, float]]:
    with open(run / "results.csv") as f:
        return [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def start(script: Path, cfg: dict) -> subprocess.Popen:
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_VERBOSE": "False"}
    return subprocess.Popen([sys.executable, str(script), json.dumps(cfg)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_epoch_then_resume(tmp_path, coco128_yaml):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    marker = tmp_path / "parked.json"
    common = {**RUN, "data": coco128_yaml, "project": str(tmp_path)}
    # the run to kill and two uninterrupted references (same seed; another seed for the noise scale), side by side
    killed = start(script, {**common, "name": "killed", "park_marker": str(marker)})
    refs = {name: start(script, {**common, "name": name, "seed": seed}) for name, seed in (("same", 0), ("other", 1))}

    deadline = time.monotonic() + 480
    while not marker.exists():
        assert killed.poll() is None, f"child ended before parking: {killed.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, "child never reached the second epoch"
        time.sleep(0.2)
    os.kill(killed.pid, signal.SIGKILL)  # mid-epoch 2, no chance to clean up
    assert killed.wait(60) == -signal.SIGKILL
    for name, proc in refs.items():
        assert proc.wait(480) == 0, f"{name}: {proc.stderr.read()[-3000:]}"

    run = tmp_path / "killed"
    last = run / "weights" / "last.pt"
    assert json.loads(marker.read_text()) == {"epoch": 1, "batches": 2}
    assert [int(r["epoch"]) for r in read_results(run)] == [1]  # only the finished epoch was logged

    # last.pt is whole and loadable, and still holds what resume needs
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 0 and ckpt["optimizer"] is not None and ckpt["ema"] is not None
    assert isinstance(ckpt["ema"], GFLDetectionModel)
    assert ckpt["ema"].variant.qfl_beta == 1.5 and ckpt["ema"].variant.cls_norm == "sum"
    saved_opt = ckpt["optimizer"]

    seen = {}

    def capture(trainer):
        seen["start_epoch"] = trainer.start_epoch
        seen["optimizer"] = copy.deepcopy(trainer.optimizer.state_dict())  # live tensors change as training goes on
        seen["criterion"] = type(getattr(trainer.model, "criterion", None) or trainer.model.init_criterion()).__name__
        seen["options"] = trainer.model.variant.as_section()

    resumed = YOLOGFL(last)
    resumed.add_callback("on_train_start", capture)
    resumed.train(resume=True)

    # same epoch count, optimizer state and variant as at the kill
    assert seen["start_epoch"] == 1
    assert seen["options"]["cls_loss"] == "qfl" and seen["options"]["quality"] is True
    assert seen["options"]["qfl_beta"] == 1.5 and seen["options"]["cls_norm"] == "sum"
    assert seen["criterion"] == "GFLDetectionLoss"
    assert seen["optimizer"]["param_groups"][0]["lr"] == saved_opt["param_groups"][0]["lr"]
    assert len(seen["optimizer"]["state"]) == len(saved_opt["state"]) > 0
    for key, state in saved_opt["state"].items():  # SGD momentum buffers restored exactly (saved as fp16, widened)
        restored = seen["optimizer"]["state"][key]["momentum_buffer"]
        assert restored.dtype == torch.float32 and torch.equal(restored, state["momentum_buffer"].float())

    rows = read_results(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    same, other = read_results(tmp_path / "same"), read_results(tmp_path / "other")
    assert rows[0] == {**same[0], "time": rows[0]["time"]}  # epoch 1 before the kill is the reference's epoch 1
    final = YOLOGFL(run / "weights" / "last.pt").model
    assert final.variant.as_section() == seen["options"]

    # Final metrics within noise. Ultralytics resumes from the EMA weights saved in fp16 (not the raw weights) and
    # does not restore the data-order/augmentation RNG (the resumed epoch 2 replays epoch 1's order), so an exact
    # match is not expected; measured here: 0.1% (box, DFL) to 1.3% (the tiny cls loss, ~0.015) apart. Tolerance:
    # 5% of the value plus twice what a change of seed does to the same run. The exact checks above (optimizer
    # state, epoch, variant, epoch 1 identical) carry most of the weight: at this size the losses move little.
    for key in FINAL:
        a, b, c = rows[-1][key], same[-1][key], other[-1][key]
        tol = 2 * abs(c - b) + 0.05 * abs(b)
        assert math.isfinite(a) and abs(a - b) <= tol, f"{key}: resumed {a} vs uninterrupted {b} (seed 1: {c}; tol {tol})"
