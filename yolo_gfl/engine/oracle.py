"""``OracleValidator``: the engine side of the ranking oracle (VarifocalNet Table 1).

It runs the model's own training criterion on each validation batch to find the foreground points (the assigner's
positives, as a training step would), hands them to the pure ``oracle_rescore`` (see ``yolo_gfl.eval.oracle`` for the
protocol and its sources), and lets Ultralytics' NMS and metrics, and pycocotools, score the result.
``yolo_gfl.analyze`` runs one pass per row.
"""

from __future__ import annotations

from typing import Any

import torch
from ultralytics.utils import DEFAULT_CFG_DICT, IterableSimpleNamespace

from ..eval.oracle import ORACLE_ROWS, oracle_rescore
from .validator import GFLValidator

__all__ = ["AnalyzeError", "OracleValidator"]


class AnalyzeError(RuntimeError):
    """``analyze`` cannot produce a meaningful table; the message names the cause and the fix.

    Defined here, below ``yolo_gfl.analyze`` (which re-exports it), because this validator raises it too.
    """


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
