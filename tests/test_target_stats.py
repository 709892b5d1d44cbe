"""benchmarks/target_stats.py, the probe behind cls_target_gain's choice of gains, on real images."""

from __future__ import annotations

import sys

import pytest


from .conftest import ROOT

sys.path.insert(0, str(ROOT))
from benchmarks import target_stats  # noqa: E402


def test_target_stats_reports_the_share_of_positives_each_gain_caps(coco128_yaml, stock_pt, capsys):
    s = target_stats.target_stats(stock_pt, coco128_yaml, imgsz=160, batches=1, batch=4, gains=(0.5, 1.25, 1.5, 4.0))
    assert s["positives"] > 0 and s["objects"] > 0
    assert 0 < s["mean_tal_target"] <= 1 and abs(s["mean_tal_target"] - s["tal_sum"] / s["positives"]) < 1e-9
    assert s["capped@0.5"] == 0.0  # TAL's targets are at most 1, so none reaches 1 / 0.5 = 2
    shares = [s[f"capped@{g:g}"] for g in (0.5, 1.25, 1.5, 4.0)]
    assert shares == sorted(shares) and 0 <= shares[-1] <= 1, shares  # a larger gain caps at least as many

    assert target_stats.main(["--model", stock_pt, "--data", coco128_yaml, "--imgsz", "96", "--batches", "1",
                              "--batch", "2", "--gains", "1.25,1.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    header, row = [line for line in out if line.split()[:1] in (["model"], ["yolov8n.pt"])]
    assert header.split()[-2:] == ["capped@1.25", "capped@1.5"] and row.endswith("%")


def test_target_stats_measures_other_tal_exponents(coco128_yaml, stock_pt, capsys):
    """With TAL's score exponent at 0 and its IoU exponent at 1 a soft target is the box's (C)IoU with its object, so
    the targets rank the positives as their IoU does; Ultralytics' own s^0.5 x IoU^6 ranks them less alike."""
    own = target_stats.target_stats(stock_pt, coco128_yaml, imgsz=160, batches=1, batch=4)
    iou_only = target_stats.target_stats(stock_pt, coco128_yaml, imgsz=160, batches=1, batch=4, tal=(0.0, 1.0))
    assert iou_only["target_iou_spearman"] > 0.95  # CIoU (TAL's overlap) against IoU: nearly, not exactly, the same
    assert -1 <= own["target_iou_spearman"] < iou_only["target_iou_spearman"]

    assert target_stats.main(["--model", stock_pt, "--data", coco128_yaml, "--imgsz", "96", "--batches", "1",
                              "--batch", "2", "--tal", "0.5:6,0:1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("yolov8n.pt")]
    assert [r[1] for r in rows] == ["0.5:6", "0:1"]
    with pytest.raises(SystemExit):
        target_stats.main(["--model", stock_pt, "--data", coco128_yaml, "--tal", "0.5"])
    atss = "yolov8n-vfnet.yaml"  # assigner=atss: no exponents to set
    with pytest.raises(ValueError, match="no TAL exponents"):
        target_stats.target_stats(atss, coco128_yaml, imgsz=64, batches=1, batch=2, tal=(0.0, 1.0))
