"""The ranking oracle of VarifocalNet (Table 1): how much AP a detector leaves on the table by its ranking score.

The model's own dense candidates (every anchor's box and class scores, before NMS) are re-scored with ground-truth
knowledge, then go through the usual NMS and metrics:

* ``as_is``: the model's scores and boxes;
* ``gt_cls``: the score of a positive candidate is 1 at its ground-truth class (0 elsewhere); every other candidate 0;
* ``gt_cls_iou``: the score of a positive candidate is the IoU of its predicted box with its ground truth, at the
  ground-truth class; every other candidate 0 (the IoU-aware score a perfect IACS predictor would give);
* ``gt_bbox``: the box of a positive candidate is replaced by its ground-truth box; scores as predicted.

Matching (documented, since the paper used its training assigner's positives): a candidate is *positive* when its
anchor point lies inside at least one ground-truth box; among those boxes it is matched to the one its predicted box
overlaps most (IoU), ties broken by the smaller box. Candidates whose anchor lies in no ground-truth box are negatives.
The anchor-inside rule is the candidate rule of TAL and ATSS, so the positives are those an assigner could choose.
"""

from __future__ import annotations

from typing import Any

import torch
from ultralytics.utils import ops
from ultralytics.utils.metrics import box_iou

from ..engine.validator import GFLValidator

__all__ = ["ORACLE_MODES", "oracle_rescore", "OracleValidator", "anchor_points_for"]

ORACLE_MODES = ("as_is", "gt_cls", "gt_cls_iou", "gt_bbox")


def anchor_points_for(height: int, width: int, strides, device=None) -> torch.Tensor:
    """(A, 2) pixel centres of the anchors of a YOLOv8 head on an input of ``height`` x ``width``, level by level."""
    points = []
    for s in strides:
        s = int(s)
        ys = (torch.arange(height // s, device=device, dtype=torch.float32) + 0.5) * s
        xs = (torch.arange(width // s, device=device, dtype=torch.float32) + 0.5) * s
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((xx, yy), -1).view(-1, 2))
    return torch.cat(points)


def oracle_rescore(
    pred: torch.Tensor, gt_boxes: torch.Tensor, gt_cls: torch.Tensor, anchors: torch.Tensor, mode: str
) -> torch.Tensor:
    """Re-score one image's dense predictions with ground-truth knowledge.

    Args:
        pred: (4 + nc, A) head output: xywh boxes in input pixels, then per-class scores.
        gt_boxes: (G, 4) ground-truth xyxy boxes in input pixels.
        gt_cls: (G,) ground-truth class indices.
        anchors: (A, 2) anchor points in input pixels.
        mode: one of ``ORACLE_MODES``.

    Returns:
        (4 + nc, A) re-scored predictions in the same layout.
    """
    if mode not in ORACLE_MODES:
        raise ValueError(f"oracle mode {mode!r} is not one of {ORACLE_MODES}")
    out = pred.clone()
    if mode == "as_is":
        return out
    boxes = ops.xywh2xyxy(pred[:4].T)  # (A, 4)
    nc = pred.shape[0] - 4
    if len(gt_boxes) == 0:
        if mode != "gt_bbox":
            out[4:] = 0
        return out
    x, y = anchors[:, :1], anchors[:, 1:]
    inside = (x > gt_boxes[:, 0]) & (x < gt_boxes[:, 2]) & (y > gt_boxes[:, 1]) & (y < gt_boxes[:, 3])  # (A, G)
    iou = box_iou(boxes, gt_boxes)  # (A, G)
    area = (gt_boxes[:, 2:] - gt_boxes[:, :2]).prod(-1)
    # best IoU among the boxes containing the anchor; the tiny area term breaks exact ties towards the smaller box
    key = torch.where(inside, iou - area * 1e-12, torch.full_like(iou, -1.0))
    best_iou_key, match = key.max(1)
    positive = best_iou_key > -1
    matched_iou = iou.gather(1, match[:, None])[:, 0] * positive
    if mode == "gt_bbox":
        out[:4, positive] = ops.xyxy2xywh(gt_boxes[match[positive]]).T
        return out
    scores = torch.zeros(nc, pred.shape[1], device=pred.device, dtype=pred.dtype)
    value = torch.ones_like(matched_iou) if mode == "gt_cls" else matched_iou
    cls = gt_cls.long()[match]
    scores[cls[positive], positive.nonzero()[:, 0]] = value[positive]
    out[4:] = scores
    return out


class OracleValidator(GFLValidator):
    """A ``GFLValidator`` that re-scores the candidates with ``oracle_rescore(mode)`` before NMS."""

    def __init__(self, *args, oracle: str = "as_is", **kwargs):
        if oracle not in ORACLE_MODES:
            raise ValueError(f"oracle={oracle!r} is not one of {ORACLE_MODES}")
        super().__init__(*args, **kwargs)
        self.oracle = oracle
        self._batch: dict[str, Any] | None = None

    def preprocess(self, batch: dict[str, Any]) -> dict[str, Any]:
        self._batch = batch = super().preprocess(batch)  # the ground truth the next postprocess needs
        return batch

    def postprocess(self, preds):
        if self.oracle == "as_is":
            return super().postprocess(preds)
        y = preds[0] if isinstance(preds, (list, tuple)) else preds  # (B, 4 + nc, A)
        batch, (height, width) = self._batch, self._batch["img"].shape[2:]
        anchors = anchor_points_for(height, width, self.strides, y.device)
        if len(anchors) != y.shape[2]:
            raise RuntimeError(f"oracle: {y.shape[2]} candidates but {len(anchors)} anchors for strides {self.strides}")
        rescored = []
        for si in range(y.shape[0]):
            gt = self._prepare_batch(si, batch)
            rescored.append(oracle_rescore(y[si], gt["bboxes"].to(y.device), gt["cls"].to(y.device), anchors, self.oracle))
        return super().postprocess(torch.stack(rescored))

    def init_metrics(self, model) -> None:
        super().init_metrics(model)
        native = model.model if getattr(model, "format", None) == "pt" else model
        stride = getattr(native, "stride", None)
        self.strides = stride.tolist() if torch.is_tensor(stride) and stride.numel() > 1 else [8, 16, 32]  # YOLOv8 P3-P5
