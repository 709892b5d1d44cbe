"""Gaussian soft-NMS, score voting and per-level candidate selection, in pure torch (CPU or CUDA).

Soft-NMS: Bodla, Singh, Chellappa, Davis, "Soft-NMS -- Improving Object Detection With One Line of Code", ICCV 2017.
Instead of deleting every box that overlaps a kept one by more than a threshold, soft-NMS lowers its score by a
function of the overlap; the Gaussian penalty (paper, Eq. 3) is ``s_i <- s_i * exp(-IoU(M, b_i)^2 / sigma)``. Boxes
whose score falls below a small threshold are dropped. VarifocalNet's VFNet-X entries use soft-NMS at test time.

Score voting: Kim and Lee, "Probabilistic Anchor Assignment with IoU Prediction for Object Detection" (PAA), ECCV 2020,
Sec. 3.4. After NMS has kept a box, the boxes around it still say where the object is: the kept box moves to the mean
of its neighbours, each weighted by its score and by how much it overlaps the kept box,
``p_i = s_i * exp(-(1 - IoU(b, b_i))^2 / sigma_t)``, with sigma_t = 0.025 (the paper's value, and the constant in
mmdetection's PAA head). The kept box's score and class do not change.

The "at most 1000 candidates per pyramid level before NMS" setting of FCOS/ATSS/GFL/VarifocalNet is
``topk_per_level``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["soft_nms", "batched_soft_nms", "vote_boxes", "pairwise_iou", "topk_per_level", "VOTE_SIGMA"]

VOTE_SIGMA = 0.025  # PAA (Kim and Lee, ECCV 2020), Sec. 3.4: sigma_t of score voting


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
        iou = pairwise_iou(boxes_f[best][None], boxes_f)[0]
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


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every xyxy box of ``a`` (K, 4) with every one of ``b`` (N, 4) -> (K, N), in float32 whatever the input
    dtype (products of pixel coordinates overflow half). A pair whose union is empty (zero-area boxes) has IoU 0."""
    a, b = a.float(), b.float()
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    wh = (torch.minimum(a[:, None, 2:], b[None, :, 2:]) - torch.maximum(a[:, None, :2], b[None, :, :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(inter))


def vote_boxes(
    kept: torch.Tensor,
    kept_groups: torch.Tensor,
    boxes: torch.Tensor,
    weights: torch.Tensor,
    groups: torch.Tensor,
    iou_threshold: float,
    sigma: float = VOTE_SIGMA,
    exclusive: bool = True,
) -> torch.Tensor:
    """Score voting (PAA, Kim and Lee, ECCV 2020, Sec. 3.4): move each kept box to the weighted mean of its cluster.

    Every candidate ``b_i`` of the same group (class) that overlaps a kept box ``b`` by IoU > ``iou_threshold`` votes
    for it with weight ``p_i = w_i * exp(-(1 - IoU(b, b_i))^2 / sigma)``; the voted box is ``sum p_i b_i / sum p_i``,
    so it lies inside the hull of its voters. With ``exclusive`` the clusters are those of greedy hard NMS at
    ``iou_threshold``: a candidate votes only for the first kept box (in the given order, NMS's descending score) that
    overlaps it, which is the one that suppressed it. Without, a candidate votes for every kept box it overlaps, as
    PAA's code does (threshold 0.01 there). A kept box with no voter of positive weight (zero area, zero weights)
    stays where it is.

    Args:
        kept: (K, 4) xyxy kept boxes, in the order NMS kept them.
        kept_groups: (K,) group of each kept box (its class; all equal for class-agnostic voting).
        boxes: (N, 4) xyxy candidates (the boxes NMS saw, kept ones included).
        weights: (N,) each candidate's weight ``w_i`` (a score in [0, 1]).
        groups: (N,) group of each candidate.
        iou_threshold: a candidate votes when its IoU with the kept box is above this.
        sigma: width of the overlap term (PAA: 0.025); larger lets looser boxes count more. Must be > 0.

    Returns:
        (K, 4) voted boxes in ``kept``'s dtype; the arithmetic is float32 (fp16 inputs are safe).

    Cost: one (K, N) IoU matrix and one (K, N) x (N, 4) product; no Python loop over boxes.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if kept.numel() == 0 or boxes.numel() == 0:
        return kept.clone()
    iou = pairwise_iou(kept, boxes)  # (K, N) float32
    member = (iou > iou_threshold) & (kept_groups[:, None] == groups[None, :])
    if exclusive:
        # argmax returns the first maximum: the first kept box (highest score) that overlaps the candidate
        first = member.to(torch.uint8).argmax(0)
        member &= torch.arange(kept.shape[0], device=kept.device)[:, None] == first[None, :]
    p = weights.float()[None, :] * torch.exp(-(1 - iou).square() / sigma) * member
    total = p.sum(1, keepdim=True)
    voted = (p @ boxes.float()) / total.clamp(min=torch.finfo(torch.float32).tiny)
    return torch.where(total > 0, voted, kept.float()).to(kept.dtype)


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
