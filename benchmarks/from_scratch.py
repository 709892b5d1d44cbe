"""From-scratch accuracy benchmark: stock YOLOv8n against each IoU-aware variant on the synthetic shapes set, 3 seeds.

    python benchmarks/from_scratch.py                       # the defaults below; rerun the same command to resume
    python benchmarks/from_scratch.py --epochs 30 --n-train 1000 --models yolov8n.yaml,yolov8n-gfl.yaml
    python benchmarks/from_scratch.py --arg lr0=0.02 --arg close_mosaic=2   # any other Ultralytics train argument

Every model trains from random initialisation with the same schedule, seeds and data order (``yolo_gfl.zoo``), and
is evaluated on the synthetic val split; the table (``zoo.md``, ``zoo.csv`` and plots in the run folder) is printed.

Defaults (sized for about an hour on 2 CPU cores): the synthetic set ``synthetic-s0-n500-v200-i160`` (500 train, 200
val images drawn at 160 px), imgsz 160, 24 epochs, batch 16, AdamW lr0 0.003 with 1 warm-up epoch, ``close_mosaic=5``,
``val=False`` (no validation between epochs: every model is scored once, on its final weights, as the papers do;
Ultralytics still validates after the last epoch), models stock yolov8n, -vfl, -qfl and -gfl, seeds 0,1,2, and
``--jobs 2`` (two cells at once: Ultralytics trains with ``cpu_count - 1`` threads, one on this machine).

Why this schedule: at 8 epochs (250 optimiser steps, the first version of this benchmark) every model sat at 1-2%
mAP50-95 and the seed spread was as large as any difference. At 24 epochs stock reaches about 8.5% (one seed). Ultralytics'
``optimizer=auto`` picks AdamW lr 0.00083 for 8 classes, which learns little in this time (stock after 6 epochs:
mAP50 0.009 with it, 0.019 with lr0 0.003). An epoch of 500 images at 160 px takes about 18 s on one core for
yolov8n, -vfl, -qfl and -gfl, and a cell adds about 30 s (start, final evaluation with COCO and calibration passes,
latency): 12 cells x (24 x 18 + 30) s / 2 jobs = about 46 minutes. ``-vfnet`` is left out by default: its star
head makes a training step about 1.7-2x stock's on this CPU (docs/vfnet.md; ``--models ...,yolov8n-vfnet.yaml`` adds
it).
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

DEFAULTS = dict(n_train=500, n_val=200, imgsz=160, epochs=24, batch=16, jobs=2)  # see the estimate above
TRAIN_DEFAULTS = dict(close_mosaic=5, optimizer="AdamW", lr0=0.003, warmup_epochs=1)  # each overridable with --arg
DEFAULT_MODELS = "yolov8n.yaml,yolov8n-vfl.yaml,yolov8n-qfl.yaml,yolov8n-gfl.yaml"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=DEFAULTS["n_train"],
                    help="synthetic train images (default %(default)s)")
    ap.add_argument("--n-val", type=int, default=DEFAULTS["n_val"], help="synthetic val images (default %(default)s)")
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic set's images (default %(default)s)")
    ap.add_argument("--data", default=None, help="another data YAML instead of the synthetic set")
    add_common_arguments(ap, imgsz=DEFAULTS["imgsz"], epochs=DEFAULTS["epochs"], batch=DEFAULTS["batch"],
                         device="cpu", name=None)
    ap.set_defaults(jobs=DEFAULTS["jobs"], models=DEFAULT_MODELS)
    args = ap.parse_args(argv)
    data = args.data or f"synthetic-s{args.data_seed}-n{args.n_train}-v{args.n_val}-i{args.imgsz}"
    name = args.name or f"from_scratch-{Path(data).stem if args.data else data}-e{args.epochs}-i{args.imgsz}"
    train_args = {"val": False, **TRAIN_DEFAULTS, **extra_train_args(args)}
    start = time.perf_counter()
    rows = run_and_report(args, data=data, name=name, train_args=train_args,
                          title=f"From scratch on {data}: {args.epochs} epochs at {args.imgsz} px")
    print(f"[from_scratch] {len(rows)} cells in the table; this run took {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
