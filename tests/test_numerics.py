"""Numerical edge cases of the losses, the assigners (TAL as GFLDetectionLoss uses it, ATSS) and GFLDetectionLoss.

Edge cases by hand (no GT, all anchors negative, GT under a stride, GT = whole image, zero-area and duplicate GTs,
DFL targets at the range ends, logits at +-100, probabilities exactly 0/1, bf16/fp16 under CPU autocast), then
property-based tests (hypothesis) over random shapes and values: every loss finite and non-negative with finite
gradients, QFL minimal (and monotone) around sigma = y, DFL minimal at the two-bin split of y (GFL paper, Eqs. 5-6).
tests/test_losses.py checks the equations themselves; this file checks where they could break.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ultralytics.cfg import get_cfg
from ultralytics.utils.tal import TaskAlignedAssigner, bbox2dist, make_anchors

from yolo_gfl.assigners import ATSSAssigner
from yolo_gfl.configs import load_model_cfg
from yolo_gfl.losses import distribution_focal_loss, generalized_focal_loss, quality_focal_loss, varifocal_loss
from yolo_gfl.nn import GFLDetectionModel

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
IMG = 64  # px; strides 8/16/32 -> 8x8 + 4x4 + 2x2 = 84 anchors
REG_MAX = 16


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and on a busy 2-core runner far faster (no OpenMP spin-waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def finite_grad(x: torch.Tensor) -> bool:
    return x.grad is not None and bool(torch.isfinite(x.grad).all())


# ---------------------------------------------------------------------------------------------------------------------
# Losses: hand-picked edges
# ---------------------------------------------------------------------------------------------------------------------

EXTREME_LOGITS = torch.tensor([-1000.0, -200.0, -104.0, -100.0, -88.8, -20.0, 0.0, 20.0, 88.8, 100.0, 104.0, 1000.0])


@pytest.mark.parametrize("exponent", [0.0, 0.01, 0.5, 1.0, 2.0, 10.0])  # the whole allowed option range's shapes
@pytest.mark.parametrize("kind", ["vfl", "qfl"])
def test_extreme_logits_and_small_exponents_keep_gradients_finite(kind, exponent):
    """sigmoid underflows to exactly 0 (logit < -88) or rounds to 1; |y - sigma|^beta and p^gamma with an exponent
    below 1 have an infinite derivative there. Before the fix in losses._pow these gave NaN gradients (QFL with
    qfl_beta < 1, VFL with vfl_gamma < 1), which Ultralytics only notices as a NaN loss a step later."""
    z = EXTREME_LOGITS.repeat(3)
    y = torch.cat([torch.zeros(12), torch.ones(12), torch.full((12,), 0.5)])
    x = z.clone().requires_grad_(True)
    out = varifocal_loss(x, y, 0.75, exponent) if kind == "vfl" else quality_focal_loss(x, y, exponent)
    out.sum().backward()
    assert torch.isfinite(out).all() and (out >= 0).all()
    assert finite_grad(x), x.grad


@pytest.mark.parametrize("exponent", [0.0, 0.5, 2.0])
def test_probabilities_exactly_zero_and_one(exponent):
    p = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5])
    y = torch.tensor([0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.5])
    for fn in (lambda a, b: varifocal_loss(a, b, 0.75, exponent, logits=False),
               lambda a, b: quality_focal_loss(a, b, exponent, logits=False)):
        x = p.clone().requires_grad_(True)
        out = fn(x, y)
        out.sum().backward()
        assert torch.isfinite(out).all() and (out >= 0).all() and finite_grad(x)
    # generalized form with probabilities exactly 0 or 1 on either side
    pl = torch.tensor([0.0, 1.0, 0.0, 1.0]).requires_grad_(True)
    pr = torch.tensor([1.0, 0.0, 0.0, 1.0]).requires_grad_(True)
    out = generalized_focal_loss(pl, pr, torch.tensor([1.0, 0.0, 0.5, 0.5]), 0.0, 1.0, beta=exponent)
    out.sum().backward()
    assert torch.isfinite(out).all() and (out >= 0).all() and finite_grad(pl) and finite_grad(pr)


def test_dfl_at_both_range_ends():
    """Targets 0, reg_max-1-eps (what bbox2dist clamps to) and reg_max-1; beyond the range they are clamped."""
    eps = 0.01  # bbox2dist's margin in v8DetectionLoss
    targets = torch.tensor([0.0, 1e-7, REG_MAX - 1 - eps, REG_MAX - 1 - 1e-6, REG_MAX - 1.0, -5.0, 40.0])
    for logits in (torch.zeros(7, REG_MAX), torch.full((7, REG_MAX), 100.0), torch.randn(7, REG_MAX) * 100):
        x = logits.clone().requires_grad_(True)
        out = distribution_focal_loss(x, targets)
        out.sum().backward()
        assert torch.isfinite(out).all() and (out >= -1e-6).all() and finite_grad(x)
    # a one-hot distribution at the end bins is a perfect prediction of the end targets
    one_hot = torch.full((2, REG_MAX), -100.0)
    one_hot[0, 0] = one_hot[1, -1] = 100.0
    assert distribution_focal_loss(one_hot, torch.tensor([0.0, REG_MAX - 1.0])).abs().max() < 1e-6
    # and the margin Ultralytics keeps: bbox2dist never hands DFL a target past reg_max - 1 - 0.01
    anchors = torch.tensor([[0.5, 0.5]])
    far = bbox2dist(anchors, torch.tensor([[-100.0, -100.0, 100.0, 100.0]]), REG_MAX - 1)
    assert far.max() <= REG_MAX - 1 - eps + 1e-6 and far.min() >= 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("autocast_dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_extreme_values_under_autocast(dtype, autocast_dtype):
    z = EXTREME_LOGITS.clamp(-1000, 1000).to(dtype)  # fp16 holds +-1000; bf16 rounds them
    y = torch.linspace(0, 1, len(z)).to(dtype)
    dist = (torch.randn(len(z), REG_MAX) * 100).to(dtype)
    t = torch.linspace(0, REG_MAX - 1, len(z)).to(dtype)
    with torch.autocast("cpu", dtype=autocast_dtype):
        outs = [varifocal_loss(z, y), quality_focal_loss(z, y), varifocal_loss(z.float().sigmoid().to(dtype), y, logits=False),
                quality_focal_loss(z.float().sigmoid().to(dtype), y, logits=False), distribution_focal_loss(dist, t)]
    for out in outs:
        assert out.dtype == torch.float32 and torch.isfinite(out).all() and (out >= -1e-6).all()


# ---------------------------------------------------------------------------------------------------------------------
# Losses: properties over random shapes and values
# ---------------------------------------------------------------------------------------------------------------------

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)
unit = st.one_of(st.sampled_from([0.0, 1.0, 0.5, 1e-7, 1 - 1e-7]), st.floats(0.0, 1.0))
logit = st.one_of(st.sampled_from([-100.0, 100.0, -1000.0, 1000.0, 0.0]), st.floats(-120.0, 120.0))


@st.composite
def loss_inputs(draw):
    shape = draw(shapes)
    n = math.prod(shape)
    as_logits = draw(st.booleans())
    pred = torch.tensor(draw(st.lists(logit if as_logits else unit, min_size=n, max_size=n))).view(shape)
    target = torch.tensor(draw(st.lists(unit, min_size=n, max_size=n))).view(shape)
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.bfloat16, torch.float16]))
    return pred.to(dtype), target.to(dtype), as_logits


@settings(max_examples=150, **SETTINGS)
@given(loss_inputs(), st.floats(0.0, 1.0), st.floats(0.0, 10.0), st.floats(0.0, 10.0))
def test_vfl_qfl_finite_nonnegative_with_finite_gradients(inputs, alpha, gamma, beta):
    pred, target, as_logits = inputs
    for fn in (lambda x: varifocal_loss(x, target, alpha, gamma, logits=as_logits),
               lambda x: quality_focal_loss(x, target, beta, logits=as_logits)):
        x = pred.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=pred.dtype == torch.bfloat16):
            out = fn(x)
        out.sum().backward()
        assert out.shape == pred.shape and out.dtype == torch.float32
        assert torch.isfinite(out).all() and (out >= 0).all(), (pred, target, out)
        if as_logits or pred.dtype != torch.float16:
            assert finite_grad(x), (pred, target, x.grad)
        # float16 *probabilities* exactly at 0 or 1 against another target: the true gradient is unbounded (-y/p) and
        # PyTorch's BCE caps it at 1e12, past float16's 65504. The criterion never hands the loss half probabilities
        # (J = sigmoid(C) x I is formed in float32, and DGQP's I is float32: see the saturated-quality test below).


@settings(max_examples=150, **SETTINGS)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 10.0))
def test_qfl_is_minimal_at_sigma_equals_y_and_grows_away_from_it(y, s1, s2, beta):
    """QFL(sigma; y) = |y - sigma|^beta * BCE(sigma, y): both factors shrink as sigma nears y, so the loss is minimal
    at sigma = y (0 there for beta > 0) and does not decrease as sigma moves away from y on either side."""
    yt = torch.tensor([y], dtype=torch.float64)
    at_y = quality_focal_loss(yt, yt, beta, logits=False).item()
    s1, s2 = (float(torch.tensor(s, dtype=torch.float32)) for s in (s1, s2))  # the sigmas the loss sees
    lo, hi = sorted((s1, s2))
    near, far = (hi, lo) if hi <= y else (lo, hi)  # on the same side of y, near lies between far and y
    same_side = hi <= y or lo >= y
    l_near = quality_focal_loss(torch.tensor([near]), yt.float(), beta, logits=False).item()
    l_far = quality_focal_loss(torch.tensor([far]), yt.float(), beta, logits=False).item()
    tol = 1e-5 * (1 + abs(l_far))
    assert at_y <= l_near + tol and at_y <= l_far + tol
    if beta > 0:
        assert at_y == 0.0
    if same_side:
        assert l_near <= l_far + tol, (y, near, far, beta, l_near, l_far)


@settings(max_examples=100, **SETTINGS)
@given(st.floats(0.01, 0.99), st.floats(0.0, 10.0), st.floats(0.05, 3.0))
def test_qfl_gradient_on_logits_points_to_target(y, beta, delta):
    """On logits, gradient descent moves sigma(z) towards y from either side: dQFL/dz < 0 below logit(y), > 0 above."""
    centre = math.log(y / (1 - y))
    z = torch.tensor([centre - delta, centre + delta]).requires_grad_(True)
    quality_focal_loss(z, torch.tensor([y, y]), beta).sum().backward()
    assert z.grad[0] < 0 < z.grad[1], (y, beta, delta, z.grad)


@st.composite
def dfl_inputs(draw):
    n_bins = draw(st.integers(2, 20))
    rows = draw(st.integers(1, 8))
    target = draw(st.lists(st.one_of(st.floats(0.0, n_bins - 1.0), st.sampled_from([0.0, n_bins - 1.0, n_bins - 1.01])),
                           min_size=rows, max_size=rows))
    logits = draw(st.lists(logit, min_size=rows * n_bins, max_size=rows * n_bins))
    return torch.tensor(logits).view(rows, n_bins), torch.tensor(target)


@settings(max_examples=150, **SETTINGS)
@given(dfl_inputs(), st.sampled_from([torch.float32, torch.bfloat16, torch.float16]))
def test_dfl_finite_nonnegative_with_finite_gradients(inputs, dtype):
    logits, target = inputs
    x = logits.to(dtype).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        out = distribution_focal_loss(x, target.to(dtype))
    out.sum().backward()
    assert out.dtype == torch.float32 and torch.isfinite(out).all() and (out >= -1e-5).all()
    assert finite_grad(x)


def binary_entropy(w: torch.Tensor) -> torch.Tensor:
    return -(torch.xlogy(w, w) + torch.xlogy(1 - w, 1 - w))


@settings(max_examples=150, **SETTINGS)
@given(dfl_inputs())
def test_dfl_minimal_at_two_bin_split(inputs):
    """GFL Eq. 6: DFL is minimal for the distribution with mass y_r - y on y_l and y - y_l on y_r (whose integral is
    y); the minimum is that split's binary entropy, and any other distribution scores at least as much (Gibbs)."""
    logits, target = inputs
    rows, n_bins = logits.shape
    target = target.double().clamp(0, n_bins - 1)
    left = target.floor().clamp(max=n_bins - 2)
    w_right = target - left
    best = torch.zeros(rows, n_bins, dtype=torch.float64)
    best.scatter_(1, left.long()[:, None], (1 - w_right)[:, None])
    best.scatter_(1, left.long()[:, None] + 1, w_right[:, None])
    torch.testing.assert_close((best * torch.arange(n_bins)).sum(1), target)  # its integral is y
    best_logits = best.clamp_min(1e-30).log()  # -69 where a bin has no mass
    at_best = distribution_focal_loss(best_logits, target)
    torch.testing.assert_close(at_best.double(), binary_entropy(w_right), atol=1e-5, rtol=1e-5)
    assert (distribution_focal_loss(logits, target) >= at_best - 1e-4).all()
    x = best_logits.float().requires_grad_(True)
    distribution_focal_loss(x, target.float()).sum().backward()
    assert x.grad.abs().max() < 1e-4  # stationary there


