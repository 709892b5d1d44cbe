"""The training-recipe options (issue: detect better than stock on real data): each against a hand computation, the
ATSS warm-up switching in a real training, and their checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.tal import bbox2dist, make_anchors

from yolo_gfl.assigners import ATSSAssigner
from yolo_gfl.criterion import GFLDetectionLoss
from yolo_gfl.losses import distribution_focal_loss, quality_focal_loss, varifocal_loss
from yolo_gfl.options import GFLOptionError, validate_options

from .conftest import TINY_TRAIN
from .test_criterion import FixedAssigner, make_batch
from .test_criterion import make_model as make_model_nc3


def make_model(nc_: int = 3, **options):
    """test_criterion's tiny yolov8n with ``nc_`` classes."""
    if nc_ == 3:
        return make_model_nc3(**options)
    from ultralytics.cfg import get_cfg

    from yolo_gfl.configs import load_model_cfg
    from yolo_gfl.nn import GFLDetectionModel

    torch.manual_seed(0)
    cfg = load_model_cfg("yolov8n.yaml")
    cfg["gfl"], cfg["nc"] = options, nc_
    model = GFLDetectionModel(cfg, verbose=False)
    model.args = get_cfg()
    return model


@pytest.mark.parametrize("cls_loss,weight", [("vfl", 1.0), ("qfl", 1.0), ("vfl", 0.5)])
def test_fg_neg_bce_replaces_the_other_classes_at_positives(cls_loss, weight):
    """fg_neg=bce: at a positive anchor every class but its own gets weight x BCE towards 0; all else as before."""
    torch.manual_seed(2)
    logits = torch.randn(2, 30, 4)
    fg = torch.zeros(2, 30, dtype=torch.bool)
    fg[0, [1, 5]] = True
    fg[1, [7]] = True
    labels = torch.zeros(2, 30, dtype=torch.long)
    labels[0, 1], labels[0, 5], labels[1, 7] = 3, 0, 2
    target = torch.zeros(2, 30, 4)
    target[0, 1, 3], target[0, 5, 0], target[1, 7, 2] = 0.8, 0.6, 0.9  # IoUs at their own classes; sum 2.3

    fn = varifocal_loss if cls_loss == "vfl" else quality_focal_loss
    elem = fn(logits, target, logits=True)
    for b, a, own in ((0, 1, 3), (0, 5, 0), (1, 7, 2)):  # by hand: softplus(x) = -log(1 - sigmoid(x))
        for c in range(4):
            if c != own:
                elem[b, a, c] = weight * -torch.log1p(-torch.sigmoid(logits[b, a, c]))
    crit = GFLDetectionLoss(make_model(cls_loss=cls_loss, cls_norm="sum", fg_neg="bce", fg_neg_weight=weight, nc_=4))
    got = crit.classification_term(logits, True, torch.zeros_like(target), target, fg, labels)
    torch.testing.assert_close(got, elem.sum() / 2.3)
    # with the focal default nothing changes, and a background anchor keeps the focal weight under fg_neg=bce
    plain = GFLDetectionLoss(make_model(cls_loss=cls_loss, cls_norm="sum", nc_=4))
    torch.testing.assert_close(plain.classification_term(logits, True, torch.zeros_like(target), target, fg, labels),
                               fn(logits, target, logits=True).sum() / 2.3)
    assert elem[0, 0].tolist() == fn(logits, target, logits=True)[0, 0].tolist()


def test_fg_neg_bce_on_probabilities_with_dgqp():
    """With DGQP the class loss sees probabilities J: the BCE term is -log(1 - J)."""
    torch.manual_seed(3)
    prob = torch.rand(1, 10, 3) * 0.9
    fg = torch.zeros(1, 10, dtype=torch.bool)
    fg[0, 4] = True
    labels = torch.zeros(1, 10, dtype=torch.long)
    labels[0, 4] = 1
    target = torch.zeros(1, 10, 3)
    target[0, 4, 1] = 0.7
    elem = quality_focal_loss(prob, target, logits=False)
    elem[0, 4, 0], elem[0, 4, 2] = -torch.log1p(-prob[0, 4, 0]), -torch.log1p(-prob[0, 4, 2])
    crit = GFLDetectionLoss(make_model(cls_loss="qfl", dgqp=True, fg_neg="bce"))
    got = crit.classification_term(prob, False, torch.zeros_like(target), target, fg, labels)
    torch.testing.assert_close(got, elem.sum() / 1.0)  # one positive: cls_norm=pos divides by 1


