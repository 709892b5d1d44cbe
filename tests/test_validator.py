"""`val coco=True calibration=True` on a model trained here: pycocotools beside Ultralytics, and the score-IoU report."""

from __future__ import annotations

import json

import cv2
import pytest

from yolo_gfl import YOLOGFL
from yolo_gfl.cli import main

pytestmark = pytest.mark.slow

# Ultralytics' mAP50-95 and pycocotools' AP differ by construction: Ultralytics keeps up to 300 detections per image
# (COCO: 100), interpolates its PR curve on 101 points with np.interp (COCO: a right-to-left max envelope), and counts
# area ranges the same for all sizes. On these models the two agree to a few points; we state 0.03.
TOLERANCE = 0.03


@pytest.mark.parametrize("which", ["gfl", "stock"])
def test_coco_and_calibration_reports(which, finetuned, stock_pt, coco128_yaml, tmp_path):
    best = finetuned if which == "gfl" else stock_pt
    metrics = YOLOGFL(best).val(
        data=coco128_yaml, imgsz=160, batch=16, device="cpu", plots=False, coco=True, calibration=True,
        project=str(tmp_path), name="v", conf=0.001,
    )
    run = tmp_path / "v"
    saved = json.loads((run / "coco_eval.json").read_text())
    for key in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100"):
        assert 0 <= metrics.coco[key] <= 1
    assert saved["stats"]["AP"] == pytest.approx(metrics.coco["AP"])
    assert metrics.box.map > 0.1  # a real model: the comparison below means something
    assert abs(metrics.coco["AP"] - metrics.box.map) <= TOLERANCE
    assert abs(metrics.coco["AP50"] - metrics.box.map50) <= TOLERANCE
    cal = metrics.calibration
    assert cal["count"] > 0 and cal["spearman"] is not None and -1 <= cal["spearman"] <= 1
    # the matched population: at most one detection per object, so fewer pairs than all detections, ranked too
    top = cal["top_per_object"]
    assert 0 < top["count"] <= cal["count"] and top["spearman"] is not None and -1 <= top["spearman"] <= 1
    assert cv2.imread(str(run / "calibration.png")) is not None and (run / "calibration.csv").exists()


def test_stock_model_coco_through_cli(trained, coco128_yaml, tmp_path, capsys):
    best = trained("stock") / "weights" / "best.pt"
    code = main(["val", f"model={best}", f"data={coco128_yaml}", "imgsz=96", "batch=16", "device=cpu", "plots=False",
                 "coco=True", f"project={tmp_path}", "name=s"])
    assert code == 0 and (tmp_path / "s" / "coco_eval.json").exists()


def test_eval_switches_are_checked(capsys):
    assert main(["train", "coco=True"]) == 2 and "val option" in capsys.readouterr().err
    assert main(["val", "model=x.pt", "coco=maybe"]) == 2 and "True or False" in capsys.readouterr().err
