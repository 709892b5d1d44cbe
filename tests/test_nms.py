"""Gaussian soft-NMS, its per-class version and the per-level top-k, against hand-worked examples."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

from yolo_gfl.nms import batched_soft_nms, soft_nms, topk_per_level

# Three boxes, listed out of score order on purpose:
#   0: C = (0, 0, 10, 5)   score 0.75
#   1: A = (0, 0, 10, 10)  score 0.90
#   2: B = (5, 0, 15, 10)  score 0.70
# IoU(A, B) = 5*10 / (100 + 100 - 50) = 1/3;  IoU(A, C) = 50 / 100 = 0.5;  IoU(B, C) = 5*5 / (100 + 50 - 25) = 0.2.
# sigma 0.5:
#   pick A (0.9). B -> 0.70 * exp(-(1/3)^2 / 0.5) = 0.70 * exp(-2/9) = 0.560516;  C -> 0.75 * exp(-0.5) = 0.454898.
#   B now outranks C (decay reordered them): pick B (0.560516). C -> 0.454898 * exp(-0.2^2 / 0.5) = 0.419924.
#   pick C (0.419924).
HAND_BOXES = torch.tensor([[0.0, 0, 10, 5], [0, 0, 10, 10], [5, 0, 15, 10]])
HAND_SCORES = torch.tensor([0.75, 0.90, 0.70])
B_AFTER_A = 0.70 * math.exp(-2 / 9)
C_AFTER_A = 0.75 * math.exp(-0.5)
C_AFTER_B = C_AFTER_A * math.exp(-0.08)


def test_hand_worked_three_boxes():
    keep, new_scores = soft_nms(HAND_BOXES, HAND_SCORES, sigma=0.5)
    assert keep.tolist() == [1, 2, 0]
    assert new_scores.tolist() == pytest.approx([0.9, B_AFTER_A, C_AFTER_B], rel=1e-6)
    assert new_scores.tolist() == pytest.approx([0.9, 0.560516, 0.419924], abs=1e-6)
    assert keep.dtype == torch.long and new_scores.dtype == HAND_SCORES.dtype


def test_threshold_and_max_det():
    # C ends at 0.41992: a threshold of 0.43 drops it after B's decay.
    keep, new_scores = soft_nms(HAND_BOXES, HAND_SCORES, sigma=0.5, score_threshold=0.43)
    assert keep.tolist() == [1, 2]
    keep, new_scores = soft_nms(HAND_BOXES, HAND_SCORES, max_det=2)
    assert keep.tolist() == [1, 2] and new_scores.tolist() == pytest.approx([0.9, B_AFTER_A], rel=1e-6)
    # Input scores already below the threshold are dropped up front.
    keep, _ = soft_nms(HAND_BOXES, torch.tensor([0.0005, 0.9, 0.7]))
    assert keep.tolist() == [1, 2]


def test_identical_boxes_decay_by_exp_minus_one_over_sigma():
    boxes = torch.tensor([[10.0, 10, 50, 40]] * 2)
    for sigma in (0.5, 0.3, 2.0):
        keep, new_scores = soft_nms(boxes, torch.tensor([0.9, 0.8]), sigma=sigma)
        assert keep.tolist() == [0, 1]
        assert new_scores[1].item() == pytest.approx(0.8 * math.exp(-1 / sigma), rel=1e-6)


def test_disjoint_and_touching_boxes_keep_their_scores_exactly():
    boxes = torch.tensor([[0.0, 0, 10, 10], [10, 0, 20, 10], [30, 30, 40, 40], [0, 10, 10, 20]])  # edges touch: IoU 0
    scores = torch.tensor([0.5, 0.9, 0.3, 0.7])
    keep, new_scores = soft_nms(boxes, scores)
    assert keep.tolist() == [1, 3, 0, 2]
    assert torch.equal(new_scores, scores[keep])


def test_tiny_sigma_is_hard_nms_at_iou_zero():
    g = torch.Generator().manual_seed(0)
    xy = torch.randint(0, 100, (200, 2), generator=g).float()
    boxes = torch.cat((xy, xy + torch.randint(1, 30, (200, 2), generator=g)), 1)
    scores = torch.rand(200, generator=g)
    keep, new_scores = soft_nms(boxes, scores, sigma=1e-12, score_threshold=1e-6)
    assert torch.equal(keep, torchvision.ops.nms(boxes, scores, 0.0))
    assert torch.equal(new_scores, scores[keep])


def test_empty_degenerate_and_nan_inputs():
    keep, new_scores = soft_nms(torch.zeros(0, 4), torch.zeros(0))
    assert keep.shape == (0,) and new_scores.shape == (0,)
    # Zero-area boxes have IoU 0 with everything (no NaN), and a NaN score is dropped rather than picked.
    boxes = torch.tensor([[5.0, 5, 5, 5], [5.0, 5, 5, 5], [0, 0, 10, 10]])
    keep, new_scores = soft_nms(boxes, torch.tensor([0.9, float("nan"), 0.8]))
    assert keep.tolist() == [0, 2] and new_scores.tolist() == pytest.approx([0.9, 0.8])
    with pytest.raises(ValueError):
        soft_nms(HAND_BOXES, HAND_SCORES, sigma=0.0)


def test_decayed_scores_never_increase_along_keep():
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(300, 2, generator=g) * 200
    boxes = torch.cat((xy, xy + 5 + torch.rand(300, 2, generator=g) * 60), 1)
    keep, new_scores = soft_nms(boxes, torch.rand(300, generator=g))
    assert len(keep.unique()) == len(keep)
    assert (new_scores[1:] <= new_scores[:-1]).all() and (new_scores >= 0.001).all()


def test_batched_never_suppresses_across_classes():
    # Two identical boxes: same class -> the second decays by exp(-2); different classes -> untouched.
    boxes = torch.tensor([[10.0, 10, 50, 40]] * 2)
    scores = torch.tensor([0.9, 0.8])
    _, same = batched_soft_nms(boxes, scores, torch.tensor([3, 3]))
    assert same.tolist() == pytest.approx([0.9, 0.8 * math.exp(-2)], rel=1e-6)
    keep, other = batched_soft_nms(boxes, scores, torch.tensor([3, 7]))
    assert keep.tolist() == [0, 1] and torch.equal(other, scores)


def test_batched_equals_per_class_soft_nms():
    g = torch.Generator().manual_seed(2)
    n = 150
    xy = torch.rand(n, 2, generator=g) * 300 - 20  # some negative coordinates
    boxes = torch.cat((xy, xy + 4 + torch.rand(n, 2, generator=g) * 80), 1)
    scores = torch.rand(n, generator=g)
    classes = torch.randint(0, 5, (n,), generator=g)
    keep, new_scores = batched_soft_nms(boxes, scores, classes)
    for c in range(5):
        idx = (classes == c).nonzero().squeeze(1)
        keep_c, scores_c = soft_nms(boxes[idx], scores[idx])
        in_class = classes[keep] == c
        assert torch.equal(keep[in_class], idx[keep_c])
        assert torch.allclose(new_scores[in_class], scores_c, rtol=1e-4)
    keep5, _ = batched_soft_nms(boxes, scores, classes, max_det=5)
    assert torch.equal(keep5, keep[:5])


def test_topk_per_level_hand_example():
    # Two levels of 4 and 2 anchors, 2 classes; ranked by each anchor's best class score:
    #   level 0: anchors 0..3 best = [0.5, 0.9, 0.3, 0.6] -> top 2: 1 (0.9), 3 (0.6); top 3 adds 0 (0.5)
    #   level 1: anchors 4, 5 best = [0.7, 0.8]          -> 5, 4 (only 2 anchors, so k >= 2 takes both)
    scores = torch.tensor([[0.1, 0.5], [0.9, 0.0], [0.3, 0.2], [0.05, 0.6], [0.7, 0.1], [0.2, 0.8]])
    assert topk_per_level(scores, [4, 2], 2).tolist() == [1, 3, 5, 4]
    assert topk_per_level(scores, [4, 2], 3).tolist() == [1, 3, 0, 5, 4]
    assert topk_per_level(scores, torch.tensor([4, 2]), 1).tolist() == [1, 5]
    # Batched: the second image has the anchors' scores reversed (anchor i gets row 5 - i).
    batched = torch.stack((scores, scores.flip(0)))
    out = topk_per_level(batched, [4, 2], 2)
    assert out.shape == (2, 4)
    assert out[0].tolist() == [1, 3, 5, 4]
    # Image 1 best per anchor: [0.8, 0.7, 0.6, 0.3, 0.9, 0.5] -> level 0: 0, 1; level 1: 4, 5.
    assert out[1].tolist() == [0, 1, 4, 5]
    with pytest.raises(ValueError):
        topk_per_level(scores, [4, 3], 2)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_hand_example_on_each_device(device):
    keep, new_scores = soft_nms(HAND_BOXES.to(device), HAND_SCORES.to(device))
    assert keep.device.type == device and keep.tolist() == [1, 2, 0]
    assert new_scores.cpu().tolist() == pytest.approx([0.9, B_AFTER_A, C_AFTER_B], rel=1e-6)
    # C in class 1, A and B in class 0: C no longer meets A and keeps 0.75; B still decays to 0.5605 after A.
    classes = torch.tensor([1, 0, 0], device=device)
    keep, new_scores = batched_soft_nms(HAND_BOXES.to(device), HAND_SCORES.to(device), classes)
    assert keep.tolist() == [1, 0, 2]
    assert new_scores.cpu().tolist() == pytest.approx([0.9, 0.75, B_AFTER_A], rel=1e-6)