@pytest.mark.parametrize("box_weight", ["iou", "target", "score"])
def test_box_weight_and_gains_against_hand_computation(box_weight):
    model = make_model(cls_loss="vfl", cls_target="tal", cls_norm="sum", box_loss="giou", box_weight=box_weight,
                       box_gain=0.5, dfl_gain=0.25, cls_gain=2.0)
    crit = GFLDetectionLoss(model)
    fg_index, labels = torch.tensor([10, 20, 30]), torch.tensor([0, 2, 1])
    gt_boxes = torch.tensor([[8.0, 8.0, 40.0, 40.0], [0.0, 0.0, 64.0, 64.0], [30.0, 20.0, 50.0, 60.0]])  # pixels
    tal = torch.tensor([0.9, 0.3, 0.6])  # the assigner's soft targets; sum 1.8
    crit.assigner = FixedAssigner(fg_index, labels, gt_boxes, tal)
    batch = make_batch()
    preds = model(batch["img"])
    loss, _ = crit(preds, batch)

    anchors, strides = make_anchors(preds["feats"], model.stride, 0.5)
    dist = preds["boxes"].permute(0, 2, 1)
    pred_box = crit.bbox_decode(anchors, dist)[0, fg_index]
    gt_grid = gt_boxes / strides[fg_index]
    iou = bbox_iou(pred_box.detach(), gt_grid, xywh=False).squeeze(-1).clamp(0)
    logits = preds["scores"].permute(0, 2, 1)
    weight = {"iou": iou, "target": tal, "score": logits[0, fg_index].detach().sigmoid().max(-1).values}[box_weight]
    target = torch.zeros_like(logits)
    target[0, fg_index, labels] = tal
    cls = varifocal_loss(logits, target, logits=True).sum() / 1.8
    giou = bbox_iou(pred_box, gt_grid, xywh=False, GIoU=True).squeeze(-1)
    box = ((1 - giou) * weight).sum() / weight.sum().clamp(min=1)
    ltrb = bbox2dist(anchors[fg_index], gt_grid, 15)
    dfl = distribution_focal_loss(dist[0, fg_index].reshape(-1, 16), ltrb.reshape(-1)).view(-1, 4).mean(-1)
    dfl = (dfl * weight).sum() / weight.sum().clamp(min=1)
    expected = torch.stack([box * 7.5 * 0.5, cls * 0.5 * 2.0, dfl * 1.5 * 0.25]) * 2  # gains x batch size
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-6)


def test_atss_warmup_assigner_switches_by_epoch():
    model = make_model(cls_loss="vfl", atss_epochs=2, atss_anchor_scale=8.0)
    crit = model.init_criterion()
    assert isinstance(crit.warmup_assigner, ATSSAssigner) and crit.warmup_assigner.anchor_scale == 8.0
    names = []
    for epoch in range(4):
        crit.epoch = epoch
        loss, _ = crit(model(make_batch()["img"]), make_batch())
        assert torch.isfinite(loss).all()
        names.append(crit.assigner_in_use)
    assert names == ["atss", "atss", "tal", "tal"]
    model.gfl_epoch = 3  # a criterion built lazily in a resumed run starts at the model's epoch
    assert model.init_criterion().current_assigner()[1] == "tal"


def test_recipe_option_checks():
    with pytest.raises(GFLOptionError, match="atss_epochs=4 .*assigner='atss'"):
        validate_options({"atss_epochs": 4, "assigner": "atss"})
    with pytest.raises(GFLOptionError, match="box_weight='max' is not valid: expected iou | target | score"):
        validate_options({"box_weight": "max"})
    with pytest.raises(GFLOptionError, match="fg_neg"):
        validate_options({"fg_neg": "ce"})
    with pytest.raises(GFLOptionError, match="fg_neg_weight"):
        validate_options({"fg_neg_weight": -1})
    assert validate_options({"atss_epochs": "3"})["atss_epochs"] == 3


def test_stock_loss_only_when_no_recipe_knob_is_set():
    assert GFLDetectionLoss(make_model(cls_loss="bce")).is_stock_loss(None)
    for knob in ({"box_gain": 0.5}, {"dfl_gain": 2.0}, {"atss_epochs": 1}, {"box_weight": "score"}):
        assert not GFLDetectionLoss(make_model(cls_loss="bce", **knob)).is_stock_loss(None), knob


