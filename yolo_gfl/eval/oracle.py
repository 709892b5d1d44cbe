"""The ranking oracle of VarifocalNet (Table 1), as pure arithmetic: dense candidates in, re-scored candidates out.

Source: Zhang, Wang, Dayoub, Sünderhauf, "VarifocalNet: An IoU-aware Dense Object Detector", CVPR 2021, Sec. 3 and
Table 1. The paper takes FCOS+ATSS trained on COCO and, before NMS, replaces some outputs of every *foreground point*
with their ground-truth values, then evaluates COCO AP as usual:

* **Which points.** The foreground points are the positive samples of the detector's training assigner (ATSS there;
  Sec. 4.6 recalls that ATSS defines the foreground and background points, as in Sec. 3). Here: the model's own
  criterion and assigner (Ultralytics' TAL, or ATSS for ``assigner=atss`` and ``-vfnet``) run on the model's own
  predictions for the image, exactly as in a training step; the engine side (``yolo_gfl.engine.oracle``) produces
  that assignment.
* **Which outputs.** ``gt_bbox`` replaces the box of each foreground point by its assigned ground-truth box;
  ``gt_cls`` replaces its classification score vector by the one-hot vector of the ground-truth class (1 at that class,
  0 at the others); ``gt_cls_iou`` uses the IoU between the point's predicted box and its ground-truth box in place of
  that 1 (the IoU-aware classification score, IACS, that a perfect VarifocalNet would predict). Table 1's centerness
  rows (``gt_ctr``, ``gt_ctr_iou``, ``w/ ctr``) have no counterpart in a head without centerness.
* **Everything else keeps its prediction**: background points keep their boxes and scores, and each row changes only
  its own output (``gt_bbox`` keeps the predicted scores, ``gt_cls``/``gt_cls_iou`` keep the predicted boxes). So the
  oracle candidates still compete, through NMS and AP, with the model's own false positives.

The paper's figures for FCOS+ATSS (ResNet-50, COCO val2017): 39.2 AP as is (38.5 without centerness), 56.1 with
``gt_bbox``, 43.1 with ``gt_cls`` and 74.7 with ``gt_cls_iou``: the candidates already hold far better boxes than the
ones the classification score picks, so the ranking score is where AP is lost. Two rules above are a reading of the
paper rather than a quotation (docs/oracle.md says which): background points keep their outputs, and a foreground
point's whole class vector is replaced, as the IACS target q of Eq. 2 is defined.
"""

from __future__ import annotations

import torch
from ultralytics.utils import ops
from ultralytics.utils.metrics import bbox_iou

__all__ = ["ORACLE_ROWS", "oracle_rescore"]

ORACLE_ROWS = ("as_is", "gt_bbox", "gt_cls", "gt_cls_iou")


def oracle_rescore(
    pred: torch.Tensor,
    fg_mask: torch.Tensor,
    gt_idx: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_cls: torch.Tensor,
    row: str,
) -> torch.Tensor:
    """Re-score one image's dense candidates with ground-truth knowledge, as row ``row`` of Table 1.

    Args:
        pred: (4 + nc, A) the head's eval output for one image: xywh boxes in input pixels, then per-class scores
            (Ultralytics' layout; for ``-vfnet`` the refined box, with DGQP the joint score J).
        fg_mask: (A,) bool, the foreground points (the training assigner's positives).
        gt_idx: (A,) long, the ground truth each foreground point is assigned to (ignored elsewhere).
        gt_boxes: (G, 4) ground-truth xyxy boxes in input pixels.
        gt_cls: (G,) ground-truth class indices.
        row: one of ``ORACLE_ROWS``.

    Returns:
        (4 + nc, A) re-scored candidates in the same layout; a new tensor, ``pred`` is left as it was.
    """
    if row not in ORACLE_ROWS:
        raise ValueError(f"oracle row {row!r} is not one of {ORACLE_ROWS}")
    out = pred.clone()
    fg = fg_mask.nonzero()[:, 0]
    if row == "as_is" or len(fg) == 0:
        return out
    if len(gt_boxes) == 0:
        raise ValueError(f"{len(fg)} foreground points but no ground-truth box to assign them to")
    assigned = gt_idx[fg].long()
    if row == "gt_bbox":
        out[:4, fg] = ops.xyxy2xywh(gt_boxes[assigned].to(pred.dtype)).T
        return out
    if row == "gt_cls":
        value = torch.ones(len(fg), dtype=pred.dtype, device=pred.device)
    else:  # gt_cls_iou: IoU of the point's own predicted box with its ground truth (as the IACS training target)
        boxes = ops.xywh2xyxy(pred[:4, fg].T)
        value = bbox_iou(boxes, gt_boxes[assigned].to(pred.dtype), xywh=False).squeeze(-1).clamp(0, 1)
    out[4:, fg] = 0
    out[4 + gt_cls[assigned].long(), fg] = value
    return out
