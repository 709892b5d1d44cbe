"""The training criterion of the IoU-aware variants: ``v8DetectionLoss`` with an IoU-aware classification target.

For each positive anchor (chosen by the assigner, TAL by default) the classification target at its ground-truth class
is the IoU-aware classification score (IACS, VarifocalNet Sec. 3.1): the IoU between the anchor's decoded predicted
box (detached) and its assigned ground-truth box; every other entry is 0. The class branch learns it with

* ``vfl``: Varifocal Loss (VarifocalNet, Eq. 2), or
* ``qfl``: Quality Focal Loss (GFL, Eq. 5),

on logits, or on the probability J = sigmoid(C) x I when GFLv2's DGQP is on. Normalisation follows both papers: the
classification loss by the number of positives; the IoU loss and DFL weighted per positive by that IoU target and
normalised by the sum of those weights (VarifocalNet; GFL weights by the detached score instead, a close cousin).
Both sums are clamped at 1, as the papers and Ultralytics do, so a batch with few, poor positives is not blown up.
``bce`` keeps Ultralytics' own loss and targets (TAL's normalised alignment metric) for the stock baseline.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.tal import bbox2dist, make_anchors

from .assigners import ATSSAssigner
from .losses import distribution_focal_loss, quality_focal_loss, varifocal_loss
from .options import validate_options

__all__ = ["GFLDetectionLoss", "iou_aware_targets"]


def iou_aware_targets(
    pred_bboxes: torch.Tensor, target_bboxes: torch.Tensor, target_labels: torch.Tensor, fg_mask: torch.Tensor, nc: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU-aware classification targets (IACS, VarifocalNet Sec. 3.1).

    Args:
        pred_bboxes: (b, a, 4) predicted xyxy boxes (detached here: the target must not pull the box).
        target_bboxes: (b, a, 4) assigned ground-truth xyxy boxes, same units.
        target_labels: (b, a) assigned class indices (ignored where ``fg_mask`` is False).
        fg_mask: (b, a) bool, positive anchors.
        nc: number of classes.

    Returns:
        (b, a, nc) targets: the IoU at the ground-truth class of each positive, 0 elsewhere; and the (b, a) IoUs
        (0 at negatives). Computed densely, without boolean indexing, so nothing waits on the device.
    """
    iou = bbox_iou(pred_bboxes.detach().float(), target_bboxes.float(), xywh=False).squeeze(-1)
    iou = iou.clamp(0, 1) * fg_mask
    one_hot = F.one_hot(target_labels.long().clamp(0, nc - 1), nc).float() * fg_mask.unsqueeze(-1)
    return one_hot * iou.unsqueeze(-1), iou


