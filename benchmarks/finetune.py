"""Fine-tune accuracy benchmark: stock COCO yolov8n.pt weights transferred into stock YOLOv8n and each IoU-aware variant,
fine-tuned on coco128's train images and evaluated on its val2017 images, 3 seeds.

    python benchmarks/finetune.py                               # defaults below; rerun the same command to resume
    python benchmarks/finetune.py --weights ../shared/weights/yolov8n.pt --data ../shared/datasets/coco128/coco128.yaml
    python benchmarks/finetune.py --epochs 30 --imgsz 640 --arg lr0=0.002

Each model config is built fresh and receives every matching tensor of ``--weights`` (Ultralytics' ``pretrained=``
transfer: the whole network for stock YOLOv8n; backbone, neck and the box/class branches for the variants, whose new
parts such as DGQP or the VFNet head keep their initialisation), then all train with the same schedule and seeds.

Defaults: imgsz 320, 10 epochs, batch 16, seeds 0,1,2, ``val=False`` (scored once on the final weights), the default
models. Timing on 2 shared CPU cores: an epoch of the 128 train images at 320 px is about 25 s and a cell adds about
60 s (start, validation over 128 images with COCO and calibration passes, latency), so 15 cells are about
15 x (10 x 25 + 60) s = 75 minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # the weights and images are local; nothing may download

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.zoo_args import add_common_arguments, extra_train_args, run_and_report  # noqa: E402

SHARED = ROOT.parent / "shared"
DEFAULT_WEIGHTS = SHARED / "weights" / "yolov8n.pt"
DEFAULT_DATA = SHARED / "datasets" / "coco128" / "coco128.yaml"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="stock weights to transfer (default %(default)s)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="data YAML (default %(default)s)")
    add_common_arguments(ap, imgsz=320, epochs=10, batch=16, device="cpu", name=None)
    args = ap.parse_args(argv)
    weights, data = Path(args.weights), Path(args.data)
    if not weights.is_file():
        ap.error(f"--weights {weights} does not exist: give the path of Ultralytics' yolov8n.pt "
                 f"(it is expected at {DEFAULT_WEIGHTS}, beside the checkout in ../shared)")
    if not data.is_file():
        ap.error(f"--data {data} does not exist: give a data YAML, e.g. {DEFAULT_DATA}")
    name = args.name or f"finetune-{data.stem}-{weights.stem}-e{args.epochs}-i{args.imgsz}"
    train_args = {"val": False, **extra_train_args(args), "pretrained": str(weights.resolve())}
    run_and_report(args, data=str(data.resolve()), name=name, train_args=train_args,
                   title=f"Fine-tune {weights.name} on {data.stem}: {args.epochs} epochs at {args.imgsz} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
