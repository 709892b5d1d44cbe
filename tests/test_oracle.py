"""The ranking oracle: each row worked out by hand, `analyze` through the real engine, and its refusals."""

from __future__ import annotations

import csv
import shutil

import cv2
import pytest
import torch
import yaml

from yolo_gfl.cli import main
from yolo_gfl.eval.oracle import ORACLE_ROWS, oracle_rescore

# Three ground truths (xyxy, pixels) of classes 1, 0, 2; the third gets no foreground point.
GT_BOXES = torch.tensor([[0.0, 0.0, 20.0, 20.0], [30.0, 30.0, 50.0, 60.0], [60.0, 0.0, 80.0, 10.0]])
GT_CLS = torch.tensor([1.0, 0.0, 2.0])
# Five candidates, Ultralytics' layout (4 + nc, A): xywh, then the scores of classes 0, 1, 2.
#   c0 = [0, 0, 20, 20] and c1 = [2, 5, 22, 15] are foreground for GT 0, c2 = [30, 30, 50, 50] for GT 1;
#   c3 and c4 are background (c4's gt index 2 must be ignored, since it is not foreground).
PRED = torch.tensor(
    [
        [10.0, 12.0, 40.0, 65.0, 5.0],  # x
        [10.0, 10.0, 40.0, 5.0, 5.0],  # y
        [20.0, 20.0, 20.0, 10.0, 4.0],  # w
        [20.0, 10.0, 20.0, 10.0, 4.0],  # h
        [0.30, 0.60, 0.05, 0.40, 0.01],  # class 0
        [0.20, 0.10, 0.90, 0.40, 0.02],  # class 1
        [0.10, 0.00, 0.20, 0.70, 0.03],  # class 2
    ]
)
FG_MASK = torch.tensor([True, True, True, False, False])
GT_IDX = torch.tensor([0, 0, 1, 0, 2])  # the stubbed assigner output


def rescore(row: str) -> torch.Tensor:
    return oracle_rescore(PRED, FG_MASK, GT_IDX, GT_BOXES, GT_CLS, row)


def test_rows_by_hand():
    # IoUs of the foreground boxes with their ground truth:
    #   c0 with GT 0: identical boxes, 1;
    #   c1 = [2, 5, 22, 15] with [0, 0, 20, 20]: intersection 18 x 10 = 180, union 400 + 200 - 180 = 420 -> 3/7;
    #   c2 = [30, 30, 50, 50] with [30, 30, 50, 60]: intersection 400, union 400 + 600 - 400 = 600 -> 2/3.
    assert torch.equal(rescore("as_is"), PRED)

    gt_bbox = PRED.clone()
    gt_bbox[:4, 0] = torch.tensor([10.0, 10.0, 20.0, 20.0])  # GT 0 as xywh
    gt_bbox[:4, 1] = torch.tensor([10.0, 10.0, 20.0, 20.0])
    gt_bbox[:4, 2] = torch.tensor([40.0, 45.0, 20.0, 30.0])  # GT 1 as xywh
    assert torch.equal(rescore("gt_bbox"), gt_bbox)  # scores and background boxes as predicted

    gt_cls = PRED.clone()
    gt_cls[4:, 0] = torch.tensor([0.0, 1.0, 0.0])  # one-hot at the GT class (1); the other classes 0
    gt_cls[4:, 1] = torch.tensor([0.0, 1.0, 0.0])
    gt_cls[4:, 2] = torch.tensor([1.0, 0.0, 0.0])  # GT 1 is class 0
    assert torch.equal(rescore("gt_cls"), gt_cls)  # boxes, and the background's scores, as predicted

    gt_cls_iou = PRED.clone()
    gt_cls_iou[4:, 0] = torch.tensor([0.0, 1.0, 0.0])
    gt_cls_iou[4:, 1] = torch.tensor([0.0, 3 / 7, 0.0])
    gt_cls_iou[4:, 2] = torch.tensor([2 / 3, 0.0, 0.0])
    torch.testing.assert_close(rescore("gt_cls_iou"), gt_cls_iou)  # bbox_iou's eps: equal within 1e-6


def test_rescore_edges():
    before = PRED.clone()
    for row in ORACLE_ROWS:
        rescore(row)
    assert torch.equal(PRED, before)  # a new tensor every time
    no_fg = torch.zeros(5, dtype=torch.bool)
    assert torch.equal(oracle_rescore(PRED, no_fg, GT_IDX, torch.zeros(0, 4), torch.zeros(0), "gt_cls_iou"), PRED)
    with pytest.raises(ValueError, match="no ground-truth box"):
        oracle_rescore(PRED, FG_MASK, GT_IDX, torch.zeros(0, 4), torch.zeros(0), "gt_cls")
    with pytest.raises(ValueError, match="gt_cls_iou"):
        rescore("oracle")


