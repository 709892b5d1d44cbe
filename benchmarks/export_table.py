"""The variant x export-format table of docs/export.md, measured: each variant (stock YOLOv8n's COCO weights
transferred into it, so it finds real objects) is exported to each format through ``YOLOGFL.export`` and predicted
through plain ``YOLO(file)`` on real coco128 images, against the PyTorch checkpoint (the harness
``benchmarks/export_check.py``).

    python benchmarks/export_table.py --out docs/export_table.md
    python benchmarks/export_table.py --formats onnx,openvino --variants gfl,vfnet   # a part of it

Needs ../shared/weights/yolov8n.pt and ../shared/datasets/coco128 beside the checkout (as the tests).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from ultralytics.engine.exporter import export_formats  # noqa: E402

from benchmarks.export_check import BOX_TOL, SCORE_TOL, export_and_compare  # noqa: E402
from yolo_gfl import YOLOGFL  # noqa: E402

VARIANTS = ("stock", "vfl", "qfl", "gfl", "vfnet")


def variant_weights(variant: str, stock_pt: str, folder: Path) -> str:
    """A checkpoint of ``variant`` with stock YOLOv8n's weights transferred and the branches yolo_gfl adds (DGQP, the
    VFNet star convolutions and refinement) moved off their initial values, which would make them a near no-op (I
    about 0.95 everywhere, a zero residual, no refinement): the export then has to reproduce them to match."""
    if variant == "stock":
        return stock_pt
    model = YOLOGFL(f"yolov8n-{variant}.yaml").load(stock_pt)
    stock = YOLOGFL(stock_pt).model.state_dict()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.model.named_parameters():
            if name not in stock:
                p.add_(0.05 * torch.randn(p.shape, generator=generator))
    file = folder / f"yolov8n-{variant}.pt"
    model.save(file)
    return str(file)


def main() -> int:
    all_formats = [f for f in export_formats()["Argument"] if f != "-"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", default=",".join(all_formats))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--images", type=int, default=4, help="coco128 val images compared per cell")
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--out", default=None, help="write the markdown table here (default: print it)")
    args = parser.parse_args()
    images = sorted(str(p) for p in (SHARED / "datasets/coco128/images/val2017").glob("*.jpg"))[: args.images]
    stock_pt = str(SHARED / "weights/yolov8n.pt")
    if not images or not Path(stock_pt).exists():
        sys.exit(f"needs {stock_pt} and coco128 images under {SHARED}/datasets")
    formats, variants = args.formats.split(","), args.variants.split(",")
    cells: dict[tuple[str, str], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in variants:
            folder = Path(tmp) / variant
            folder.mkdir()
            weights = variant_weights(variant, stock_pt, folder)
            for fmt in formats:
                start = time.perf_counter()
                cell = export_and_compare(weights, fmt, images, imgsz=args.imgsz)
                cell["seconds"] = time.perf_counter() - start
                cells[variant, fmt] = cell
                print(f"{variant:6} {fmt:12} {cell['status']:>24}  {cell['detail']}  ({cell['seconds']:.0f} s)",
                      flush=True)
    lines = [
        f"Measured by `python benchmarks/export_table.py` ({len(images)} coco128 val images at {args.imgsz} px, conf "
        f"0.25; works = every detection found again with box sides within {BOX_TOL} px and scores within "
        f"{SCORE_TOL}).",
        "",
        "| format | " + " | ".join(variants) + " |",
        "|---|" + "---|" * len(variants),
    ]
    for fmt in formats:
        row = []
        for variant in variants:
            cell = cells[variant, fmt]
            text = cell["status"]
            if cell["status"] == "works":
                text += f" (box {cell['box']:.1g} px, score {cell['score']:.1g})"
            elif cell["status"] == "refused":  # the reason; the alternatives are in the error message
                text += ": " + cell["detail"].split(": ", 1)[-1].split(". Use")[0]
            elif cell["status"] != "needs hardware":
                text += f": {cell['detail']}"
            row.append(text.replace("|", "/"))
        lines.append(f"| {fmt} | " + " | ".join(row) + " |")
    table = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
