"""ATSSAssigner: hand-worked toy layouts, edge cases, a naive reference, and properties over random boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ultralytics.utils.tal import TaskAlignedAssigner, make_anchors

from yolo_gfl.assigners import ATSSAssigner, level_sizes_from_strides


def pixel_anchors(grid_sizes: list[int], strides: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor centres in pixels (A, 2) and per-anchor strides (A, 1) for square grids, exactly as make_anchors lays
    them out (row-major within a level, levels in the given order)."""
    feats = [torch.zeros(1, 1, g, g) for g in grid_sizes]
    points, stride_tensor = make_anchors(feats, torch.tensor(strides), 0.5)
    return points * stride_tensor, stride_tensor


def assign(assigner, gt_boxes, gt_labels, mask_gt, anchors, stride_tensor, nc, pd_bboxes=None):
    """Run the assigner on (b, n, 4) boxes with dummy scores; returns the 5-tuple."""
    b, a = gt_boxes.shape[0], anchors.shape[0]
    return assigner(
        torch.rand(b, a, nc), pd_bboxes, anchors, gt_labels, gt_boxes, mask_gt, stride_tensor=stride_tensor
    )


def check_invariants(out, anchors, gt_boxes, gt_labels, mask_gt, nc):
    """Properties every assignment must have, whatever the boxes."""
    labels, boxes, scores, fg, gt_idx = out
    b, a = fg.shape
    n = gt_boxes.shape[1]
    assert labels.dtype == torch.long and gt_idx.dtype == torch.long and fg.dtype == torch.bool
    assert torch.isfinite(boxes).all() and torch.isfinite(scores).all()
    assert (scores >= 0).all() and (scores <= 1).all()
    assert ((gt_idx >= 0) & (gt_idx < max(n, 1))).all()
    assert (labels[~fg] == nc).all() and (boxes[~fg] == 0).all() and (scores[~fg] == 0).all()
    for i in range(b):
        fg_anchors = fg[i].nonzero().squeeze(1)
        if len(fg_anchors) == 0:
            continue
        assigned = gt_idx[i, fg_anchors]
        assert mask_gt[i, assigned, 0].bool().all(), "a padded GT was assigned"
        assert torch.equal(labels[i, fg_anchors], gt_labels[i, assigned, 0].long())
        assert torch.equal(boxes[i, fg_anchors], gt_boxes[i, assigned])
        centres, gt = anchors[fg_anchors], gt_boxes[i, assigned]
        inside = torch.cat((centres - gt[:, :2], gt[:, 2:] - centres), -1).amin(-1)
        assert (inside > 0.01).all(), "a positive anchor centre lies outside its GT"
        # Scores: zero except at the assigned class.
        off_class = scores[i, fg_anchors].clone()
        off_class[torch.arange(len(fg_anchors)), labels[i, fg_anchors]] = 0
        assert (off_class == 0).all()


# The toy layout of the hand-worked tests: a 32x32 image, level 0 a 4x4 grid at stride 8 (anchor indices 0..15, row
# by row, centres x, y in {4, 12, 20, 28}: index = 4 * row + col), level 1 a 2x2 grid at stride 16 (indices 16..19,
# centres in {8, 24}). anchor_scale 2 gives 16x16 anchor boxes on level 0 and 32x32 on level 1; topk 3.
TOY_ANCHORS, TOY_STRIDES = pixel_anchors([4, 2], [8.0, 16.0])


def test_toy_layout():
    assert level_sizes_from_strides(TOY_STRIDES) == [16, 4]
    assert TOY_ANCHORS[9].tolist() == [12.0, 20.0] and TOY_ANCHORS[19].tolist() == [24.0, 24.0]


