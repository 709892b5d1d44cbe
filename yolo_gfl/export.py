"""Which Ultralytics export formats can run here, and which a variant cannot be exported to (checked up front).

yolo_gfl exports through Ultralytics' own exporter (``YOLOGFL.export``): the eval output keeps the stock layout
``(B, 4 + nc, anchors)``, so every format that exports a stock YOLOv8 also exports the IoU-aware variants; only the
converters that cannot hold DGQP or the VFNet head's star features narrow the list (``DGQP_REFUSED``,
``VFNET_REFUSED``), and :func:`check_export` refuses those before anything is written. Whether an exported file
predicts like its PyTorch original is checked by the harness ``benchmarks/export_check.py`` (used by
``benchmarks/export_table.py`` and the tests), not here.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

__all__ = ["check_export", "DGQP_REFUSED", "VFNET_REFUSED", "FORMAT_PACKAGES", "HARDWARE_FORMATS", "export_support",
           "missing_packages"]

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

# Converters that stop on GFLv2's DGQP branch (found by benchmarks/export_table.py; the same model without DGQP,
# -qfl, converts): refused before anything is written.
DGQP_REFUSED: dict[str, str] = {
    "paddle": "x2paddle's PyTorch converter stops on the DGQP branch ('Model is not supported yet')",
}

# Converters that stop on the VFNet head's star features (F.grid_sample + a 1x1 conv; found by
# benchmarks/export_table.py --variants vfnet; the table in docs/export.md shows which formats hold them).
VFNET_REFUSED: dict[str, str] = {
    "paddle": "x2paddle's PyTorch converter stops on the star features ('Model is not supported yet')",
    "coreml": "coremltools' converter fails on the star features' grid_sample ('only 0-dimensional arrays can be "
              "converted to Python scalars')",
}

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
