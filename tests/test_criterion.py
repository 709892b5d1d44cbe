"""GFLDetectionLoss: IoU-aware targets, normalisation by positives, quality weighting, stock equivalence, edge cases."""

from __future__ import annotations


import pytest
import torch
from ultralytics.utils.loss import v8DetectionLoss
from ultralytics.utils.metrics import bbox_iou

from yolo_gfl.criterion import GFLDetectionLoss, iou_aware_targets
from yolo_gfl.losses import distribution_focal_loss, quality_focal_loss, varifocal_loss

from .conftest import FixedAssigner, make_batch, make_model


def test_iou_aware_targets_hand_example():
    pred = torch.tensor([[[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 6.0, 6.0]]])
    gt = torch.tensor([[[0.0, 0.0, 2.0, 4.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]])
    labels = torch.tensor([[2, 0, 1]])
    fg = torch.tensor([[True, True, False]])
    target, iou = iou_aware_targets(pred, gt, labels, fg, nc=3)
    expected = torch.tensor([[[0.0, 0.0, 0.5], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])  # IoU 4/8 at class 2; 1 at class 0
    torch.testing.assert_close(target, expected)
    torch.testing.assert_close(iou, torch.tensor([[0.5, 1.0, 0.0]]))


def test_bce_variant_is_exactly_stock_loss():
    model = make_model(cls_loss="bce")
    batch = make_batch()
    preds = model(batch["img"])
    ours, ours_items = GFLDetectionLoss(model)(preds, batch)
    stock, stock_items = v8DetectionLoss(model)(preds, batch)
    torch.testing.assert_close(ours, stock)


def test_bce_outside_ultralytics_path_is_stock_loss_to_float_rounding():
    """cls_loss=bce is Ultralytics' loss (soft BCE on TAL's target over its sum, box and DFL weighted by that target).
    Run through yolo_gfl's own composed path (the path -gfl and the probes take, here with the quality branch off),
    the three items and every gradient agree with v8DetectionLoss to float rounding; a real difference in the loss (a
    divisor, a weight, a clamp) would fail here."""
    model = make_model(cls_loss="bce")
    batch = make_batch()
    with torch.no_grad():  # a 64 px batch has few positives; many objects at several scales exercise every term
        batch["batch_idx"] = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0])
        batch["cls"] = torch.tensor([[0.0], [2.0], [1.0], [1.0], [0.0]])
        batch["bboxes"] = torch.tensor([[0.3, 0.3, 0.4, 0.5], [0.7, 0.6, 0.3, 0.3], [0.5, 0.5, 0.9, 0.8],
                                        [0.5, 0.5, 0.8, 0.6], [0.2, 0.8, 0.15, 0.2]])
    ours = GFLDetectionLoss(model)
    assert ours.stock  # decided once: Ultralytics' own loss computes this variant
    ours.stock = False  # force yolo_gfl's composed path
    grads, losses = {}, {}
    for name, criterion in (("ours", ours), ("stock", v8DetectionLoss(model))):
        model.zero_grad()
        loss, _ = criterion(model(batch["img"]), batch)
        loss.sum().backward()
        losses[name] = loss.detach()
        grads[name] = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    assert all(losses["stock"] > 0)
    torch.testing.assert_close(losses["ours"], losses["stock"], rtol=1e-6, atol=0)
    flat = {k: torch.cat([g.flatten() for g in v]) for k, v in grads.items()}
    rel = (flat["ours"] - flat["stock"]).norm() / flat["stock"].norm()
    assert rel < 1e-5, f"gradients differ by {rel:.2e} relative: more than float rounding"


@pytest.mark.parametrize("cls_loss,quality,cls_norm", [("vfl", False, "pos"), ("qfl", False, "pos"), ("qfl", True, "pos"),
                                                    ("vfl", True, "pos"), ("qfl", True, "sum"), ("vfl", False, "sum")])
