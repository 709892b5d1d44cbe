"""A zoo's results: zoo.csv (one row per cell), zoo.md (one row per model, mean ± std over seeds) and the plots."""

from __future__ import annotations

import math
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

from .records import finite

ZOO_CSV_COLUMNS = (
    "model", "seed", "mAP50", "mAP75", "mAP50-95", "coco_AP", "coco_AP50", "coco_AP75", "spearman", "pearson",
    "calib_pairs", "params", "GFLOPs", "latency_ms", "img_per_s", "cell_latency_ms", "threads", "epoch_s", "train_img_per_s",
    "epoch_s_with_val", "train_s", "peak_mem_MB", "peak_mem_kind", "epochs", "imgsz", "device", "source", "weights",
)


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None, int]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None, 0
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None), len(vals)


def fmt(mean: float | None, std: float | None, scale: float = 1.0, digits: int = 1) -> str:
    if mean is None:
        return "n/a"
    s = f"{mean * scale:.{digits}f}"
    return s + (f" ± {std * scale:.{digits}f}" if std else "")  # no spread shown where there is none


MD_COLUMNS = (  # (cell field, header, scale, digits)
    ("mAP50", "mAP50", 100, 1),
    ("mAP75", "mAP75", 100, 1),
    ("mAP50-95", "mAP50-95", 100, 1),
    ("coco_AP", "COCO AP", 100, 1),
    ("spearman", "Spearman", 1, 3),
    ("params", "params (M)", 1e-6, 3),
    ("GFLOPs", "GFLOPs", 1, 2),
    ("latency_ms", "latency (ms)", 1, 1),
    ("img_per_s", "images/s", 1, 1),
    ("epoch_s", "epoch (s)", 1, 1),
    ("train_img_per_s", "train img/s", 1, 1),
    ("peak_mem_MB", "peak mem (MB)", 1, 0),
)


def aggregate(results: list[dict], folder: Path, request: dict[str, Any], speed: dict | None = None) -> list[dict]:
    """Write zoo.csv (per cell), zoo.md (per model: mean ± sample std over seeds) and the two plots; return the rows."""
    import csv

    speed = speed or {}
    rows = []
    for r in results:
        row = {c: r.get(c) for c in ZOO_CSV_COLUMNS}
        row["cell_latency_ms"] = r.get("latency_ms")
        if r["model"] in speed:  # the interleaved measurement of all models in one process (see measure_speed)
            row.update({k: speed[r["model"]][k] for k in ("latency_ms", "img_per_s", "threads")})
        rows.append(row)
    with open(folder / "zoo.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ZOO_CSV_COLUMNS)
        w.writeheader()
        w.writerows(rows)

    labels = list(dict.fromkeys(r["model"] for r in rows))
    by_model = {m: [r for r in rows if r["model"] == m] for m in labels}
    stats = {m: {c: _mean_std([finite(r.get(c)) for r in rs]) for c, *_ in MD_COLUMNS} for m, rs in by_model.items()}
    base = labels[0] if labels else None
    heads = ["model", "seeds"] + [h for _, h, _, _ in MD_COLUMNS] + [f"Δ mAP50-95 vs {base}"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join(["---"] + ["--:"] * (len(heads) - 1)) + "|"]
    for m in labels:
        cells = [m, ",".join(str(r["seed"]) for r in by_model[m])]
        cells += [fmt(*stats[m][c][:2], scale, digits) for c, _, scale, digits in MD_COLUMNS]
        cells.append(_delta(stats[base]["mAP50-95"], stats[m]["mAP50-95"]) if m != base else "—")
        lines.append("| " + " | ".join(cells) + " |")
    first = results[0] if results else {}
    kinds = sorted({str(r.get("peak_mem_kind")) for r in results})
    side_by_side = max(int(r.get("spec", {}).get("concurrent_cells") or 1) for r in results)  # each cell's own record
    notes = [
        "",
        f"Data: `{request.get('data')}` (val split); "
        + (f"epochs {request.get('epochs')}, " if request.get("epochs") else "") + f"imgsz {request.get('imgsz')}, "
        f"seeds {request.get('seeds')}; train arguments {request.get('train_args') or '{}'}"
        + (" (eval_only: existing checkpoints)" if request.get("eval_only") else "") + ".",
        "Each entry is the mean ± sample standard deviation (n-1) over the seeds (a single value where one seed); "
        "the Δ column is the difference of the means ± its standard error, in points. "
        "mAP50/mAP75/mAP50-95: Ultralytics' val metrics, in %; COCO AP: pycocotools' AP@[.50:.95], in %; "
        "Spearman: rank correlation of detection score with IoU to its best same-class ground truth; "
        "params and GFLOPs: unfused model at the val imgsz; latency: median forward pass (no NMS) of the fused model, "
        f"batch 1, {'all models measured in one process, interleaved round by round' if speed else 'measured in each cell'}; images/s: {_throughput_note(first.get('throughput_batch'))}; "
        f"epoch: mean training-loop time per epoch (validation excluded), train img/s: training images per second of "
        f"it; peak mem: {', '.join(kinds)} of {'evaluation' if request.get('eval_only') else 'training'}"
        + (f"; cells ran up to {side_by_side} at a time, so the epoch times and peak RSS were taken side by side"
           if side_by_side > 1 else "") + ".",
        f"Machine: {first.get('machine')}, device {first.get('device')}, {first.get('threads')} threads; "
        f"versions {first.get('versions')}; written {datetime.now().astimezone().isoformat(timespec='seconds')}.",
    ]
    (folder / "zoo.md").write_text("\n".join(lines + notes) + "\n")
    _plots(results, labels, stats, folder)
    return rows


def _throughput_note(batch: int | None) -> str:
    return "1000 / latency" if (batch or 1) == 1 else f"forward passes at batch {batch}"


def _delta(base: tuple, other: tuple) -> str:
    """Difference of two means in points, with its standard error sqrt(s1^2/n1 + s2^2/n2) where both have a spread."""
    (b, bs, bn), (v, vs, vn) = base, other
    if b is None or v is None:
        return "n/a"
    se = math.sqrt(bs**2 / bn + vs**2 / vn) if bs is not None and vs is not None else None
    return f"{(v - b) * 100:+.1f}" + (f" ± {se * 100:.1f}" if se is not None else "")


def _plots(results: list[dict], labels: list[str], stats: dict, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for m in labels:
        (lat, lat_sd, _), (ap, ap_sd, _) = stats[m]["latency_ms"], stats[m]["mAP50-95"]
        if lat is None or ap is None:
            continue
        ax.errorbar(lat, ap * 100, xerr=lat_sd or 0, yerr=(ap_sd or 0) * 100, fmt="o", capsize=3, label=m)
        ax.annotate(m, (lat, ap * 100), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("latency per image, batch 1 (ms)")
    ax.set_ylabel("mAP50-95 (%)")
    ax.set_title("accuracy against latency (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    if labels:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "zoo_ap_latency.png", dpi=150)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for m in labels:
        curves = [r["pr_curve"] for r in results if r["model"] == m and r.get("pr_curve")]
        if not curves:
            continue
        recall = np.asarray(curves[0]["recall"])
        precision = np.mean([c["precision"] for c in curves], 0)
        ap50 = stats[m]["mAP50"][0]
        ax.plot(recall, precision, label=f"{m} (mAP50 {ap50 * 100:.1f})" if ap50 is not None else m)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("precision-recall at IoU 0.5, all classes (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "zoo_pr.png", dpi=150)
    plt.close(fig)
