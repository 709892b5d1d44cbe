"""Does the box distribution rank boxes without training? Re-validate checkpoints with score C x q^a, where q is how
sharp each anchor's four DFL side distributions are.

    python benchmarks/distribution_rank.py --data ../shared/datasets/chess/chess.yaml --imgsz 320 --powers 0.5,1,2 \\
        --model runs/real_data/real_data-chess-41515dae/cells/yolov8n-s0/train/weights/last.pt ...

GFLv2 (Li et al. 2021, Sec. 3 and Fig. 3) observes that a well-localised box has sharp side distributions and builds
DGQP on the top-k probabilities of each side. DGQP has to be trained, and in a COCO fine-tune it learns a constant
(docs/lab/quality_branch.md, "Does DGQP's I rank?"). This asks the training-free question: read the sharpness straight off the
distributions any YOLOv8 checkpoint already predicts, and rank by sigmoid(C) x q^a.

* ``top1``: q = the mean over the four sides of the largest bin probability;
* ``top2``: q = the mean over the four sides of the two largest bin probabilities summed (a box edge that falls
  between two bins splits its mass over them, which ``top1`` would count as blur).

a = 0 is the checkpoint's own score. Nothing is retrained: each checkpoint is validated once per (quality, exponent)
with Ultralytics' validation settings (conf 0.001, IoU 0.7) on the val split at ``--imgsz``. It prints mAP50-95 and
AP75 per checkpoint and the change from a = 0 averaged over the checkpoints (± its standard error; pass one checkpoint
per seed). Tune a on one data set and judge it on another: the val split is the real-data benchmark's test split.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import torch

os.environ.setdefault("YOLO_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.record.stats import mean_sd  # noqa: E402

QUALITIES = ("top1", "top2")


def sharpness(boxes: torch.Tensor, reg_max: int, quality: str) -> torch.Tensor:
    """q in (0, 1] per anchor from raw DFL logits ``boxes`` (B, 4 * reg_max, A): the mean over the four sides of the
    top-1 (``top1``) or top-2 summed (``top2``) bin probabilities. Returns (B, A)."""
    b, _, a = boxes.shape
    prob = boxes.float().view(b, 4, reg_max, a).softmax(2)
    k = {"top1": 1, "top2": 2}[quality]
    return prob.topk(k, dim=2).values.sum(2).mean(1)


def rank_by_sharpness(model, quality: str, power: float) -> None:
    """Make ``model`` (an Ultralytics YOLO) score its detections sigmoid(C) x q^power. The head's decoding step is
    wrapped on this instance only: the probe changes no class and no checkpoint."""
    head = model.model.model[-1]
    decode = type(head)._inference

    def scored(x: dict[str, torch.Tensor]) -> torch.Tensor:
        y = decode(head, x)
        q = sharpness(x["boxes"], head.reg_max, quality).clamp_min(1e-6)
        return torch.cat([y[:, :4], y[:, 4:] * q.unsqueeze(1) ** power], 1)

    head._inference = scored


def validate(checkpoint: str, data: str, imgsz: int, quality: str, power: float, batch: int) -> dict[str, float]:
    """mAP50-95 and AP75 (in %) of ``checkpoint`` ranking by sigmoid(C) x q^power (power 0: its own score)."""
    from ultralytics import YOLO

    model = YOLO(checkpoint)
    if quality != "own score":
        rank_by_sharpness(model, quality, power)
    metrics = model.val(data=data, imgsz=imgsz, batch=batch, device="cpu", plots=False, verbose=False, workers=0)
    return {"mAP50-95": 100 * float(metrics.box.map), "AP75": 100 * float(metrics.box.map75)}


def summary(rows: list[dict], qualities: list[str], powers: list[float]) -> str:
    """A Markdown table: per (quality, a) the mean mAP50-95 and the change of mAP50-95 and AP75 from each checkpoint's
    own score (a = 0), mean ± SE over the checkpoints."""
    base = {r["model"]: r for r in rows if r["quality"] == "own score"}
    out = ["| quality | a | mAP50-95 | Δ mAP50-95 | Δ AP75 |", "|---|--:|--:|--:|--:|",
           f"| own score | 0 | {mean_sd([r['mAP50-95'] for r in base.values()])[0]:.2f} | | |"]
    for quality in qualities:
        for power in powers:
            these = [r for r in rows if r["quality"] == quality and r["a"] == power]
            cols = [f"{mean_sd([r['mAP50-95'] for r in these])[0]:.2f}"]
            for key in ("mAP50-95", "AP75"):
                mean, sd = mean_sd([r[key] - base[r["model"]][key] for r in these])
                cols.append(f"{mean:+.2f}" + (f" ± {sd / math.sqrt(len(these)):.2f}" if sd is not None else ""))
            out.append(f"| {quality} | {power:g} | " + " | ".join(cols) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", required=True, help="checkpoints (one per seed)")
    ap.add_argument("--data", required=True, help="data YAML; its val split is scored")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--powers", default="0.5,1,2", help="exponents a besides 0 (default %(default)s)")
    ap.add_argument("--qualities", default=",".join(QUALITIES), help="comma-separated (default %(default)s)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--json", default=None, help="also write every row here")
    args = ap.parse_args(argv)
    powers = [float(p) for p in args.powers.split(",") if p.strip()]
    qualities = [q.strip() for q in args.qualities.split(",") if q.strip()]
    if set(qualities) - set(QUALITIES) or any(not math.isfinite(p) or p <= 0 for p in powers):
        ap.error(f"--qualities from {', '.join(QUALITIES)}; --powers finite and > 0 (a = 0, the own score, always "
                 f"runs) (got {args.qualities!r}, {args.powers!r})")
    missing = [m for m in args.model if not Path(m).is_file()]
    if missing:
        ap.error(f"no such checkpoint(s): {missing}")
    rows = []
    for ckpt in args.model:
        runs = [("own score", 0.0)] + [(q, p) for q in qualities for p in powers]
        for quality, power in runs:
            rows.append({"model": ckpt, "quality": quality, "a": power,
                         **validate(ckpt, args.data, args.imgsz, quality, power, args.batch)})
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"data": args.data, "imgsz": args.imgsz, "rows": rows}, indent=1) + "\n")
    print(f"\n{args.data}, {len(args.model)} checkpoint(s); Δ to each one's own score (a = 0), points, mean ± SE")
    print(summary(rows, qualities, powers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
