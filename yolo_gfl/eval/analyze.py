"""``analyze``: the ranking-oracle table (VarifocalNet Table 1) and the score-IoU calibration of one model on one dataset.

Writes to its run folder ``oracle.csv``, ``oracle.json``, ``oracle.png`` and ``calibration.csv/json/png``, plus one
sub-folder per oracle pass with its COCO evaluation files.
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

from .oracle import ORACLE_MODES, OracleValidator

__all__ = ["analyze"]

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
        ``AP50``, ``AP75`` (pycocotools) and Ultralytics' ``mAP50-95`` and ``mAP50``.
    """
    from ..model import YOLOGFL

    from ..data import resolve_data

    yolo = model if isinstance(model, YOLOGFL) else YOLOGFL(model)
    data = resolve_data(data)
    save_dir = get_save_dir(SimpleNamespace(project=project, name=name, task="detect", mode="analyze", exist_ok=exist_ok))
    save_dir.mkdir(parents=True, exist_ok=True)
    val_args = {"plots": False, "verbose": False, **val_args}
    rows, calibration = [], None
    for mode in ORACLE_MODES:
        LOGGER.info(f"\nanalyze: oracle pass '{mode}' ({ORACLE_MODES.index(mode) + 1}/{len(ORACLE_MODES)})")
        validator = partial(OracleValidator, oracle=mode, coco=True, calibration=mode == "as_is")
        metrics = yolo.val(validator=validator, data=data, project=str(save_dir), name=mode, exist_ok=True, **val_args)
        coco = metrics.coco or {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
        rows.append(
            {"mode": mode, "AP": coco["AP"], "AP50": coco["AP50"], "AP75": coco["AP75"],
             "mAP50-95": float(metrics.box.map), "mAP50": float(metrics.box.map50)}
        )
        if mode == "as_is":
            calibration = metrics.calibration
            for suffix in ("csv", "json", "png"):
                src = save_dir / mode / f"calibration.{suffix}"
                if src.exists():
                    shutil.copy(src, save_dir / src.name)

    by_mode = {r["mode"]: r for r in rows}
    as_is, ideal = by_mode["as_is"]["AP"], by_mode["gt_cls_iou"]["AP"]
    gap = {"as_is_AP": as_is, "gt_cls_iou_AP": ideal, "points": ideal - as_is, "reached": as_is / ideal if ideal else None}
    _write(save_dir, rows, gap)
    LOGGER.info(_table(rows, gap, data))
    return {"oracle": rows, "calibration": calibration, "gap": gap, "save_dir": str(save_dir)}


def _table(rows: list[dict], gap: dict, data: str) -> str:
    lines = [f"\nRanking oracle (VarifocalNet Table 1 protocol) on {data}:", f"{'':12}" + "".join(f"{c:>10}" for c in COLUMNS[1:])]
    lines += [f"{r['mode']:12}" + "".join(f"{100 * r[c]:10.1f}" for c in COLUMNS[1:]) for r in rows]
    if gap["reached"] is not None:
        lines.append(
            f"The model's own ranking reaches {100 * gap['reached']:.1f}% of the gt_cls_iou oracle's COCO AP "
            f"({100 * gap['as_is_AP']:.1f} of {100 * gap['gt_cls_iou_AP']:.1f}; {100 * gap['points']:.1f} points left)."
        )
    return "\n".join(lines)


def _write(save_dir: Path, rows: list[dict], gap: dict) -> None:
    with open(save_dir / "oracle.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (save_dir / "oracle.json").write_text(json.dumps({"oracle": rows, "gap": gap}, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([r["mode"] for r in rows], [100 * r["AP"] for r in rows], color=["#555", "#999", "#2a7", "#27a"])
    for i, r in enumerate(rows):
        ax.text(i, 100 * r["AP"], f"{100 * r['AP']:.1f}", ha="center", va="bottom")
    ax.set_ylabel("COCO AP (pycocotools)")
    ax.set_title("Ranking oracle: candidates re-scored before NMS")
    fig.tight_layout()
    fig.savefig(save_dir / "oracle.png", dpi=120)
    plt.close(fig)
