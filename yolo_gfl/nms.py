"""Gaussian soft-NMS and per-level candidate selection, in pure torch (CPU or CUDA).

Soft-NMS: Bodla, Singh, Chellappa, Davis, "Soft-NMS -- Improving Object Detection With One Line of Code", ICCV 2017.
Instead of deleting every box that overlaps a kept one by more than a threshold, soft-NMS lowers its score by a
function of the overlap; the Gaussian penalty (paper, Eq. 3) is ``s_i <- s_i * exp(-IoU(M, b_i)^2 / sigma)``. Boxes
whose score falls below a small threshold are dropped. VarifocalNet's VFNet-X entries use soft-NMS at test time.

The "at most 1000 candidates per pyramid level before NMS" setting of FCOS/ATSS/GFL/VarifocalNet is
``topk_per_level``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["soft_nms", "batched_soft_nms", "topk_per_level"]


def _iou_one_to_many(box: torch.Tensor, boxes: torch.Tensor, areas: torch.Tensor) -> torch.Tensor:
    """IoU of one xyxy box (4,) with boxes (N, 4) whose areas (N,) are precomputed -> (N,)."""
    inter_wh = (torch.minimum(box[2:], boxes[:, 2:]) - torch.maximum(box[:2], boxes[:, :2])).clamp(min=0)
    inter = inter_wh[:, 0] * inter_wh[:, 1]
    area = (box[2:] - box[:2]).clamp(min=0).prod()
    union = area + areas - inter
    # Degenerate (zero-area) pairs have union 0: call their IoU 0 rather than NaN.
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(inter))


def soft_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    max_det: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian soft-NMS (Bodla et al., ICCV 2017, Eq. 3 and Algorithm 1).

    Repeat until nothing is left: keep the box M with the highest current score, then multiply the score of every
    remaining box b_i by ``exp(-IoU(M, b_i)^2 / sigma)`` and drop those now below ``score_threshold``. Boxes that do
    not overlap M (IoU 0) keep their score exactly; identical boxes are scaled by ``exp(-1 / sigma)``.

    Args:
        boxes: (N, 4) xyxy boxes.
        scores: (N,) scores.
        sigma: Gaussian width; 0.5 is the paper's and mmcv's default. Smaller is harsher: as sigma -> 0 every
            overlapping box (IoU > 0) is removed, i.e. hard NMS at IoU threshold 0. Must be > 0.
        score_threshold: boxes whose (decayed) score is below this are discarded, including input boxes already
            below it (mmcv's ``min_score``; 0.001 as in the paper's evaluation).
        max_det: stop after this many kept boxes (None: no limit).

    Returns:
        keep_indices: (K,) long, indices into ``boxes`` in the order they were kept; their decayed scores never
            increase along it (each pick is the maximum of what is left, and decay only lowers scores).
        new_scores: (K,) the score each kept box had when it was picked, in ``scores``' dtype.

    Cost: one (N,) IoU row and one vectorised decay per kept box, O(N * K) <= O(N^2); each iteration reads one scalar
    back from the device to decide whether to go on.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"expected boxes (N, 4) and scores (N,), got {tuple(boxes.shape)} and {tuple(scores.shape)}")
    num_boxes = boxes.shape[0]
    limit = num_boxes if max_det is None else min(max_det, num_boxes)
    keep = torch.empty(limit, dtype=torch.long, device=boxes.device)
    kept_scores = torch.empty(limit, dtype=torch.float32, device=boxes.device)
    if limit <= 0:
        return keep[:0], kept_scores[:0].to(scores.dtype)

    boxes_f = boxes.float()  # float32 maths whatever the input dtype: products of pixel coordinates overflow half
    areas = (boxes_f[:, 2:] - boxes_f[:, :2]).clamp(min=0).prod(-1)
    current = scores.float().clone()
    # Dead boxes (kept or dropped) sit at -inf so argmax never picks them again.
    current.masked_fill_(~(current >= score_threshold), float("-inf"))  # written this way it also drops NaN scores

    num_kept = 0
    while num_kept < limit:
        best = current.argmax()
        best_score = current[best]
        if not torch.isfinite(best_score):  # the one host sync per iteration: nothing left alive
            break
        keep[num_kept], kept_scores[num_kept] = best, best_score
        num_kept += 1
        current[best] = float("-inf")
        iou = _iou_one_to_many(boxes_f[best], boxes_f, areas)
        current *= torch.exp(-iou.square() / sigma)
        # Dead boxes stay dead: -inf times a factor is -inf, or NaN when the factor underflows to 0 (tiny sigma), and
        # ~(x >= threshold) catches both.
        current.masked_fill_(~(current >= score_threshold), float("-inf"))
    return keep[:num_kept], kept_scores[:num_kept].to(scores.dtype)


def batched_soft_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    max_det: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class Gaussian soft-NMS in one pass, by moving each class's boxes to its own region of the plane.

    Every box of class c is shifted by ``c * span`` on both axes, where ``span = max coordinate - min coordinate + 1``
    over all boxes (the usual ``max + 1`` offset when coordinates start at 0, and still disjoint with negative
    coordinates). Boxes of different classes then never overlap, their IoU is exactly 0 and their decay factor exactly
    1, so one soft-NMS over the shifted boxes equals independent soft-NMS per class, merged by score. As with
    torchvision's ``batched_nms``, large offsets cost float32 precision in the IoU (about 1e-7 relative to
    ``num_classes * span``), which is negligible for pixel boxes.

    Args:
        boxes: (N, 4) xyxy boxes.
        scores: (N,) scores.
        classes: (N,) integer class of each box (any non-negative ints, need not be contiguous).
        sigma, score_threshold: as in ``soft_nms``.
        max_det: total number of boxes to keep over all classes (the highest decayed scores), None for no limit.

    Returns:
        keep_indices (K,) long into ``boxes`` and new_scores (K,), as ``soft_nms``.
    """
    if boxes.numel() == 0:
        return soft_nms(boxes, scores, sigma, score_threshold, max_det)
    boxes_f = boxes.float()
    span = boxes_f.max() - boxes_f.min() + 1
    shifted = boxes_f + (classes.to(boxes_f.dtype) * span).unsqueeze(-1)
    return soft_nms(shifted, scores, sigma, score_threshold, max_det)


