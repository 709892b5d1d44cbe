"""The experimental options (kept to reproduce the one-start record's probe rows): each against a hand computation or
a real training, their checks, and the warning they log."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.tal import make_anchors

from yolo_gfl.criterion import GFLDetectionLoss
from yolo_gfl.options import EXPERIMENTAL_OPTIONS, GFLOptionError, validate_options
from yolo_gfl.variant import Variant

from .conftest import TINY_TRAIN
from .conftest import FixedAssigner, make_batch, make_model


class RecordingAssigner(FixedAssigner):
    """FixedAssigner that keeps the scores it was shown."""

    def __call__(self, pd_scores, *args):
        self.seen_scores = pd_scores.detach().clone()
        return super().__call__(pd_scores, *args)


def test_quality_target_iou_against_hand_computation():
    """quality_target=iou: C gets stock's BCE on TAL's target and is what the assigner sees; I alone learns each
    positive's box IoU by BCE, mean over positives, times the cls gain (Wu et al., IVC 2020)."""
    model = make_model(cls_loss="bce", quality=True, quality_target="iou")
    crit = GFLDetectionLoss(model)
    fg_index, labels = torch.tensor([10, 20, 30]), torch.tensor([0, 2, 1])
    gt_boxes = torch.tensor([[8.0, 8.0, 40.0, 40.0], [0.0, 0.0, 64.0, 64.0], [30.0, 20.0, 50.0, 60.0]])
    soft = torch.tensor([0.9, 0.4, 0.7])
    crit.assigner = RecordingAssigner(fg_index, labels, gt_boxes, scores=soft)
    batch = make_batch()
    with torch.no_grad():
        model.model[-1].quality_branch.fc2.bias.fill_(0.3)  # I away from its init so that a wrong target would show
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
    expected = (cls * 0.5 + 0.5 * by_hand) * 2  # cls gain 0.5; times batch size (Ultralytics' contract)
    torch.testing.assert_close(loss[1], expected, rtol=1e-4, atol=1e-6)


def test_quality_knobs_need_the_quality_branch():
    for name, value in [("quality_target", "iou"), ("quality_lr_gain", 10.0), ("quality_input", "features"),
                        ("quality_detach", True)]:
        with pytest.raises(GFLOptionError, match=f"{name}=.*add quality=True"):
            Variant.resolve({name: value})
        # as train-time overrides the model's own quality is not known yet: accepted, checked at the build
        assert validate_options({name: value}, overrides=True)[name] == value
    with pytest.raises(GFLOptionError, match="quality_target"):
        Variant.resolve({"quality": True, "quality_target": "joint_iou"})
    with pytest.raises(GFLOptionError, match="add quality=True"):
        make_model(cls_loss="vfl", quality_target="iou")


def test_experimental_options_are_apart_and_warn(monkeypatch):
    from yolo_gfl import variant as variant_module
    from yolo_gfl.options import OPTIONS

    assert not set(OPTIONS) & set(EXPERIMENTAL_OPTIONS)
    warned = []
    monkeypatch.setattr(variant_module.LOGGER, "warning", warned.append)
    Variant.resolve({"cls_loss": "vfl"})
    assert warned == []
    Variant.resolve({"cls_target_gain": 1.25})
    assert len(warned) == 1 and "experimental" in warned[0] and "cls_target_gain" in warned[0]


@pytest.mark.slow
def test_quality_features_iou_trains_through_the_ultralytics_trainer(coco128_yaml, tmp_path):
    """A real epoch on coco128 with stock-iouconv10-detach's quality branch (box features, decoupled, detached, 10x
    rate): finite losses, I moved, and the checkpoint keeps the variant."""
    from yolo_gfl import YOLOGFL

    model = YOLOGFL("yolov8n-gfl.yaml")
    model.train(data=coco128_yaml, project=str(tmp_path), name="iouq", quality_target="iou",
                quality_input="features", quality_detach=True, quality_lr_gain=10.0, **{**TINY_TRAIN, "val": False})
    losses = model.trainer.tloss  # Ultralytics 8.4: the epoch's mean loss items by name
    losses = torch.as_tensor(list(losses.values()) if isinstance(losses, dict) else losses)
    assert torch.isfinite(losses).all() and (losses > 0).all(), losses
    reloaded = YOLOGFL(str(model.trainer.last))
    v = reloaded.model.variant
    assert (v.quality_target, v.quality_input, v.quality_detach, v.quality_lr_gain) == ("iou", "features", True, 10.0)
    head = reloaded.model.model[-1]
    assert type(head.quality_branch).__name__ == "FeatureQuality" and head.dgqp is head.quality_branch
    start = math.log(0.95 / 0.05)  # the output bias every quality branch starts from
    biases = [v.item() for k, v in head.quality_branch.state_dict().items() if k.endswith("bias") and v.numel() == 1]
    assert biases and any(abs(b - start) > 1e-3 for b in biases), biases


