"""IoU-aware classification and distribution losses as pure functions over tensors.

Every function here is element-wise: it returns one loss value per input entry (per anchor for DFL) and leaves the
reduction to the caller, like ``torchvision.ops.sigmoid_focal_loss(reduction="none")``. Each one:

* computes in float32 with autocast disabled, because ``log`` of probabilities near 0 or 1 loses everything in half
  precision and ``F.binary_cross_entropy`` refuses to run under autocast;
* is finite for probabilities exactly 0 or 1 and for logits of any magnitude (PyTorch's BCE clamps ``log`` at -100, and
  ``binary_cross_entropy_with_logits`` uses the log-sum-exp form);
* takes logits by default, or probabilities with ``logits=False`` (GFLv2's joint score J = C x I is already a
  probability, so its loss must not apply another sigmoid).

References:
    BCE on soft targets: Ultralytics' v8DetectionLoss on TOOD's task-aligned targets (Feng et al., ICCV 2021); it is
    QFL at beta = 0.
    IoU prediction: Wu, Li, Wang, "IoU-aware single-stage object detector for accurate localization", Image and
    Vision Computing 2020, Sec. 3.1 (BCE of the predicted IoU towards the detached IoU at the positives).
    VFL: Zhang et al., "VarifocalNet: An IoU-aware Dense Object Detector", CVPR 2021, Eq. 2.
    QFL, DFL, GFL: Li et al., "Generalized Focal Loss: Learning Qualified and Distributed Bounding Boxes for Dense
    Object Detection", NeurIPS 2020, Eqs. 5, 6 (QFL, DFL) and 7 (the general form GFL).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "distribution_focal_loss",
    "generalized_focal_loss",
    "iou_prediction_loss",
    "quality_focal_loss",
    "soft_bce",
    "varifocal_loss",
]


def _fp32_no_autocast(device: torch.device):
    """Context that turns autocast off on ``device`` so the losses run in float32."""
    return torch.autocast(device_type=device.type, enabled=False)


def _soft_bce(pred: torch.Tensor, target: torch.Tensor, logits: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (-(y log p + (1-y) log(1-p)), p) for logits or probabilities ``pred`` and soft targets ``target``."""
    if logits:
        return F.binary_cross_entropy_with_logits(pred, target, reduction="none"), pred.sigmoid()
    return F.binary_cross_entropy(pred, target, reduction="none"), pred


def _pow(base: torch.Tensor, exponent: float, eps: float = 1e-12) -> torch.Tensor:
    """``base ** exponent`` for ``base >= 0``, exact in value, with a finite gradient also at and near ``base = 0``.

    For 0 < exponent < 1 the derivative exponent * base^(exponent - 1) is infinite at 0 (and overflows float32 just
    above it), which made VFL (gamma < 1), QFL and GFL (beta < 1) return NaN gradients where sigmoid underflows to exactly
    0 or 1. The gradient here is that of ``base.clamp_min(eps) ** exponent``: zero below ``eps``, bounded above it.
    Exponents >= 1 need no guard and take the plain (for 2, a multiply) form: the guard costs three extra passes over
    a (batch, anchors, classes) tensor in every training step.
    """
    if exponent == 2.0:  # the papers' default: one multiply, the cheapest exact form on every device
        return base * base
    if exponent >= 1.0:  # the derivative exponent * base^(exponent - 1) is finite at 0: no guard needed
        return base.pow(exponent)
    return torch.where(base >= eps, base.clamp_min(eps).pow(exponent), base.detach().pow(exponent))


def soft_bce(pred: torch.Tensor, target: torch.Tensor, logits: bool = True) -> torch.Tensor:
    """Binary cross-entropy against soft targets, element-wise: Ultralytics' classification loss.

    BCE(p, y) = -(y log p + (1 - y) log(1 - p)),  y in [0, 1]

    Ultralytics trains its class branch with it against TAL's soft target (TOOD's normalised alignment metric); it is
    QFL (GFL, Eq. 5) at beta = 0, where the modulating factor |y - p|^beta is 1.

    Args:
        pred: (*) logits, or probabilities in [0, 1] when ``logits=False`` (the joint score J of the quality branch).
        target: (*) soft targets y in [0, 1].
        logits: whether ``pred`` holds logits.

    Returns:
        (*) float32 loss, same shape as ``pred``.
    """
    with _fp32_no_autocast(pred.device):
        return _soft_bce(pred.float(), target.float(), logits)[0]


