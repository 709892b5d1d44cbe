"""Tests of the model zoo: a tiny real matrix, its table and plots, resume without redoing cells, eval_only, bad input.

Every training here is real (Ultralytics' trainer, one epoch on a 16-image synthetic set at 64 px), run as the zoo
runs it: one subprocess per cell.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from yolo_gfl.data import synthetic_dataset
from yolo_gfl.zoo import ZOO_CSV_COLUMNS, ZooCellError, ZooError, default_models, run_zoo

TINY = dict(epochs=1, imgsz=64, batch=8, workers=0, device="cpu", latency_runs=5)
MODELS = ["yolov8n.yaml", "yolov8n-gfl.yaml"]
KEYS = ["yolov8n-s0", "yolov8n-gfl-s0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    return str(synthetic_dataset(n_train=16, n_val=8, imgsz=64, seed=0, root=tmp_path_factory.mktemp("ds"), progress=False))


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, data):
    """A finished 2-model x 1-seed zoo: (folder, returned rows). Tests copy it before changing anything."""
    project = tmp_path_factory.mktemp("zoo")
    rows = run_zoo(models=MODELS, data=data, seeds=0, project=project, name="tiny", verbose=False, **TINY)
    return project / "tiny", rows


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_tiny_zoo_writes_table_csv_and_plots(zoo):
    folder, rows = zoo
    with open(folder / "zoo.csv") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == ZOO_CSV_COLUMNS
        table = list(reader)
    assert [(r["model"], r["seed"]) for r in table] == [("yolov8n", "0"), ("yolov8n-gfl", "0")]
    assert [r["model"] for r in rows] == ["yolov8n", "yolov8n-gfl"]
    for r in table:
        for col in ("mAP50", "mAP75", "mAP50-95", "coco_AP", "coco_AP50", "spearman", "params", "GFLOPs",
                    "latency_ms", "img_per_s", "cell_latency_ms", "epoch_s", "train_img_per_s", "epoch_s_with_val",
                    "peak_mem_MB"):
            assert math.isfinite(float(r[col])), (r["model"], col, r[col])
        assert 0 <= float(r["mAP50-95"]) <= float(r["mAP50"]) <= 1
        assert -1 <= float(r["spearman"]) <= 1
        assert float(r["latency_ms"]) > 0 and float(r["epoch_s"]) > 0 and float(r["peak_mem_MB"]) > 100
        assert r["peak_mem_kind"] == "cpu_peak_rss" and r["epochs"] == "1" and r["imgsz"] == "64"
        assert Path(r["weights"]).is_file() and r["weights"].endswith("last.pt")  # the final weights by default
        assert float(r["train_img_per_s"]) == pytest.approx(16 / float(r["epoch_s"]), rel=1e-6)  # 16 train images
    speed = json.loads((folder / "speed.json").read_text())  # every model timed in one process, interleaved
    assert set(speed) == {"yolov8n", "yolov8n-gfl"} and all(v["runs"] == 5 for v in speed.values())
    assert [float(r["latency_ms"]) for r in table] == [speed[r["model"]]["latency_ms"] for r in table]
    stock, gfl = table
    assert int(gfl["params"]) > int(stock["params"])  # DGQP's few extra weights
    md = (folder / "zoo.md").read_text().splitlines()
    header = [c.strip() for c in md[0].strip("|").split("|")]
    assert header[:7] == ["model", "seeds", "mAP50", "mAP75", "mAP50-95", "COCO AP", "Spearman"]
    assert {"params (M)", "GFLOPs", "latency (ms)", "epoch (s)", "peak mem (MB)"} <= set(header)
    body = [ln for ln in md[2:] if ln.startswith("| yolov8n")]
    assert [ln.split("|")[1].strip() for ln in body] == ["yolov8n", "yolov8n-gfl"]
    assert "sample standard deviation" in (folder / "zoo.md").read_text()
    for png in ("zoo_ap_latency.png", "zoo_pr.png"):
        assert (folder / png).read_bytes()[:4] == b"\x89PNG"
    for key in KEYS:
        cell = json.loads((folder / "cells" / f"{key}.json").read_text())
        assert cell["complete"] is True and cell["spec"]["seed"] == 0 and cell["spec"]["args"]["batch"] == 8
        assert len(cell["pr_curve"]["recall"]) == len(cell["pr_curve"]["precision"]) == 100
        assert (folder / "cells" / key / "val" / "BoxPR_curve.png").exists()
        assert (folder / "cells" / key / "val" / "coco_eval.json").exists()
    assert default_models()[:4] == ["yolov8n.yaml", "yolov8n-vfl.yaml", "yolov8n-qfl.yaml", "yolov8n-gfl.yaml"]


@pytest.mark.slow
def test_resume_redoes_only_the_missing_cell(zoo, data, tmp_path, capsys):
    folder = tmp_path / "tiny"
    shutil.copytree(zoo[0], folder)
    kept, redo = (folder / "cells" / k for k in KEYS)
    shutil.rmtree(redo)  # the second cell never finished: no folder, no JSON
    (redo.parent / f"{redo.name}.json").unlink()
    before = mtimes(kept)
    before_json = (kept.parent / f"{kept.name}.json").read_bytes()
    before_log = (kept.parent / f"{kept.name}.log").read_bytes()
    rows = run_zoo(models=MODELS, data=data, seeds=0, project=tmp_path, name="tiny", **TINY)
    out = capsys.readouterr().out
    assert f"{KEYS[0]}: done before, kept" in out and f"{KEYS[1]}: training" in out
    assert mtimes(kept) == before  # the finished cell's weights, results and plots are untouched
    assert (kept.parent / f"{kept.name}.json").read_bytes() == before_json
    assert (kept.parent / f"{kept.name}.log").read_bytes() == before_log  # it did not run at all
    assert (redo / "train" / "weights" / "best.pt").is_file()  # only the missing cell trained
    assert "cell yolov8n-gfl-s0" in (redo.parent / f"{redo.name}.log").read_text()
    assert [r["model"] for r in rows] == ["yolov8n", "yolov8n-gfl"]
    with open(folder / "zoo.csv") as f:
        assert len(list(csv.DictReader(f))) == 2


@pytest.mark.slow
def test_interrupted_training_resumes_from_last_pt(data, tmp_path):
    """A cell killed after its first of two epochs continues from last.pt instead of starting over."""
    from yolo_gfl import YOLOGFL

    cell_dir = tmp_path / "zoo" / "cells" / "yolov8n-s0"
    model = YOLOGFL("yolov8n.yaml")

    def stop(trainer):
        raise KeyboardInterrupt("simulated kill after epoch 1")

    model.add_callback("on_fit_epoch_end", stop)
    with pytest.raises(KeyboardInterrupt):
        model.train(data=data, epochs=2, imgsz=64, seed=0, deterministic=True, project=str(cell_dir), name="train",
                    exist_ok=True, plots=False, batch=8, workers=0, device="cpu")
    assert (cell_dir / "train" / "weights" / "last.pt").is_file()
    rows = run_zoo(models="yolov8n.yaml", data=data, seeds=0, project=tmp_path, name="zoo", verbose=False,
                   **{**TINY, "epochs": 2})
    cell = json.loads((cell_dir.parent / "yolov8n-s0.json").read_text())
    assert cell["resumed"] is True and len(cell["epoch_times_s"]) == 1  # only epoch 2 ran in the zoo
    assert "resuming the interrupted training" in (cell_dir.parent / "yolov8n-s0.log").read_text()
    results = (cell_dir / "train" / "results.csv").read_text().strip().splitlines()
    assert [ln.split(",")[0].strip() for ln in results[1:]] == ["1", "2"]
    assert rows[0]["epochs"] == 2


@pytest.mark.slow
def test_eval_only_compares_checkpoints(zoo, data, tmp_path):
    folder, trained_rows = zoo
    weights = [r["weights"] for r in trained_rows]
    rows = run_zoo(models=",".join(weights), data=data, eval_only=True, project=tmp_path, name="eval",
                   verbose=False, **{k: v for k, v in TINY.items() if k != "epochs"})
    assert [(r["model"], r["seed"]) for r in rows] == [("yolov8n", 0), ("yolov8n-gfl", 0)]  # read from checkpoints
    for new, old in zip(rows, trained_rows):  # same weights, same evaluation: the same figures
        assert new["mAP50-95"] == pytest.approx(old["mAP50-95"], abs=1e-9)
        assert new["coco_AP"] == pytest.approx(old["coco_AP"], abs=1e-9)
        assert new["params"] == old["params"] and new["epoch_s"] is None
    assert not list((tmp_path / "eval" / "cells").glob("*/train"))  # nothing was trained
    assert (tmp_path / "eval" / "zoo.md").exists()


@pytest.mark.slow
def test_parallel_cells_give_the_serial_figures(zoo, data, tmp_path, capsys):
    """jobs=2 runs both cells at once, each in its own process; seeded and deterministic, they score as jobs=1 did."""
    rows = run_zoo(models=MODELS, data=data, seeds=0, project=tmp_path, name="par", jobs=2, **TINY)
    out = capsys.readouterr().out
    assert out.count(": training (log:") == 2
    serial = {r["model"]: r for r in zoo[1]}
    for r in rows:
        for key in ("mAP50", "mAP50-95", "coco_AP", "spearman", "params"):
            assert r[key] == pytest.approx(serial[r["model"]][key], abs=1e-9), (r["model"], key)
    assert json.loads((tmp_path / "par" / "zoo.json").read_text())["jobs"] == 2
    assert "cells ran up to 2 at a time" in (tmp_path / "par" / "zoo.md").read_text()
    assert "at a time" not in (zoo[0] / "zoo.md").read_text()  # the serial zoo says nothing of the kind
    with pytest.raises(ZooError, match="jobs"):
        run_zoo(models=MODELS, data=data, seeds=0, project=tmp_path, name="bad", jobs=0, **TINY)


@pytest.mark.slow
def test_parallel_cells_find_the_label_caches_built(tmp_path, monkeypatch):
    """With jobs=2 the driver scans a fresh data set's labels before any cell starts: two cells building the same
    label cache at once race, and one stops (FileNotFoundError in Ultralytics' save_dataset_cache_file)."""
    import yolo_gfl.zoo.runner as runner

    fresh = str(synthetic_dataset(n_train=4, n_val=2, imgsz=64, seed=1, root=tmp_path / "ds", progress=False))
    caches = lambda: sorted(p.name for p in (tmp_path / "ds").rglob("*.cache"))  # noqa: E731
    assert caches() == []
    seen = []
    monkeypatch.setattr(runner.subprocess, "Popen", lambda *a, **k: seen.append(caches()) or _Exited())
    with pytest.raises(ZooCellError):  # the stand-in cells write no result
        run_zoo(models=MODELS, data=fresh, seeds=0, project=tmp_path, name="caches", jobs=2, verbose=False, **TINY)
    assert len(seen) == 2 and seen[0] == seen[1] == ["train.cache", "val.cache"], seen
    runner.build_label_caches("coco128.yaml")  # a named set is left to the cells (it may have to be fetched)


class _Exited:
    returncode = 1

    def poll(self):
        return 1


@pytest.mark.slow
def test_bad_requests_fail_up_front(zoo, data, tmp_path):
    folder = zoo[0]
    with pytest.raises(ZooError, match="other settings"):  # same folder, other schedule: refuse to mix the two
        run_zoo(models=MODELS, data=data, seeds=0, project=folder.parent, name=folder.name, **{**TINY, "epochs": 2})
    with pytest.raises(ZooError, match="seeds must be whole numbers"):
        run_zoo(models=MODELS, data=data, seeds="0,one", project=tmp_path)
    with pytest.raises(ZooError, match="use the zoo's own 'seeds='"):
        run_zoo(models=MODELS, data=data, seed=1, project=tmp_path)
    with pytest.raises(ZooError, match="data= is required"):
        run_zoo(models=MODELS, project=tmp_path)
    with pytest.raises(ZooError, match="eval_only=True evaluates checkpoints"):
        run_zoo(models=MODELS, data=data, eval_only=True, project=tmp_path)
    assert not (tmp_path / "zoo").exists()  # nothing was started


def test_cli_bad_argument_exits_2_naming_the_fix(data, tmp_path, capsys):
    base = [sys.executable, "-m", "yolo_gfl", "zoo", f"data={data}", f"project={tmp_path}", "epochs=1"]
    p = subprocess.run(base + ["models=yolov8n.yaml,yolov8n-nope.yaml"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "yolov8n-nope.yaml" in p.stderr and "yolov8-gfl.yaml" in p.stderr  # the bad name and the valid ones
    from yolo_gfl.cli import main  # the same parsing in-process (a second interpreter start costs seconds)

    assert main(base[3:] + ["seeds=0,x"]) == 2
    assert "seeds=0,1,2" in capsys.readouterr().err
    assert not (tmp_path / "zoo").exists()


@pytest.mark.parametrize("family,models", [
    ("yolo11", ["yolo11n.yaml", "yolo11n-vfl.yaml", "yolo11n-qfl.yaml", "yolo11n-gfl.yaml", "yolo11n-vfnet.yaml"]),
    ("yolov8s", ["yolov8s.yaml", "yolov8s-vfl.yaml", "yolov8s-qfl.yaml", "yolov8s-gfl.yaml", "yolov8s-vfnet.yaml"]),
])
def test_models_family_compares_stock_with_its_variants(family, models, data):
    from yolo_gfl.zoo.request import check_request

    request = check_request(family, data, 1, 0, 64, "zoo", False, 1, 1, 1, {})
    assert request.models == models
    assert [c.key.split("-s0")[0] for c in request.cells] == [m.removesuffix(".yaml") for m in models]


def test_cpu_name_carries_family_and_model():
    """Two machines that both call themselves 'AMD EPYC' trained one cell to different figures: the record's machine
    names the CPU family and model too, read from the first processor of /proc/cpuinfo."""
    from yolo_gfl.zoo.measure import cpu_name

    info = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n\n"
            "processor\t: 1\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: Other\n")
    assert cpu_name(info) == "AMD EPYC (family 26, model 2)"
    assert cpu_name("processor\t: 0\nmodel name\t: Some CPU\n") == "Some CPU"
    assert cpu_name("processor\t: 0\nvendor_id\t: ARM\n") is None


def test_weights_and_modes_are_checked_and_carried_by_each_cell(data):
    from yolo_gfl.zoo.request import ZooError, check_request

    def request(**kw):
        return check_request(MODELS, data, 1, 0, 64, "z", False, 1, 1, 1, {}, **kw)

    default = request()
    assert default.weights == "last" and all(c.spec["weights"] == "last" for c in default.cells)
    assert "inference_modes" not in default.cells[0].spec
    picked = request(weights="best", modes="hard,vote-quality")
    assert all(c.spec["weights"] == "best" for c in picked.cells)
    assert picked.cells[0].spec["inference_modes"] == {"hard": {"nms": "hard"},
                                                       "vote-quality": {"nms": "vote", "vote_weight": "quality"}}
    with pytest.raises(ZooError, match="weights='middle' must be last"):
        request(weights="middle")
    with pytest.raises(ZooError, match="unknown: fast"):
        request(modes="hard,fast")
    with pytest.raises(ZooError, match="vote_sigma"):
        request(modes={"wide": {"nms": "vote", "vote_sigma": -1}})


@pytest.mark.slow
def test_modes_asked_for_later_are_evaluated_on_the_finished_weights(zoo, data, tmp_path, capsys):
    """Rerun with more ``modes=``: each finished cell gets only the new modes, from its weights, and trains nothing;
    a mode it has under the same name but other options is a clash, refused."""
    folder = tmp_path / "tiny"
    shutil.copytree(zoo[0], folder)

    def cells() -> list[dict]:
        return [json.loads((folder / "cells" / f"{k}.json").read_text()) for k in KEYS]

    run_zoo(models=MODELS, data=data, seeds=0, project=tmp_path, name="tiny", modes="hard", **TINY)
    first = cells()  # the fixture's cells had no modes: "hard" was added to each
    assert all(set(c["inference"]) == {"hard"} for c in first)
    weights = {k: (folder / "cells" / k / "train" / "weights" / "last.pt") for k in KEYS}
    trained = {k: w.stat().st_mtime_ns for k, w in weights.items()}
    capsys.readouterr()
    rows = run_zoo(models=MODELS, data=data, seeds=0, project=tmp_path, name="tiny", modes="hard,vote-overlap",
                   **TINY)
    out = capsys.readouterr().out
    assert all(f"{k}: evaluating vote-overlap on its weights (not trained again)" in out for k in KEYS), out
    assert {k: w.stat().st_mtime_ns for k, w in weights.items()} == trained
    for row, cell, before in zip(rows, cells(), first):
        assert set(cell["inference"]) == {"hard", "vote-overlap"}
        assert cell["inference"]["hard"] == before["inference"]["hard"]  # kept, not evaluated again
        assert row["mAP50-95"] == before["mAP50-95"] and cell["finished_at"] == before["finished_at"]
        assert set(cell["spec"]["inference_modes"]) == {"hard", "vote-overlap"}
    capsys.readouterr()
    run_zoo(models=MODELS, data=data, seeds=0, project=tmp_path, name="tiny", modes="hard,vote-overlap", **TINY)
    assert "evaluating" not in capsys.readouterr().out  # nothing left to add
    with pytest.raises(ZooError, match="inference mode hard"):
        run_zoo(models=MODELS, data=data, seeds=0, project=tmp_path, name="tiny",
                modes={"hard": {"nms": "soft"}}, **TINY)
