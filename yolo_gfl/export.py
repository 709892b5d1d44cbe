"""Which Ultralytics export formats can run here, and whether an exported model predicts like its PyTorch original.

yolo_gfl exports through Ultralytics' own exporter (``YOLOGFL.export``): the eval output keeps the stock layout
``(B, 4 + nc, anchors)``, so every format that exports a stock YOLOv8 also exports the IoU-aware variants; only the
converters that cannot hold DGQP or the VFNet head's star features narrow the list (``DGQP_REFUSED``,
``VFNET_REFUSED``). The tables in ``docs/export.md``
come from ``benchmarks/export_table.py``, which uses :func:`compare_predictions` on real images.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["check_export", "DGQP_REFUSED", "VFNET_REFUSED", "FORMAT_PACKAGES", "HARDWARE_FORMATS", "RUNS_ELSEWHERE", "export_and_compare", "export_support", "missing_packages", "compare_predictions",
           "within_tolerance", "BOX_TOL", "SCORE_TOL"]

# The import names each Ultralytics exporter needs here (ultralytics/engine/exporter.py, ultralytics/utils/export/),
# with the pip names to install them; '' means torch alone.
FORMAT_PACKAGES: dict[str, dict[str, str]] = {
    "torchscript": {},
    "onnx": {"onnx": "onnx", "onnxruntime": "onnxruntime"},
    "openvino": {"openvino": "openvino"},
    "coreml": {"coremltools": "coremltools"},
    "saved_model": {"tensorflow": "tensorflow<=2.19", "onnx2tf": "onnx2tf"},
    "pb": {"tensorflow": "tensorflow<=2.19", "onnx2tf": "onnx2tf"},
    "litert": {"litert_torch": "litert-torch", "ai_edge_litert": "ai-edge-litert"},
    "paddle": {"paddle": "paddlepaddle<3.3", "x2paddle": "x2paddle"},
    "mnn": {"MNN": "MNN"},
    "ncnn": {"pnnx": "pnnx", "ncnn": "ncnn"},
    "executorch": {"executorch": "executorch"},
}
# Formats that need a GPU or a vendor's device/toolchain rather than a pip package on a CPU machine.
HARDWARE_FORMATS: dict[str, str] = {
    "engine": "TensorRT: needs an NVIDIA GPU",
    "edgetpu": "needs the Edge TPU compiler (Debian package, x86 only), not on PyPI",
    "coreai": "Apple Core AI: macOS only",
    "imx": "Sony IMX500 toolchain (isolated environment)",
    "rknn": "Rockchip NPU toolchain",
    "axelera": "Axelera AI toolchain",
    "deepx": "DEEPX toolchain",
    "qnn": "Qualcomm QNN runtime",
    "hailo": "Hailo dataflow compiler",
    "ascend": "Huawei Ascend toolkit",
    "xilinx": "AMD Xilinx Vitis AI toolchain",
}

# Formats that export on Linux but whose runtime predicts elsewhere only: the file is written, not compared here.
RUNS_ELSEWHERE: dict[str, str] = {"coreml": "Core ML models predict on macOS only"}

# Converters that stop on GFLv2's DGQP branch (measured by benchmarks/export_table.py; the same model without DGQP,
# -qfl, converts): refused before anything is written.
DGQP_REFUSED: dict[str, str] = {
    "paddle": "x2paddle's PyTorch converter stops on the DGQP branch ('Model is not supported yet')",
}

# Converters that stop on the VFNet head's star features (F.grid_sample + a 1x1 conv; measured by
# benchmarks/export_table.py --variants vfnet, 2026-11-30; ONNX, OpenVINO, TorchScript, MNN and NCNN hold them).
VFNET_REFUSED: dict[str, str] = {
    "paddle": "x2paddle's PyTorch converter stops on the star features ('Model is not supported yet')",
    "coreml": "coremltools' converter fails on the star features' grid_sample ('only 0-dimensional arrays can be "
              "converted to Python scalars')",
}

# Tolerance of exported vs PyTorch detections on real images (float32 kernels differ in summation order and
# fusion): every box side within BOX_TOL pixels of the input image, every score within SCORE_TOL.
BOX_TOL = 0.5
SCORE_TOL = 2e-3


def check_export(model: Any, fmt: str) -> None:
    """Raise ValueError, naming the reason and the alternatives, when ``model`` cannot be exported to ``fmt``."""
    head = model.model[-1] if hasattr(model, "model") else None
    if getattr(head, "dgqp", None) is not None and fmt in DGQP_REFUSED:
        raise ValueError(
            f"format={fmt!r} cannot be exported for a model with DGQP (dgqp=True, e.g. -gfl): {DGQP_REFUSED[fmt]}. "
            f"Use format=onnx, openvino, ncnn or torchscript, or export a variant without DGQP (e.g. yolov8n-qfl.yaml)."
        )
    from .nn.vfnet import VFNetDetect

    if isinstance(head, VFNetDetect) and fmt in VFNET_REFUSED:
        raise ValueError(
            f"format={fmt!r} cannot be exported for a VFNet head (head=vfnet): {VFNET_REFUSED[fmt]}. Use format=onnx, "
            f"openvino, mnn, ncnn or torchscript, or export a variant without the VFNet head (e.g. yolov8n-vfl.yaml)."
        )


def missing_packages(fmt: str) -> list[str]:
    """The pip names of the packages ``fmt`` needs that are not importable here ([] when ready)."""
    return [pip for module, pip in FORMAT_PACKAGES.get(fmt, {}).items() if find_spec(module) is None]


def export_support() -> dict[str, str]:
    """One line per export format: 'installed', 'pip install ...', or why it cannot run on a CPU machine."""
    rows = {}
    for fmt in FORMAT_PACKAGES:
        missing = missing_packages(fmt)
        rows[fmt] = "installed" if not missing else f"not installed: pip install {' '.join(missing)}"
    return {**rows, **HARDWARE_FORMATS}


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

    from .model import YOLOGFL

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
