"""benchmarks/distribution_rank.py: the sharpness q by hand, the re-scoring it applies, the summary's paired
arithmetic, and a real run on Ultralytics' COCO checkpoint."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from .conftest import ROOT

sys.path.insert(0, str(ROOT))
from benchmarks import distribution_rank  # noqa: E402


def test_sharpness_by_hand():
    # reg_max 4, one anchor: three sides with bins 0.7 / 0.2 / 0.05 / 0.05, one side uniform (0.25 each)
    sharp = torch.tensor([0.7, 0.2, 0.05, 0.05]).log()
    flat = torch.zeros(4)
    boxes = torch.cat([sharp, sharp, flat, sharp]).view(1, 16, 1)
    top1 = distribution_rank.sharpness(boxes, 4, "top1")
    top2 = distribution_rank.sharpness(boxes, 4, "top2")
    assert top1.shape == (1, 1)
    assert top1.item() == pytest.approx((3 * 0.7 + 0.25) / 4)  # 0.5875
    assert top2.item() == pytest.approx((3 * 0.9 + 0.5) / 4)  # 0.8


def test_rank_by_sharpness_multiplies_each_class_score_by_q_to_the_power(stock_pt):
    from ultralytics import YOLO

    img = torch.rand(1, 3, 64, 64)
    plain = YOLO(stock_pt)
    y0, raw = plain.model.eval()(img)
    ranked = YOLO(stock_pt)
    distribution_rank.rank_by_sharpness(ranked, "top2", 2.0)
    y1, _ = ranked.model.eval()(img)
    q = distribution_rank.sharpness(raw["boxes"], 16, "top2")
    assert torch.allclose(y1[:, :4], y0[:, :4])  # boxes untouched
    assert torch.allclose(y1[:, 4:], y0[:, 4:] * q.unsqueeze(1) ** 2, atol=1e-6)
    assert (q > 0).all() and (q <= 1).all() and not torch.allclose(y1[:, 4:], y0[:, 4:])
    assert type(ranked.model.model[-1])._inference is type(plain.model.model[-1])._inference  # the class is untouched


def test_summary_pairs_each_checkpoint_with_its_own_score():
    rows = [{"model": "s0", "quality": "own score", "a": 0.0, "mAP50-95": 50.0, "AP75": 60.0},
            {"model": "s0", "quality": "top1", "a": 1.0, "mAP50-95": 51.0, "AP75": 60.0},
            {"model": "s1", "quality": "own score", "a": 0.0, "mAP50-95": 40.0, "AP75": 50.0},
            {"model": "s1", "quality": "top1", "a": 1.0, "mAP50-95": 43.0, "AP75": 49.0}]
    table = distribution_rank.summary(rows, ["top1"], [1.0])
    # deltas +1 and +3: mean +2, SE = sd (sqrt 2) / sqrt 2 = 1; AP75 deltas 0 and -1: -0.5 ± 0.5
    assert "| own score | 0 | 45.00 | | |" in table
    assert "| top1 | 1 | 47.00 | +2.00 ± 1.00 | -0.50 ± 0.50 |" in table


@pytest.mark.slow
def test_distribution_rank_runs_on_the_coco_checkpoint(stock_pt, coco128_yaml, tmp_path, capsys):
    out = tmp_path / "rank.json"
    assert distribution_rank.main(["--data", coco128_yaml, "--imgsz", "64", "--model", stock_pt, "--powers", "2",
                                   "--qualities", "top1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["quality"], r["a"]) for r in rows] == [("own score", 0.0), ("top1", 2.0)]
    assert all(0 <= r[k] <= 100 for r in rows for k in ("mAP50-95", "AP75"))
    assert "| top1 | 2 |" in capsys.readouterr().out


def test_distribution_rank_refuses_bad_requests(tmp_path, capsys):
    with pytest.raises(SystemExit):
        distribution_rank.main(["--data", "x.yaml", "--model", str(tmp_path / "none.pt")])
    assert "no such checkpoint(s)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        distribution_rank.main(["--data", "x.yaml", "--model", str(tmp_path / "none.pt"), "--qualities", "top3"])
    assert "--qualities from top1, top2" in capsys.readouterr().err
