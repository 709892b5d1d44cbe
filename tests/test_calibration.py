"""Score-IoU calibration: matching, correlations against hand values, decile table, written files, degenerate input."""

from __future__ import annotations

import csv
import json
import math
import os

os.environ["YOLO_OFFLINE"] = "1"  # nothing may download at run time

from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from yolo_gfl.eval import (  # noqa: E402
    calibration_report,
    collect_pairs,
    match_detections,
    pearson,
    rankdata_average,
    spearman,
    top_per_object,
)

rng = np.random.default_rng(0)


def strict_json(path: Path):
    """Load JSON, refusing NaN/Infinity (which json.dump writes by default but is not valid JSON)."""

    def refuse(token):
        raise ValueError(f"invalid JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


# ---------------------------------------------------------------------------------------------------------- matching
def test_match_detections_same_class_best_iou():
    gts = np.array([[0, 0, 10, 10, 0], [20, 0, 30, 10, 1]], dtype=float)  # A (class 0), B (class 1)
    dets = np.array(
        [
            [0, 0, 10, 10, 0.9, 0],  # A exactly -> IoU 1
            [0, 0, 10, 5, 0.6, 0],  # top half of A -> IoU 50/100 = 0.5 (a duplicate of A: kept too)
            [20, 0, 30, 10, 0.8, 0],  # exactly on B but class 0: no same-class overlap -> excluded
            [50, 50, 60, 60, 0.7, 1],  # overlaps nothing -> excluded
            [25, 0, 35, 10, 0.4, 1],  # half over B -> IoU 50 / 150 = 1/3
        ]
    )
    pairs = match_detections(dets, gts)
    np.testing.assert_allclose(pairs, [[0.9, 1.0], [0.6, 0.5], [0.4, 1 / 3]])
    # Same answer from tensors and from the tuple forms.
    t = torch.from_numpy(dets)
    np.testing.assert_allclose(match_detections((t[:, :4], t[:, 4], t[:, 5]), (gts[:, :4], gts[:, 4])), pairs)
    # No GT or no detections: no pairs.
    assert match_detections(dets, np.zeros((0, 5))).shape == (0, 2)
    assert match_detections(np.zeros((0, 6)), gts).shape == (0, 2)
    # Over images: concatenated.
    assert collect_pairs([dets, dets], [gts, np.zeros((0, 5))]).shape == (3, 2)


# ---------------------------------------------------------------------------------------------------- correlations
def test_perfect_and_anti_correlation():
    iou = rng.uniform(0.05, 1.0, 300)
    report = calibration_report((iou.copy(), iou))
    assert report["pearson"] == pytest.approx(1.0, abs=1e-12) and report["spearman"] == pytest.approx(1.0, abs=1e-12)
    assert report["count"] == 300 and report["warning"] is None
    report = calibration_report(np.stack([1 - iou, iou], 1))
    assert report["pearson"] == pytest.approx(-1.0, abs=1e-12)
    assert report["spearman"] == pytest.approx(-1.0, abs=1e-12)
    # Spearman sees only the order: a monotone but non-linear relation still gives 1, Pearson less.
    report = calibration_report((iou**4, iou))
    assert report["spearman"] == pytest.approx(1.0, abs=1e-12) and report["pearson"] < 0.99


def test_spearman_with_ties_by_hand():
    x, y = np.array([1.0, 2.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0, 4.0])
    # Average ranks: x -> [1, 2.5, 2.5, 4], y -> [1, 3, 2, 4]; both have mean 2.5.
    # Deviations: dx = [-1.5, 0, 0, 1.5], dy = [-1.5, 0.5, -0.5, 1.5].
    # sum dx*dy = 2.25 + 0 + 0 + 2.25 = 4.5; sum dx^2 = 4.5; sum dy^2 = 2.25 + 0.25 + 0.25 + 2.25 = 5.
    # rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9).
    np.testing.assert_array_equal(rankdata_average(x), [1, 2.5, 2.5, 4])
    np.testing.assert_array_equal(rankdata_average([3, 1, 3, 3, 2]), [4, 1, 4, 4, 2])
    assert spearman(x, y) == pytest.approx(math.sqrt(0.9), abs=1e-12)
    assert calibration_report((x, y))["spearman"] == pytest.approx(math.sqrt(0.9), abs=1e-12)
    # Pearson against numpy's.
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)


