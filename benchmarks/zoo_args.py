"""Shared command-line flags and report of the accuracy benchmarks (from_scratch.py, finetune.py, gpu.py)."""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from ultralytics.cfg import smart_value

ROOT = Path(__file__).resolve().parents[1]


def add_common_arguments(ap: argparse.ArgumentParser, *, imgsz: int, epochs: int, batch: int, device: str,
                         name: str | None, seeds: str = "0,1,2", workers: int = 2, latency_runs: int = 50,
                         throughput_batch: int = 1) -> None:
    """The zoo's own flags, with the calling benchmark's defaults."""
    ap.add_argument("--models", default=None,
                    help="comma-separated model configs (default: stock yolov8n and every IoU-aware variant)")
    ap.add_argument("--seeds", default=seeds, help="comma-separated training seeds (default %(default)s)")
    ap.add_argument("--imgsz", type=int, default=imgsz, help="train, val and latency image size (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=epochs, help="epochs per cell (default %(default)s)")
    ap.add_argument("--batch", type=int, default=batch, help="batch size (default %(default)s)")
    ap.add_argument("--workers", type=int, default=workers, help="data-loader workers (default %(default)s)")
    ap.add_argument("--device", default=device, help="cpu, or a CUDA device such as 0 (default %(default)s)")
    ap.add_argument("--project", default=str(ROOT / "runs" / "benchmarks"),
                    help="parent folder of the zoo folder (default %(default)s)")
    ap.add_argument("--name", default=name, help="zoo folder name (default: derived from the settings)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="cells trained at once, each in its own process; on CPU Ultralytics trains with cpu_count-1 "
                         "threads, so 2 on a 2-core machine halves the wall time (default %(default)s)")
    ap.add_argument("--latency-runs", type=int, default=latency_runs, help="timed forward passes (default %(default)s)")
    ap.add_argument("--throughput-batch", type=int, default=throughput_batch,
                    help="batch size of the images/s measurement; 1: from the batch-1 latency (default %(default)s)")
    ap.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                    help="any other Ultralytics train argument or yolo_gfl option, e.g. --arg lr0=0.02 (repeatable)")


def extra_train_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--arg key=value`` pairs, typed as the yolo-gfl command line types them."""
    out = {}
    for pair in args.arg:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--arg {pair!r} is not KEY=VALUE, e.g. --arg lr0=0.02")
        out[key.strip()] = smart_value(value.strip())
    return out


def summary(rows: list[dict]) -> list[str]:
    """Lines comparing each model with the first (stock): mAP50-95 difference and score-IoU Spearman, seed means."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    if len(models) < 2:
        return []

    def mean(model: str, key: str) -> float | None:
        vals = [r[key] for r in rows if r["model"] == model and r.get(key) is not None]
        return statistics.fmean(vals) if vals else None

    base = models[0]
    lines = [f"Against {base} (means over seeds; mAP in points):"]
    deltas = {}
    for m in models[1:]:
        a, b = mean(m, "mAP50-95"), mean(base, "mAP50-95")
        s, sb = mean(m, "spearman"), mean(base, "spearman")
        if a is not None and b is not None:
            deltas[m] = (a - b) * 100
        lines.append(f"  {m:<16} mAP50-95 {deltas.get(m, float('nan')):+.2f}   Spearman "
                     f"{'n/a' if s is None else f'{s:.3f}'} vs {'n/a' if sb is None else f'{sb:.3f}'}"
                     + ("" if s is None or sb is None else ("  (higher)" if s > sb else "  (not higher)")))
    if deltas:
        best = max(deltas, key=deltas.get)
        lines.append(f"  best IoU-aware variant: {best}, {deltas[best]:+.2f} points mAP50-95 against {base}")
    return lines


def run_and_report(args: argparse.Namespace, *, data: str, name: str, train_args: dict[str, Any], title: str,
                   eval_only: bool = False) -> list[dict]:
    """Run the zoo (printing its table) and the summary against stock; return the cell rows.

    Without ``--name`` the zoo folder is ``name`` plus a short digest of the train arguments, so the same command
    resumes its own folder and a command with other arguments gets another one.
    """
    from yolo_gfl.zoo import ZooCellError, ZooError, run_zoo

    train_args = dict(batch=args.batch, workers=args.workers, device=args.device, **train_args)
    if args.name is None:
        digest = hashlib.sha1(json.dumps(train_args, sort_keys=True, default=str).encode()).hexdigest()[:6]
        name = f"{name}-{digest}"
    print(f"== {title}\n   zoo folder: {Path(args.project) / name}", flush=True)
    kwargs = dict(models=args.models, data=data, seeds=args.seeds, imgsz=args.imgsz, project=args.project, name=name,
                  latency_runs=args.latency_runs, throughput_batch=args.throughput_batch, jobs=args.jobs,
                  eval_only=eval_only,
                  **train_args)
    if not eval_only:
        kwargs["epochs"] = args.epochs
    try:
        rows = run_zoo(**kwargs)
    except ZooError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except ZooCellError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    for line in summary(rows):
        print(line)
    return rows
