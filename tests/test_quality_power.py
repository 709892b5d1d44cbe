"""benchmarks/quality_power.py: the summary's paired arithmetic by hand, and a real run on a trained -gfl checkpoint."""

from __future__ import annotations

import json
import sys

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT))
from benchmarks import quality_power  # noqa: E402


def test_summary_pairs_each_checkpoint_with_its_own_a1_figure():
    results = {
        "s0": {0.0: {"mAP50-95": 50.0, "AP75": 60.0}, 1.0: {"mAP50-95": 51.0, "AP75": 60.0}},
        "s1": {0.0: {"mAP50-95": 40.0, "AP75": 50.0}, 1.0: {"mAP50-95": 43.0, "AP75": 49.0}},
    }
    table = quality_power.summary(results, [0.0, 1.0])
    # a=0: mean 45.0; deltas -1 and -3 -> mean -2, SE = sd(sqrt 2) / sqrt 2 = 1; AP75 deltas 0, +1 -> +0.5 ± 0.5
    assert "| 0 | 45.00 | -2.00 ± 1.00 | 55.00 | +0.50 ± 0.50 |" in table
    assert "| 1 | 47.00 | +0.00 ± 0.00 | 54.50 | +0.00 ± 0.00 |" in table


@pytest.mark.slow
def test_quality_power_runs_on_a_trained_dgqp_checkpoint(trained, coco128_yaml, tmp_path, capsys):
    checkpoint = str(trained("gfl") / "weights" / "last.pt")
    out = tmp_path / "power.json"
    assert quality_power.main(["--data", coco128_yaml, "--imgsz", "64", "--model", checkpoint, "--powers", "0",
                               "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record["results"][checkpoint]) == {"0", "1"}
    assert all(0 <= v <= 100 for r in record["results"][checkpoint].values() for v in r.values())
    assert "| a | mAP50-95 |" in capsys.readouterr().out


@pytest.mark.slow
def test_quality_power_refuses_a_checkpoint_without_dgqp(trained, coco128_yaml):
    checkpoint = str(trained("vfl") / "weights" / "last.pt")
    with pytest.raises(SystemExit, match="no DGQP quality branch"):
        quality_power.main(["--data", coco128_yaml, "--imgsz", "64", "--model", checkpoint])


@pytest.mark.slow
def test_quality_ranking_reads_i_and_c_at_anchors_on_their_own_class(trained, coco128_yaml):
    checkpoint = str(trained("gfl") / "weights" / "last.pt")
    # One tiny epoch from scratch scores every anchor far below the CLI's 0.05: count every anchor here.
    stats = quality_power.quality_ranking(checkpoint, coco128_yaml, 64, max_images=6, batch=4, min_score=0.0)
    assert stats["images"] == 6 and stats["anchors"] > 0
    assert 0 < stats["I_p1"] <= stats["I_p50"] <= stats["I_p99"] < 1
    assert all(stats[k] is None or -1 <= stats[k] <= 1 for k in ("spearman_I", "spearman_C", "spearman_J"))
    with pytest.raises(SystemExit, match="no anchor scores above 1"):  # nothing can score above 1
        quality_power.quality_ranking(checkpoint, coco128_yaml, 64, max_images=2, min_score=1.0)


def test_quality_power_refuses_a_negative_stats_count(capsys):
    with pytest.raises(SystemExit):
        quality_power.main(["--data", "d.yaml", "--imgsz", "64", "--model", "m.pt", "--stats", "-1"])
    assert "--stats must be >= 0" in capsys.readouterr().err