# ------------------------------------------------------------------------------------------------------ decile table
def test_decile_table_equal_count_and_ties():
    scores = rng.permutation(np.arange(100) / 100)
    table = calibration_report((scores, scores))["deciles"]
    assert [row["count"] for row in table] == [10] * 10
    assert [row["bin"] for row in table] == list(range(10))
    assert table[0]["score_min"] == 0.0 and table[-1]["score_max"] == 0.99
    assert table[3]["score_mean"] == pytest.approx(0.345) and table[3]["iou_mean"] == pytest.approx(0.345)

    # 60 tied scores out of 100: the tie lands whole in one bin, the distinct scores around it still fill theirs.
    scores = np.r_[np.full(60, 0.5), np.linspace(0.6, 0.99, 40)]
    table = calibration_report((scores, rng.uniform(size=100)))["deciles"]
    assert sum(row["count"] for row in table) == 100
    tied = [row for row in table if row["score_min"] == row["score_max"] == 0.5]
    assert len(tied) == 1 and tied[0]["count"] == 60
    assert all(row["count"] == 10 for row in table if row is not tied[0])


# --------------------------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("n", [200, 3000])  # scatter, and the 2-D histogram used for many pairs
def test_files_written(tmp_path: Path, n: int):
    iou = rng.uniform(0.1, 1.0, n)
    score = np.clip(iou + rng.normal(0, 0.1, n), 0, 1)
    report = calibration_report(np.stack([score, iou], 1), save_dir=tmp_path, name="calib")

    png = cv2.imread(str(tmp_path / "calib.png"))
    assert png is not None and png.shape[0] > 100 and png.shape[1] > 100
    with open(tmp_path / "calib.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and sum(int(r["count"]) for r in rows) == n
    assert float(rows[0]["iou_mean"]) == pytest.approx(report["deciles"][0]["iou_mean"])
    saved = strict_json(tmp_path / "calib.json")
    assert saved["pearson"] == pytest.approx(report["pearson"]) and saved["count"] == n
    assert 0.5 < report["pearson"] <= 1.0


# ----------------------------------------------------------------------------------------------------- degenerate
@pytest.mark.parametrize(
    "pairs",
    [
        np.zeros((0, 2)),  # nothing matched
        np.array([[0.7, 0.8]]),  # a single pair
        np.array([[0.5, 0.2], [0.5, 0.9], [0.5, 0.4]]),  # constant scores
        np.array([[0.2, 0.5], [0.9, 0.5]]),  # constant IoUs
        np.array([[0.3, np.nan], [np.inf, 0.5]]),  # nothing finite
    ],
)
def test_degenerate_inputs_give_valid_json(tmp_path: Path, pairs: np.ndarray):
    report = calibration_report(pairs, save_dir=tmp_path)
    assert report["pearson"] is None and report["spearman"] is None  # undefined, said so, never NaN
    assert isinstance(report["warning"], str) and report["warning"]
    assert strict_json(tmp_path / "calibration.json") == json.loads(json.dumps(report))
    assert cv2.imread(str(tmp_path / "calibration.png")) is not None
    assert (tmp_path / "calibration.csv").exists()


def test_kept_detections_and_counts_by_hand():
    """The 'kept' ranking uses only pairs scoring >= 0.25; per-image counts include unmatched detections."""
    pairs = np.array([[0.9, 0.8], [0.5, 0.9], [0.3, 0.4], [0.2, 0.95], [0.1, 0.1]])
    dets = [np.array([[0, 0, 1, 1, 0.9, 0], [0, 0, 1, 1, 0.2, 0], [0, 0, 1, 1, 0.01, 1]]),  # 1 kept of 3
            np.array([[0, 0, 1, 1, 0.5, 0]]), np.zeros((0, 6))]  # 1 kept of 1; none
    report = calibration_report(pairs, detections=dets)
    kept = report["kept"]
    assert kept["conf"] == 0.25 and kept["count"] == 3
    # kept scores 0.9, 0.5, 0.3 -> ranks 3, 2, 1; their IoUs 0.8, 0.9, 0.4 -> ranks 2, 3, 1: rho = 1 - 6*2/(3*8) = 0.5
    assert kept["spearman"] == pytest.approx(0.5, abs=1e-12)
    assert report["detections_per_image"] == pytest.approx(4 / 3)
    assert report["kept_per_image"] == pytest.approx(2 / 3)
    assert calibration_report(pairs, keep_conf=0.95)["kept"] == {"conf": 0.95, "count": 0, "spearman": None,
                                                                "pearson": None}
    assert "detections_per_image" not in calibration_report(pairs)


def test_top_per_object_ranks_a_matched_population_by_hand():
    """Each image's top-K detections, K its number of objects: the same population size for every detector, so weak
    boxes a detector lets through below them do not move the figure."""
    gts = [np.array([[0, 0, 10, 10, 0], [20, 0, 30, 10, 0]], float),  # two objects: K = 2
           np.array([[0, 0, 10, 10, 1]], float),  # one object: K = 1
           np.zeros((0, 5))]  # none: K = 0
    dets = [np.array([[0, 0, 10, 10, 0.9, 0],  # IoU 1 with the first object
                      [0, 0, 10, 5, 0.3, 0],  # IoU 0.5, outside the top 2
                      [20, 0, 30, 5, 0.8, 0],  # IoU 0.5 with the second
                      [20, 0, 30, 10, 0.1, 0],  # IoU 1 but scored low: outside the top 2
                      [50, 50, 60, 60, 0.05, 0]], float),
            np.array([[0, 0, 10, 8, 0.7, 1], [0, 0, 10, 10, 0.6, 1]], float),  # IoU 0.8 is the top 1
            np.array([[0, 0, 5, 5, 0.95, 0]], float)]  # an image without objects keeps none
    top = top_per_object(dets, gts)
    assert [len(t) for t in top] == [2, 1, 0]
    np.testing.assert_allclose(top[0][:, 4], [0.9, 0.8])
    report = calibration_report(collect_pairs(dets, gts), detections=dets, ground_truth=gts)
    # Top pairs (0.9, 1.0), (0.8, 0.5), (0.7, 0.8): score ranks 3, 2, 1, IoU ranks 3, 1, 2 -> rho = 1 - 6*2/(3*8) = 0.5
    assert report["top_per_object"]["count"] == 3
    assert report["top_per_object"]["spearman"] == pytest.approx(0.5, abs=1e-12)
    assert report["count"] == 6 and report["spearman"] != pytest.approx(0.5)  # all matched detections rank otherwise
    # More weak boxes below the top K change the all-detection figure, not this one.
    weak = [np.concatenate([d, np.array([[0, 0, 10, 9, 0.02, c]] * 5, float)]) for d, c in zip(dets, (0, 1, 0))]
    more = calibration_report(collect_pairs(weak, gts), detections=weak, ground_truth=gts)
    assert more["top_per_object"] == report["top_per_object"] and more["spearman"] != report["spearman"]
    with pytest.raises(ValueError, match="needs detections="):
        calibration_report(collect_pairs(dets, gts), ground_truth=gts)
    with pytest.raises(ValueError, match="3 detection entries but 2"):
        top_per_object(dets, gts[:2])