@pytest.fixture(scope="module")
def small_val(tmp_path_factory, coco128_yaml):
    """A data YAML whose train and val splits are 8 labelled coco128 val2017 images (80 COCO names)."""
    from pathlib import Path

    src = Path(coco128_yaml).parent
    root = tmp_path_factory.mktemp("small_val")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    for img in sorted((src / "images" / "val2017").glob("*.jpg"))[:8]:
        shutil.copy(img, root / "images" / img.name)
        shutil.copy(src / "labels" / "val2017" / f"{img.stem}.txt", root / "labels" / f"{img.stem}.txt")
    names = yaml.safe_load(open(coco128_yaml))["names"]
    (root / "small.yaml").write_text(yaml.safe_dump({"path": str(root), "train": "images", "val": "images", "names": names}))
    return str(root / "small.yaml")


def read_rows(run) -> dict[str, dict[str, float]]:
    return {r["mode"]: {k: float(v) for k, v in r.items() if k != "mode" and v != ""}
            for r in csv.DictReader(open(run / "oracle.csv"))}


@pytest.mark.slow
def test_analyze_on_finetuned_model(finetuned, coco128_yaml, tmp_path):
    code = main(["analyze", f"model={finetuned}", f"data={coco128_yaml}", "imgsz=160", "batch=32", "device=cpu",
                 f"project={tmp_path}", "name=a", "exist_ok=True"])
    assert code == 0
    run = tmp_path / "a"  # exist_ok=True: the run folder keeps its name
    rows = read_rows(run)
    assert list(rows) == list(ORACLE_ROWS)
    assert rows["as_is"]["AP"] > 0.1
    assert rows["gt_cls"]["foreground_points"] > rows["as_is"]["gt_boxes"] > 0  # TAL: several points per object
    # The paper's order (VarifocalNet Table 1): a perfect class score helps, the IoU-aware one helps most.
    assert rows["gt_cls"]["AP"] >= rows["as_is"]["AP"]
    assert rows["gt_cls_iou"]["AP"] >= rows["gt_cls"]["AP"]
    assert rows["gt_cls_iou"]["mAP50-95"] >= rows["as_is"]["mAP50-95"]
    for name in ("oracle.png", "calibration.png"):
        assert cv2.imread(str(run / name)) is not None
    assert (run / "calibration.csv").exists()


@pytest.mark.parametrize("cfg", ["yolov8n-gfl.yaml", "yolov8n-vfnet.yaml"])
def test_analyze_variants_use_their_own_assigner(cfg, stock_pt, small_val, tmp_path):
    """DGQP's joint score and VFNet's refined box go through the oracle; ATSS (-vfnet) gives other positives than TAL."""
    from yolo_gfl import YOLOGFL
    from yolo_gfl.analyze import analyze

    model = YOLOGFL(cfg).load(stock_pt)  # stock weights: detects from the start
    out = analyze(model, small_val, imgsz=128, batch=8, device="cpu", project=str(tmp_path), name="a", exist_ok=True)
    rows = {r["mode"]: r for r in out["oracle"]}
    assert rows["as_is"]["detections"] > 0 and rows["gt_cls_iou"]["foreground_points"] > 0
    assert rows["gt_cls_iou"]["AP"] >= rows["as_is"]["AP"]
    tal = analyze(YOLOGFL("yolov8n.yaml").load(stock_pt), small_val, imgsz=128, batch=8, device="cpu",
                  project=str(tmp_path), name="stock", exist_ok=True)["oracle"][1]["foreground_points"]
    if "vfnet" in cfg:
        assert rows["gt_cls"]["foreground_points"] != tal  # ATSS, not TAL
    else:
        assert rows["gt_cls"]["foreground_points"] > 0


def test_analyze_refuses_a_model_that_detects_nothing(small_val, tmp_path, capsys):
    # A fresh model: its class bias starts every score near 1e-4, below Ultralytics' val conf of 0.001.
    code = main(["analyze", "model=yolov8n.yaml", f"data={small_val}", "imgsz=64", "batch=8", "device=cpu",
                 f"project={tmp_path}", "name=a", "exist_ok=True"])
    assert code == 1
    assert "detected nothing" in capsys.readouterr().err
    assert not (tmp_path / "a" / "oracle.csv").exists() and not (tmp_path / "a" / "oracle.json").exists()


def test_analyze_refuses_unlabelled_validation_images(small_val, stock_pt, tmp_path, capsys):
    from pathlib import Path

    root = Path(small_val).parent
    bare = tmp_path / "bare"
    shutil.copytree(root / "images", bare / "images")  # no labels folder: every image is background
    cfg = yaml.safe_load(open(small_val))
    (bare / "bare.yaml").write_text(yaml.safe_dump({**cfg, "path": str(bare)}))
    code = main(["analyze", f"model={stock_pt}", f"data={bare / 'bare.yaml'}", "imgsz=64", "batch=8", "device=cpu",
                 f"project={tmp_path}", "name=a", "exist_ok=True"])
    assert code == 1
    assert "no ground-truth boxes" in capsys.readouterr().err
    assert not (tmp_path / "a" / "oracle.csv").exists()


def test_analyze_needs_data(capsys):
    assert main(["analyze", "model=x.pt"]) == 2 and "needs a dataset" in capsys.readouterr().err
