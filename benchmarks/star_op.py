"""The star convolution of yolov8n-vfnet's head with each operator: forward and forward + backward, side by side.

    python benchmarks/star_op.py [--imgsz 640,320] [--batch 1,16] [--runs 5] [--threads N]

Runs the six star blocks of the n-scale head (class and box branch at P3, P4, P5: 80 and 64 channels, maps of
imgsz / 8, 16, 32) on random features with random boxes of up to 8 cells, once per operator of ``vfnet_star_op``,
interleaved round by round so machine load hits both alike, and prints the median time of each in ms and the ratio
deform_conv2d / grid_sample. The values of the two agree (tests/test_vfnet.py); this measures only their speed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from yolo_gfl.nn.vfnet import DeformConv3x3, star_offsets

OPS = ("deform_conv2d", "grid_sample")
CHANNELS = (80, 64)  # yolov8n-vfnet: class-feature width max(64, min(80, 100)), box-feature width max(16, 16, 64)
STRIDES = (8, 16, 32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imgsz", default="640,320")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    convs = [DeformConv3x3(c, c) for c in CHANNELS]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.runs} runs, ms")
    print(f"{'imgsz':>6}{'batch':>6}" + "".join(f"{op + ' ' + p:>24}" for p in ("fwd", "fwd+bwd") for op in OPS)
          + f"{'ratio fwd':>11}{'ratio f+b':>11}")
    for imgsz in map(int, args.imgsz.split(",")):
        for batch in map(int, args.batch.split(",")):
            inputs = []
            for s in STRIDES:
                h = imgsz // s
                offsets = star_offsets(torch.rand(batch, 4, h, h) * 8)
                inputs += [(conv, torch.randn(batch, conv.in_channels, h, h), offsets) for conv in convs]
            times = {(op, kind): [] for op in OPS for kind in ("fwd", "bwd")}
            for _ in range(args.runs):
                for op in OPS:
                    with torch.no_grad():
                        t = time.perf_counter()
                        for conv, x, offsets in inputs:
                            conv(x, offsets, op)
                        times[op, "fwd"].append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    for conv, x, offsets in inputs:
                        x, offsets = x.detach().requires_grad_(), offsets.detach().requires_grad_()
                        conv(x, offsets, op).sum().backward()
                    times[op, "bwd"].append((time.perf_counter() - t) * 1000)
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"{imgsz:>6}{batch:>6}" + "".join(f"{med[op, k]:>24.1f}" for k in ("fwd", "bwd") for op in OPS)
                  + "".join(f"{med['deform_conv2d', k] / med['grid_sample', k]:>11.2f}" for k in ("fwd", "bwd")),
                  flush=True)


if __name__ == "__main__":
    main()
