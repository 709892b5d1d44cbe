"""Real training through the Ultralytics trainer on real images, then val/predict from best.pt, and resume."""

from __future__ import annotations

import builtins
import csv
import errno
import io
import math
from pathlib import Path

import pytest
import torch
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel

from yolo_gfl import YOLOGFL
from yolo_gfl.nn import GFLDetect, GFLDetectionModel

from .conftest import TINY_TRAIN
from .conftest import dead_pid, plant

pytestmark = pytest.mark.slow

EXPECTED = {"gfl": ("bce", True), "qfl": ("qfl", False), "vfl": ("vfl", False)}


def read_results(run):
    with open(run / "results.csv") as f:
        return [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.mark.parametrize("variant", ["gfl", "qfl", "vfl"])
def test_variant_trains_validates_and_predicts(variant, trained, coco128_yaml, val_images):
    run = trained(variant)
    rows = read_results(run)
    assert len(rows) == 1
    for key in ("train/box_loss", "train/cls_loss", "train/dfl_loss", "val/box_loss", "val/cls_loss", "val/dfl_loss"):
        assert math.isfinite(rows[0][key]) and rows[0][key] > 0, (key, rows[0][key])

    best = run / "weights" / "best.pt"
    ours, plain = YOLOGFL(best), YOLO(best)
    for model in (ours, plain):  # plain Ultralytics unpickles the yolo_gfl model and uses its own validator
        assert isinstance(model.model, GFLDetectionModel) and isinstance(model.model.model[-1], GFLDetect)
        cls_loss, dgqp = EXPECTED[variant]
        assert model.model.variant.cls_loss == cls_loss and (model.model.model[-1].dgqp is not None) == dgqp
        metrics = model.val(data=coco128_yaml, imgsz=96, batch=16, device="cpu", plots=False, verbose=False)
        assert 0 <= metrics.box.map <= 1

    kwargs = dict(imgsz=96, conf=1e-6, max_det=50, device="cpu", verbose=False)  # untrained: tiny scores
    for a, b in zip(ours.predict(val_images, **kwargs), plain.predict(val_images, **kwargs)):
        assert len(a.boxes) > 0
        torch.testing.assert_close(a.boxes.data, b.boxes.data)


def test_stock_config_trains_the_stock_baseline(trained):
    model = YOLO(trained("stock") / "weights" / "best.pt")
    assert type(model.model) is DetectionModel and type(model.model.model[-1]).__name__ == "Detect"


def test_dgqp_scores_are_products(trained, val_images):
    model = YOLOGFL(trained("gfl") / "weights" / "best.pt").model.float().eval()
    from ultralytics.data.augment import LetterBox
    import cv2

    img = LetterBox((96, 96), auto=False)(image=cv2.imread(val_images[0]))
    x = torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    y, preds = model(x)
    torch.testing.assert_close(y[:, 4:], preds["scores"].sigmoid() * preds["quality"])


class StopAfterFirstEpoch(Exception):
    """Raised from a callback to interrupt training after the first epoch's checkpoint is written."""


def test_resume_keeps_head_and_loss(tmp_path, coco128_yaml):
    model = YOLOGFL("yolov8n-vfl.yaml")

    def interrupt(trainer):
        if trainer.epoch == 0:
            raise StopAfterFirstEpoch

    model.add_callback("on_fit_epoch_end", interrupt)
    args = {**TINY_TRAIN, "epochs": 2}
    with pytest.raises(StopAfterFirstEpoch):
        model.train(data=coco128_yaml, project=str(tmp_path), name="r", exist_ok=True, quality=True, **args)
    last = tmp_path / "r" / "weights" / "last.pt"
    assert last.exists()

    resumed = YOLOGFL(last)
    resumed.train(resume=True)
    rows = read_results(tmp_path / "r")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    final = YOLO(tmp_path / "r" / "weights" / "last.pt").model
    assert isinstance(final, GFLDetectionModel)
    assert final.variant.cls_loss == "vfl" and final.variant.quality is True  # train-arg override kept
    assert final.model[-1].dgqp is not None
    assert type(resumed.trainer.model.init_criterion()).__name__ == "GFLDetectionLoss"


class DiskFullWriter:
    """A file opened for writing that takes half of what it is given, then fails as a full disk does."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        view = memoryview(data)
        self.f.write(view[: len(view) // 2])
        raise OSError(errno.ENOSPC, "No space left on device (simulated)")

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_failed_checkpoint_save_keeps_the_previous_last_pt(tmp_path, coco128_yaml, monkeypatch):
    """A save that fails half-way (a full disk; a kill looks the same on disk) leaves the previous epoch's last.pt
    whole, so resume=True continues from it. Ultralytics' own Path.write_bytes truncates last.pt first and would leave
    half a checkpoint here."""
    weights = tmp_path / "f" / "weights"
    real_open, state = io.open, {"fail": False}

    def open_failing_in_weights(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if state["fail"] and "w" in mode and Path(file).parent == weights:
            return DiskFullWriter(f)
        return f

    monkeypatch.setattr(io, "open", open_failing_in_weights)  # pathlib's open
    monkeypatch.setattr(builtins, "open", open_failing_in_weights)
    model = YOLOGFL("yolov8n-gfl.yaml")
    # every save after epoch 1's fails: epoch 2's
    model.add_callback("on_model_save", lambda trainer: state.update(fail=trainer.epoch == 0))
    with pytest.raises(OSError, match="No space left"):
        model.train(data=coco128_yaml, project=str(tmp_path), name="f", exist_ok=True, **{**TINY_TRAIN, "epochs": 2})
    monkeypatch.undo()

    assert sorted(p.name for p in weights.iterdir()) == ["best.pt", "last.pt"]  # no partial copy left behind
    ckpt = torch.load(weights / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 0 and isinstance(ckpt["ema"], GFLDetectionModel)  # epoch 1's checkpoint, whole
    # a run killed mid-save cannot remove its partial copy: the resumed trainer does
    killed = plant(weights, f".last.pt.{dead_pid()}-0badcafe.tmp", age_s=3600)
    YOLOGFL(weights / "last.pt").train(resume=True)
    assert not killed.exists()
    # epoch 2 trained again from epoch 1's checkpoint (results.csv keeps the failed attempt's row: Ultralytics writes
    # an epoch's metrics before its checkpoint and appends on resume)
    assert [int(r["epoch"]) for r in read_results(tmp_path / "f")] == [1, 2, 2]
    assert torch.load(weights / "last.pt", map_location="cpu", weights_only=False)["train_results"]


def test_atss_assigner_through_the_trainer(tmp_path, coco128_yaml):
    model = YOLOGFL("yolov8n-vfl.yaml")
    model.train(data=coco128_yaml, project=str(tmp_path), name="atss", assigner="atss", **TINY_TRAIN)
    rows = read_results(tmp_path / "atss")
    assert all(math.isfinite(rows[0][k]) and rows[0][k] > 0 for k in ("train/box_loss", "train/cls_loss", "train/dfl_loss"))
    assert YOLO(tmp_path / "atss" / "weights" / "best.pt").model.variant.assigner == "atss"