def topk_per_level(scores: torch.Tensor, level_sizes: Sequence[int] | torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the at most ``k`` best candidates on each pyramid level, ranked by their highest class score.

    This is the pre-NMS candidate cap of FCOS/ATSS/GFL/VarifocalNet (1000 per level) for a flat YOLOv8 output.

    Args:
        scores: (A, nc) or (B, A, nc) class scores, anchors concatenated level by level.
        level_sizes: anchors on each level, summing to A (e.g. ``[6400, 1600, 400]`` at imgsz 640).
        k: maximum candidates per level; a level with fewer anchors contributes all of them.

    Returns:
        Long indices into the anchor dimension, level by level, each level's block in descending score order:
        (sum_l min(k, A_l),) for 2-D ``scores``, or (B, sum_l min(k, A_l)) for 3-D.
    """
    level_sizes = [int(n) for n in level_sizes]
    if scores.ndim not in (2, 3):
        raise ValueError(f"scores must be (A, nc) or (B, A, nc), got {tuple(scores.shape)}")
    if sum(level_sizes) != scores.shape[-2]:
        raise ValueError(f"level_sizes sum to {sum(level_sizes)}, scores have {scores.shape[-2]} anchors")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    best_class_score = scores.amax(-1)  # (A,) or (B, A)
    picked = []
    start = 0
    for level_size in level_sizes:
        level_scores = best_class_score[..., start : start + level_size]
        picked.append(level_scores.topk(min(k, level_size), dim=-1, sorted=True).indices + start)
        start += level_size
    return torch.cat(picked, -1)
