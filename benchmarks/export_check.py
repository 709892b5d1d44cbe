"""Verification harness for exports: export a checkpoint as a user would, predict real images with the file through
plain Ultralytics and with the PyTorch checkpoint through ``YOLOGFL``, and compare the detections.

Used by ``benchmarks/export_table.py`` (the variant x format table of docs/export.md) and by tests/test_export.py.
The product's own up-front format check, which refuses formats a variant cannot hold, is ``yolo_gfl.export``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from yolo_gfl.export import HARDWARE_FORMATS, check_export, missing_packages

__all__ = ["BOX_TOL", "SCORE_TOL", "RUNS_ELSEWHERE", "compare_predictions", "within_tolerance", "openvino_in_f32",
           "export_and_compare"]

# Formats that export on Linux but whose runtime predicts elsewhere only: the file is written, not compared here.
RUNS_ELSEWHERE: dict[str, str] = {"coreml": "Core ML models predict on macOS only"}

# Tolerance of exported vs PyTorch detections on real images (float32 kernels differ in summation order and
# fusion): every box side within BOX_TOL pixels of the input image, every score within SCORE_TOL.
BOX_TOL = 0.5
SCORE_TOL = 2e-3


def compare_predictions(reference: Any, candidate: Any, conf: float) -> dict[str, Any]:
    """Match two Ultralytics ``Results`` of the same image detection for detection and measure the differences.

    Detections are paired by class and greatest IoU. A detection that only one side has counts as a mismatch unless
    its score is within ``SCORE_TOL`` of ``conf`` (it may fall on either side of the threshold by rounding).

    Returns:
        dict with ``matched``, ``unmatched`` (detections without a partner, beyond the threshold band), ``box`` (largest
        side difference, pixels) and ``score`` (largest score difference).
    """
    from ultralytics.utils.metrics import box_iou
    import torch

    a, b = reference.boxes, candidate.boxes
    ab, bb = a.xyxy.float().cpu(), b.xyxy.float().cpu()
    ac, bc = a.cls.cpu(), b.cls.cpu()
    iou = box_iou(ab, bb) * (ac[:, None] == bc[None, :]) if len(ab) and len(bb) else torch.zeros(len(ab), len(bb))
    box_diff, score_diff, used, unmatched = 0.0, 0.0, set(), 0
    for i in range(len(ab)):
        j = int(iou[i].argmax()) if iou.shape[1] else -1
        if j < 0 or iou[i, j] < 0.5 or j in used:
            unmatched += float(a.conf[i]) > conf + SCORE_TOL
            continue
        used.add(j)
        box_diff = max(box_diff, float((ab[i] - bb[j]).abs().max()))
        score_diff = max(score_diff, float((a.conf[i] - b.conf[j]).abs()))
    unmatched += int(sum(float(b.conf[j]) > conf + SCORE_TOL for j in range(len(bb)) if j not in used))
    return {"matched": len(used), "unmatched": unmatched, "box": box_diff, "score": score_diff}


def within_tolerance(stats: dict[str, Any]) -> bool:
    """Whether a :func:`compare_predictions` result is a match within the stated tolerance."""
    return stats["unmatched"] == 0 and stats["box"] <= BOX_TOL and stats["score"] <= SCORE_TOL and bool(np.isfinite(
        stats["box"]))


def openvino_in_f32(exported: Any, file: str) -> str:
    """Recompile a loaded ``YOLO(<openvino folder>)``'s network with float32 inference; return the CPU's default
    precision. The comparison checks the converted graph, not the runtime's arithmetic: on CPUs with bf16 units
    (Intel AMX, e.g. Sapphire Rapids Xeons) OpenVINO runs float models in bf16 by default, and Ultralytics keeps that
    default on Linux, so boxes move by pixels and scores near conf flip, for any float model."""
    import openvino as ov

    core = ov.Core()
    default = core.get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()  # 'bf16', 'f32', ...
    backend = exported.predictor.model.backend  # Ultralytics 8.4's AutoBackend -> its OpenVINO backend
    network = core.read_model(str(next(Path(file).glob("*.xml"))))
    backend.ov_compiled_model = core.compile_model(
        network, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": ov.Type.f32}
    )
    return default


def export_and_compare(weights: str, fmt: str, images: list[str], imgsz: int = 160, conf: float = 0.25,
                       **export_args: Any) -> dict[str, Any]:
    """Export ``weights`` to ``fmt`` as a user would, predict ``images`` with the file through plain Ultralytics
    ``YOLO(file)`` and with the PyTorch checkpoint through ``YOLOGFL``, and compare.

    Returns:
        dict with ``status`` ('works', 'mismatch', 'refused', 'failed', 'not installed', 'needs hardware',
        'exported, not run here'),
        ``detail`` (the measured differences, or the reason) and ``file`` (the export, when one was written).
    """
    from ultralytics import YOLO

    from yolo_gfl import YOLOGFL

    if fmt in HARDWARE_FORMATS:
        return {"status": "needs hardware", "detail": HARDWARE_FORMATS[fmt], "file": None}
    model = YOLOGFL(weights)  # Ultralytics' exporter works on a deep copy, so this object also predicts the reference
    try:  # a refusal holds whether or not the converter is installed: nobody should install it to learn that
        check_export(model.model, fmt)
    except ValueError as e:
        return {"status": "refused", "detail": str(e).splitlines()[0], "file": None}
    missing = missing_packages(fmt)
    if missing:
        return {"status": "not installed", "detail": f"pip install {' '.join(missing)}", "file": None}
    try:
        file = model.export(format=fmt, imgsz=imgsz, device="cpu", **export_args)
    except ValueError as e:  # yolo_gfl's up-front refusals (nothing written)
        return {"status": "refused", "detail": str(e).splitlines()[0], "file": None}
    except Exception as e:  # noqa: BLE001 -- recorded in the table: a format that breaks must be refused up front
        return {"status": "failed", "detail": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}", "file": None}
    if fmt in RUNS_ELSEWHERE:
        return {"status": "exported, not run here", "detail": RUNS_ELSEWHERE[fmt], "file": str(file)}
    kwargs = dict(imgsz=imgsz, conf=conf, device="cpu", verbose=False)
    reference = model.predict(images, **kwargs)
    exported = YOLO(file, task="detect")
    note = ""
    if fmt == "openvino":
        exported.predict(images[0], **kwargs)  # sets up Ultralytics' OpenVINO backend
        default = openvino_in_f32(exported, file)
        note = f"; OpenVINO run in f32, this CPU's default being {default}" if default != "f32" else ""
    stats = [compare_predictions(r, exported.predict(img, **kwargs)[0], conf) for r, img in zip(reference, images)]
    total = {
        "matched": sum(s["matched"] for s in stats),
        "unmatched": sum(s["unmatched"] for s in stats),
        "box": max(s["box"] for s in stats),
        "score": max(s["score"] for s in stats),
    }
    detail = (f"{total['matched']} detections on {len(images)} images, max box diff {total['box']:.2g} px, "
              f"max score diff {total['score']:.2g}, unmatched {total['unmatched']}{note}")
    status = "works" if within_tolerance(total) and total["matched"] > 0 else "mismatch"
    return {"status": status, "detail": detail, "file": str(file), **total}