def test_hand_worked_two_gts_with_a_conflict():
    """Two GTs on the toy layout, worked by hand (IoU = intersection / union of the anchor box and the GT):

    GT A = (4, 17, 31, 26), class 0, area 27 * 9 = 243, centre (17.5, 21.5).
      Level 0, squared distances: anchor 10 (20,20) 8.5, anchor 9 (12,20) 32.5, anchor 14 (20,28) 48.5; next is
      anchor 13 at 72.5, so no tie at k = 3. Level 1: 19 (24,24) 48.5, 18 (8,24) 96.5, 17 (24,8) 224.5 (16: 272.5).
      IoUs: 10: box (12,12,28,28) meets A in 16 x 9 = 144 -> 144 / (256 + 243 - 144) = 144/355 = 0.40563
            9:  box (4,12,20,28)   16 x 9 = 144 -> 144/355 = 0.40563
            14: box (12,20,28,36)  16 x 6 = 96  -> 96/403  = 0.23821
            19: box (8,8,40,40)    23 x 9 = 207 -> 207/1060 = 0.19528
            18: box (-8,8,24,40)   20 x 9 = 180 -> 180/1087 = 0.16559
            17: box (8,-8,40,24)   23 x 7 = 161 -> 161/1106 = 0.14557
      mean 0.25932, unbiased std 0.11755 -> threshold 0.37687: anchors 10 and 9 pass; both centres (20,20) and (12,20)
      lie inside A. Positives of A: {9, 10}.

    GT B = (15, 14, 32, 25), class 1, area 17 * 11 = 187, centre (23.5, 19.5).
      Level 0: 10 (20,20) 12.5, 11 (28,20) 20.5, 6 (20,12) 68.5 (next 7: 76.5). Level 1: 19 20.5, 17 132.5, 18 260.5.
      IoUs: 10: 13 x 11 = 143 -> 143/300 = 0.47667;  11: box (20,12,36,28) 12 x 11 = 132 -> 132/311 = 0.42444
            6: box (12,4,28,20) 13 x 6 = 78 -> 78/365 = 0.21370;  19: contains B -> 187/1024 = 0.18262
            17: 17 x 10 = 170 -> 170/1041 = 0.16330;  18: 9 x 11 = 99 -> 99/1112 = 0.08903
      mean 0.25830, unbiased std 0.15536 -> threshold 0.41365: anchors 10 and 11 pass, centres (20,20) and (28,20)
      inside B. Positives of B: {10, 11}.

    Anchor 10 is positive for both: IoU 0.47667 with B beats 0.40563 with A, so it goes to B.
    Result: fg = {9, 10, 11}; 9 -> A (idx 0, class 0), 10 and 11 -> B (idx 1, class 1).
    """
    gt_boxes = torch.tensor([[[4.0, 17, 31, 26], [15, 14, 32, 25]]])
    gt_labels = torch.tensor([[[0.0], [1.0]]])
    mask_gt = torch.ones(1, 2, 1)
    nc = 3
    assigner = ATSSAssigner(nc, topk=3, anchor_scale=2.0)
    out = assign(assigner, gt_boxes, gt_labels, mask_gt, TOY_ANCHORS, TOY_STRIDES, nc)
    labels, boxes, scores, fg, gt_idx = out

    assert fg[0].nonzero().squeeze(1).tolist() == [9, 10, 11]
    assert gt_idx[0, [9, 10, 11]].tolist() == [0, 1, 1]
    assert labels[0, [9, 10, 11]].tolist() == [0, 1, 1]
    assert (gt_idx[0, ~fg[0]] == 0).all()
    assert boxes[0, 10].tolist() == [15, 14, 32, 25]
    # No predicted boxes given: the score target is plain one-hot.
    assert scores[0, 9].tolist() == [1, 0, 0] and scores[0, 11].tolist() == [0, 1, 0]
    check_invariants(out, TOY_ANCHORS, gt_boxes, gt_labels, mask_gt, nc)

    # The order of the GTs does not matter: swapped, the same anchors go to the same boxes.
    swapped = assign(assigner, gt_boxes.flip(1), gt_labels.flip(1), mask_gt, TOY_ANCHORS, TOY_STRIDES, nc)
    assert torch.equal(swapped[3], fg) and swapped[4][0, [9, 10, 11]].tolist() == [1, 0, 0]


