"""``analyze``: the ranking-oracle table (VarifocalNet Table 1) and the score-IoU calibration of one model on one dataset.

One ``OracleValidator`` pass per row (``yolo_gfl.engine.oracle``: the assigner's foreground points, re-scored by the
pure ``yolo_gfl.eval.oracle``), then the table, its plot and the calibration report.

Writes to its run folder ``oracle.csv``, ``oracle.json``, ``oracle.png`` and ``calibration.csv/json/png``, plus one
sub-folder per oracle pass with its COCO evaluation files. It stops with ``AnalyzeError`` rather than write a table
that measures nothing: no validation image evaluated, no ground-truth box, or a model that detects nothing.
"""

from __future__ import annotations

import csv
import json
import shutil
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ultralytics.cfg import get_save_dir
from ultralytics.utils import LOGGER

from .data import resolve_data
from .engine.oracle import AnalyzeError, OracleValidator
from .eval.oracle import ORACLE_ROWS
from .model import YOLOGFL

__all__ = ["analyze", "AnalyzeError", "OracleValidator"]

COLUMNS = ("mode", "AP", "AP50", "AP75", "mAP50-95", "mAP50")


def analyze(
    model, data: str, project: str | None = None, name: str = "analyze", exist_ok: bool = False, **val_args: Any
) -> dict[str, Any]:
    """Run the four oracle passes and the calibration report; return them as plain dicts.

    Args:
        model: a ``YOLOGFL`` (or any path/config it accepts, stock checkpoints too).
        data: dataset YAML.
        project, name, exist_ok: run folder, as for Ultralytics (default ``runs/detect/analyze``, numbered unless
            ``exist_ok``).
        **val_args: Ultralytics validation arguments (``imgsz``, ``batch``, ``device``, ``conf``, ``iou``, ...).

    Returns:
        ``{"oracle": [row per mode], "calibration": report, "gap": {...}, "save_dir": str}``; each row has COCO ``AP``,
        ``AP50``, ``AP75`` (pycocotools), Ultralytics' ``mAP50-95`` and ``mAP50``, and the counts behind them
        (``detections``, ``foreground_points``, ``gt_boxes``).

    Raises:
        AnalyzeError: when the table would measure nothing (see the module docstring); nothing is written then.
    """
    yolo = model if isinstance(model, YOLOGFL) else YOLOGFL(model)
    data = resolve_data(data)
    save_dir = get_save_dir(SimpleNamespace(project=project, name=name, task="detect", mode="analyze", exist_ok=exist_ok))
    save_dir.mkdir(parents=True, exist_ok=True)
    val_args = {"plots": False, "verbose": False, **val_args}
    rows, calibration = [], None
    for i, mode in enumerate(ORACLE_ROWS):
        LOGGER.info(f"\nanalyze: oracle pass '{mode}' ({i + 1}/{len(ORACLE_ROWS)})")
        validator = partial(OracleValidator, oracle=mode, coco=True, calibration=mode == "as_is")
        metrics = yolo.val(validator=validator, data=data, project=str(save_dir), name=mode, exist_ok=True, **val_args)
        counts = _checked_counts(metrics, mode, data, val_args)
        coco = metrics.coco
        rows.append(
            {"mode": mode, "AP": coco["AP"], "AP50": coco["AP50"], "AP75": coco["AP75"],
             "mAP50-95": float(metrics.box.map), "mAP50": float(metrics.box.map50), **counts}
        )
        if mode == "as_is":
            calibration = metrics.calibration
            for suffix in ("csv", "json", "png"):
                src = save_dir / mode / f"calibration.{suffix}"
                if src.exists():
                    shutil.copy(src, save_dir / src.name)

    by_mode = {r["mode"]: r for r in rows}
    as_is, ideal = by_mode["as_is"]["AP"], by_mode["gt_cls_iou"]["AP"]
    gap = {"as_is_AP": as_is, "gt_cls_iou_AP": ideal, "points": ideal - as_is, "reached": as_is / ideal if ideal > 0 else None}
    _write(save_dir, rows, gap)
    LOGGER.info(_table(rows, gap, data))
    return {"oracle": rows, "calibration": calibration, "gap": gap, "save_dir": str(save_dir)}


def _checked_counts(metrics, mode: str, data: str, val_args: dict[str, Any]) -> dict[str, int]:
    """The pass's counts, or ``AnalyzeError`` naming why its figures would be no measurement at all."""
    counts = getattr(metrics, "oracle", None)
    if getattr(metrics, "coco", None) is None or counts is None or counts["detections"] is None:
        raise AnalyzeError(
            f"the COCO evaluation of oracle pass {mode!r} produced nothing: no validation image of {data} reached it. "
            f"Check that the data YAML's 'val' split lists images."
        )
    if counts["gt_boxes"] == 0:
        raise AnalyzeError(
            f"the 'val' split of {data} has no ground-truth boxes: every AP is undefined and no candidate can be "
            f"re-scored. Give a dataset whose validation images are labelled."
        )
    if counts["detections"] == 0:
        conf = val_args.get("conf")
        raise AnalyzeError(
            f"the model detected nothing on the 'val' split of {data} in pass {mode!r}"
            f"{f' at conf={conf}' if conf is not None else ''}: its AP is 0 by definition, and the oracle rows would "
            f"measure the ground truth, not the model. Train it (longer) on this data, check that the classes match, "
            f"or lower conf."
        )
    return {k: counts[k] for k in ("detections", "foreground_points", "gt_boxes")}


def _table(rows: list[dict], gap: dict, data: str) -> str:
    lines = [f"\nRanking oracle (VarifocalNet Table 1 protocol) on {data}:",
             f"{'':12}" + "".join(f"{c:>10}" for c in COLUMNS[1:]) + f"{'fg points':>12}"]
    for r in rows:
        fg = "-" if r["foreground_points"] is None else r["foreground_points"]
        lines.append(f"{r['mode']:12}" + "".join(f"{100 * r[c]:10.1f}" for c in COLUMNS[1:]) + f"{fg:>12}")
    if gap["reached"] is not None:
        lines.append(
            f"The model's own ranking reaches {100 * gap['reached']:.1f}% of the gt_cls_iou oracle's COCO AP "
            f"({100 * gap['as_is_AP']:.1f} of {100 * gap['gt_cls_iou_AP']:.1f}; {100 * gap['points']:.1f} points left)."
        )
    return "\n".join(lines)


def _write(save_dir: Path, rows: list[dict], gap: dict) -> None:
    with open(save_dir / "oracle.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (save_dir / "oracle.json").write_text(json.dumps({"oracle": rows, "gap": gap}, indent=2, allow_nan=False))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([r["mode"] for r in rows], [100 * r["AP"] for r in rows], color=["#555", "#999", "#2a7", "#27a"])
    for i, r in enumerate(rows):
        ax.text(i, 100 * r["AP"], f"{100 * r['AP']:.1f}", ha="center", va="bottom")
    ax.set_ylabel("COCO AP (pycocotools)")
    ax.set_title("Ranking oracle: foreground points re-scored before NMS")
    fig.tight_layout()
    fig.savefig(save_dir / "oracle.png", dpi=120)
    plt.close(fig)
