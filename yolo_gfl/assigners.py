"""Label assigners that plug in beside Ultralytics' ``TaskAlignedAssigner``.

``ATSSAssigner`` implements Adaptive Training Sample Selection:

    Zhang, Chi, Yao, Lei, Li, "Bridging the Gap Between Anchor-based and Anchor-free Detection via Adaptive Training
    Sample Selection", CVPR 2020 (Sec. 3.2, Algorithm 1).

VarifocalNet and GFL (v1/v2) both train with ATSS, so this lets the IoU-aware variants be compared with the assigner
their papers used, while TAL stays Ultralytics' default.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ATSSAssigner", "level_sizes_from_strides"]


def level_sizes_from_strides(stride_tensor: torch.Tensor) -> list[int]:
    """Number of anchors on each pyramid level, read off the per-anchor strides.

    Args:
        stride_tensor: (num_anchors, 1) or (num_anchors,) per-anchor stride, levels concatenated one after the other
            as ``ultralytics.utils.tal.make_anchors`` lays them out.

    Returns:
        One count per level, in anchor order (ascending stride for make_anchors). Two adjacent levels with the same
        stride cannot be told apart and count as one level.
    """
    _, counts = torch.unique_consecutive(stride_tensor.reshape(-1), return_counts=True)
    return counts.tolist()  # one host sync; the layout is tiny (3-5 levels)


def _paired_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float) -> torch.Tensor:
    """Element-wise IoU of two broadcastable xyxy box tensors (..., 4) -> (...); 0 for non-overlapping boxes."""
    inter_lt = torch.maximum(boxes1[..., :2], boxes2[..., :2])
    inter_rb = torch.minimum(boxes1[..., 2:], boxes2[..., 2:])
    inter_wh = (inter_rb - inter_lt).clamp(min=0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    area1 = (boxes1[..., 2:] - boxes1[..., :2]).clamp(min=0).prod(-1)
    area2 = (boxes2[..., 2:] - boxes2[..., :2]).clamp(min=0).prod(-1)
    return inter / (area1 + area2 - inter + eps)


class ATSSAssigner(nn.Module):
    """Adaptive Training Sample Selection (ATSS, Zhang et al., CVPR 2020) for anchor-free YOLOv8 heads.

    YOLOv8 has anchor *points*; ATSS needs anchor *boxes* for its IoU statistics, so every anchor point gets one square
    box of side ``anchor_scale * stride`` centred on it. The paper tiles one square anchor of 8 * stride (Sec. 3.2,
    with RetinaNet-style anchors); the anchor-free adaptation in mmdetection/YOLOv6 (``grid_cell_size``) uses
    5 * stride, which is the default here: on YOLOv8's 3 levels (strides 8/16/32) it gives 40/80/160 px boxes, i.e. the
    scale range COCO objects cover at imgsz 640.

    For every ground truth (GT) ``g`` (all of them at once, vectorised over batch and GTs; only the 3-5 levels loop):

    1. on each level ``l`` take the ``k_l = min(topk, anchors on l)`` anchors whose centres are closest (L2) to the
       centre of ``g``; the candidates ``C_g`` are the union over levels (``K = sum_l k_l`` of them, 27 for
       topk=9 and 3 levels). Ties at the k-th distance are broken by ``torch.topk`` (implementation-defined);
    2. IoU between each candidate's anchor box and ``g``; threshold ``t_g = mean + std`` of those ``K`` IoUs, where std
       is the unbiased sample standard deviation (``torch.std``, divisor ``K - 1``), as in the paper's reference code
       and mmdetection; with ``K == 1`` the std is taken as 0;
    3. positives: candidates with ``IoU >= t_g`` whose anchor centre lies strictly inside ``g``, i.e. its smallest
       distance to the four sides is ``> inside_eps`` (0.01 px by default, as mmdetection's ATSS). Padded GTs
       (``mask_gt == 0``) never have positives;
    4. an anchor positive for several GTs goes to the GT whose box has the highest IoU with its *anchor box* (paper,
       Algorithm 1, last step); exact IoU ties go to the lowest GT index.

    Targets of a positive anchor: the assigned GT's class and box, and ``target_scores`` one-hot at that class times
    the IoU between the anchor's *predicted* box (``pd_bboxes``) and the GT (the IoU-aware classification target of
    VarifocalNet/GFL; plain one-hot when ``pd_bboxes`` is None). Downstream losses may replace it with their own quality
    target. Background anchors get ``target_labels = num_classes``, an all-zero box and all-zero scores, and
    ``target_gt_idx = 0`` (as TAL's).

    Behaviour worth knowing:

    * Objects smaller than a stride may get no positive: if no candidate centre falls inside the box, the centre test
      rejects them all (the paper's behaviour, kept here; TAL instead enlarges tiny GTs). An object that does contain
      an anchor centre of the finest level normally gets it as a positive, since on 3+ levels the finest level's
      anchor boxes have the highest IoU with a small object.
    * With only 2 levels and a GT that every candidate anchor box of each level fully contains, each level contributes
      ``k`` equal IoUs and mean + unbiased std lies above the larger of the two values, so such a GT gets no positive.
      Real YOLOv8 layouts have 3+ levels, where this does not occur for ordinary boxes.

    Cost, for ``b`` images, ``n`` (padded) GTs per image, ``A`` anchors (``A_l`` on level l) and ``K`` candidates per
    GT: centre distances and their top-k are O(b·n·A_l) per level, computed one level at a time (O(b·n·A) in all);
    the IoU statistics touch only the O(b·n·K) candidates; the one dense tensor is the (b, n, A) float overlap matrix
    used for conflict resolution, the size of TAL's own. The only host sync reads the level sizes once per call.
    """

    def __init__(
        self,
        num_classes: int,
        topk: int = 9,
        anchor_scale: float = 5.0,
        eps: float = 1e-9,
        inside_eps: float = 0.01,
    ):
        """
        Args:
            num_classes: number of object classes (``nc``).
            topk: candidates taken per level and per GT (the paper's k, 9 by default, Table 3 shows it is insensitive).
            anchor_scale: side of each anchor point's square anchor box, in strides (5.0 as mmdetection's/YOLOv6's
                anchor-free ATSS; the paper's RetinaNet anchors are 8.0).
            eps: added to IoU denominators so degenerate boxes give 0, not NaN.
            inside_eps: an anchor centre must be more than this many pixels inside the GT box (mmdetection: 0.01).
        """
        super().__init__()
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        if anchor_scale <= 0:
            raise ValueError(f"anchor_scale must be > 0, got {anchor_scale}")
        self.num_classes = num_classes
        self.topk = topk
        self.anchor_scale = anchor_scale
        self.eps = eps
        self.inside_eps = inside_eps

    @torch.no_grad()
    def forward(
        self,
        pd_scores: torch.Tensor,
        pd_bboxes: torch.Tensor | None,
        anc_points: torch.Tensor,
        gt_labels: torch.Tensor,
        gt_bboxes: torch.Tensor,
        mask_gt: torch.Tensor,
        *,
        stride_tensor: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Assign GTs to anchors; same call and return contract as ``TaskAlignedAssigner.forward`` plus the strides.

        Args:
            pd_scores: (b, A, nc) predicted class scores; only their shape, dtype and device are used (ATSS is
                prediction-free).
            pd_bboxes: (b, A, 4) predicted xyxy boxes in pixels, used only for the IoU in ``target_scores``; or None.
            anc_points: (A, 2) anchor centres in pixels (``anchor_points * stride_tensor``).
            gt_labels: (b, n, 1) GT class indices.
            gt_bboxes: (b, n, 4) GT xyxy boxes in pixels.
            mask_gt: (b, n, 1) 1 for real GTs, 0 for padding.
            stride_tensor: (A, 1) per-anchor stride from ``make_anchors``; levels must be concatenated one after the
                other (make_anchors' ascending-stride order).

        Returns:
            target_labels: (b, A) long, assigned class; ``num_classes`` at background anchors.
            target_bboxes: (b, A, 4) assigned GT box (``gt_bboxes.dtype``); zeros at background.
            target_scores: (b, A, nc) (``pd_scores.dtype``) one-hot at the assigned class times IoU(pred box, GT)
                (times 1 when ``pd_bboxes`` is None); zeros at background.
            fg_mask: (b, A) bool, positive anchors.
            target_gt_idx: (b, A) long, index of the assigned GT in ``gt_bboxes``' second dim; 0 at background.
        """
        batch_size, num_anchors = pd_scores.shape[:2]
        n_max_boxes = gt_bboxes.shape[1]
        device = pd_scores.device
        if stride_tensor.numel() != num_anchors:
            raise ValueError(f"stride_tensor has {stride_tensor.numel()} entries for {num_anchors} anchors")
        if n_max_boxes == 0:  # no GT anywhere in the batch: all background, as TAL
            return (
                torch.full((batch_size, num_anchors), self.num_classes, dtype=torch.long, device=device),
                torch.zeros((batch_size, num_anchors, 4), dtype=gt_bboxes.dtype, device=device),
                torch.zeros_like(pd_scores),
                torch.zeros((batch_size, num_anchors), dtype=torch.bool, device=device),
                torch.zeros((batch_size, num_anchors), dtype=torch.long, device=device),
            )

        # Geometry in float32 whatever the caller's dtype: half precision cannot hold pixel distances squared.
        gt_boxes = gt_bboxes.float()
        anchor_centres = anc_points.float()
        strides = stride_tensor.reshape(-1, 1).float()
        half_side = strides * (self.anchor_scale / 2)
        anchor_boxes = torch.cat((anchor_centres - half_side, anchor_centres + half_side), -1)  # (A, 4)
        gt_centres = (gt_boxes[..., :2] + gt_boxes[..., 2:]) / 2  # (b, n, 2)

        # 1. Candidates: the k anchors nearest the GT centre on each level, as indices into all A anchors.
        candidate_idx = []
        start = 0
        for level_size in level_sizes_from_strides(stride_tensor):
            end = start + level_size
            # Squared distance ranks like L2; (b, n, A_l) for this level only, to keep the peak memory per level.
            sq_dist = (gt_centres.unsqueeze(2) - anchor_centres[start:end]).pow(2).sum(-1)
            k = min(self.topk, level_size)
            candidate_idx.append(sq_dist.topk(k, dim=-1, largest=False).indices + start)
            start = end
        candidate_idx = torch.cat(candidate_idx, -1)  # (b, n, K); distinct within a GT (disjoint levels)

        # 2. Adaptive IoU threshold per GT: mean + std of its candidates' anchor-box IoUs (ATSS Algorithm 1).
        candidate_boxes = anchor_boxes[candidate_idx]  # (b, n, K, 4)
        candidate_iou = _paired_iou(candidate_boxes, gt_boxes.unsqueeze(2), self.eps)  # (b, n, K)
        num_candidates = candidate_iou.shape[-1]
        iou_mean = candidate_iou.mean(-1, keepdim=True)
        iou_std = candidate_iou.std(-1, keepdim=True) if num_candidates > 1 else torch.zeros_like(iou_mean)
        iou_threshold = iou_mean + iou_std

        # 3. Positives: above the threshold, centre strictly inside the GT, GT not padding.
        candidate_centres = anchor_centres[candidate_idx]  # (b, n, K, 2)
        gt_lt, gt_rb = gt_boxes.unsqueeze(2).split(2, -1)  # (b, n, 1, 2) each
        min_side_distance = torch.cat((candidate_centres - gt_lt, gt_rb - candidate_centres), -1).amin(-1)
        is_positive = (candidate_iou >= iou_threshold) & (min_side_distance > self.inside_eps) & mask_gt.bool()

        # 4. One GT per anchor: the highest anchor-box IoU among the GTs it is positive for. Non-positive pairs get -1
        # so any positive (IoU >= 0) outranks them; argmax returns the first maximum, so exact ties pick the lowest GT.
        overlaps = torch.full((batch_size, n_max_boxes, num_anchors), -1.0, device=device)
        overlaps.scatter_(-1, candidate_idx, torch.where(is_positive, candidate_iou, -1.0))
        best_overlap, target_gt_idx = overlaps.max(1)  # (b, A)
        fg_mask = best_overlap >= 0
        target_gt_idx = target_gt_idx.masked_fill(~fg_mask, 0)

        return self._targets(pd_scores, pd_bboxes, gt_labels, gt_bboxes, target_gt_idx, fg_mask)

    def _targets(
        self,
        pd_scores: torch.Tensor,
        pd_bboxes: torch.Tensor | None,
        gt_labels: torch.Tensor,
        gt_bboxes: torch.Tensor,
        target_gt_idx: torch.Tensor,
        fg_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gather the assigned GTs' labels and boxes, and build the IoU-scaled one-hot scores (shapes as forward)."""
        target_labels = gt_labels.squeeze(-1).long().gather(1, target_gt_idx)  # (b, A)
        target_labels = target_labels.masked_fill(~fg_mask, self.num_classes)
        target_bboxes = gt_bboxes.gather(1, target_gt_idx.unsqueeze(-1).expand(-1, -1, gt_bboxes.shape[-1]))
        target_bboxes = target_bboxes.masked_fill(~fg_mask.unsqueeze(-1), 0)  # (b, A, 4), zeros at background

        if pd_bboxes is None:
            quality = fg_mask.to(pd_scores.dtype)
        else:
            quality = _paired_iou(pd_bboxes.float(), target_bboxes.float(), self.eps).clamp(0, 1) * fg_mask
        # Background labels (num_classes) are clamped into range only to build the one-hot; their quality is 0.
        target_scores = torch.zeros_like(pd_scores)
        target_scores.scatter_(
            -1, target_labels.clamp(max=self.num_classes - 1).unsqueeze(-1), quality.to(pd_scores.dtype).unsqueeze(-1)
        )
        return target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx
