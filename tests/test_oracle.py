"""The ranking oracle: a hand-worked re-scoring, and `analyze` on a fine-tuned model (files, oracle >= model)."""

from __future__ import annotations

import csv

import cv2
import pytest
import torch

from yolo_gfl.cli import main
from yolo_gfl.eval.oracle import anchor_points_for, oracle_rescore


def test_anchor_points_layout():
    a = anchor_points_for(64, 32, [8, 16])
    assert a.shape == (8 * 4 + 4 * 2, 2)
    torch.testing.assert_close(a[0], torch.tensor([4.0, 4.0]))
    torch.testing.assert_close(a[32], torch.tensor([8.0, 8.0]))  # first anchor of the stride-16 level


def test_rescore_hand_example():
    # Three candidates (xywh boxes, 2 classes) and one ground truth of class 1 covering [0, 0, 20, 20].
    pred = torch.tensor(
        [
            [10.0, 12.0, 30.0],  # x
            [10.0, 10.0, 30.0],  # y
            [20.0, 20.0, 4.0],  # w
            [20.0, 10.0, 4.0],  # h
            [0.3, 0.6, 0.9],  # class 0 score
            [0.2, 0.1, 0.8],  # class 1 score
        ]
    )
    anchors = torch.tensor([[10.0, 10.0], [12.0, 10.0], [30.0, 30.0]])  # third anchor lies outside the GT: negative
    gt = torch.tensor([[0.0, 0.0, 20.0, 20.0]])
    cls = torch.tensor([1.0])
    # candidate 0: box [0,0,20,20], IoU 1; candidate 1: box [2,5,22,15] -> inter 18*10=180, union 400+200-180=420
    iou1 = 180 / 420
    out = oracle_rescore(pred, gt, cls, anchors, "gt_cls_iou")
    torch.testing.assert_close(out[4:], torch.tensor([[0.0, 0.0, 0.0], [1.0, iou1, 0.0]]))
    out = oracle_rescore(pred, gt, cls, anchors, "gt_cls")
    torch.testing.assert_close(out[4:], torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]))
    out = oracle_rescore(pred, gt, cls, anchors, "gt_bbox")
    torch.testing.assert_close(out[:4, :2], torch.tensor([[10.0, 10.0], [10.0, 10.0], [20.0, 20.0], [20.0, 20.0]]))
    torch.testing.assert_close(out[:, 2], pred[:, 2])  # the negative keeps its box
    torch.testing.assert_close(out[4:], pred[4:])  # gt_bbox keeps the scores
    torch.testing.assert_close(oracle_rescore(pred, gt, cls, anchors, "as_is"), pred)
    empty = oracle_rescore(pred, torch.zeros(0, 4), torch.zeros(0), anchors, "gt_cls_iou")
    assert (empty[4:] == 0).all()
    with pytest.raises(ValueError, match="gt_cls_iou"):
        oracle_rescore(pred, gt, cls, anchors, "oracle")


@pytest.mark.slow
def test_analyze_on_finetuned_model(finetuned, coco128_yaml, tmp_path, capsys):
    code = main(["analyze", f"model={finetuned}", f"data={coco128_yaml}", "imgsz=160", "batch=32", "device=cpu",
                 f"project={tmp_path}", "name=a", "exist_ok=True"])
    assert code == 0
    run = tmp_path / "a"  # exist_ok=True: the run folder keeps its name
    rows = {r["mode"]: {k: float(v) for k, v in r.items() if k != "mode"} for r in csv.DictReader(open(run / "oracle.csv"))}
    assert set(rows) == {"as_is", "gt_cls", "gt_cls_iou", "gt_bbox"}
    assert rows["as_is"]["AP"] > 0.1
    assert rows["gt_cls_iou"]["AP"] >= rows["as_is"]["AP"]  # the IoU-aware oracle ranks at least as well
    assert rows["gt_cls_iou"]["mAP50-95"] >= rows["as_is"]["mAP50-95"]
    for name in ("oracle.png", "calibration.png"):
        assert cv2.imread(str(run / name)) is not None
    assert (run / "calibration.csv").exists()


def test_analyze_needs_data(capsys):
    assert main(["analyze", "model=x.pt"]) == 2 and "needs a dataset" in capsys.readouterr().err
