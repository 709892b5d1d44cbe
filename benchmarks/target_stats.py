"""How big are the classification targets? Positives, their IoU, and the divisors of the class loss, on real batches.

    python benchmarks/target_stats.py --model yolov8n.yaml --data synthetic-s0-n500-v200-i160 --imgsz 160
    python benchmarks/target_stats.py --model ../shared/weights/yolov8n.pt --data ../shared/datasets/coco128/coco128.yaml --imgsz 320
    python benchmarks/target_stats.py --model runs/.../best.pt --data ../shared/datasets/chess/chess.yaml --imgsz 320 --tal 0.5:6,0.5:3,0.5:2

For a model's predictions on a few un-augmented training batches, Ultralytics' own TaskAlignedAssigner (as
``v8DetectionLoss`` calls it) picks the positives; the script prints per batch set:

* positives per ground-truth object, and the mean IoU of the positives' predicted boxes with their objects (the
  IoU-aware classification target, VarifocalNet's IACS);
* the three divisors a classification loss can use: the number of positives (VarifocalNet, GFL: ``cls_norm=pos``),
  the sum of the IoU targets (``cls_norm=sum``) and the sum of TAL's targets (stock Ultralytics' BCE), and their
  ratios. The ratio ``positives / TAL sum`` is how much less weight the papers' divisor gives the class branch than
  stock's does;
* TAL's mean soft target at the positives, and for each ``--gains`` value g the share of positives whose target
  ``cls_target_gain=g`` caps at 1 (TAL target >= 1/g): capped positives are all asked for the same score, whatever
  their IoU, so a larger gain keeps less of TAL's ranking of boxes;
* the Spearman correlation of the positives' TAL targets with their IoU (how well the target a class branch learns
  orders boxes by localisation). ``--tal ALPHA:BETA,...`` repeats the measurement with other exponents of TAL's
  alignment metric s^alpha x IoU^beta (set on the assigner here; Ultralytics' are 0.5:6).

A fresh model has poor boxes (low IoU) and TAL's targets are small, so the ratios are largest at the start of training.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_GFL_DATASETS", str(ROOT / "datasets"))

import torch  # noqa: E402


def target_stats(
    model: str, data: str, imgsz: int, batches: int = 3, batch: int = 16, gains: tuple[float, ...] = (1.25, 1.5),
    tal: tuple[float, float] | None = None,
) -> dict[str, float]:
    """Assign with TAL on ``batches`` un-augmented train batches; return counts, mean IoU, the divisors, TAL's mean
    target at the positives, their Spearman correlation with the positives' IoU (``target_iou_spearman``) and, per
    gain g, the share of positives it caps (``capped@g``). ``tal`` = (alpha, beta) replaces the model's TAL
    exponents."""
    from torch.utils.data import DataLoader
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset
    from ultralytics.utils.tal import make_anchors

    from yolo_gfl import YOLOGFL
    from yolo_gfl.criterion import GFLDetectionLoss, iou_aware_targets
    from yolo_gfl.data import resolve_data
    from yolo_gfl.eval.calibration import spearman

    net = YOLOGFL(model).model.float().train()
    cfg = get_cfg(overrides={"imgsz": imgsz, "mode": "train"})
    net.args = cfg
    info = check_det_dataset(str(resolve_data(data)))
    dataset = build_yolo_dataset(cfg, info["train"], batch, info, mode="val", stride=32)  # "val": no augmentation
    loader = DataLoader(dataset, batch_size=batch, shuffle=False, collate_fn=dataset.collate_fn)
    loss = GFLDetectionLoss(net)  # its assign() is the training path: the model's assigner (TAL for these models)
    if tal is not None:  # TOOD's exponents of TAL's alignment metric, set on the assigner for this measurement only
        if not hasattr(loss.assigner, "alpha"):
            raise ValueError(f"{model}: its assigner ({type(loss.assigner).__name__}) has no TAL exponents to set")
        loss.assigner.alpha, loss.assigner.beta = tal
    totals = dict(objects=0, positives=0, iou_sum=0.0, tal_sum=0.0)
    pos_targets, pos_ious = [], []  # TAL's soft target of each positive, at its class; its IoU
    for i, b in enumerate(loader):
        if i == batches:
            break
        with torch.no_grad():
            preds = net(b["img"].float() / 255)
        dist = preds["boxes"].permute(0, 2, 1).contiguous()
        logits = preds["scores"].permute(0, 2, 1).contiguous()
        anchors, strides = make_anchors(preds["feats"], loss.stride, 0.5)
        boxes = loss.bbox_decode(anchors, dist)  # stride units
        labels, target_boxes, target_scores, fg, _ = loss.assign(logits.sigmoid(), boxes, anchors, strides, preds, b)
        _, iou = iou_aware_targets(boxes, target_boxes / strides, labels, fg, loss.nc)
        totals["objects"] += int(b["cls"].shape[0])
        totals["positives"] += int(fg.sum())
        totals["iou_sum"] += float(iou.sum())
        totals["tal_sum"] += float(target_scores.sum())
        pos_targets.append(target_scores[fg].amax(-1))
        pos_ious.append(iou[fg])
    p = max(totals["positives"], 1)
    targets = torch.cat(pos_targets) if pos_targets else torch.zeros(0)
    rho = spearman(targets.double().numpy(), torch.cat(pos_ious).double().numpy()) if pos_ious else None
    return {
        **totals,
        "positives_per_object": totals["positives"] / max(totals["objects"], 1),
        "mean_iou": totals["iou_sum"] / p,
        "positives_over_tal_sum": totals["positives"] / max(totals["tal_sum"], 1e-9),
        "positives_over_iou_sum": totals["positives"] / max(totals["iou_sum"], 1e-9),
        "mean_tal_target": totals["tal_sum"] / p,
        "target_iou_spearman": float("nan") if rho is None else rho,
        **{f"capped@{g:g}": float((targets * g >= 1).float().mean()) if len(targets) else 0.0 for g in gains},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="model config or checkpoint (repeatable)")
    ap.add_argument("--data", required=True, help="data YAML or synthetic set name")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--batches", type=int, default=3, help="batches of --batch images (default %(default)s)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--gains", default="1.25,1.5", help="cls_target_gain values to report the capped share of")
    ap.add_argument("--tal", default="", help="TAL exponents ALPHA:BETA,... to measure each model with (default: its "
                    "own)")
    args = ap.parse_args(argv)
    gains = tuple(float(g) for g in args.gains.split(","))
    try:
        exponents = [tuple(float(v) for v in pair.split(":")) for pair in args.tal.split(",") if pair] or [None]
    except ValueError:
        ap.error(f"--tal {args.tal!r}: give ALPHA:BETA pairs, e.g. --tal 0.5:6,0.5:3")
    if any(e is not None and len(e) != 2 for e in exponents):
        ap.error(f"--tal {args.tal!r}: give ALPHA:BETA pairs, e.g. --tal 0.5:6,0.5:3")
    torch.manual_seed(0)  # a config builds with random weights: the same ones every run
    capped = "".join(f" {'capped@' + format(g, 'g'):>12}" for g in gains)
    print(f"{'model':<28} {'TAL a:b':>7} {'objects':>7} {'pos/obj':>7} {'mean IoU':>8} {'pos/TAL sum':>11} "
          f"{'pos/IoU sum':>11} {'mean target':>11} {'target~IoU':>10}{capped}")
    for m in args.model:
        for tal in exponents:
            s = target_stats(m, args.data, args.imgsz, args.batches, args.batch, gains, tal)
            ab = "own" if tal is None else f"{tal[0]:g}:{tal[1]:g}"
            print(f"{Path(m).name:<28} {ab:>7} {s['objects']:>7} {s['positives_per_object']:>7.1f} "
                  f"{s['mean_iou']:>8.3f} {s['positives_over_tal_sum']:>11.1f} {s['positives_over_iou_sum']:>11.1f} "
                  f"{s['mean_tal_target']:>11.3f} {s['target_iou_spearman']:>10.3f}"
                  + "".join(f" {s[f'capped@{g:g}']:>12.1%}" for g in gains))
    return 0


if __name__ == "__main__":
    sys.exit(main())
