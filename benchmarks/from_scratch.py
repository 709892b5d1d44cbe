"""From-scratch accuracy benchmark: stock YOLOv8n against each IoU-aware variant on the synthetic shapes set, 3 seeds.

    python benchmarks/from_scratch.py                       # the defaults below; rerun the same command to resume
    python benchmarks/from_scratch.py --epochs 30 --n-train 1000 --models yolov8n.yaml,yolov8n-gfl.yaml
    python benchmarks/from_scratch.py --arg lr0=0.02 --arg close_mosaic=2   # any other Ultralytics train argument

Every model trains from random initialisation with the same schedule, seeds and data order (``yolo_gfl.zoo``), and
is evaluated on the synthetic val split; the table (``zoo.md``, ``zoo.csv`` and plots in the run folder) is printed.

Defaults (sized for about an hour on 2 CPU cores): the synthetic set ``synthetic-s0-n500-v200-i160`` (500 train, 200
val images drawn at 160 px), imgsz 160, 8 epochs, batch 16, ``close_mosaic=2`` (mosaic for the first 6 epochs; with
Ultralytics' default of 10 a run this short would never use mosaic), ``val=False`` (no validation between epochs:
every model is scored once, on its final weights, as the papers do; Ultralytics still validates after the last
epoch), the default models (stock, -vfl, -qfl, -gfl, and -vfnet when present), seeds 0,1,2.

Estimate behind those defaults, from one 2-epoch cell of each default model on synthetic-s0-n500-v100-i160 at 160 px,
batch 16, on the 2-core machine while other jobs shared it (load 3-5; Ultralytics trains with 1 CPU thread): an epoch
took 16-26 s for yolov8n, -vfl, -qfl and -gfl, and 55-65 s for -vfnet (its deformable convolution is slow on CPU); a
cell's fixed cost (process start, set-up, final evaluation with COCO and calibration passes, latency) is about 20 s.
So 3 seeds x (4 x ~20 s + ~60 s) x 8 epochs + 15 x 20 s = about 60 minutes (about 35 without -vfnet).
This is a short schedule (250 optimiser steps): raise --epochs / --n-train where more time is available.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # nothing to download: the data set is generated locally

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_GFL_DATASETS", str(ROOT / "datasets"))  # the synthetic set's home, whatever the cwd

from benchmarks.zoo_args import add_common_arguments, extra_train_args, run_and_report  # noqa: E402

DEFAULTS = dict(n_train=500, n_val=200, imgsz=160, epochs=8, batch=16, close_mosaic=2)  # see the estimate above


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=DEFAULTS["n_train"],
                    help="synthetic train images (default %(default)s)")
    ap.add_argument("--n-val", type=int, default=DEFAULTS["n_val"], help="synthetic val images (default %(default)s)")
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic set's images (default %(default)s)")
    ap.add_argument("--data", default=None, help="another data YAML instead of the synthetic set")
    add_common_arguments(ap, imgsz=DEFAULTS["imgsz"], epochs=DEFAULTS["epochs"], batch=DEFAULTS["batch"],
                         device="cpu", name=None)
    args = ap.parse_args(argv)
    data = args.data or f"synthetic-s{args.data_seed}-n{args.n_train}-v{args.n_val}-i{args.imgsz}"
    name = args.name or f"from_scratch-{Path(data).stem if args.data else data}-e{args.epochs}-i{args.imgsz}"
    train_args = {"val": False, "close_mosaic": DEFAULTS["close_mosaic"], **extra_train_args(args)}
    start = time.perf_counter()
    rows = run_and_report(args, data=data, name=name, train_args=train_args,
                          title=f"From scratch on {data}: {args.epochs} epochs at {args.imgsz} px")
    print(f"[from_scratch] {len(rows)} cells in the table; this run took {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