def test_hand_worked_centre_test_rejects_a_candidate():
    """GT (11, 0, 19, 5), area 40, centre (15, 2.5), on the toy layout:

    Level 0 candidates: 1 (12,4) d^2 = 11.25, 2 (20,4) 27.25, 5 (12,12) 99.25 (next: 6 at 115.25).
    Level 1: 16 (8,8) 79.25, 17 (24,8) 111.25, 18 (8,24) 511.25.
    IoUs: 1: box (4,-4,20,12) meets the GT in 8 x 5 = 40 -> 40/256 = 0.15625
          2: box (12,-4,28,12) 7 x 5 = 35 -> 35/261 = 0.13410
          5: box (4,4,20,20) 8 x 1 = 8 -> 8/288 = 0.02778
          16, 17: 8 x 5 = 40 -> 40/1024 = 0.03906 each;  18: no overlap -> 0
    mean 0.06604, unbiased std 0.06333 -> threshold 0.12937: anchors 1 and 2 pass the IoU test, but anchor 2's centre
    x = 20 lies right of the GT's x2 = 19, so only anchor 1 (distances 1, 4, 7, 1 to the sides) is positive.

    With a predicted box (11, 0, 15, 5) at anchor 1 (half of the GT: IoU 20/40 = 0.5) its score target is 0.5.
    """
    gt_boxes = torch.tensor([[[11.0, 0, 19, 5]]])
    gt_labels = torch.tensor([[[2.0]]])
    mask_gt = torch.ones(1, 1, 1)
    nc = 3
    pd_bboxes = torch.zeros(1, len(TOY_ANCHORS), 4)
    pd_bboxes[0, 1] = torch.tensor([11.0, 0, 15, 5])
    assigner = ATSSAssigner(nc, topk=3, anchor_scale=2.0)
    labels, boxes, scores, fg, gt_idx = out = assign(
        assigner, gt_boxes, gt_labels, mask_gt, TOY_ANCHORS, TOY_STRIDES, nc, pd_bboxes
    )
    assert fg[0].nonzero().squeeze(1).tolist() == [1]
    assert labels[0, 1] == 2 and gt_idx[0, 1] == 0
    assert scores[0, 1].tolist() == pytest.approx([0, 0, 0.5])
    assert scores.sum().item() == pytest.approx(0.5)
    check_invariants(out, TOY_ANCHORS, gt_boxes, gt_labels, mask_gt, nc)


def test_two_levels_gt_contained_by_all_candidates_gets_no_positive():
    """The documented 2-level corner: when every candidate anchor box contains the GT, each level gives k equal
    IoUs, a (finest level) and b < a, and mean + unbiased std of {a x k, b x k}
    = (a + b)/2 + (a - b)/2 * sqrt(2k/(2k-1)) lies above a, so nothing passes. GT (9, 10, 15, 14), area 24, centre (12, 12) on anchor 5; topk 1: candidates
    anchor 5, box (4,4,20,20), IoU 24/256 = 0.09375, and anchor 16, box (-8,-8,24,24), IoU 24/1024 = 0.02344;
    mean 0.05859 + std 0.07031/sqrt(2) = 0.04972 -> threshold 0.10831 > 0.09375: no positive."""
    gt_boxes = torch.tensor([[[9.0, 10, 15, 14]]])
    out = assign(ATSSAssigner(2, topk=1, anchor_scale=2.0), gt_boxes, torch.zeros(1, 1, 1), torch.ones(1, 1, 1),
                 TOY_ANCHORS, TOY_STRIDES, 2)
    assert not out[3].any()


# A 64x64 image with 3 levels (8x8 @ 8, 4x4 @ 16, 2x2 @ 32) for the edge cases and properties, and a 640 one.
SMALL_ANCHORS, SMALL_STRIDES = pixel_anchors([8, 4, 2], [8.0, 16.0, 32.0])