def iou_prediction_loss(quality: torch.Tensor, iou: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Loss of a predicted IoU (Wu, Li, Wang, IVC 2020, Sec. 3.1): BCE of I towards each taught anchor's box IoU.

    The IoU is detached, so that the target does not pull the box; I is clamped into [1e-6, 1 - 1e-6] so that BCE's
    log stays finite without its -100 clamp deciding the gradient.

    Args:
        quality: (b, 1, a) predicted IoU I in (0, 1).
        iou: (b, a) IoU of each anchor's predicted box with its assigned object (0 where not taught).
        mask: (b, a) 1 at the anchors that teach I (the positives), else 0.

    Returns:
        Scalar float32: the mean BCE over the taught anchors; 0 for a batch without any.
    """
    with _fp32_no_autocast(quality.device):
        q = quality.float().squeeze(1).clamp(1e-6, 1 - 1e-6)
        bce = F.binary_cross_entropy(q, iou.detach().float(), reduction="none") * mask
        return bce.sum() / mask.sum().clamp(min=1)


def varifocal_loss(
    pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.75, gamma: float = 2.0, logits: bool = True
) -> torch.Tensor:
    """Varifocal Loss (VarifocalNet, Eq. 2), element-wise.

    VFL(p, q) = -q (q log p + (1 - q) log(1 - p))   where q > 0 (a positive: q is its IoU-aware target)
              = -alpha p^gamma log(1 - p)           where q = 0 (a negative, down-weighted like focal loss)

    Positives are weighted by their own target q, so high-quality positives dominate; only negatives get the focal
    down-weighting. The weights stay in the graph, as in the paper's equation.

    Args:
        pred: (*) logits, or probabilities in [0, 1] when ``logits=False``.
        target: (*) IoU-aware classification targets q in [0, 1] (the IACS: IoU at the ground-truth class, else 0).
        alpha: weight of the negatives (paper: 0.75).
        gamma: focusing exponent of the negatives (paper: 2.0).
        logits: whether ``pred`` holds logits.

    Returns:
        (*) float32 loss, same shape as ``pred``.
    """
    with _fp32_no_autocast(pred.device):
        pred, target = pred.float(), target.float()
        bce, p = _soft_bce(pred, target, logits)
        weight = torch.where(target > 0, target, alpha * _pow(p, gamma))
        return bce * weight


def quality_focal_loss(pred: torch.Tensor, target: torch.Tensor, beta: float = 2.0, logits: bool = True) -> torch.Tensor:
    """Quality Focal Loss (GFL, Eq. 5), element-wise.

    QFL(sigma) = -|y - sigma|^beta ((1 - y) log(1 - sigma) + y log sigma)

    on every entry: y in [0, 1] is the quality target (IoU at the ground-truth class, 0 elsewhere), sigma the predicted
    probability. The loss is 0 exactly at sigma = y.

    Args:
        pred: (*) logits, or probabilities in [0, 1] when ``logits=False``.
        target: (*) soft targets y in [0, 1].
        beta: focusing exponent (paper: 2.0).
        logits: whether ``pred`` holds logits.

    Returns:
        (*) float32 loss, same shape as ``pred``.
    """
    with _fp32_no_autocast(pred.device):
        pred, target = pred.float(), target.float()
        bce, sigma = _soft_bce(pred, target, logits)
        return bce * _pow((target - sigma).abs(), beta)


def distribution_focal_loss(pred_dist: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distribution Focal Loss (GFL, Eq. 6) over a discrete distribution of n bins at 0, 1, ..., n-1.

    DFL(S_i, S_{i+1}) = -((y_{i+1} - y) log S_i + (y - y_i) log S_{i+1}),  y_i = floor(y), y_{i+1} = y_i + 1,

    with S = softmax(pred_dist). It is minimal where the distribution puts all its mass on the two bins around y, split
    so that the distribution's integral sum_j j S_j equals y. Targets are clamped into [0, n-1]; the top edge y = n-1
    is handled exactly (all weight on the last bin), so callers need not shave it off.

    Args:
        pred_dist: (N, n) logits of the distribution of one box side per row.
        target: (N,) continuous targets in [0, n-1] (distances in units of the stride).

    Returns:
        (N,) float32 loss.
    """
    with _fp32_no_autocast(pred_dist.device):
        pred_dist, target = pred_dist.float(), target.float()
        n_bins = pred_dist.shape[-1]
        target = target.clamp(0, n_bins - 1)
        left = target.floor().long().clamp(max=n_bins - 2)  # y = n-1 uses bins n-2 and n-1 with weights 0 and 1
        right = left + 1
        weight_left = right.float() - target
        weight_right = target - left.float()
        log_prob = F.log_softmax(pred_dist, dim=-1)
        log_left = log_prob.gather(-1, left.unsqueeze(-1)).squeeze(-1)
        log_right = log_prob.gather(-1, right.unsqueeze(-1)).squeeze(-1)
        return -(weight_left * log_left + weight_right * log_right)


def generalized_focal_loss(
    prob_left: torch.Tensor,
    prob_right: torch.Tensor,
    target: torch.Tensor,
    value_left: torch.Tensor | float,
    value_right: torch.Tensor | float,
    beta: float,
) -> torch.Tensor:
    """The general form GFL (GFL paper, Eq. 7) that QFL and DFL specialise, element-wise.

    GFL(p_l, p_r) = -|y - (y_l p_l + y_r p_r)|^beta ((y_r - y) log p_l + (y - y_l) log p_r)

    for a target y between two values y_l <= y <= y_r predicted with probabilities p_l and p_r.

    * QFL: y_l = 0, y_r = 1, p_r = sigma, p_l = 1 - sigma.
    * DFL: beta = 0, y_l = floor(y), y_r = y_l + 1, p_l and p_r the softmax masses of those two bins.

    Args:
        prob_left, prob_right: (*) probabilities of y_l and y_r.
        target: (*) continuous target y.
        value_left, value_right: (*) or scalars, the two values y_l and y_r.
        beta: focusing exponent (0 turns the modulating factor off, since |x|^0 = 1).

    Returns:
        (*) float32 loss.
    """
    with _fp32_no_autocast(prob_left.device):
        prob_left, prob_right, target = prob_left.float(), prob_right.float(), target.float()
        estimate = value_left * prob_left + value_right * prob_right
        # clamp_min keeps log finite at p = 0; its weight is then 0 wherever the equation is defined
        log_left = prob_left.clamp_min(1e-12).log()
        log_right = prob_right.clamp_min(1e-12).log()
        ce = -((value_right - target) * log_left + (target - value_left) * log_right)
        return _pow((target - estimate).abs(), beta) * ce