class GFLDetectionLoss(v8DetectionLoss):
    """YOLOv8 detection loss with VFL / QFL on IoU-aware targets, DFL kept, optional DGQP joint score.

    Args:
        model: the (de-paralleled) detection model; its ``gfl_options`` select the variant and its ``args`` carry
            Ultralytics' gains ``box``, ``cls`` and ``dfl``.
        tal_topk: TAL's candidate count, as in ``v8DetectionLoss``.
    """

    def __init__(self, model: torch.nn.Module, tal_topk: int = 10):
        super().__init__(model, tal_topk=tal_topk)
        self.options = validate_options(getattr(model, "gfl_options", None))
        if self.options["assigner"] == "atss":
            self.assigner = ATSSAssigner(self.nc, topk=9)

    def classification_loss(self, pred: torch.Tensor, target: torch.Tensor, logits: bool) -> torch.Tensor:
        """Element-wise classification loss of the selected kind, (b, a, nc) -> (b, a, nc)."""
        o = self.options
        if o["cls_loss"] == "vfl":
            return varifocal_loss(pred, target, o["vfl_alpha"], o["vfl_gamma"], logits=logits)
        if o["cls_loss"] == "qfl":
            return quality_focal_loss(pred, target, o["qfl_beta"], logits=logits)
        with torch.autocast(device_type=pred.device.type, enabled=False):
            pred, target = pred.float(), target.float()
            if logits:
                return F.binary_cross_entropy_with_logits(pred, target, reduction="none")
            return F.binary_cross_entropy(pred, target, reduction="none")

    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **assign_kwargs):
        """Compute (box, cls, dfl) losses with IoU-aware targets; same return contract as ``v8DetectionLoss``."""
        quality = preds.get("quality")  # DGQP's I, (b, 1, a), or None
        o = self.options
        if o["cls_loss"] == "bce" and quality is None and o["box_loss"] == "ciou" and o["assigner"] == "tal":
            return super().get_assigned_targets_and_loss(preds, batch, **assign_kwargs)  # exactly stock

        loss = torch.zeros(3, device=self.device)  # box, cls, dfl
        pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()  # (b, a, 4 * reg_max)
        pred_logits = preds["scores"].permute(0, 2, 1).contiguous()  # (b, a, nc)
        anchor_points, stride_tensor = make_anchors(preds["feats"], self.stride, 0.5)
        batch_size = pred_logits.shape[0]
        imgsz = torch.tensor(preds["feats"][0].shape[2:], device=self.device, dtype=pred_logits.dtype) * self.stride[0]

        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)
        targets = self.preprocess(targets.to(self.device), batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes = targets.split((1, 4), 2)  # cls, xyxy pixels
        mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)

        pred_bboxes = self.bbox_decode(anchor_points, pred_distri)  # xyxy in stride units, (b, a, 4)
        with torch.autocast(device_type=pred_logits.device.type, enabled=False):
            pred_probs = pred_logits.float().sigmoid()
            if quality is not None:
                pred_probs = pred_probs * quality.float().transpose(1, 2)  # J = sigmoid(C) x I

        target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assigner(
            pred_probs.detach(),
            (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
            anchor_points * stride_tensor,
            gt_labels,
            gt_bboxes,
            mask_gt,
            **assign_kwargs,
            **({"stride_tensor": stride_tensor} if o["assigner"] == "atss" else {}),  # ATSS works level by level
        )
        target_bboxes_grid = target_bboxes / stride_tensor

        iou_target, iou = iou_aware_targets(pred_bboxes, target_bboxes_grid, target_labels, fg_mask, self.nc)

        if self.options["cls_loss"] == "bce":  # stock targets and normalisation
            cls_target, cls_norm = target_scores.float(), target_scores.sum().clamp(min=1)
        else:
            cls_target, cls_norm = iou_target, fg_mask.sum().clamp(min=1)
        cls_pred, logits = (pred_logits, True) if quality is None else (pred_probs, False)
        cls_elem = self.classification_loss(cls_pred, cls_target, logits)
        if self.class_weights is not None:
            cls_elem = cls_elem * self.class_weights
        loss[1] = cls_elem.sum() / cls_norm

        # Box IoU loss and DFL at positives, weighted by the IoU target and normalised by its sum.
        fg = fg_mask.nonzero(as_tuple=True)
        weight = iou[fg]  # (P,)
        weight_sum = weight.sum().clamp(min=1)
        use_giou = self.options["box_loss"] == "giou"
        box_iou = bbox_iou(pred_bboxes[fg], target_bboxes_grid[fg], xywh=False, GIoU=use_giou, CIoU=not use_giou)
        loss[0] = ((1.0 - box_iou.squeeze(-1)) * weight).sum() / weight_sum
        target_ltrb = bbox2dist(anchor_points, target_bboxes_grid, self.reg_max - 1)[fg]  # (P, 4)
        dfl = distribution_focal_loss(pred_distri[fg].view(-1, self.reg_max), target_ltrb.reshape(-1))
        loss[2] = (dfl.view(-1, 4).mean(-1) * weight).sum() / weight_sum

        loss[0] *= self.hyp.box
        loss[1] *= self.hyp.cls * self.options["cls_gain"]
        loss[2] *= self.hyp.dfl
        return (
            (fg_mask, target_gt_idx, target_bboxes, anchor_points, stride_tensor),
            loss,
            dict(zip(self.loss_names, loss.detach())),
        )