# ---------------------------------------------------------------------------------------------------------------------
# Assigners: TAL (as GFLDetectionLoss builds it) and ATSS on the same inputs
# ---------------------------------------------------------------------------------------------------------------------


def anchor_layout(img=IMG, strides=(8, 16, 32)):
    feats = [torch.zeros(1, 1, img // s, img // s) for s in strides]
    anchors, stride_tensor = make_anchors(feats, torch.tensor(strides, dtype=torch.float32), 0.5)
    return anchors * stride_tensor, stride_tensor  # anchor centres in px


def assigners(nc=3):
    tal = TaskAlignedAssigner(topk=10, num_classes=nc, alpha=0.5, beta=6.0, stride=[8, 16, 32])
    atss = ATSSAssigner(nc, topk=9)
    return {"tal": tal, "atss": atss}


def run_assigner(name, assigner, scores, pred_boxes, centres, strides, labels, boxes, mask):
    extra = {"stride_tensor": strides} if name == "atss" else {}
    return assigner(scores, pred_boxes, centres, labels, boxes, mask, **extra)


def check_assignment(out, boxes, mask, nc):
    target_labels, target_bboxes, target_scores, fg, gt_idx = out
    assert torch.isfinite(target_bboxes).all() and torch.isfinite(target_scores).all()
    assert (target_scores >= 0).all() and (target_scores <= 1 + 1e-6).all()
    assert ((target_labels >= 0) & (target_labels <= nc)).all()
    if boxes.shape[1]:
        # every positive points at a real (unpadded) GT and carries its box
        b_idx = torch.arange(boxes.shape[0])[:, None].expand_as(gt_idx)
        assert mask[b_idx[fg], gt_idx[fg], 0].all()
        torch.testing.assert_close(target_bboxes[fg], boxes[b_idx[fg], gt_idx[fg]].to(target_bboxes.dtype))
    return fg


EDGE_GTS = {  # xyxy px in a 64 px image
    "smaller_than_stride": [[29.0, 29.0, 31.0, 31.0]],  # 2 px, contains no anchor centre of any level
    "smaller_than_stride_on_centre": [[27.0, 27.0, 29.5, 29.5]],  # 2.5 px around the stride-8 centre (28, 28)
    "whole_image": [[0.0, 0.0, 64.0, 64.0]],
    "zero_area": [[20.0, 20.0, 20.0, 40.0], [30.0, 30.0, 30.0, 30.0]],
    "duplicates": [[10.0, 10.0, 50.0, 40.0]] * 3,
    "beyond_image": [[-20.0, -20.0, 90.0, 90.0]],
}


@pytest.mark.parametrize("case", list(EDGE_GTS))
@pytest.mark.parametrize("scores_at", [0.0, 0.5, 1.0])
def test_assigners_on_edge_gts(case, scores_at):
    centres, strides = anchor_layout()
    a, nc = len(centres), 3
    boxes = torch.tensor([EDGE_GTS[case]])
    n = boxes.shape[1]
    labels, mask = torch.zeros(1, n, 1), (boxes.sum(-1, keepdim=True) > 0).float()
    scores = torch.full((1, a, nc), scores_at)  # probabilities exactly 0 / 1 too
    pred_boxes = torch.cat((centres - 4, centres + 4), -1)[None]
    for name, assigner in assigners(nc).items():
        fg = check_assignment(run_assigner(name, assigner, scores, pred_boxes, centres, strides, labels, boxes, mask),
                              boxes, mask, nc)
        if case == "whole_image":
            assert fg.any(), name  # a GT covering the image always gets positives
        if case == "smaller_than_stride" and name == "atss":
            assert not fg.any()  # documented ATSS behaviour: no centre inside -> no positive (all anchors negative)


@pytest.mark.parametrize("name", ["tal", "atss"])
def test_assigners_without_any_gt(name):
    centres, strides = anchor_layout()
    assigner = assigners()[name]
    for n in (0, 2):  # no GT slot at all, or only padding
        boxes, labels, mask = torch.zeros(2, n, 4), torch.zeros(2, n, 1), torch.zeros(2, n, 1)
        out = run_assigner(name, assigner, torch.rand(2, len(centres), 3), torch.rand(2, len(centres), 4) * 64,
                           centres, strides, labels, boxes, mask)
        assert not check_assignment(out, boxes, mask, 3).any()


@st.composite
def assigner_batches(draw):
    b = draw(st.integers(1, 3))
    n = draw(st.integers(0, 6))
    raw = draw(st.lists(st.tuples(*[st.floats(-10.0, 74.0)] * 4), min_size=b * n, max_size=b * n))
    boxes = torch.tensor(raw, dtype=torch.float32).view(b, n, 4) if n else torch.zeros(b, 0, 4)
    boxes = torch.cat((torch.minimum(boxes[..., :2], boxes[..., 2:]), torch.maximum(boxes[..., :2], boxes[..., 2:])), -1)
    boxes = boxes.clamp(0, 64)  # as the dataloader clips; zero-area boxes stay possible
    # real GTs first, padding after, as v8DetectionLoss.preprocess packs them (TAL relies on it: with all scores 0 it
    # hands positives of duplicate GTs to GT index 0)
    counts = draw(st.lists(st.integers(0, n), min_size=b, max_size=b))
    keep = (torch.arange(n)[None, :] < torch.tensor(counts)[:, None]).view(b, n, 1)
    mask = (keep & (boxes.sum(-1, keepdim=True) > 0)).float()
    boxes = boxes * mask
    score_mode = draw(st.sampled_from(["zeros", "ones", "random"]))
    return boxes, mask, score_mode


@settings(max_examples=60, **SETTINGS)
@given(assigner_batches(), st.integers(0, 2**16))
def test_assigners_properties_on_random_gts(batch, seed):
    boxes, mask, score_mode = batch
    g = torch.Generator().manual_seed(seed)
    centres, strides = anchor_layout()
    b, n, a, nc = boxes.shape[0], boxes.shape[1], len(centres), 3
    labels = torch.randint(0, nc, (b, n, 1), generator=g).float()
    scores = {"zeros": torch.zeros(b, a, nc), "ones": torch.ones(b, a, nc),
              "random": torch.rand(b, a, nc, generator=g)}[score_mode]
    wh = torch.rand(b, a, 2, generator=g) * 40
    pred_boxes = torch.cat((centres - wh, centres + wh), -1)
    for name, assigner in assigners(nc).items():
        check_assignment(run_assigner(name, assigner, scores, pred_boxes, centres, strides, labels, boxes, mask),
                         boxes, mask, nc)


# ---------------------------------------------------------------------------------------------------------------------
# GFLDetectionLoss end to end (model forward, assigner, IoU-aware targets, losses, backward)
# ---------------------------------------------------------------------------------------------------------------------

VARIANTS = {  # every classification loss, with and without DGQP, both assigners, both box losses
    "vfl-tal-ciou": dict(cls_loss="vfl"),
    "gfl-tal-giou": dict(cls_loss="qfl", quality=True, box_loss="giou"),
    "vfl-dgqp-atss": dict(cls_loss="vfl", quality=True, assigner="atss", box_loss="giou"),
    "qfl-atss": dict(cls_loss="qfl", assigner="atss"),
    "bce-dgqp-atss": dict(cls_loss="bce", quality=True, assigner="atss", box_loss="giou"),
    "qfl-beta0.5": dict(cls_loss="qfl", qfl_beta=0.5),  # exponents below 1: see the losses._pow fix
    "vfl-gamma0.5": dict(cls_loss="vfl", vfl_gamma=0.5),
}

_MODELS: dict[str, GFLDetectionModel] = {}


def make_model(variant: str) -> GFLDetectionModel:
    if variant not in _MODELS:
        torch.manual_seed(0)
        cfg = load_model_cfg("yolov8n.yaml")
        cfg["gfl"], cfg["nc"] = VARIANTS[variant], 3
        model = GFLDetectionModel(cfg, verbose=False)
        model.args = get_cfg()
        _MODELS[variant] = model
    model = _MODELS[variant]
    model.train().zero_grad()
    return model


def make_batch(xywh, n_images=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    boxes = torch.tensor(xywh, dtype=torch.float32).view(-1, 4)
    return {
        "img": torch.rand(n_images, 3, IMG, IMG, generator=g),
        "batch_idx": (torch.arange(len(boxes)) * n_images // max(len(boxes), 1)).float(),  # sorted, as collated
        "cls": torch.randint(0, 3, (len(boxes), 1), generator=g).float(),
        "bboxes": boxes,
    }


BATCHES = {  # normalised xywh; "degenerate" puts independent faults in one batch (2 images, sorted batch_idx)
    "no_gt": [],
    "degenerate": [[30 / 64, 30 / 64, 2 / 64, 2 / 64],  # smaller than a stride: in no anchor's cell centre
                   [0.3, 0.5, 0.0, 0.3], [0.6, 0.6, 0.0, 0.0],  # zero area
                   [0.5, 0.5, 0.4, 0.3], [0.5, 0.5, 0.4, 0.3], [0.5, 0.5, 0.4, 0.3]],  # duplicates
    "whole_image": [[0.5, 0.5, 1.0, 1.0]],
    "duplicates": [[0.5, 0.5, 0.4, 0.3]] * 4,
    "crowd_300": torch.rand(300, 4, generator=torch.Generator().manual_seed(1)).mul(
        torch.tensor([0.8, 0.8, 0.2, 0.2])).add(torch.tensor([0.1, 0.1, 0.01, 0.01])).tolist(),
}


def loss_and_grads(model, batch, head_logit=None, autocast_dtype=None):
    head = model.model[-1]
    saved = None
    if head_logit is not None:  # drive every class logit to head_logit: sigmoid exactly 0 or 1
        saved = [(s[-1].weight.detach().clone(), s[-1].bias.detach().clone()) for s in head.cv3]
        with torch.no_grad():
            for s in head.cv3:
                s[-1].weight.zero_()
                s[-1].bias.fill_(head_logit)
    try:
        with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
            loss, items = model.loss(batch)
        loss.sum().backward()
    finally:
        if saved is not None:
            with torch.no_grad():
                for s, (w, b) in zip(head.cv3, saved):
                    s[-1].weight.copy_(w)
                    s[-1].bias.copy_(b)
    grads_ok = all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    return loss.detach(), grads_ok


@pytest.mark.parametrize("case", ["no_gt", "degenerate", "whole_image", "crowd_300"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_criterion_edge_batches(variant, case):
    model = make_model(variant)
    loss, grads_ok = loss_and_grads(model, make_batch(BATCHES[case]))
    assert loss.dtype == torch.float32 and torch.isfinite(loss).all() and (loss >= 0).all(), loss
    assert grads_ok
    if case == "no_gt":
        assert loss[0] == 0 and loss[2] == 0 and loss[1] > 0  # nothing to regress; negatives still learn
    if case in ("whole_image", "degenerate", "crowd_300"):
        assert loss[0] > 0 and loss[2] > 0


@pytest.mark.parametrize("head_logit", [-100.0, 100.0])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_criterion_with_saturated_class_logits(variant, head_logit):
    """Class logits at +-100: every sigmoid is exactly 0 or 1 in float32. With all scores 0, TAL's alignment metric is
    0 everywhere, so no anchor is positive (all negative): box and DFL losses are 0, not NaN."""
    model = make_model(variant)
    loss, grads_ok = loss_and_grads(model, make_batch(BATCHES["duplicates"] + BATCHES["whole_image"]), head_logit)
    assert torch.isfinite(loss).all() and (loss >= 0).all() and grads_ok, (loss, grads_ok)
    if head_logit > 0 or VARIANTS[variant].get("assigner") == "atss":
        assert loss[0] > 0  # confident scores (or the prediction-free ATSS) still give positives


@pytest.mark.parametrize("autocast_dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("variant", ["gfl-tal-giou", "vfl-dgqp-atss"])
def test_criterion_under_cpu_autocast(variant, autocast_dtype):
    model = make_model(variant)
    for case in ("no_gt", "degenerate"):  # half convolutions are slow on CPU: two small batches
        loss, grads_ok = loss_and_grads(model, make_batch(BATCHES[case]), autocast_dtype=autocast_dtype)
        assert loss.dtype == torch.float32 and torch.isfinite(loss).all() and (loss >= 0).all() and grads_ok


@pytest.mark.parametrize("autocast_dtype", [None, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("quality_logit", [-100.0, -20.0])
def test_saturated_dgqp_quality_under_autocast(quality_logit, autocast_dtype):
    """DGQP's I at 0: in float16 sigmoid(-20) underflows to exactly 0, so J = 0 at positives whose QFL target is > 0,
    where the BCE gradient is about 1e12. Before DGQP returned I in float32 this overflowed float16 into NaN
    gradients (an AMP run would skip every step); now the gradients stay finite."""
    model = make_model("gfl-tal-giou")
    fc2 = model.model[-1].dgqp.fc2
    saved = fc2.weight.detach().clone(), fc2.bias.detach().clone()
    try:
        with torch.no_grad():
            fc2.weight.zero_()
            fc2.bias.fill_(quality_logit)
        loss, grads_ok = loss_and_grads(model, make_batch(BATCHES["whole_image"] + BATCHES["duplicates"]),
                                        autocast_dtype=autocast_dtype)
    finally:
        with torch.no_grad():
            fc2.weight.copy_(saved[0])
            fc2.bias.copy_(saved[1])
    assert torch.isfinite(loss).all() and loss[0] > 0 and grads_ok, (loss, grads_ok)


def test_dgqp_eval_output_keeps_the_model_dtype():
    model = make_model("gfl-tal-giou")
    half = GFLDetectionModel(load_model_cfg({**model.yaml}), verbose=False).eval().to(torch.bfloat16)
    y = half(torch.rand(1, 3, IMG, IMG).to(torch.bfloat16))[0]
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()


@settings(max_examples=15, **SETTINGS)
@given(
    st.sampled_from(list(VARIANTS)),
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)), max_size=12),
    st.integers(1, 3),
)
def test_criterion_random_gts(variant, raw, n_images):
    """Random GT sets (0-12 per batch, any size incl. zero-area and whole-image), as the dataloader hands them over:
    centre in the image, extent clipped to it."""
    xywh = []
    for x, y, w, h in raw:
        w, h = min(w, 2 * min(x, 1 - x)), min(h, 2 * min(y, 1 - y))  # clipped to the image as Ultralytics does
        xywh.append([x, y, w, h])
    model = make_model(variant)
    loss, grads_ok = loss_and_grads(model, make_batch(xywh, n_images=n_images))
    assert torch.isfinite(loss).all() and (loss >= 0).all() and grads_ok, (variant, xywh, loss)
