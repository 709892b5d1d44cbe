"""The training criteria of the variants: the papers' losses (``yolo_gfl.losses``) composed on ``v8DetectionLoss``.

Every variant has Ultralytics' three loss items, each a weighted mean over the assigner's positives (TAL by default,
ATSS with ``assigner=atss``):

* **class**: the class loss of ``cls_loss`` on the class logits C, or on the joint score J = sigmoid(C) x I when the
  quality branch trains jointly (GFLv2, Sec. 3.2). ``bce`` learns TAL's soft target divided by its sum, as
  Ultralytics does; ``vfl`` (VarifocalNet, Eq. 2) and ``qfl`` (GFL, Eq. 5) learn the IoU-aware classification score
  (IACS, VarifocalNet Sec. 3.1: the IoU of the positive's predicted box at its class, 0 elsewhere), divided by the
  number of positives (the papers) or by the targets' sum (``cls_norm``);
* **box**: 1 - IoU (CIoU, or GIoU as VarifocalNet and GFL), weighted per positive by its class target: TAL's target
  for ``bce`` (Ultralytics), the IoU for ``vfl``/``qfl`` (VarifocalNet); normalised by the weights' sum;
* **dfl**: Distribution Focal Loss (GFL, Eq. 6) on the four box distributions, with the box's weights.

A variant that Ultralytics' own loss computes (``Variant.is_stock``) is handed to it whole. The VFNet head's
criterion (:class:`VFNetDetectionLoss`) adds VarifocalNet's refined box.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import torch
import torch.nn.functional as F
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.tal import bbox2dist, dist2bbox, make_anchors

from .assigners import ATSSAssigner
from .losses import distribution_focal_loss, iou_prediction_loss, quality_focal_loss, soft_bce, varifocal_loss
from .variant import Variant

__all__ = ["GFLDetectionLoss", "VFNetDetectionLoss", "class_loss_of", "iou_aware_targets"]

# VarifocalNet's weights of the initial and refined boxes' GIoU losses (Sec. 4, "Implementation details").
VFNET_INIT_WEIGHT, VFNET_REFINE_WEIGHT = 1.5, 2.0


def class_loss_of(variant: Variant) -> Callable[..., torch.Tensor]:
    """The element-wise class loss ``(pred, target, logits) -> loss`` that ``variant.cls_loss`` names."""
    if variant.cls_loss == "vfl":
        return partial(varifocal_loss, alpha=variant.vfl_alpha, gamma=variant.vfl_gamma)
    if variant.cls_loss == "qfl":
        return partial(quality_focal_loss, beta=variant.qfl_beta)
    return soft_bce


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
    """YOLOv8's detection loss with the class loss, class target and box weights of a variant.

    Args:
        model: the (de-paralleled) detection model; its ``args`` carry Ultralytics' gains ``box``, ``cls``, ``dfl``.
        variant: the model's resolved variant (default: ``model.variant``; a stock DetectionModel's is the default).
        tal_topk: TAL's candidate count, as in ``v8DetectionLoss``.
    """

    def __init__(self, model: torch.nn.Module, variant: Variant | None = None, tal_topk: int = 10):
        super().__init__(model, tal_topk=tal_topk)
        self.variant = variant if variant is not None else getattr(model, "variant", None) or Variant()
        self.stock = self.variant.is_stock and self.variant.head == "detect"  # decided once, not per step
        if self.variant.assigner == "atss":
            self.assigner = ATSSAssigner(self.nc, topk=9)
        self.class_loss = class_loss_of(self.variant)

    def ground_truth(
        self, preds: dict[str, torch.Tensor], batch: dict[str, Any], batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch's objects padded per image: labels (b, n, 1), xyxy pixel boxes (b, n, 4), mask (b, n, 1)."""
        imgsz = torch.tensor(preds["feats"][0].shape[2:], device=self.device, dtype=torch.float32) * self.stride[0]
        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)
        targets = self.preprocess(targets.to(self.device), batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes = targets.split((1, 4), 2)  # cls, xyxy pixels
        return gt_labels, gt_bboxes, gt_bboxes.sum(2, keepdim=True).gt_(0.0)

    def assign(
        self,
        pred_probs: torch.Tensor,
        pred_bboxes: torch.Tensor,
        anchor_points: torch.Tensor,
        stride_tensor: torch.Tensor,
        preds: dict[str, torch.Tensor],
        batch: dict[str, Any],
        **assign_kwargs,
    ) -> tuple[torch.Tensor, ...]:
        """Run the assigner on the batch's ground truth.

        Args:
            pred_probs: (b, a, nc) predicted scores (probabilities; detached here).
            pred_bboxes: (b, a, 4) predicted xyxy boxes in stride units (detached here).
            anchor_points, stride_tensor: from ``make_anchors``.
            preds, batch: the head's training output (for the input size) and Ultralytics' batch.

        Returns:
            The assigner's (target_labels, target_bboxes in pixels, target_scores, fg_mask, target_gt_idx).
        """
        gt_labels, gt_bboxes, mask_gt = self.ground_truth(preds, batch, pred_probs.shape[0])
        return self.assigner(
            pred_probs.detach(),
            (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
            anchor_points * stride_tensor,
            gt_labels,
            gt_bboxes,
            mask_gt,
            **assign_kwargs,
            **({"stride_tensor": stride_tensor} if self.variant.assigner == "atss" else {}),  # ATSS: per level
        )

    def class_term(
        self, pred: torch.Tensor, logits: bool, target_scores: torch.Tensor, iacs: torch.Tensor, fg_mask: torch.Tensor
    ) -> torch.Tensor:
        """The class loss, a scalar: ``cls_loss`` between ``pred`` (b, a, nc) and its target, over the divisor.

        ``bce``: TAL's soft target ``target_scores`` over its sum (Ultralytics); ``cls_target_gain`` then scales what
        C is asked for (capped at 1), after the divisor is taken. ``vfl``/``qfl``: the IACS ``iacs`` over the number
        of positives or the targets' sum (``cls_norm``). Both clamp the divisor at 1, so a batch with few, poor
        positives is not blown up.
        """
        v = self.variant
        if v.cls_loss == "bce":
            target, norm = target_scores.float(), target_scores.sum().clamp(min=1)
            if v.cls_target_gain != 1.0:
                target = (target * v.cls_target_gain).clamp(max=1.0)
        else:
            target = iacs
            norm = (fg_mask.sum() if v.cls_norm == "pos" else target.sum()).clamp(min=1)
        elem = self.class_loss(pred, target, logits=logits)
        if self.class_weights is not None:
            elem = elem * self.class_weights
        return elem.sum() / norm

    def box_weights(self, iou: torch.Tensor, target_scores: torch.Tensor, fg: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """(P,) weight of each positive's box loss and DFL: its class target (TAL's for ``bce``, as Ultralytics; the
        IoU for ``vfl``/``qfl``, as VarifocalNet)."""
        if self.variant.cls_loss == "bce":
            return target_scores[fg].sum(-1).float()
        return iou[fg]

    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **assign_kwargs):
        """Compute (box, cls, dfl) losses; same return contract as ``v8DetectionLoss``."""
        if self.stock:
            return super().get_assigned_targets_and_loss(preds, batch, **assign_kwargs)
        quality = preds.get("quality")  # the quality branch's I, (b, 1, a), with quality=True
        decoupled = quality is not None and self.variant.decoupled_quality
        loss = torch.zeros(3, device=self.device)  # box, cls, dfl
        pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()  # (b, a, 4 * reg_max)
        pred_logits = preds["scores"].permute(0, 2, 1).contiguous()  # (b, a, nc)
        anchor_points, stride_tensor = make_anchors(preds["feats"], self.stride, 0.5)
        pred_bboxes = self.bbox_decode(anchor_points, pred_distri)  # xyxy in stride units, (b, a, 4)
        with torch.autocast(device_type=pred_logits.device.type, enabled=False):
            pred_probs = pred_logits.float().sigmoid()
            if quality is not None and not decoupled:  # GFLv2: the class loss and the assigner see J
                pred_probs = pred_probs * quality.float().transpose(1, 2)

        target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assign(
            pred_probs, pred_bboxes, anchor_points, stride_tensor, preds, batch, **assign_kwargs
        )
        target_bboxes_grid = target_bboxes / stride_tensor
        iacs, iou = iou_aware_targets(pred_bboxes, target_bboxes_grid, target_labels, fg_mask, self.nc)
        on_logits = quality is None or decoupled
        loss[1] = self.class_term(pred_logits if on_logits else pred_probs, on_logits, target_scores, iacs, fg_mask)

        fg = fg_mask.nonzero(as_tuple=True)
        weight = self.box_weights(iou, target_scores, fg)  # (P,)
        weight_sum = weight.sum().clamp(min=1)
        giou = self.variant.box_loss == "giou"
        box_iou = bbox_iou(pred_bboxes[fg], target_bboxes_grid[fg], xywh=False, GIoU=giou, CIoU=not giou)
        loss[0] = ((1.0 - box_iou.squeeze(-1)) * weight).sum() / weight_sum
        target_ltrb = bbox2dist(anchor_points, target_bboxes_grid, self.reg_max - 1)[fg]  # (P, 4)
        dfl = distribution_focal_loss(pred_distri[fg].view(-1, self.reg_max), target_ltrb.reshape(-1))
        loss[2] = (dfl.view(-1, 4).mean(-1) * weight).sum() / weight_sum
        loss[0] *= self.hyp.box
        loss[1] *= self.hyp.cls
        loss[2] *= self.hyp.dfl
        if decoupled:  # reported within the cls item, as the three loss names are Ultralytics'
            loss[1] = loss[1] + self.hyp.cls * iou_prediction_loss(quality, iou, fg_mask.float())
        return (
            (fg_mask, target_gt_idx, target_bboxes, anchor_points, stride_tensor),
            loss,
            dict(zip(self.loss_names, loss.detach())),
        )


class VFNetDetectionLoss(GFLDetectionLoss):
    """VarifocalNet's loss for the VFNet head (``head=vfnet``; VarifocalNet, Sec. 3.4, and mmdetection's VFNetHead).

    * **Class**: ``cls_loss`` (VFL) on the IACS logits, its IoU target taken from the *refined* box.
    * **Box**: GIoU loss on the initial box (weight 1.5) and on the refined box (2.0), each weighted per positive by
      its own box's detached IoU with the ground truth and normalised by the sum of those weights (clamped at 1), as
      mmdetection does. ``box_loss`` is GIoU here whatever its setting.
    * **DFL** on the initial box distributions, weighted by the initial box's IoU (VarifocalNet regresses the initial
      box without DFL; keeping YOLOv8's distributions keeps it, as GFL does).

    Ultralytics' ``hyp.box`` multiplies the weighted *mean* of the two GIoU losses, so with its default gains the box
    loss has the scale of a single-box YOLOv8 loss and only the split between the two boxes is VarifocalNet's. The
    assigner sees the refined boxes (the detector's output) and the sigmoid of the IACS logits.
    """

    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **assign_kwargs):
        """Compute (box, cls, dfl) losses of the VFNet head; same return contract as ``v8DetectionLoss``."""
        if "refine" not in preds:
            raise ValueError("VFNetDetectionLoss needs the VFNet head's 'refine' output; is the model built with head=vfnet?")
        loss = torch.zeros(3, device=self.device)  # box, cls, dfl
        pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()  # (b, a, 4 * reg_max)
        pred_logits = preds["scores"].permute(0, 2, 1).contiguous()  # (b, a, nc)
        refine = preds["refine"].permute(0, 2, 1).float()  # (b, a, 4) scale factors
        anchor_points, stride_tensor = make_anchors(preds["feats"], self.stride, 0.5)

        with torch.autocast(device_type=pred_logits.device.type, enabled=False):
            b, a, c = pred_distri.shape
            init_ltrb = pred_distri.float().view(b, a, 4, c // 4).softmax(3).matmul(self.proj.float())  # stride units
            init_boxes = dist2bbox(init_ltrb, anchor_points, xywh=False)
            refined_boxes = dist2bbox(refine * init_ltrb.detach(), anchor_points, xywh=False)  # refined = scale x init
            pred_probs = pred_logits.float().sigmoid()

        target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assign(
            pred_probs, refined_boxes, anchor_points, stride_tensor, preds, batch, **assign_kwargs
        )
        target_bboxes_grid = target_bboxes / stride_tensor
        iacs, iou_refined = iou_aware_targets(refined_boxes, target_bboxes_grid, target_labels, fg_mask, self.nc)
        loss[1] = self.class_term(pred_logits, True, target_scores, iacs, fg_mask)

        fg = fg_mask.nonzero(as_tuple=True)
        tgt = target_bboxes_grid[fg].float()
        w_init = bbox_iou(init_boxes[fg].detach(), tgt, xywh=False).squeeze(-1).clamp(0, 1)  # (P,)
        w_refined = iou_refined[fg]
        giou_init = bbox_iou(init_boxes[fg], tgt, xywh=False, GIoU=True).squeeze(-1)
        giou_refined = bbox_iou(refined_boxes[fg], tgt, xywh=False, GIoU=True).squeeze(-1)
        loss_init = ((1.0 - giou_init) * w_init).sum() / w_init.sum().clamp(min=1)
        loss_refined = ((1.0 - giou_refined) * w_refined).sum() / w_refined.sum().clamp(min=1)
        wi, wr = VFNET_INIT_WEIGHT, VFNET_REFINE_WEIGHT
        loss[0] = (wi * loss_init + wr * loss_refined) / (wi + wr)
        target_ltrb = bbox2dist(anchor_points, target_bboxes_grid, self.reg_max - 1)[fg]  # (P, 4)
        dfl = distribution_focal_loss(pred_distri[fg].view(-1, self.reg_max), target_ltrb.reshape(-1))
        loss[2] = (dfl.view(-1, 4).mean(-1) * w_init).sum() / w_init.sum().clamp(min=1)
        # Keep every output in the graph even without positives (DDP requires each parameter to get a gradient).
        loss[0] = loss[0] + 0.0 * (refine.sum() + pred_distri.sum())
        loss[0] *= self.hyp.box
        loss[1] *= self.hyp.cls
        loss[2] *= self.hyp.dfl
        return (
            (fg_mask, target_gt_idx, target_bboxes, anchor_points, stride_tensor),
            loss,
            dict(zip(self.loss_names, loss.detach())),
        )