def test_loss_arithmetic_against_hand_computation(cls_loss, quality, cls_norm):
    model = make_model(cls_loss=cls_loss, quality=quality, box_loss="giou", cls_norm=cls_norm)
    crit = GFLDetectionLoss(model)
    fg_index = torch.tensor([10, 20, 30])
    gt_boxes = torch.tensor([[8.0, 8.0, 40.0, 40.0], [0.0, 0.0, 64.0, 64.0], [30.0, 20.0, 50.0, 60.0]])  # pixels
    crit.assigner = FixedAssigner(fg_index, torch.tensor([0, 2, 1]), gt_boxes)
    batch = make_batch()
    preds = model(batch["img"])
    loss, items = crit(preds, batch)

    # by hand, from the raw head outputs
    from ultralytics.utils.tal import bbox2dist, make_anchors

    anchors, strides = make_anchors(preds["feats"], model.stride, 0.5)
    dist = preds["boxes"].permute(0, 2, 1)
    pred_box = crit.bbox_decode(anchors, dist)[0, fg_index]  # stride units
    gt_grid = gt_boxes / strides[fg_index]
    iou = bbox_iou(pred_box.detach(), gt_grid, xywh=False).squeeze(-1).clamp(0)
    target = torch.zeros(preds["scores"].shape[0], preds["scores"].shape[2], 3)
    target[0, fg_index, torch.tensor([0, 2, 1])] = iou
    logits = preds["scores"].permute(0, 2, 1)
    if quality:
        pred, as_logits = logits.sigmoid() * preds["quality"].permute(0, 2, 1), False
    else:
        pred, as_logits = logits, True
    fn = varifocal_loss if cls_loss == "vfl" else quality_focal_loss
    cls = fn(pred, target, logits=as_logits).sum() / (3 if cls_norm == "pos" else iou.sum().clamp(min=1))
    giou = bbox_iou(pred_box, gt_grid, xywh=False, GIoU=True).squeeze(-1)
    weight_sum = iou.sum().clamp(min=1)
    box = ((1 - giou) * iou).sum() / weight_sum
    ltrb = bbox2dist(anchors[fg_index], gt_grid, 15)
    dfl = distribution_focal_loss(dist[0, fg_index].reshape(-1, 16), ltrb.reshape(-1)).view(-1, 4).mean(-1)
    dfl = (dfl * iou).sum() / weight_sum
    expected = torch.stack([box * 7.5, cls * 0.5, dfl * 1.5]) * 2  # gains, times batch size (Ultralytics' contract)
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-6)
    assert set(items) == {"box_loss", "cls_loss", "dfl_loss"}


@pytest.mark.parametrize("cls_loss", ["vfl", "qfl"])
def test_cls_norm_divides_by_positives_or_by_target_sum(cls_loss):
    """cls_norm=pos: the papers' divisor (number of positives); sum: the sum of the targets, clamped at 1."""
    torch.manual_seed(1)
    logits = torch.randn(2, 50, 3)
    fg = torch.zeros(2, 50, dtype=torch.bool)
    fg[0, [3, 7, 9]] = True
    fg[1, [4, 40]] = True  # 5 positives
    iou = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])  # sum 3.5
    target = torch.zeros(2, 50, 3)
    target[fg] = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 1]), 3).float() * iou[:, None]
    fn = varifocal_loss if cls_loss == "vfl" else quality_focal_loss
    total = fn(logits, target, logits=True).sum()
    for cls_norm, divisor in (("pos", 5.0), ("sum", 3.5)):
        crit = GFLDetectionLoss(make_model(cls_loss=cls_loss, cls_norm=cls_norm))
        got = crit.class_term(logits, True, torch.zeros_like(target), target, fg)
        torch.testing.assert_close(got, total / divisor)
    # few, poor positives: the IoU sum 0.3 is clamped at 1 rather than inflating the loss 3x
    small = target * 0.3 / 3.5
    crit = GFLDetectionLoss(make_model(cls_loss=cls_loss, cls_norm="sum"))
    torch.testing.assert_close(crit.class_term(logits, True, torch.zeros_like(small), small, fg),
                               fn(logits, small, logits=True).sum())


@pytest.mark.parametrize("cls_loss,quality", [("vfl", False), ("qfl", False), ("qfl", True)])
def test_real_assignment_gradients_reach_every_branch(cls_loss, quality):
    model = make_model(cls_loss=cls_loss, quality=quality)
    model.train()
    loss, _ = model.loss(make_batch())
    assert torch.isfinite(loss).all() and (loss > 0).all()
    loss.sum().backward()
    head = model.model[-1]
    assert head.cv3[0][-1].weight.grad.abs().sum() > 0 and head.cv2[0][-1].weight.grad.abs().sum() > 0
    if quality:
        assert head.quality_branch.fc2.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("cls_loss,quality", [("vfl", False), ("qfl", True)])
def test_batch_without_objects(cls_loss, quality):
    model = make_model(cls_loss=cls_loss, quality=quality)
    loss, items = model.loss(make_batch(with_boxes=False))
    assert torch.isfinite(loss).all()
    assert loss[0] == 0 and loss[2] == 0 and loss[1] > 0  # nothing to regress; negatives still learn


def test_half_precision_inputs_under_autocast():
    model = make_model(cls_loss="qfl", quality=True)
    batch = make_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = model.loss(batch)
    assert loss.dtype == torch.float32 and torch.isfinite(loss).all()


@pytest.mark.parametrize("cls_loss", ["vfl", "bce"])
def test_atss_assigner_trains_the_loss(cls_loss):
    from yolo_gfl.assigners import ATSSAssigner

    model = make_model(cls_loss=cls_loss, assigner="atss")
    crit = model.init_criterion()
    assert isinstance(crit.assigner, ATSSAssigner)
    loss, _ = crit(model(make_batch()["img"]), make_batch())
    assert torch.isfinite(loss).all() and loss[0] > 0
    loss, _ = crit(model(make_batch(with_boxes=False)["img"]), make_batch(with_boxes=False))
    assert torch.isfinite(loss).all() and loss[0] == 0