@pytest.mark.slow
def test_atss_warmup_switches_at_the_planned_epoch_in_real_training(coco128_yaml, tmp_path):
    """Two real epochs through the Ultralytics trainer with atss_epochs=1: epoch 1 assigns with ATSS, epoch 2 with TAL."""
    from ultralytics.utils.torch_utils import unwrap_model

    from yolo_gfl import YOLOGFL

    seen: dict[int, set] = {}

    def record(trainer):
        crit = unwrap_model(trainer.model).criterion
        seen.setdefault(trainer.epoch, set()).add(crit.assigner_in_use)

    model = YOLOGFL("yolov8n-vfl.yaml")
    model.add_callback("on_train_batch_end", record)
    model.train(data=coco128_yaml, project=str(tmp_path), name="warm", atss_epochs=1,
                **{**TINY_TRAIN, "epochs": 2, "val": False})
    assert seen == {0: {"atss"}, 1: {"tal"}}


def test_fg_neg_bce_inbox_also_covers_negative_anchors_inside_objects():
    """bce_inbox: every class of a negative anchor inside an object gets BCE too; positives as with fg_neg=bce."""
    torch.manual_seed(4)
    logits = torch.randn(1, 6, 3)
    fg = torch.tensor([[True, False, False, False, False, False]])
    inbox = torch.tensor([[True, True, False, True, False, False]])  # anchor 0 is the positive; 1 and 3 in-box negatives
    labels = torch.zeros(1, 6, dtype=torch.long)
    labels[0, 0] = 2
    target = torch.zeros(1, 6, 3)
    target[0, 0, 2] = 0.5
    elem = varifocal_loss(logits, target, logits=True)
    softplus = -torch.log1p(-torch.sigmoid(logits))
    elem[0, 0, :2] = softplus[0, 0, :2]
    elem[0, 1], elem[0, 3] = softplus[0, 1], softplus[0, 3]
    crit = GFLDetectionLoss(make_model(cls_loss="vfl", cls_norm="sum", fg_neg="bce_inbox"))
    got = crit.classification_term(logits, True, torch.zeros_like(target), target, fg, labels, inbox)
    torch.testing.assert_close(got, elem.sum() / 1.0)


def test_inside_objects_marks_anchor_centres_inside_boxes():
    model = make_model(cls_loss="vfl", fg_neg="bce_inbox")
    crit = GFLDetectionLoss(model)
    batch = make_batch()
    preds = model(batch["img"])
    anchors, strides = make_anchors(preds["feats"], model.stride, 0.5)
    inbox = crit.inside_objects(anchors, strides, *crit.ground_truth(preds, batch, 2)[1:])
    centres = anchors * strides  # pixels of the 64 px image
    # image 1 holds one object, normalised xywh (0.5, 0.5, 0.8, 0.6) -> xyxy (6.4, 12.8, 57.6, 51.2) px
    x, y = centres[:, 0], centres[:, 1]
    expected = (x > 6.4) & (x < 57.6) & (y > 12.8) & (y < 51.2)
    assert torch.equal(inbox[1], expected) and expected.any() and not expected.all()
    loss, _ = model.loss(batch)
    assert torch.isfinite(loss).all()


class RecordingAssigner(FixedAssigner):
    """FixedAssigner that keeps the scores it was shown."""

    def __call__(self, pd_scores, *args):
        self.seen_scores = pd_scores.detach().clone()
        return super().__call__(pd_scores, *args)


@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_dgqp_target_iou_against_hand_computation(gain):
    """dgqp_target=iou: C gets the loss it gets without DGQP (stock's BCE on TAL's target here) and is what the assigner
    sees; I alone learns each positive's box IoU by BCE, mean over positives, times cls gain x dgqp_gain."""
    options = dict(cls_loss="qfl", qfl_beta=0.0, cls_target="tal", cls_norm="sum", box_weight="target")
    model = make_model(dgqp=True, dgqp_target="iou", dgqp_gain=gain, **options)
    crit = GFLDetectionLoss(model)
    fg_index, labels = torch.tensor([10, 20, 30]), torch.tensor([0, 2, 1])
    gt_boxes = torch.tensor([[8.0, 8.0, 40.0, 40.0], [0.0, 0.0, 64.0, 64.0], [30.0, 20.0, 50.0, 60.0]])
    soft = torch.tensor([0.9, 0.4, 0.7])
    crit.assigner = RecordingAssigner(fg_index, labels, gt_boxes, scores=soft)
    batch = make_batch()
    with torch.no_grad():
        model.model[-1].dgqp.fc2.bias.fill_(0.3)  # I away from its init so that a wrong target would show
    preds = model(batch["img"])
    loss, _ = crit(preds, batch)

    logits = preds["scores"].permute(0, 2, 1)
    torch.testing.assert_close(crit.assigner.seen_scores, logits.sigmoid().detach())  # C, not C x I
    target = torch.zeros_like(logits)
    target[0, fg_index, labels] = soft
    cls = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum") / soft.sum()
    anchors, strides = make_anchors(preds["feats"], model.stride, 0.5)
    pred_box = crit.bbox_decode(anchors, preds["boxes"].permute(0, 2, 1))[0, fg_index]
    iou = bbox_iou(pred_box.detach(), gt_boxes / strides[fg_index], xywh=False).squeeze(-1).clamp(0, 1)
    quality = preds["quality"][0, 0, fg_index]
    by_hand = -(iou * quality.log() + (1 - iou) * (1 - quality).log()).mean()  # BCE, mean over the 3 positives
    expected = (cls * 0.5 + 0.5 * gain * by_hand) * 2  # cls gain 0.5; times batch size (Ultralytics' contract)
    torch.testing.assert_close(loss[1], expected, rtol=1e-4, atol=1e-6)


