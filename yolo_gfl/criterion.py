"""The training criterion of the IoU-aware variants: ``v8DetectionLoss`` with an IoU-aware classification target.

For each positive anchor (chosen by the assigner, TAL by default) the classification target at its ground-truth class
is the IoU-aware classification score (IACS, VarifocalNet Sec. 3.1): the IoU between the anchor's decoded predicted
box (detached) and its assigned ground-truth box; every other entry is 0. The class branch learns it with

* ``vfl``: Varifocal Loss (VarifocalNet, Eq. 2), or
* ``qfl``: Quality Focal Loss (GFL, Eq. 5),

on logits, or on the probability J = sigmoid(C) x I when GFLv2's DGQP is on. The classification loss is divided by the
number of positives as in both papers (``cls_norm=pos``), or by the sum of its targets as Ultralytics divides its BCE
(``cls_norm=sum``, which the shipped -vfl/-qfl/-gfl configs use: see ``classification_term``). The IoU loss and DFL
are weighted per positive by the IoU target and normalised by the sum of those weights (VarifocalNet; GFL weights by
the detached score instead, a close cousin). ``cls_target=tal`` swaps the IoU target for the assigner's own soft
target (TAL's normalised alignment metric, as TOOD and PP-YOLOE train their class branch).
Both sums are clamped at 1, as the papers and Ultralytics do, so a batch with few, poor positives is not blown up.
``bce`` keeps Ultralytics' own loss and targets (TAL's normalised alignment metric) for the stock baseline.

The training recipes of the systems that made these losses pay off are options too: ``box_weight`` (what weights each
positive's box loss and DFL: its IoU, its class target as PP-YOLOE/YOLOv6, or its detached score as mmdetection's
GFL), ``box_gain``/``dfl_gain`` (their loss balances), ``fg_neg`` (plain BCE on the other classes at a positive
anchor, where the focal weighting barely pushes look-alike classes down), ``atss_anchor_scale`` and ``atss_epochs``
(an ATSS warm-up before TAL, as YOLOv6 and PP-YOLOE train), ``tal_alpha``/``tal_beta`` (the exponents of TAL's
alignment metric).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.tal import bbox2dist, dist2bbox, make_anchors

from .assigners import ATSSAssigner
from .losses import distribution_focal_loss, quality_focal_loss, varifocal_loss
from .options import TAL_EXPONENTS, validate_options

__all__ = ["GFLDetectionLoss", "VFNetDetectionLoss", "inbox_iou_targets", "iou_aware_targets"]


def inbox_iou_targets(pred_bboxes: torch.Tensor, gt_bboxes: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """The IoU an in-box anchor's box has with its objects (``dgqp_anchors=inbox``).

    Args:
        pred_bboxes: (b, a, 4) predicted xyxy boxes, in the units of ``gt_bboxes`` (detached here: a target).
        gt_bboxes: (b, n, 4) the batch's objects, xyxy, padded per image.
        inside: (b, n, a) bool, anchor a's centre lies inside object n (padding rows all False).

    Returns:
        (b, a): the largest IoU of each anchor's box with an object that holds its centre; 0 where none does.
    """
    iou = bbox_iou(gt_bboxes.float()[:, :, None], pred_bboxes.detach().float()[:, None], xywh=False).squeeze(-1)
    return (iou.clamp(0, 1) * inside).amax(1) if inside.shape[1] else iou.new_zeros(pred_bboxes.shape[:2])


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
        o = self.options
        # TOOD's alignment metric s^alpha x IoU^beta picks TAL's positives and is their soft target once normalised.
        self.assigner.alpha, self.assigner.beta = o["tal_alpha"], o["tal_beta"]
        atss = ATSSAssigner(self.nc, topk=9, anchor_scale=o["atss_anchor_scale"])
        if o["assigner"] == "atss":
            self.assigner = atss
        # ATSS warm-up (YOLOv6, PP-YOLOE): the trainer sets ``epoch``; ATSS assigns until epoch atss_epochs, then TAL.
        self.warmup_assigner = atss if o["atss_epochs"] else None
        self.epoch = int(getattr(model, "gfl_epoch", 0) or 0)
        self.assigner_in_use = o["assigner"]

    def current_assigner(self) -> tuple[torch.nn.Module, str]:
        """The assigner of this epoch and its name ('atss' during the warm-up, else the ``assigner`` option)."""
        if self.warmup_assigner is not None and self.epoch < self.options["atss_epochs"]:
            return self.warmup_assigner, "atss"
        return self.assigner, self.options["assigner"]

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

    def ground_truth(
        self, preds: dict[str, torch.Tensor], batch: dict[str, Any], batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch's objects padded per image: labels (b, n, 1), xyxy pixel boxes (b, n, 4), mask (b, n, 1)."""
        imgsz = torch.tensor(preds["feats"][0].shape[2:], device=self.device, dtype=torch.float32) * self.stride[0]
        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)
        targets = self.preprocess(targets.to(self.device), batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes = targets.split((1, 4), 2)  # cls, xyxy pixels
        return gt_labels, gt_bboxes, gt_bboxes.sum(2, keepdim=True).gt_(0.0)

    @staticmethod
    def inside_each_object(anchor_points: torch.Tensor, stride_tensor: torch.Tensor, gt_bboxes: torch.Tensor,
                           mask_gt: torch.Tensor) -> torch.Tensor:
        """(b, n, a) bool: anchor a's centre lies strictly inside object n's box (padding objects: False).

        ``gt_bboxes`` (b, n, 4) xyxy pixels and ``mask_gt`` (b, n, 1) as ``ground_truth`` returns them."""
        centres = (anchor_points * stride_tensor)[None, None]  # (1, 1, a, 2) pixels
        inside = (centres > gt_bboxes[:, :, None, :2]).all(-1) & (centres < gt_bboxes[:, :, None, 2:]).all(-1)
        return inside & mask_gt.bool()

    @classmethod
    def inside_objects(cls, anchor_points: torch.Tensor, stride_tensor: torch.Tensor, gt_bboxes: torch.Tensor,
                       mask_gt: torch.Tensor) -> torch.Tensor:
        """(b, a) bool: anchors whose centre lies strictly inside some object's box (``fg_neg=bce_inbox``)."""
        return cls.inside_each_object(anchor_points, stride_tensor, gt_bboxes, mask_gt).any(1)

    def assign(
        self,
        pred_probs: torch.Tensor,
        pred_bboxes: torch.Tensor,
        anchor_points: torch.Tensor,
        stride_tensor: torch.Tensor,
        preds: dict[str, torch.Tensor],
        batch: dict[str, Any],
        gt: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        **assign_kwargs,
    ) -> tuple[torch.Tensor, ...]:
        """Run the assigner (TAL or ATSS) on the batch's ground truth.

        Args:
            pred_probs: (b, a, nc) predicted scores (probabilities; detached here).
            pred_bboxes: (b, a, 4) predicted xyxy boxes in stride units (detached here).
            anchor_points, stride_tensor: from ``make_anchors``.
            preds, batch: the head's training output (for the input size) and Ultralytics' batch.
            gt: ``ground_truth(preds, batch, b)`` when the caller has built it already.

        Returns:
            The assigner's (target_labels, target_bboxes in pixels, target_scores, fg_mask, target_gt_idx).
        """
        gt_labels, gt_bboxes, mask_gt = gt if gt is not None else self.ground_truth(preds, batch, pred_probs.shape[0])
        assigner, self.assigner_in_use = self.current_assigner()
        return assigner(
            pred_probs.detach(),
            (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
            anchor_points * stride_tensor,
            gt_labels,
            gt_bboxes,
            mask_gt,
            **assign_kwargs,
            **({"stride_tensor": stride_tensor} if self.assigner_in_use == "atss" else {}),  # ATSS: per level
        )

    def classification_term(
        self,
        pred: torch.Tensor,
        logits: bool,
        target_scores: torch.Tensor,
        iou_target: torch.Tensor,
        fg_mask: torch.Tensor,
        target_labels: torch.Tensor | None = None,
        inbox: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The normalised classification loss, a scalar.

        ``bce`` learns the assigner's own targets normalised by their sum (stock Ultralytics); ``vfl``/``qfl`` learn
        the IoU-aware targets (``cls_target=iou``) or the assigner's soft targets (``tal``), normalised by the number
        of positives (``cls_norm=pos``: VarifocalNet, GFL) or by the sum of the targets (``sum``). For IoU targets the
        two divisors differ by the mean IoU at the positives: 0.15 for a fresh yolov8n, 0.65 for a COCO-trained one
        (benchmarks/target_stats.py), so ``sum`` gives the class branch ~7x the weight early on and ~1.5x late;
        Ultralytics' own sum-of-targets divisor is 11x and 2.4x smaller than the number of positives there.

        ``cls_target_gain`` scales the soft targets (capped at 1) after the divisor is taken from them, so a joint
        J = sigmoid(C) x I0 with a constant I0 and the gain 1 / I0 ask C for the same thing. ``cls_target_power``
        (applied first) lifts them too, but keeps their order: the cap makes every target above 1 / gain equal.

        ``fg_neg=bce`` replaces the loss on the other classes of each positive anchor (``target_labels`` names its
        class) by ``fg_neg_weight`` x BCE towards 0: VFL weighs such a negative by 0.75 p^2 of BCE (0.07 at p = 0.3),
        QFL by p^2, so a look-alike class at a real object is barely pushed down. ``fg_neg=bce_inbox`` does the same
        for every class of the negative anchors whose centre lies inside an object (``inbox``, (b, a) bool).
        """
        o = self.options
        if o["cls_loss"] == "bce":
            target, norm = target_scores.float(), target_scores.sum().clamp(min=1)
        else:
            target = iou_target if o["cls_target"] == "iou" else target_scores.float()
            norm = (fg_mask.sum() if o["cls_norm"] == "pos" else target.sum()).clamp(min=1)
            if o["cls_target_power"] != 1.0:  # after the divisor, as the gain: only what C is asked for moves
                target = target.pow(o["cls_target_power"])
            if o["cls_target_gain"] != 1.0:
                target = (target * o["cls_target_gain"]).clamp(max=1.0)
        elem = self.classification_loss(pred, target, logits)
        if o["fg_neg"] != "focal" and o["cls_loss"] != "bce":
            if target_labels is None or (o["fg_neg"] == "bce_inbox" and inbox is None):
                raise ValueError(f"fg_neg={o['fg_neg']} needs the assigned target_labels (and, for bce_inbox, the "
                                 "anchors inside objects) to tell the negatives at objects apart")
            own = F.one_hot(target_labels.long().clamp(0, self.nc - 1), self.nc).bool()
            other = fg_mask.bool().unsqueeze(-1) & ~own  # (b, a, nc): the other classes at positive anchors
            if o["fg_neg"] == "bce_inbox":
                other = other | (inbox.bool() & ~fg_mask.bool()).unsqueeze(-1)  # every class at in-box negatives
            with torch.autocast(device_type=pred.device.type, enabled=False):
                zeros = torch.zeros_like(pred, dtype=torch.float32)
                bce = (F.binary_cross_entropy_with_logits(pred.float(), zeros, reduction="none") if logits
                       else F.binary_cross_entropy(pred.float().clamp(0, 1 - 1e-6), zeros, reduction="none"))
            elem = torch.where(other, o["fg_neg_weight"] * bce, elem)
        if self.class_weights is not None:
            elem = elem * self.class_weights
        return elem.sum() / norm

    def scaled(self, loss: torch.Tensor) -> torch.Tensor:
        """(box, cls, dfl) times Ultralytics' gains ``box`` (x ``box_gain``), ``cls`` (x ``cls_gain``), ``dfl``
        (x ``dfl_gain``)."""
        loss[0] *= self.hyp.box * self.options["box_gain"]
        loss[1] *= self.hyp.cls * self.options["cls_gain"]
        loss[2] *= self.hyp.dfl * self.options["dfl_gain"]
        return loss

    def is_stock_loss(self, quality: torch.Tensor | None) -> bool:
        """Whether Ultralytics' own loss computes exactly this variant's (BCE, TAL, CIoU, no DGQP, no recipe knob)."""
        o, d = self.options, validate_options({})
        same = ("cls_loss", "box_loss", "assigner", "box_gain", "dfl_gain", "atss_epochs", "box_weight", *TAL_EXPONENTS)
        return quality is None and o["cls_loss"] == "bce" and all(o[k] == d[k] for k in same)

    def box_weights(self, iou: torch.Tensor, target_scores: torch.Tensor, pred_probs: torch.Tensor,
                    fg: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """(P,) weight of each positive's box IoU loss and DFL, as ``box_weight`` selects (see its option help)."""
        o = self.options
        if o["box_weight"] == "score":  # GFL (mmdetection GFLHead): the detached highest score of the anchor
            return pred_probs.detach()[fg].max(-1).values.float()
        if o["box_weight"] == "target" and o["cls_target"] == "tal":  # PP-YOLOE / YOLOv6: the class target
            return target_scores[fg].sum(-1).float()
        return iou[fg]  # VarifocalNet: the IoU (also what 'target' is with cls_target=iou)

    @staticmethod
    def quality_iou_loss(quality: torch.Tensor, iou: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``dgqp_target=iou``: BCE of DGQP's I (b, 1, a) towards each taught anchor's box IoU (b, a), mean over them.

        The IoU-prediction loss of the IoU-aware single-stage detector (Wu, Li, Wang, Image and Vision Computing
        2020, arXiv:1912.05992; +1.7-1.9 AP and +2.2-2.5 AP75 on RetinaNet, COCO test-dev): BCE at the positive
        samples only (``mask`` = the positives), the IoU detached so that the target does not pull the box.
        ``dgqp_anchors=inbox`` widens ``mask`` to every anchor inside an object. Background anchors have no IoU to
        learn; their J stays low through C. 0 for a batch without taught anchors."""
        with torch.autocast(device_type=quality.device.type, enabled=False):
            q = quality.float().squeeze(1).clamp(1e-6, 1 - 1e-6)
            bce = F.binary_cross_entropy(q, iou.detach().float(), reduction="none") * mask
            return bce.sum() / mask.sum().clamp(min=1)

    def quality_targets(
        self,
        iou: torch.Tensor,
        fg_mask: torch.Tensor,
        pred_bboxes: torch.Tensor,
        anchor_points: torch.Tensor,
        stride_tensor: torch.Tensor,
        gt_bboxes: torch.Tensor,
        mask_gt: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, a) IoU targets and (b, a) float mask of the anchors that teach the decoupled I (``dgqp_anchors``).

        positives: TAL's positives and their assigned object's IoU. inbox: also every other anchor whose centre lies
        inside an object, towards its box's largest IoU with such an object. Late in a fine-tune TAL's positives all
        have IoUs near 0.86 (docs/real_data.md, "Does DGQP's I rank?"), so I taught there learns their mean; the
        in-box anchors carry the mediocre boxes it has to rank below them."""
        if self.options["dgqp_anchors"] == "positives":
            return iou, fg_mask.float()
        inside = self.inside_each_object(anchor_points, stride_tensor, gt_bboxes, mask_gt)  # (b, n, a)
        inbox_iou = inbox_iou_targets(pred_bboxes * stride_tensor, gt_bboxes, inside)
        fg = fg_mask.bool()
        return torch.where(fg, iou, inbox_iou), (fg | inside.any(1)).float()

    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **assign_kwargs):
        """Compute (box, cls, dfl) losses with IoU-aware targets; same return contract as ``v8DetectionLoss``."""
        quality = preds.get("quality")  # DGQP's I, (b, 1, a), or None
        if self.is_stock_loss(quality):
            return super().get_assigned_targets_and_loss(preds, batch, **assign_kwargs)  # exactly stock

        o = self.options
        loss = torch.zeros(3, device=self.device)  # box, cls, dfl
        pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()  # (b, a, 4 * reg_max)
        pred_logits = preds["scores"].permute(0, 2, 1).contiguous()  # (b, a, nc)
        anchor_points, stride_tensor = make_anchors(preds["feats"], self.stride, 0.5)

        pred_bboxes = self.bbox_decode(anchor_points, pred_distri)  # xyxy in stride units, (b, a, 4)
        # dgqp_target=iou: C is trained and assigned as without DGQP, and I learns the IoU on its own (below).
        decoupled = quality is not None and o["dgqp_target"] == "iou"
        with torch.autocast(device_type=pred_logits.device.type, enabled=False):
            pred_probs = pred_logits.float().sigmoid()
            joint_probs = pred_probs if quality is None else pred_probs * quality.float().transpose(1, 2)  # J
            if not decoupled:
                pred_probs = joint_probs

        gt = self.ground_truth(preds, batch, pred_probs.shape[0])
        target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assign(
            pred_probs, pred_bboxes, anchor_points, stride_tensor, preds, batch, gt, **assign_kwargs
        )
        target_bboxes_grid = target_bboxes / stride_tensor

        iou_target, iou = iou_aware_targets(pred_bboxes, target_bboxes_grid, target_labels, fg_mask, self.nc)
        cls_pred, logits = (pred_logits, True) if quality is None or decoupled else (pred_probs, False)
        inbox = self.inside_objects(anchor_points, stride_tensor, *gt[1:]) if o["fg_neg"] == "bce_inbox" else None
        loss[1] = self.classification_term(cls_pred, logits, target_scores, iou_target, fg_mask, target_labels, inbox)

        # Box IoU loss and DFL at positives, weighted as box_weight says and normalised by the weights' sum.
        fg = fg_mask.nonzero(as_tuple=True)
        weight = self.box_weights(iou, target_scores, joint_probs, fg)  # (P,)
        weight_sum = weight.sum().clamp(min=1)
        use_giou = self.options["box_loss"] == "giou"
        box_iou = bbox_iou(pred_bboxes[fg], target_bboxes_grid[fg], xywh=False, GIoU=use_giou, CIoU=not use_giou)
        loss[0] = ((1.0 - box_iou.squeeze(-1)) * weight).sum() / weight_sum
        target_ltrb = bbox2dist(anchor_points, target_bboxes_grid, self.reg_max - 1)[fg]  # (P, 4)
        dfl = distribution_focal_loss(pred_distri[fg].view(-1, self.reg_max), target_ltrb.reshape(-1))
        loss[2] = (dfl.view(-1, 4).mean(-1) * weight).sum() / weight_sum
        loss = self.scaled(loss)
        if decoupled:  # reported within the cls item, as the three loss names are Ultralytics'
            q_iou, q_mask = self.quality_targets(iou, fg_mask, pred_bboxes, anchor_points, stride_tensor, *gt[1:])
            loss[1] = loss[1] + self.hyp.cls * o["dgqp_gain"] * self.quality_iou_loss(quality, q_iou, q_mask)
        return (
            (fg_mask, target_gt_idx, target_bboxes, anchor_points, stride_tensor),
            loss,
            dict(zip(self.loss_names, loss.detach())),
        )


class VFNetDetectionLoss(GFLDetectionLoss):
    """VarifocalNet's loss for the VFNet head (``head=vfnet``; VarifocalNet, Sec. 3.4, and mmdetection's VFNetHead).

    * **Classification**: VFL (or QFL / BCE as ``cls_loss`` selects) on the IACS logits, with the IoU-aware target
      taken from the *refined* box's IoU with its ground truth, normalised by the number of positives.
    * **Box**: GIoU loss on the initial box (weight ``vfnet_init_weight``, paper 1.5) and on the refined box
      (``vfnet_refine_weight``, paper 2.0). As in mmdetection, each is weighted per positive by its own box's IoU with
      the ground truth (detached; the initial box's IoU for the initial loss, the refined box's for the refined one)
      and normalised by the sum of those weights (clamped at 1). ``box_loss`` is GIoU here whatever its setting.
    * **DFL** on the initial box distributions, weighted by the initial box's IoU (VarifocalNet regresses the initial
      box without DFL; keeping YOLOv8's distributions keeps it, as GFL does).

    Gains: Ultralytics' ``hyp.box`` multiplies the weighted *mean* of the two GIoU losses,
    ``box * (w_init * L_init + w_refine * L_refine) / (w_init + w_refine)``, so with Ultralytics' defaults (box 7.5,
    cls 0.5, dfl 1.5) the box loss has the scale a single-box YOLOv8 loss has and only the split between the two boxes
    is VarifocalNet's. ``hyp.cls`` (x ``cls_gain``) multiplies the classification loss and ``hyp.dfl`` the DFL. The
    paper's absolute balance (1.0 VFL + 1.5 GIoU_init + 2.0 GIoU_refine) is ``cls=1.0 box=3.5`` (and ``dfl=0`` to
    drop DFL). The three reported loss items stay Ultralytics' (box, cls, dfl).

    The assigner sees the refined boxes (the detector's output) and the sigmoid of the IACS logits.
    """

    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **assign_kwargs):
        """Compute (box, cls, dfl) losses of the VFNet head; same return contract as ``v8DetectionLoss``."""
        o = self.options
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

        gt = self.ground_truth(preds, batch, pred_probs.shape[0])
        target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assign(
            pred_probs, refined_boxes, anchor_points, stride_tensor, preds, batch, gt, **assign_kwargs
        )
        target_bboxes_grid = target_bboxes / stride_tensor

        iou_target, iou_refined = iou_aware_targets(refined_boxes, target_bboxes_grid, target_labels, fg_mask, self.nc)
        inbox = self.inside_objects(anchor_points, stride_tensor, *gt[1:]) if o["fg_neg"] == "bce_inbox" else None
        loss[1] = self.classification_term(pred_logits, True, target_scores, iou_target, fg_mask, target_labels, inbox)

        fg = fg_mask.nonzero(as_tuple=True)
        tgt = target_bboxes_grid[fg].float()
        w_init = bbox_iou(init_boxes[fg].detach(), tgt, xywh=False).squeeze(-1).clamp(0, 1)  # (P,)
        w_refined = iou_refined[fg]
        giou_init = bbox_iou(init_boxes[fg], tgt, xywh=False, GIoU=True).squeeze(-1)
        giou_refined = bbox_iou(refined_boxes[fg], tgt, xywh=False, GIoU=True).squeeze(-1)
        loss_init = ((1.0 - giou_init) * w_init).sum() / w_init.sum().clamp(min=1)
        loss_refined = ((1.0 - giou_refined) * w_refined).sum() / w_refined.sum().clamp(min=1)
        wi, wr = o["vfnet_init_weight"], o["vfnet_refine_weight"]
        loss[0] = (wi * loss_init + wr * loss_refined) / (wi + wr)
        target_ltrb = bbox2dist(anchor_points, target_bboxes_grid, self.reg_max - 1)[fg]  # (P, 4)
        dfl = distribution_focal_loss(pred_distri[fg].view(-1, self.reg_max), target_ltrb.reshape(-1))
        loss[2] = (dfl.view(-1, 4).mean(-1) * w_init).sum() / w_init.sum().clamp(min=1)
        # Keep every output in the graph even without positives (DDP requires each parameter to get a gradient).
        loss[0] = loss[0] + 0.0 * (refine.sum() + pred_distri.sum())
        loss = self.scaled(loss)
        return (
            (fg_mask, target_gt_idx, target_bboxes, anchor_points, stride_tensor),
            loss,
            dict(zip(self.loss_names, loss.detach())),
        )
