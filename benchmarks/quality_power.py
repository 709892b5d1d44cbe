"""How much does DGQP's quality I add to the ranking? Re-validate trained checkpoints with J = sigmoid(C) x I^a.

    python benchmarks/quality_power.py --data ../shared/datasets/chess/chess.yaml --imgsz 320 \\
        --model runs/real_data/real_data-chess-41515dae/cells/yolov8n-stock-dgqp-s0/train/weights/last.pt ...

a = 1 is GFLv2's score (what the checkpoint was validated with), a = 0 ranks by the classifier C alone, and a > 1
leans on I. The IoU-aware single-stage detector (Wu, Li, Wang 2020) tunes the same balance as C^(1-alpha) x IoU^alpha;
that ranks as C x IoU^(alpha / (1 - alpha)), so its alpha = 0.5 is a = 1 here. Nothing is retrained: each checkpoint
is validated once per exponent with Ultralytics' validation settings (conf 0.001, IoU 0.7), on the un-augmented val
split at ``--imgsz``. It prints mAP50-95 and AP75 per checkpoint and exponent, and the change from a = 1 averaged over
the checkpoints (± its standard error; pass one checkpoint per seed). Tune a on one data set and judge it on another:
the val split here is the test split of the real-data benchmark.

``--stats N`` also asks, before any NMS, whether I ranks at all: on the first N val images, at every anchor whose top
class score sigmoid(C) exceeds 0.05 and whose box overlaps a ground truth of that class, the 1st / 50th / 99th
percentile of I and the Spearman rank correlation with that box's IoU of I, of sigmoid(C) and of J = sigmoid(C) x I.
A quality branch that ranks has Spearman(I, IoU) above 0 and above Spearman(C, IoU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("YOLO_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.real_data import _mean_sd  # noqa: E402


def load_dgqp(checkpoint: str):
    """The checkpoint as a YOLOGFL model, refused (SystemExit) unless its head has DGQP's quality branch."""
    from yolo_gfl import YOLOGFL
    from yolo_gfl.nn import GFLDetect

    model = YOLOGFL(checkpoint)
    head = model.model.model[-1]
    if not isinstance(head, GFLDetect) or head.dgqp is None:
        raise SystemExit(f"{checkpoint} has no DGQP quality branch (dgqp=True): there is no I to weigh.")
    return model


def validate(checkpoint: str, data: str, imgsz: int, power: float, batch: int) -> dict[str, float]:
    """mAP50-95 and AP75 (in %) of ``checkpoint`` ranking by sigmoid(C) x I^power."""
    model = load_dgqp(checkpoint)
    model.model.model[-1].quality_power = power
    metrics = model.val(data=data, imgsz=imgsz, batch=batch, device="cpu", plots=False, verbose=False, workers=0)
    return {"mAP50-95": 100 * float(metrics.box.map), "AP75": 100 * float(metrics.box.map75)}


def quality_ranking(checkpoint: str, data: str, imgsz: int, max_images: int, batch: int = 8,
                    min_score: float = 0.05) -> dict[str, float]:
    """I's percentiles and Spearman(I / C / J, IoU) over the anchors described in the module docstring.

    ``min_score``: the top class score sigmoid(C) an anchor needs to count (the CLI's 0.05 leaves out the background).
    """
    from ultralytics.utils.metrics import box_iou
    from ultralytics.utils.ops import xywh2xyxy

    from benchmarks.score_anatomy import val_loader
    from yolo_gfl.eval.calibration import spearman

    net = load_dgqp(checkpoint).model.float().eval()
    net.model[-1].quality_power = 1.0  # the eval output's scores are then J; C and I come from the raw outputs
    quality, cls_score, ious, images = [], [], [], 0
    for b in val_loader(data, imgsz, batch):
        if images >= max_images:
            break
        img = b["img"].float() / 255
        h, w = img.shape[2:]
        with torch.no_grad():
            y, raw = net(img)
        boxes = xywh2xyxy(y[:, :4].transpose(1, 2))  # (B, A, 4) pixels
        top, label = raw["scores"].sigmoid().max(1)  # (B, A): the anchor's best class and its score C
        for i in range(min(len(img), max_images - images)):
            images += 1
            gi = b["batch_idx"] == i
            gt = xywh2xyxy(b["bboxes"][gi] * torch.tensor([w, h, w, h]))
            gcls = b["cls"][gi].view(-1).long()
            keep = top[i] > min_score
            if not len(gt) or not keep.any():
                continue
            iou = box_iou(boxes[i][keep], gt).masked_fill(label[i][keep][:, None] != gcls[None], 0).max(1).values
            hit = iou > 0
            quality.append(raw["quality"][i, 0][keep][hit])
            cls_score.append(top[i][keep][hit])
            ious.append(iou[hit])
    q, c, u = (torch.cat(v).numpy() if v else np.zeros(0) for v in (quality, cls_score, ious))
    if not len(q):
        raise SystemExit(f"{checkpoint}: no anchor scores above {min_score:g} on a ground truth of its class in the first "
                         f"{max_images} val images of {data}; raise --stats or check that the checkpoint fits the data")
    p1, p50, p99 = (float(np.percentile(q, k)) for k in (1, 50, 99))
    return {"anchors": len(q), "images": images, "I_p1": p1, "I_p50": p50, "I_p99": p99,
            "spearman_I": spearman(q, u), "spearman_C": spearman(c, u), "spearman_J": spearman(c * q, u)}