def test_dgqp_anchors_inbox_against_hand_computation():
    """dgqp_anchors=inbox: I learns at the positives (their assigned box's IoU) and at every other anchor whose centre
    lies inside an object (its box's largest IoU with such an object), BCE mean over all of them; C's loss unchanged."""
    from yolo_gfl.criterion import inbox_iou_targets

    options = dict(cls_loss="qfl", qfl_beta=0.0, cls_target="tal", cls_norm="sum", box_weight="target", dgqp=True,
                   dgqp_target="iou")
    fg_index, labels = torch.tensor([10, 20, 30]), torch.tensor([0, 2, 1])
    gt_boxes = torch.tensor([[8.0, 8.0, 40.0, 40.0], [0.0, 0.0, 64.0, 64.0], [30.0, 20.0, 50.0, 60.0]])
    soft = torch.tensor([0.9, 0.4, 0.7])
    batch = make_batch()
    losses = {}
    for anchors_option in ("positives", "inbox"):
        model = make_model(dgqp_anchors=anchors_option, **options)
        crit = GFLDetectionLoss(model)
        crit.assigner = RecordingAssigner(fg_index, labels, gt_boxes, scores=soft)
        with torch.no_grad():
            model.model[-1].dgqp.fc2.bias.fill_(0.3)
        preds = model(batch["img"])
        losses[anchors_option] = crit(preds, batch)[0][1]

    anchors, strides = make_anchors(preds["feats"], model.stride, 0.5)
    boxes_px = crit.bbox_decode(anchors, preds["boxes"].permute(0, 2, 1)).detach() * strides  # (2, a, 4)
    centres = anchors * strides  # (a, 2) pixels
    # the batch's objects in pixels (64 px images, normalised xywh in make_batch): image 0 two, image 1 one
    objects = {0: [(0.3, 0.3, 0.4, 0.5), (0.7, 0.6, 0.3, 0.3)], 1: [(0.5, 0.5, 0.8, 0.6)]}
    quality = preds["quality"][:, 0]
    terms = []
    for image in (0, 1):
        xyxy = [torch.tensor([x - w / 2, y - h / 2, x + w / 2, y + h / 2]) * 64 for x, y, w, h in objects[image]]
        for a in range(len(centres)):
            if image == 0 and a in fg_index.tolist():
                gt = gt_boxes[fg_index.tolist().index(a)]
                target = bbox_iou(boxes_px[0, a], gt, xywh=False).clamp(0, 1).item()
            else:
                holding = [box for box in xyxy if (centres[a] > box[:2]).all() and (centres[a] < box[2:]).all()]
                if not holding:
                    continue
                target = max(bbox_iou(boxes_px[image, a], box, xywh=False).clamp(0, 1).item() for box in holding)
            q = quality[image, a]
            terms.append(-(target * q.log() + (1 - target) * (1 - q).log()))
    assert len(terms) > 3 * 4, "the hand example must have in-box anchors beyond the 3 positives"
    by_hand_inbox = torch.stack(terms).mean()
    q_pos = quality[0, fg_index]
    iou_pos = bbox_iou(boxes_px[0, fg_index], gt_boxes, xywh=False).squeeze(-1).clamp(0, 1)
    by_hand_pos = -(iou_pos * q_pos.log() + (1 - iou_pos) * (1 - q_pos).log()).mean()
    # only the quality term differs between the two (cls gain 0.5, dgqp_gain 1, times batch size 2)
    torch.testing.assert_close(losses["inbox"] - losses["positives"], (by_hand_inbox - by_hand_pos) * 0.5 * 2,
                               rtol=1e-4, atol=1e-5)

    # the pure function: an anchor inside two objects takes the larger IoU; outside all, 0
    pred = torch.tensor([[[0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]]])
    gts = torch.tensor([[[0.0, 0.0, 2.0, 4.0], [0.0, 0.0, 2.0, 2.0]]])
    inside = torch.tensor([[[True, False], [True, False]]])
    torch.testing.assert_close(inbox_iou_targets(pred, gts, inside), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(inbox_iou_targets(pred, gts[:, :1], inside[:, :1]), torch.tensor([[0.5, 0.0]]))
    torch.testing.assert_close(inbox_iou_targets(pred, gts[:, :0], inside[:, :0]), torch.zeros(1, 2))


def test_dgqp_target_iou_gain0_is_stock_classification_loss_with_real_assignment():
    """With dgqp_gain=0 the decoupled DGQP leaves C's loss exactly stock's (real TAL assignment on C's scores), and
    the quality loss is what trains I: its gradient reaches DGQP only through the IoU term."""
    options = dict(cls_loss="qfl", qfl_beta=0.0, cls_target="tal", cls_norm="sum", box_weight="target", dgqp=True)
    batch = make_batch()
    stock_model = make_model(**{k: v for k, v in options.items() if k != "dgqp"})
    stock, _ = GFLDetectionLoss(stock_model)(stock_model(batch["img"]), batch)
    grads = {}
    for gain in (0.0, 1.0):
        model = make_model(dgqp_target="iou", dgqp_gain=gain, **options)
        loss, _ = GFLDetectionLoss(model)(model(batch["img"]), batch)
        if gain == 0.0:
            torch.testing.assert_close(loss[1], stock[1])
        loss[1].backward()
        grad = model.model[-1].dgqp.fc2.weight.grad
        grads[gain] = 0.0 if grad is None else grad.abs().sum().item()
    assert grads[0.0] == 0.0 and grads[1.0] > 0


def test_dgqp_target_needs_dgqp():
    with pytest.raises(GFLOptionError, match="dgqp_target='iou' .*add dgqp=True"):
        validate_options({"dgqp_target": "iou"})
    with pytest.raises(GFLOptionError, match="dgqp_target"):
        validate_options({"dgqp": True, "dgqp_target": "joint_iou"})
    assert validate_options({"dgqp": True, "dgqp_target": "iou"})["dgqp_gain"] == 1.0
    with pytest.raises(GFLOptionError, match="dgqp_lr_gain=10.0 .*add dgqp=True"):
        validate_options({"dgqp_lr_gain": 10})
    with pytest.raises(GFLOptionError, match="dgqp_anchors='inbox' .*add dgqp_target=iou"):
        validate_options({"dgqp": True, "dgqp_anchors": "inbox"})
    with pytest.raises(GFLOptionError, match="dgqp_anchors"):
        validate_options({"dgqp": True, "dgqp_target": "iou", "dgqp_anchors": "all"})
    assert validate_options({"dgqp": True, "dgqp_target": "iou", "dgqp_anchors": "inbox"})["dgqp_anchors"] == "inbox"
    # as train-time overrides the model's own dgqp is not known yet: accepted here, checked when the model is built
    assert validate_options({"dgqp_target": "iou"}, overrides=True)["dgqp_target"] == "iou"
    with pytest.raises(GFLOptionError, match="add dgqp=True"):
        validate_options({"dgqp_target": "iou", "dgqp": False}, overrides=True)
    with pytest.raises(GFLOptionError, match="add dgqp=True"):
        make_model(cls_loss="vfl", dgqp_target="iou")


@pytest.mark.slow
@pytest.mark.parametrize("dgqp_input", ["distribution", "features"])
def test_dgqp_target_iou_trains_through_the_ultralytics_trainer(coco128_yaml, tmp_path, dgqp_input):
    """A real epoch on coco128 with the decoupled quality branch (read from the box distributions, or from the box
    features) taught at the in-box anchors: finite losses, I moved, and the checkpoint keeps the options."""
    from yolo_gfl import YOLOGFL

    model = YOLOGFL("yolov8n-gfl.yaml")
    model.train(data=coco128_yaml, project=str(tmp_path), name="iouq", dgqp_target="iou", dgqp_gain=2.0,
                dgqp_anchors="inbox", dgqp_input=dgqp_input, dgqp_lr_gain=10.0, **{**TINY_TRAIN, "val": False})
    losses = model.trainer.tloss  # Ultralytics 8.4: the epoch's mean loss items by name
    losses = torch.as_tensor(list(losses.values()) if isinstance(losses, dict) else losses)
    assert torch.isfinite(losses).all() and (losses > 0).all(), losses
    reloaded = YOLOGFL(str(model.trainer.last))
    assert reloaded.model.gfl_options["dgqp_target"] == "iou" and reloaded.model.gfl_options["dgqp_gain"] == 2.0
    assert reloaded.model.gfl_options["dgqp_anchors"] == "inbox"
    assert reloaded.model.gfl_options["dgqp_input"] == dgqp_input
    head = reloaded.model.model[-1]
    assert type(head.dgqp).__name__ == {"distribution": "DGQP", "features": "FeatureQuality"}[dgqp_input]
    start = math.log(0.95 / 0.05)  # the output bias every quality branch starts from (dgqp_init)
    output_biases = [v.item() for k, v in head.dgqp.state_dict().items() if k.endswith("bias") and v.numel() == 1]
    assert output_biases and any(abs(b - start) > 1e-3 for b in output_biases), output_biases


@pytest.mark.slow
def test_dgqp_lr_gain_gives_dgqp_its_own_faster_groups_in_real_training(coco128_yaml, tmp_path):
    """dgqp_lr_gain=10 through the Ultralytics trainer: every DGQP tensor sits in a copy of its Ultralytics group whose
    rate is 10x that group's at every step (warm-up included), and no parameter is lost or doubled."""
    from ultralytics.utils.torch_utils import unwrap_model

    from yolo_gfl import YOLOGFL

    ratios = []

    def record(trainer):
        groups = trainer.optimizer.param_groups
        base = {g["param_group"]: g for g in groups[:3]}
        ratios.extend(g["lr"] / base[g["param_group"]]["lr"] for g in groups[3:] if base[g["param_group"]]["lr"] > 0)

    model = YOLOGFL("yolov8n-gfl.yaml")
    model.add_callback("on_train_batch_end", record)
    model.train(data=coco128_yaml, project=str(tmp_path), name="lr", dgqp_lr_gain=10.0, **{**TINY_TRAIN, "val": False})
    groups = model.trainer.optimizer.param_groups
    net = unwrap_model(model.trainer.model)
    dgqp = {id(p) for p in net.model[-1].dgqp.parameters()}
    # DGQP has weights with decay and biases (no norm layer): two faster copies of those two groups
    assert len(groups) == 5 and all(id(p) in dgqp for g in groups[3:] for p in g["params"])
    assert not any(id(p) in dgqp for g in groups[:3] for p in g["params"])
    assert sorted(g["param_group"] for g in groups[3:]) == ["bias", "weight"]
    for g in groups[3:]:
        (twin,) = [b for b in groups[:3] if b["param_group"] == g["param_group"]]
        assert g["weight_decay"] == twin["weight_decay"] and g["initial_lr"] == pytest.approx(10 * twin["initial_lr"])
    counted = [id(p) for g in groups for p in g["params"]]
    assert len(counted) == len(set(counted)) == len(list(net.parameters()))
    assert ratios and all(r == pytest.approx(10.0) for r in ratios)


@pytest.mark.parametrize("optimizer", ["SGD", "AdamW", "MuSGD"])
def test_dgqp_lr_gain_with_each_optimizer(optimizer):
    """The DGQP groups are split out of whatever groups the optimizer has (MuSGD has its own muon and fine groups)."""
    from ultralytics.cfg import get_cfg

    from yolo_gfl.engine.trainer import GFLTrainer

    model = make_model(dgqp=True, dgqp_lr_gain=10.0)
    trainer = GFLTrainer.__new__(GFLTrainer)  # only build_optimizer's inputs: the arguments and the class count
    trainer.args, trainer.data = get_cfg(), {"nc": 3}
    opt = trainer.build_optimizer(model, name=optimizer, lr=0.01, iterations=20000)
    dgqp = {id(p) for p in model.model[-1].dgqp.parameters()}
    fast = [g for g in opt.param_groups if any(id(p) in dgqp for p in g["params"])]
    assert fast and all(id(p) in dgqp for g in fast for p in g["params"])
    assert all(g["lr"] == pytest.approx(0.1) for g in fast)  # 10 x the base rate (none of DGQP's is boosted by MuSGD)
    counted = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(counted) == len(set(counted)) == len(list(model.parameters()))


@pytest.mark.parametrize("power,gain", [(1.0, 1.0), (1.0, 1.25), (0.5, 1.0), (0.5, 1.25)])
def test_cls_target_power_and_gain_reshape_the_soft_targets_but_not_the_divisor(power, gain):
    """cls_target_power, then cls_target_gain: BCE (qfl, beta 0) towards min(gain x t^power, 1) at the positives,
    divided by the sum of the plain TAL targets t; power and gain 1 are the plain loss. 0.36 and 0.81 become 0.6 and
    0.9 at power 0.5, and 0.75 and 1 (capped) with the gain 1.25 on top."""
    logits = torch.tensor([[[0.5, -1.0], [2.0, 0.0], [-0.5, 1.5]]])  # (1, 3 anchors, 2 classes)
    soft = torch.tensor([[[0.36, 0.0], [0.0, 0.0], [0.0, 0.81]]])  # TAL targets at two positives; sum 1.17
    fg = torch.tensor([[True, False, True]])
    crit = GFLDetectionLoss(make_model(cls_loss="qfl", qfl_beta=0.0, cls_target="tal", cls_norm="sum",
                                       cls_target_power=power, cls_target_gain=gain))
    got = crit.classification_term(logits, True, soft, torch.zeros_like(soft), fg)

    def bce(x, t):
        p = 1 / (1 + math.exp(-x))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    targets = [[min(gain * 0.36**power, 1.0), 0.0], [0.0, 0.0], [0.0, min(gain * 0.81**power, 1.0)]]
    by_hand = sum(bce(x, t) for row, trow in zip(logits[0].tolist(), targets) for x, t in zip(row, trow)) / 1.17
    assert got.item() == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize("name,value,out_of_range", [("cls_target_gain", 1.1, 3.0), ("cls_target_power", 0.5, 1.5)])
def test_cls_target_reshaping_needs_soft_targets(name, value, out_of_range):
    with pytest.raises(GFLOptionError, match=f"{name}={value} .*cls_target=tal"):
        validate_options({"cls_loss": "qfl", "cls_target": "iou", name: value})
    with pytest.raises(GFLOptionError, match=f"{name}={value} .*cls_loss='bce'"):
        validate_options({"cls_loss": "bce", "cls_target": "tal", name: value})
    with pytest.raises(GFLOptionError, match=name):
        validate_options({"cls_loss": "vfl", "cls_target": "tal", name: out_of_range})
    assert validate_options({"cls_loss": "vfl", "cls_target": "tal", name: value})[name] == value


BENCHMARK_CONFIGS = sorted((Path(__file__).parents[1] / "benchmarks" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", BENCHMARK_CONFIGS, ids=lambda p: p.stem)
def test_every_benchmark_config_loads_with_valid_options(path):
    """A search candidate with a misspelt option would only fail after the benchmark had started training it."""
    from yolo_gfl.configs import load_model_cfg

    cfg = load_model_cfg(path)
    assert cfg["backbone"] and cfg["head"], f"{path.name}: no architecture (base: missing?)"
    validate_options(cfg.get("gfl"))


@pytest.mark.parametrize("alpha,beta", [(0.5, 6.0), (1.0, 2.0), (0.0, 1.0)])
def test_tal_exponents_set_the_soft_targets(alpha, beta):
    """tal_alpha/tal_beta are TOOD's exponents in TAL's metric t = s^alpha x IoU^beta: one 100 px object, ten anchors
    inside it (TAL's top-10 takes them all) whose boxes overlap it by IoU f = 0.1 .. 1.0 with scores s; each soft
    target is t / max(t) x max(IoU) = t / max(t). With alpha 0 and beta 1 it is the IoU itself. The boxes are squares
    centred on the object, so the CIoU that Ultralytics' TAL measures is their IoU."""
    crit = GFLDetectionLoss(make_model(cls_loss="qfl", cls_target="tal", tal_alpha=alpha, tal_beta=beta))
    f = torch.linspace(0.1, 1.0, 10)
    s = torch.tensor([0.9, 0.2, 0.7, 0.4, 0.8, 0.3, 0.6, 0.5, 0.1, 0.35])
    scores = torch.zeros(1, 10, 3)
    scores[0, :, 1] = s
    half = 50.0 * f.sqrt()
    boxes = torch.stack([50 - half, 50 - half, 50 + half, 50 + half], -1)[None]
    anchors = torch.stack([5.0 + 10 * torch.arange(10.0)] * 2, -1)  # centres on the diagonal, all inside the box
    gt_box, gt_label, gt_mask = torch.tensor([[[0.0, 0.0, 100.0, 100.0]]]), torch.ones(1, 1, 1), torch.ones(1, 1, 1)
    _, _, target, fg, _ = crit.assigner(scores, boxes, anchors, gt_label, gt_box, gt_mask)
    t = [si**alpha * fi**beta for si, fi in zip(s.tolist(), f.tolist())]
    assert fg.all()
    assert target[0, :, 1].tolist() == pytest.approx([ti / max(t) for ti in t], rel=1e-4, abs=1e-6)
    assert target[0, :, [0, 2]].abs().sum() == 0
    if (alpha, beta) == (0.0, 1.0):
        assert target[0, :, 1].tolist() == pytest.approx(f.tolist(), rel=1e-4)


@pytest.mark.parametrize("name,value", [("tal_alpha", 1.0), ("tal_beta", 2.0)])
def test_tal_exponents_need_tal(name, value):
    with pytest.raises(GFLOptionError, match=f"{name}={value} .*assigner='atss'"):
        validate_options({"assigner": "atss", name: value})
    assert validate_options({"assigner": "tal", "atss_epochs": 2, name: value})[name] == value
    crit = GFLDetectionLoss(make_model(cls_loss="bce", **{name: value}))
    assert not crit.is_stock_loss(None), "a changed TAL exponent is not Ultralytics' own loss"
    assert GFLDetectionLoss(make_model(cls_loss="bce")).is_stock_loss(None)


def test_clip_gradients_together_and_apart_against_hand_computation():
    """dgqp_clip: Ultralytics clips one norm over every gradient; apart clips the detector's and the branch's each."""
    from yolo_gfl.engine.trainer import clip_gradients

    def grads():
        det, branch = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
        det.grad, branch.grad = torch.tensor([30.0, 40.0]), torch.tensor([120.0])  # norms 50 and 120, together 130
        return det, branch

    det, branch = grads()
    clip_gradients([det, branch], {id(branch)}, "together")
    assert torch.allclose(det.grad, torch.tensor([30.0, 40.0]) * 10 / 130)
    assert torch.allclose(branch.grad, torch.tensor([120.0]) * 10 / 130)
    det, branch = grads()
    clip_gradients([det, branch], {id(branch)}, "apart")
    assert torch.allclose(det.grad, torch.tensor([6.0, 8.0])) and torch.allclose(branch.grad, torch.tensor([10.0]))
    with pytest.raises(GFLOptionError, match="dgqp_clip='apart' .*add dgqp=True"):
        validate_options({"dgqp_clip": "apart"})


@pytest.mark.slow
def test_dgqp_clip_apart_clips_the_detector_on_its_own_in_real_training(coco128_yaml, tmp_path, monkeypatch):
    """A real tiny epoch with dgqp_clip=apart: every optimizer step clips the detector's gradients without the
    branch's (its norm is that of the detector's gradients alone), and the option travels in the checkpoint."""
    from yolo_gfl import YOLOGFL
    from yolo_gfl.engine import trainer as trainer_module

    seen = []
    real = trainer_module.clip_gradients

    def spy(parameters, branch, mode, max_norm=10.0):
        detector = [p.grad for p in parameters if id(p) not in branch and p.grad is not None]
        seen.append((mode, len(branch), torch.linalg.vector_norm(torch.stack([g.norm() for g in detector])).item()))
        real(parameters, branch, mode, max_norm)
        after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters
                                                      if id(p) not in branch and p.grad is not None])).item()
        seen[-1] += (after,)

    monkeypatch.setattr(trainer_module, "clip_gradients", spy)
    model = YOLOGFL("yolov8n-gfl.yaml")
    model.train(data=coco128_yaml, project=str(tmp_path), name="clip", dgqp_clip="apart",
                **{**TINY_TRAIN, "val": False, "nbs": TINY_TRAIN["batch"]})
    assert seen and all(mode == "apart" and n > 0 for mode, n, _, _ in seen)
    # the detector's gradients end at norm min(10, their own norm), whatever the branch's were
    assert all(after == pytest.approx(min(10.0, before), rel=1e-4) for _, _, before, after in seen)
    ckpt = torch.load(tmp_path / "clip" / "weights" / "last.pt", weights_only=False)
    assert ckpt["model"].yaml["gfl"]["dgqp_clip"] == "apart"