def test_no_gt_in_batch_is_all_background():
    nc, a = 4, len(SMALL_ANCHORS)
    empty_boxes, empty_labels, empty_mask = torch.zeros(2, 0, 4), torch.zeros(2, 0, 1), torch.zeros(2, 0, 1)
    labels, boxes, scores, fg, gt_idx = assign(
        ATSSAssigner(nc), empty_boxes, empty_labels, empty_mask, SMALL_ANCHORS, SMALL_STRIDES, nc
    )
    assert labels.shape == (2, a) and (labels == nc).all() and labels.dtype == torch.long
    assert boxes.shape == (2, a, 4) and (boxes == 0).all()
    assert scores.shape == (2, a, nc) and (scores == 0).all()
    assert not fg.any() and fg.dtype == torch.bool
    assert (gt_idx == 0).all() and gt_idx.dtype == torch.long


def test_mixed_empty_and_non_empty_images():
    nc = 3
    gt_boxes = torch.zeros(3, 2, 4)
    gt_labels = torch.zeros(3, 2, 1)
    mask_gt = torch.zeros(3, 2, 1)
    gt_boxes[1, 0], gt_labels[1, 0], mask_gt[1, 0] = torch.tensor([10.0, 12, 40, 50]), 2, 1  # image 1: one object
    gt_boxes[1, 1] = torch.tensor([0.0, 0, 64, 64])  # padding with a real-looking box must still be ignored
    out = assign(ATSSAssigner(nc), gt_boxes, gt_labels, mask_gt, SMALL_ANCHORS, SMALL_STRIDES, nc)
    fg = out[3]
    assert not fg[0].any() and not fg[2].any() and fg[1].any()
    assert (out[4][1, fg[1]] == 0).all()
    check_invariants(out, SMALL_ANCHORS, gt_boxes, gt_labels, mask_gt, nc)


def test_tiny_and_whole_image_gts():
    nc = 2
    gt_boxes = torch.tensor(
        [[[2.0, 2, 6, 6], [5.0, 5, 7, 7], [0.0, 0, 64, 64]]]
    )  # 4x4 around anchor (4,4); 2x2 between anchor centres; the whole image
    gt_labels = torch.tensor([[[0.0], [1.0], [1.0]]])
    mask_gt = torch.ones(1, 3, 1)
    out = assign(ATSSAssigner(nc), gt_boxes, gt_labels, mask_gt, SMALL_ANCHORS, SMALL_STRIDES, nc)
    check_invariants(out, SMALL_ANCHORS, gt_boxes, gt_labels, mask_gt, nc)
    fg, gt_idx = out[3][0], out[4][0]
    assigned = gt_idx[fg].tolist()
    # The 4x4 GT contains anchor centre (4,4) (index 0): its 3 level-0 candidates all contain it (IoU 16/1600 each),
    # above mean + std of the 9 candidates, and only (4,4) passes the centre test -> exactly one positive.
    assert fg[0] and gt_idx[0] == 0 and assigned.count(0) == 1
    # The 2x2 GT at (5..7, 5..7) contains no anchor centre: the centre test leaves it without positives (paper).
    assert 1 not in assigned
    # The whole-image GT gets positives (on the coarse level, where the anchor boxes match it best).
    assert assigned.count(2) > 0


def test_300_gts_in_one_image_640():
    anchors, strides = pixel_anchors([80, 40, 20], [8.0, 16.0, 32.0])
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(1, 300, 2, generator=g) * 600
    wh = torch.rand(1, 300, 2, generator=g) * 120 + 1
    gt_boxes = torch.cat((xy, (xy + wh).clamp(max=640)), -1)
    gt_labels = torch.randint(0, 80, (1, 300, 1), generator=g).float()
    mask_gt = torch.ones(1, 300, 1)
    pd_bboxes = gt_boxes.new_zeros(1, len(anchors), 4) + torch.tensor([0.0, 0, 50, 50])
    out = assign(ATSSAssigner(80), gt_boxes, gt_labels, mask_gt, anchors, strides, 80, pd_bboxes)
    check_invariants(out, anchors, gt_boxes, gt_labels, mask_gt, 80)
    assert out[3].sum() > 300  # most GTs get a few anchors


