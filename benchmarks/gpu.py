"""The accuracy benchmarks on a GPU at a realistic schedule (imgsz 640), with inference and training images/s.

    python benchmarks/gpu.py                         # from scratch: synthetic 2000 + 500 images at 640 px, 20 epochs
    python benchmarks/gpu.py --bench finetune        # yolov8n.pt transferred, coco128 at 640 px, 20 epochs
    python benchmarks/gpu.py --bench finetune --epochs 50 --device 1 --arg lr0=0.002   # any flag of the two scripts

A thin wrapper: it runs ``from_scratch.py`` or ``finetune.py`` with GPU defaults placed before your own flags (yours
win): ``--imgsz 640 --batch 32 --workers 8 --device 0 --throughput-batch 32 --latency-runs 200`` and, for from
scratch, ``--n-train 2000 --n-val 500 --epochs 20`` (finetune: ``--epochs 20``). Latency stays batch 1; images/s in
the table is then measured at batch 32 (forward pass, fp32), and "train img/s" is training throughput.

Time: on one H100-class GPU an epoch of 2000 images at 640 px is data-loader bound (on the order of 10 s with 8
workers); 15 cells x (20 epochs + evaluation) is about 45-60 minutes, so on a machine with a per-command time limit
run the same command again after a stop: finished cells are kept and an interrupted one resumes from its last.pt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GPU_COMMON = ["--imgsz", "640", "--batch", "32", "--workers", "8", "--device", "0", "--throughput-batch", "32",
              "--latency-runs", "200", "--epochs", "20"]
GPU_BENCH = {
    "from_scratch": ["--n-train", "2000", "--n-val", "500"],
    "finetune": [],
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 add_help=False)
    ap.add_argument("--bench", choices=sorted(GPU_BENCH), default="from_scratch")
    ap.add_argument("-h", "--help", action="store_true")
    ns, rest = ap.parse_known_args(argv)
    if ns.help:
        print(__doc__)
        print(f"--bench {{{','.join(sorted(GPU_BENCH))}}} (default from_scratch); every other flag is the script's:")
        rest = ["--help"]
    if ns.bench == "from_scratch":
        from benchmarks.from_scratch import main as bench_main
    else:
        from benchmarks.finetune import main as bench_main
    return bench_main(GPU_COMMON + GPU_BENCH[ns.bench] + rest)


if __name__ == "__main__":
    sys.exit(main())
