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
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.real_data import _mean_sd  # noqa: E402


def validate(checkpoint: str, data: str, imgsz: int, power: float, batch: int) -> dict[str, float]:
    """mAP50-95 and AP75 (in %) of ``checkpoint`` ranking by sigmoid(C) x I^power."""
    from yolo_gfl import YOLOGFL
    from yolo_gfl.nn import GFLDetect

    model = YOLOGFL(checkpoint)
    head = model.model.model[-1]
    if not isinstance(head, GFLDetect) or head.dgqp is None:
        raise SystemExit(f"{checkpoint} has no DGQP quality branch (dgqp=True): there is no I to weigh.")
    head.quality_power = power
    metrics = model.val(data=data, imgsz=imgsz, batch=batch, device="cpu", plots=False, verbose=False, workers=0)
    return {"mAP50-95": 100 * float(metrics.box.map), "AP75": 100 * float(metrics.box.map75)}


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
    args = ap.parse_args(argv)
    powers = sorted({float(p) for p in args.powers.split(",")} | {1.0})
    if any(p < 0 for p in powers):
        ap.error(f"--powers must be >= 0, got {args.powers}")
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
    if args.json:
        Path(args.json).write_text(json.dumps({"data": args.data, "imgsz": args.imgsz, "results": {
            ck: {f"{p:g}": r for p, r in rs.items()} for ck, rs in results.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