def test_shapes_and_dtypes_match_task_aligned_assigner():
    nc, b, n = 5, 2, 4
    a = len(SMALL_ANCHORS)
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(b, n, 2, generator=g) * 40
    gt_boxes = torch.cat((xy, xy + 8 + torch.rand(b, n, 2, generator=g) * 16), -1)
    gt_labels = torch.randint(0, nc, (b, n, 1), generator=g).float()
    mask_gt = torch.ones(b, n, 1)
    mask_gt[1, 2:] = 0
    pd_scores = torch.rand(b, a, nc, generator=g)
    pd_bboxes = torch.cat((SMALL_ANCHORS - 10, SMALL_ANCHORS + 10), -1).expand(b, -1, -1)
    tal_assigner = TaskAlignedAssigner(topk=10, num_classes=nc)
    tal = tal_assigner(pd_scores, pd_bboxes, SMALL_ANCHORS, gt_labels, gt_boxes, mask_gt)
    atss = ATSSAssigner(nc)(
        pd_scores, pd_bboxes, SMALL_ANCHORS, gt_labels, gt_boxes, mask_gt, stride_tensor=SMALL_STRIDES
    )
    for name, t, s in zip(("labels", "bboxes", "scores", "fg_mask", "gt_idx"), tal, atss):
        assert t.shape == s.shape, name
        assert t.dtype == s.dtype, name
    check_invariants(atss, SMALL_ANCHORS, gt_boxes, gt_labels, mask_gt, nc)


def test_half_precision_inputs():
    nc = 3
    gt_boxes = torch.tensor([[[10.0, 12, 40, 50]]]).half()
    out = ATSSAssigner(nc)(
        torch.rand(1, len(SMALL_ANCHORS), nc).half(),
        torch.cat((SMALL_ANCHORS - 6, SMALL_ANCHORS + 6), -1)[None].half(),
        SMALL_ANCHORS,
        torch.ones(1, 1, 1),
        gt_boxes,
        torch.ones(1, 1, 1),
        stride_tensor=SMALL_STRIDES,
    )
    assert out[1].dtype == torch.half and out[2].dtype == torch.half
    assert out[3].any() and torch.isfinite(out[2].float()).all()


def reference_atss(anchors, strides, gt_boxes, mask_gt, topk, anchor_scale):
    """Plain per-image, per-GT ATSS with numpy and Python loops, following the paper's Algorithm 1 step by step.
    Returns fg (b, A) bool and gt_idx (b, A) int (0 at background)."""
    anchors, strides = anchors.double().numpy(), strides.double().numpy().reshape(-1)
    b, n = gt_boxes.shape[:2]
    a = len(anchors)
    levels, start = [], 0
    for s in dict.fromkeys(strides.tolist()):
        size = int((strides == s).sum())
        levels.append(range(start, start + size))
        start += size
    fg = np.zeros((b, a), bool)
    gt_idx = np.zeros((b, a), int)
    for i in range(b):
        best = np.full(a, -1.0)
        for j in range(n):
            if not mask_gt[i, j, 0]:
                continue
            x1, y1, x2, y2 = gt_boxes[i, j].double().tolist()
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            candidates = []
            for level in levels:
                dist = [math.hypot(anchors[k, 0] - cx, anchors[k, 1] - cy) for k in level]
                candidates += [level[m] for m in np.argsort(dist, kind="stable")[: min(topk, len(level))]]
            ious = []
            for k in candidates:
                h = anchor_scale * strides[k] / 2
                ax1, ay1, ax2, ay2 = anchors[k, 0] - h, anchors[k, 1] - h, anchors[k, 0] + h, anchors[k, 1] + h
                inter = max(0, min(ax2, x2) - max(ax1, x1)) * max(0, min(ay2, y2) - max(ay1, y1))
                ious.append(inter / ((ax2 - ax1) * (ay2 - ay1) + (x2 - x1) * (y2 - y1) - inter))
            threshold = np.mean(ious) + (np.std(ious, ddof=1) if len(ious) > 1 else 0.0)
            for k, iou in zip(candidates, ious):
                px, py = anchors[k]
                inside = min(px - x1, py - y1, x2 - px, y2 - py) > 0.01
                if iou >= threshold and inside and iou > best[k]:
                    best[k], fg[i, k], gt_idx[i, k] = iou, True, j
    return fg, gt_idx