@pytest.mark.slow
def test_quality_lr_gain_gives_the_branch_its_own_faster_groups_in_real_training(coco128_yaml, tmp_path):
    """quality_lr_gain=10 through the Ultralytics trainer: every branch tensor sits in a copy of its Ultralytics group
    whose rate is 10x that group's at every step (warm-up included), and no parameter is lost or doubled."""
    from ultralytics.utils.torch_utils import unwrap_model

    from yolo_gfl import YOLOGFL

    ratios = []

    def record(trainer):
        groups = trainer.optimizer.param_groups
        base = {g["param_group"]: g for g in groups[:3]}
        ratios.extend(g["lr"] / base[g["param_group"]]["lr"] for g in groups[3:] if base[g["param_group"]]["lr"] > 0)

    model = YOLOGFL("yolov8n-gfl.yaml")
    model.add_callback("on_train_batch_end", record)
    model.train(data=coco128_yaml, project=str(tmp_path), name="lr", quality_lr_gain=10.0,
                **{**TINY_TRAIN, "val": False})
    groups = model.trainer.optimizer.param_groups
    net = unwrap_model(model.trainer.model)
    branch = {id(p) for p in net.quality_parameters()}
    # DGQP has weights with decay and biases (no norm layer): two faster copies of those two groups
    assert len(groups) == 5 and all(id(p) in branch for g in groups[3:] for p in g["params"])
    assert not any(id(p) in branch for g in groups[:3] for p in g["params"])
    assert sorted(g["param_group"] for g in groups[3:]) == ["bias", "weight"]
    for g in groups[3:]:
        (twin,) = [b for b in groups[:3] if b["param_group"] == g["param_group"]]
        assert g["weight_decay"] == twin["weight_decay"] and g["initial_lr"] == pytest.approx(10 * twin["initial_lr"])
    counted = [id(p) for g in groups for p in g["params"]]
    assert len(counted) == len(set(counted)) == len(list(net.parameters()))
    assert ratios and all(r == pytest.approx(10.0) for r in ratios)


@pytest.mark.parametrize("optimizer", ["SGD", "AdamW", "MuSGD"])
def test_quality_lr_gain_with_each_optimizer(optimizer):
    """The branch's groups are split out of whatever groups the optimizer has (MuSGD has its own groups)."""
    from ultralytics.cfg import get_cfg

    from yolo_gfl.engine.trainer import GFLTrainer

    model = make_model(quality=True, quality_lr_gain=10.0)
    trainer = GFLTrainer.__new__(GFLTrainer)  # only build_optimizer's inputs: the arguments and the class count
    trainer.args, trainer.data = get_cfg(), {"nc": 3}
    opt = trainer.build_optimizer(model, name=optimizer, lr=0.01, iterations=20000)
    branch = {id(p) for p in model.quality_parameters()}
    fast = [g for g in opt.param_groups if any(id(p) in branch for p in g["params"])]
    assert fast and all(id(p) in branch for g in fast for p in g["params"])
    assert all(g["lr"] == pytest.approx(0.1) for g in fast)  # 10 x the base rate
    counted = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(counted) == len(set(counted)) == len(list(model.parameters()))


@pytest.mark.parametrize("gain", [1.0, 1.25])
def test_cls_target_gain_reshapes_the_soft_targets_but_not_the_divisor(gain):
    """BCE towards min(gain x t, 1) at the positives, divided by the sum of the plain TAL targets t: 0.36 and 0.81
    become 0.45 and 1 (capped) at 1.25."""
    logits = torch.tensor([[[0.5, -1.0], [2.0, 0.0], [-0.5, 1.5]]])  # (1, 3 anchors, 2 classes)
    soft = torch.tensor([[[0.36, 0.0], [0.0, 0.0], [0.0, 0.81]]])  # TAL targets at two positives; sum 1.17
    fg = torch.tensor([[True, False, True]])
    crit = GFLDetectionLoss(make_model(cls_loss="bce", cls_target_gain=gain))
    got = crit.class_term(logits, True, soft, torch.zeros_like(soft), fg)

    def bce(x, t):
        p = 1 / (1 + math.exp(-x))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    targets = [[min(gain * 0.36, 1.0), 0.0], [0.0, 0.0], [0.0, min(gain * 0.81, 1.0)]]
    by_hand = sum(bce(x, t) for row, trow in zip(logits[0].tolist(), targets) for x, t in zip(row, trow)) / 1.17
    assert got.item() == pytest.approx(by_hand, rel=1e-5)
    assert crit.stock is (gain == 1.0)  # with the gain, yolo_gfl's path; without it, Ultralytics' own


def test_cls_target_gain_needs_tal_targets():
    with pytest.raises(GFLOptionError, match="cls_target_gain=1.1 .*use cls_loss=bce"):
        Variant.resolve({"cls_loss": "qfl", "cls_target_gain": 1.1})
    with pytest.raises(GFLOptionError, match="cls_target_gain"):
        Variant.resolve({"cls_target_gain": 3.0})
    assert Variant.resolve({"cls_target_gain": 1.1}).cls_target_gain == 1.1


BENCHMARK_CONFIGS = sorted((Path(__file__).parents[1] / "benchmarks" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", BENCHMARK_CONFIGS, ids=lambda p: p.stem)
def test_every_benchmark_config_loads_with_valid_options(path):
    """A probe with a misspelt option would only fail after the benchmark had started training it."""
    from yolo_gfl.configs import load_model_cfg

    cfg = load_model_cfg(path)
    assert cfg["backbone"] and cfg["head"], f"{path.name}: no architecture (base: missing?)"
    assert not Variant.resolve(cfg.get("gfl")).is_stock
