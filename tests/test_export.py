"""ONNX export of every variant: outputs match PyTorch on real images; the file predicts through plain `yolo`. The
package's up-front format check (yolo_gfl.export) and the benchmarks' verification harness
(benchmarks/export_check.py, which the export table uses)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from yolo_gfl import YOLOGFL

from .conftest import ATOL, letterboxed

pytestmark = pytest.mark.slow



@pytest.mark.parametrize("variant", ["gfl", "qfl", "vfl"])
def test_onnx_matches_pytorch_on_real_images(variant, trained, val_images):
    import onnxruntime as ort

    best = trained(variant) / "weights" / "best.pt"
    onnx_file = YOLOGFL(best).export(format="onnx", imgsz=96, dynamic=True, device="cpu")
    x = letterboxed(val_images, 96)
    session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})[0]
    model = YOLOGFL(best).model.float().fuse().eval()
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x))[0].numpy()
    assert onnx_out.shape == torch_out.shape == (len(val_images), 84, 189)
    np.testing.assert_allclose(onnx_out, torch_out, atol=ATOL, rtol=0)


def test_torchscript_export(trained, val_images):
    best = trained("gfl") / "weights" / "best.pt"
    ts_file = YOLOGFL(best).export(format="torchscript", imgsz=96, device="cpu")
    x = torch.from_numpy(letterboxed(val_images[:1], 96))
    ts_out = torch.jit.load(ts_file)(x)
    with torch.no_grad():
        torch_out = YOLOGFL(best).model.float().fuse().eval()(x)[0]
    torch.testing.assert_close(ts_out, torch_out, atol=ATOL, rtol=0)


def test_exported_onnx_predicts_through_plain_yolo_cli(trained, val_images, tmp_path):
    best = trained("gfl") / "weights" / "best.pt"
    onnx_file = YOLOGFL(best).export(format="onnx", imgsz=96, device="cpu")
    yolo = shutil.which("yolo")
    assert yolo, "Ultralytics installs the `yolo` console script"
    r = subprocess.run(
        [yolo, "predict", f"model={onnx_file}", f"source={val_images[0]}", "imgsz=96", "conf=0.0001",
         f"project={tmp_path}", "name=p"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "YOLO_OFFLINE": "1"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert list((tmp_path / "p").glob("*.jpg"))


def test_dgqp_refused_up_front_for_paddle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = YOLOGFL("yolov8n-gfl.yaml")
    with pytest.raises(ValueError, match="DGQP.*x2paddle.*format=onnx, openvino"):
        model.export(format="paddle", imgsz=64, device="cpu")
    assert not list(tmp_path.iterdir())  # nothing written


def test_export_table_script_measures_and_refuses(tmp_path, coco128_yaml, stock_pt):
    """The table of docs/export.md comes from this script: formats that work match PyTorch within the stated
    tolerance on real images; the others are refused up front, with the reason."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "export_table.py"
    out = tmp_path / "table.md"
    r = subprocess.run([sys.executable, str(script), "--formats", "onnx,openvino,paddle", "--variants", "gfl,vfnet",
                        "--images", "2", "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=900, env={**os.environ, "YOLO_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.read_text().splitlines() if line.startswith("| ") and not line.startswith("| format")}
    for fmt in ("onnx", "openvino"):
        assert rows[fmt][0].startswith("works ("), rows[fmt]  # -gfl
    assert rows["onnx"][1].startswith("works (")  # -vfnet: its star features are grid_sample + a 1x1 conv
    assert rows["openvino"][1].startswith("works (")
    assert rows["paddle"][0].startswith("refused: ") and "DGQP" in rows["paddle"][0]


def test_vfnet_refused_up_front_only_where_a_converter_fails():
    """-vfnet's star features (grid_sample) convert to ONNX, OpenVINO, MNN, NCNN, TorchScript; paddle and coreml stop,
    so those are refused before anything is written, naming the alternative."""
    from yolo_gfl import YOLOGFL
    from yolo_gfl.export import VFNET_REFUSED, check_export

    model = YOLOGFL("yolov8n-vfnet.yaml").model
    for fmt in ("onnx", "openvino", "mnn", "ncnn", "torchscript"):
        check_export(model, fmt)
    for fmt in VFNET_REFUSED:
        with pytest.raises(ValueError, match=f"format='{fmt}' cannot be exported for a VFNet head.*yolov8n-vfl.yaml"):
            check_export(model, fmt)
    check_export(YOLOGFL("yolov8n-vfl.yaml").model, "coreml")  # only the VFNet head is refused


def _results(boxes, conf, cls):
    return SimpleNamespace(boxes=SimpleNamespace(xyxy=torch.tensor(boxes, dtype=torch.float32),
                                                 conf=torch.tensor(conf), cls=torch.tensor(cls)))


def test_harness_pairs_detections_by_class_and_iou():
    """The harness pairs detections by class and IoU; one found on one side only counts unless its score lies within
    the tolerance band of the threshold (rounding may put it on either side)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.export_check import SCORE_TOL, compare_predictions, within_tolerance

    ref = _results([[0, 0, 10, 10], [20, 20, 40, 40]], [0.9, 0.5], [0.0, 1.0])
    same = _results([[20, 20, 40.2, 40], [0, 0, 10, 10]], [0.5005, 0.9], [1.0, 0.0])
    stats = compare_predictions(ref, same, conf=0.25)
    assert stats["matched"] == 2 and stats["unmatched"] == 0
    assert abs(stats["box"] - 0.2) < 1e-5 and abs(stats["score"] - 5e-4) < 1e-6
    assert within_tolerance(stats)
    other_class = _results([[20, 20, 40, 40], [0, 0, 10, 10]], [0.5, 0.9], [0.0, 0.0])
    assert compare_predictions(ref, other_class, conf=0.25)["unmatched"] == 2
    at_threshold = _results([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]], [0.9, 0.5, 0.25 + SCORE_TOL / 2],
                            [0.0, 1.0, 2.0])
    assert compare_predictions(ref, at_threshold, conf=0.25)["unmatched"] == 0
    assert not within_tolerance({**stats, "box": 1.0})


def test_product_export_module_holds_no_harness():
    """yolo_gfl.export keeps the format check and the format list; the harness lives in benchmarks/."""
    import yolo_gfl.export as export

    assert {"check_export", "export_support", "missing_packages"} <= set(export.__all__)
    assert not hasattr(export, "export_and_compare") and not hasattr(export, "compare_predictions")