@pytest.mark.parametrize("seed", range(4))
def test_matches_naive_reference_on_random_float_boxes(seed):
    """Random float boxes (no distance or IoU ties, almost surely) on the 3-level 64x64 layout."""
    g = torch.Generator().manual_seed(seed)
    b, n, nc = 3, 6, 4
    xy = torch.rand(b, n, 2, generator=g) * 56
    gt_boxes = torch.cat((xy, (xy + 2 + torch.rand(b, n, 2, generator=g) * 40).clamp(max=64)), -1)
    mask_gt = (torch.rand(b, n, 1, generator=g) > 0.25).float()
    gt_labels = torch.randint(0, nc, (b, n, 1), generator=g).float()
    for topk, scale in ((9, 5.0), (3, 2.0), (20, 8.0)):
        out = assign(ATSSAssigner(nc, topk=topk, anchor_scale=scale), gt_boxes, gt_labels, mask_gt, SMALL_ANCHORS,
                     SMALL_STRIDES, nc)
        fg_ref, idx_ref = reference_atss(SMALL_ANCHORS, SMALL_STRIDES, gt_boxes, mask_gt, topk, scale)
        assert fg_ref.sum() >= 5  # the comparison is not vacuous
        assert np.array_equal(out[3].numpy(), fg_ref)
        assert np.array_equal(out[4].numpy(), idx_ref)


@st.composite
def batches(draw):
    """Random batches: 1-3 images, 0-8 GT slots each with integer boxes in a 64x64 image (ties, degenerate and
    out-of-image boxes included) and random padding; padded slots hold real-looking boxes too."""
    b = draw(st.integers(1, 3))
    n = draw(st.integers(0, 8))
    coords = st.integers(-8, 72)
    boxes, mask = [], []
    for _ in range(b * n):
        x1, y1 = draw(coords), draw(coords)
        w, h = draw(st.integers(0, 70)), draw(st.integers(0, 70))
        boxes.append([x1, y1, x1 + w, y1 + h])
        mask.append(draw(st.booleans()))
    gt_boxes = torch.tensor(boxes, dtype=torch.float).reshape(b, n, 4)
    mask_gt = torch.tensor(mask, dtype=torch.float).reshape(b, n, 1)
    topk = draw(st.integers(1, 12))
    anchor_scale = draw(st.sampled_from([1.0, 5.0, 8.0]))
    return gt_boxes, mask_gt, topk, anchor_scale


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_properties_on_random_batches(batch):
    gt_boxes, mask_gt, topk, anchor_scale = batch
    b, n = gt_boxes.shape[:2]
    nc = 3
    gt_labels = (torch.arange(b * n) % nc).float().reshape(b, n, 1)
    pd_bboxes = torch.cat((SMALL_ANCHORS - 7, SMALL_ANCHORS + 9), -1).expand(b, -1, -1)
    out = assign(ATSSAssigner(nc, topk=topk, anchor_scale=anchor_scale), gt_boxes, gt_labels, mask_gt, SMALL_ANCHORS,
                 SMALL_STRIDES, nc, pd_bboxes)
    check_invariants(out, SMALL_ANCHORS, gt_boxes, gt_labels, mask_gt, nc)
    # A positive anchor never belongs to a padded GT, and padding alone gives no positives.
    fg = out[3]
    assert not fg[mask_gt.sum((1, 2)) == 0].any()


def test_requires_matching_stride_tensor():
    with pytest.raises(ValueError, match="stride_tensor"):
        ATSSAssigner(2)(
            torch.rand(1, 10, 2), None, SMALL_ANCHORS[:10], torch.zeros(1, 1, 1), torch.ones(1, 1, 4),
            torch.ones(1, 1, 1), stride_tensor=SMALL_STRIDES,
        )
