"""``analyze``: the ranking-oracle table (VarifocalNet Table 1) and the score-IoU calibration of one model on one dataset.

The engine side of the oracle: ``OracleValidator`` runs the model's own training criterion on each validation batch to
find the foreground points (the assigner's positives, as a training step would), hands them to the pure
``oracle_rescore`` (see ``yolo_gfl.eval.oracle`` for the protocol and its sources), and lets Ultralytics' NMS and
metrics, and pycocotools, score the result. ``analyze`` runs one pass per row.

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

import torch
from ultralytics.cfg import get_save_dir
from ultralytics.utils import DEFAULT_CFG_DICT, LOGGER, IterableSimpleNamespace

from ..engine.validator import GFLValidator
from .oracle import ORACLE_ROWS, oracle_rescore

__all__ = ["analyze", "AnalyzeError", "OracleValidator"]

COLUMNS = ("mode", "AP", "AP50", "AP75", "mAP50-95", "mAP50")


class AnalyzeError(RuntimeError):
    """``analyze`` cannot produce a meaningful table; the message names the cause and the fix."""


def _native_model(model) -> torch.nn.Module | None:
    """The PyTorch detection model inside Ultralytics' AutoBackend (None for exported formats)."""
    m = model
    for _ in range(4):
        if callable(getattr(m, "init_criterion", None)):
            return m
        m = getattr(m, "model", None)
    return None


def _float_preds(preds: dict[str, Any]) -> dict[str, Any]:
    """The raw head outputs in float32 (a half-precision validation must not change the assignment)."""
    return {k: [t.float() for t in v] if isinstance(v, list) else v.float() for k, v in preds.items()}


class OracleValidator(GFLValidator):
    """A ``GFLValidator`` that re-scores the dense candidates with ``oracle_rescore(row)`` before NMS.

    Foreground points come from the model's own criterion (``model.init_criterion()``: Ultralytics' TAL for stock
    models, yolo_gfl's TAL or ATSS for the variants, with the refined boxes for ``-vfnet``), run on the batch exactly as
    ``get_assigned_targets_and_loss`` runs it in training. After a run, ``self.metrics.oracle`` holds the row, the
    number of detections evaluated, of foreground points and of ground-truth boxes.
    """

    def __init__(self, *args, oracle: str = "as_is", **kwargs):
        if oracle not in ORACLE_ROWS:
            raise ValueError(f"oracle={oracle!r} is not one of {ORACLE_ROWS}")
        super().__init__(*args, **kwargs)
        self.oracle = oracle
        self._batch: dict[str, Any] | None = None

    def init_metrics(self, model) -> None:
        super().init_metrics(model)
        # as_is runs no assigner, so it has no foreground-point count (None, not 0)
        self._counts = {"foreground_points": None if self.oracle == "as_is" else 0, "gt_boxes": 0}
        self._criterion = None
        if self.oracle == "as_is":
            return
        native = _native_model(model)
        if native is None:
            raise AnalyzeError(
                f"oracle row {self.oracle!r} needs the PyTorch model to run its training assigner; "
                f"{type(model).__name__} has none (an exported format?). Analyze the .pt checkpoint instead."
            )
        self._criterion = native.init_criterion()
        # Loss gains only scale the loss this validator throws away; a checkpoint stores them as a plain dict.
        hyp = self._criterion.hyp
        if not isinstance(hyp, IterableSimpleNamespace):
            self._criterion.hyp = IterableSimpleNamespace(**{**DEFAULT_CFG_DICT, **(dict(hyp) if hyp else {})})

    def preprocess(self, batch: dict[str, Any]) -> dict[str, Any]:
        self._batch = batch = super().preprocess(batch)  # the ground truth the next postprocess needs
        return batch

    def postprocess(self, preds):
        if self.oracle == "as_is":
            return super().postprocess(preds)
        if not (isinstance(preds, (list, tuple)) and len(preds) == 2 and isinstance(preds[1], dict)):
            raise AnalyzeError("the oracle needs the head's raw outputs beside its predictions (a PyTorch model)")
        y, raw = preds
        with torch.no_grad():
            (fg_mask, gt_idx, *_), _, _ = self._criterion.get_assigned_targets_and_loss(_float_preds(raw), self._batch)
        rescored = []
        for si in range(y.shape[0]):
            gt = self._prepare_batch(si, self._batch)
            rescored.append(oracle_rescore(y[si], fg_mask[si], gt_idx[si], gt["bboxes"], gt["cls"], self.oracle))
        self._counts["foreground_points"] += int(fg_mask.sum())
        return super().postprocess(torch.stack(rescored))

    def update_metrics(self, preds: list[dict], batch: dict[str, Any]) -> None:
        super().update_metrics(preds, batch)
        self._counts["gt_boxes"] += len(batch["cls"])

    def get_stats(self) -> dict[str, Any]:
        stats = super().get_stats()
        detections = sum(len(d) for d in self._dets) if self._collect else None
        self.metrics.oracle = {"row": self.oracle, "detections": detections, **self._counts}
        return stats


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
    from ..data import resolve_data
    from ..model import YOLOGFL

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