def summary(results: dict[str, dict[float, dict[str, float]]], powers: list[float]) -> str:
    """A markdown table: per exponent, the mean over checkpoints and the paired change from a = 1 ± its SE."""
    lines = ["| a | mAP50-95 | Δ to a=1 | AP75 | Δ AP75 to a=1 |", "|--:|--:|--:|--:|--:|"]
    for power in powers:
        row = [f"{power:g}"]
        for key in ("mAP50-95", "AP75"):
            values = [r[power][key] for r in results.values()]
            deltas = [r[power][key] - r[1.0][key] for r in results.values()]
            mean, sd = _mean_sd(deltas)  # the real-data benchmark's statistics
            se = sd / math.sqrt(len(deltas)) if sd is not None else float("nan")
            row += [f"{sum(values) / len(values):.2f}", f"{mean:+.2f} ± {se:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="data YAML whose val split is scored")
    ap.add_argument("--imgsz", type=int, required=True, help="the size the checkpoints were trained at")
    ap.add_argument("--model", action="append", required=True, help="a DGQP checkpoint (repeat: one per seed)")
    ap.add_argument("--powers", default="0,0.5,1,1.5,2", help="exponents a of I (default %(default)s; 1 is added)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--stats", type=int, default=0, metavar="N", help="also I's percentiles and Spearman(I, C, J with "
                    "IoU) on the first N val images, before NMS (default 0: off)")
    args = ap.parse_args(argv)
    powers = sorted({float(p) for p in args.powers.split(",")} | {1.0})
    if any(p < 0 for p in powers):
        ap.error(f"--powers must be >= 0, got {args.powers}")
    if args.stats < 0:
        ap.error(f"--stats must be >= 0 (a number of val images), got {args.stats}")
    for checkpoint in args.model:
        if not Path(checkpoint).is_file():
            ap.error(f"--model {checkpoint}: no such checkpoint")
    results: dict[str, dict[float, dict[str, float]]] = {}
    for checkpoint in args.model:
        for power in powers:
            results.setdefault(checkpoint, {})[power] = validate(checkpoint, args.data, args.imgsz, power, args.batch)
            figures = results[checkpoint][power]
            print(f"{checkpoint}  a={power:g}  mAP50-95 {figures['mAP50-95']:.2f}  AP75 {figures['AP75']:.2f}",
                  flush=True)
    print(summary(results, powers))
    stats = {}
    if args.stats > 0:
        for checkpoint in args.model:
            st = stats[checkpoint] = quality_ranking(checkpoint, args.data, args.imgsz, args.stats, args.batch)
            rho = {k: "undefined" if st[k] is None else f"{st[k]:+.3f}" for k in ("spearman_I", "spearman_C", "spearman_J")}
            print(f"{checkpoint}  {st['anchors']} anchors on {st['images']} images  I p1/p50/p99 "
                  f"{st['I_p1']:.3f}/{st['I_p50']:.3f}/{st['I_p99']:.3f}  Spearman with IoU: I {rho['spearman_I']}"
                  f"  C {rho['spearman_C']}  J {rho['spearman_J']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"data": args.data, "imgsz": args.imgsz, "results": {
            ck: {f"{p:g}": r for p, r in rs.items()} for ck, rs in results.items()}, "stats": stats}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
