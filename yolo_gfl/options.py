"""The yolo_gfl options: what turns a stock YOLOv8 into an IoU-aware variant, with their checks.

A variant is a stock Ultralytics model YAML plus a ``gfl:`` section, e.g. ``yolov8-qfl.yaml`` is ``yolov8.yaml`` with

    gfl:
      cls_loss: qfl
      dgqp: false
      cls_norm: sum

The same keys can be given as train arguments (``cls_loss=vfl``) and override the YAML. The section travels inside
every checkpoint (``model.yaml``), so validation, prediction, export and resume rebuild the same head and loss.
A model without the section, or whose options are all at their defaults, is stock YOLOv8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["OPTIONS", "GFLOptionError", "validate_options", "split_options", "is_stock", "format_options_help"]


class GFLOptionError(ValueError):
    """A yolo_gfl option has an unknown name or a value outside its allowed set."""


@dataclass(frozen=True)
class Option:
    """One option: its default, type and allowed values (``choices``, or the closed range ``low``..``high``)."""

    default: Any
    kind: type
    help: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None

    def allowed(self) -> str:
        """Describe the allowed values for error messages and help."""
        if self.choices:
            return " | ".join(map(str, self.choices))
        if self.kind is bool:
            return "True | False"
        return f"{self.kind.__name__} in [{self.low}, {self.high}]"


# The options that reshape the assigner's soft targets (cls_target=tal), so need them: checked together below.
SOFT_TARGET_SHAPERS = ("cls_target_gain", "cls_target_power")

# The options of the quality branch (dgqp=True), each with what it does for its error message: checked together below.
QUALITY_BRANCH_OPTIONS = {
    "dgqp_target": "chooses what teaches DGQP's quality I",
    "dgqp_input": "chooses what the quality I is read from",
    "dgqp_detach": "detaches the quality branch's input",
    "quality_power": "is the exponent of the quality I in the score",
    "dgqp_lr_gain": "scales DGQP's learning rate",
    "dgqp_clip": "chooses how the quality branch's gradients are clipped",
}

# The exponents of TAL's alignment metric (TOOD): only the TAL assigner reads them.
TAL_EXPONENTS = ("tal_alpha", "tal_beta")

OPTIONS: dict[str, Option] = {
    "cls_loss": Option(
        "bce",
        str,
        "classification loss: bce (stock Ultralytics, TAL targets), vfl (Varifocal Loss on the IoU-aware score), "
        "qfl (Quality Focal Loss on the IoU-aware score)",
        choices=("bce", "vfl", "qfl"),
    ),
    "dgqp": Option(False, bool, "add GFLv2's Distribution-Guided Quality Predictor: score J = sigmoid(C) x I"),
    "assigner": Option(
        "tal",
        str,
        "label assigner: tal (Ultralytics TaskAlignedAssigner) or atss (Adaptive Training Sample Selection, top-9)",
        choices=("tal", "atss"),
    ),
    "tal_alpha": Option(
        0.5, float, "TAL's exponent of the predicted score in its alignment metric t = s^alpha x IoU^beta, which picks "
        "the positives and, normalised per object to its best IoU, is their soft target (TOOD; Ultralytics: 0.5, "
        "TOOD/PP-YOLOE/YOLOv6: 1.0). Needs assigner=tal", low=0.0, high=4.0,
    ),
    "tal_beta": Option(
        6.0, float, "TAL's exponent of the IoU in its alignment metric (TOOD, Ultralytics: 6.0). Lower lifts the "
        "positives' soft targets towards their object's best IoU; with tal_alpha=0 they follow the IoU's order, and "
        "at beta 1 they are the IoU. Needs assigner=tal", low=0.5, high=12.0,
    ),
    "box_loss": Option(
        "ciou", str, "IoU loss of the box: ciou (Ultralytics) or giou (VarifocalNet, GFL)", choices=("ciou", "giou")
    ),
    "vfl_alpha": Option(0.75, float, "VFL weight of the negatives (VarifocalNet: 0.75)", low=0.0, high=1.0),
    "vfl_gamma": Option(2.0, float, "VFL focusing exponent of the negatives (VarifocalNet: 2.0)", low=0.0, high=10.0),
    "qfl_beta": Option(2.0, float, "QFL focusing exponent (GFL: 2.0)", low=0.0, high=10.0),
    "dgqp_topk": Option(
        4, int, "DGQP: top-k probabilities per box side (GFLv2: 4; at most reg_max=16)", low=1, high=16
    ),
    "dgqp_hidden": Option(64, int, "DGQP: hidden width of its two-layer MLP (GFLv2: 64)", low=1, high=4096),
    "dgqp_init": Option(
        0.95, float, "DGQP: initial quality I of a fresh model, so that J starts near C", low=0.01, high=0.999
    ),
    "dgqp_input": Option(
        "distribution",
        str,
        "what the quality I is read from. distribution (GFLv2's DGQP): the top-k statistics of the four box "
        "distributions; features (the IoU-aware single-stage detector): a 3x3 conv on each level's box-tower feature, "
        "beside the conv that outputs the distributions. Needs dgqp=True",
        choices=("distribution", "features"),
    ),
    "dgqp_detach": Option(
        False, bool, "the quality branch reads a detached input (box distributions or box features), so I's loss "
        "trains the branch alone and the detector learns only from its own losses; GFLv2 and the IoU-aware "
        "single-stage detector let I's loss shape the shared features (False). Needs dgqp=True",
    ),
    "dgqp_target": Option(
        "joint",
        str,
        "DGQP: what teaches I. joint (GFLv2): the classification loss acts on J = sigmoid(C) x I, so C and I share "
        "one target; iou (decoupled, as the IoU-aware single-stage detector and PP-YOLO's IoU-aware branch): C keeps "
        "its own loss and assigner input, and I alone learns each positive's box IoU by BCE (weight dgqp_gain)",
        choices=("joint", "iou"),
    ),
    "dgqp_anchors": Option(
        "positives",
        str,
        "dgqp_target=iou: the anchors where I learns its box's IoU. positives (the IoU-aware single-stage detector): "
        "the assigner's positives; inbox: also every other anchor whose centre lies inside an object, towards its "
        "box's largest IoU with such an object, so that I sees the mediocre boxes it has to rank down",
        choices=("positives", "inbox"),
    ),
    "quality_power": Option(
        1.0, float, "ranking exponent a of the quality in the score J = sigmoid(C) x I^a (1: GFLv2's J = C x I). Changes "
        "no training, only how detections are ranked and kept; a learnt I spans a narrower range than C, so a > 1 lets "
        "it count (the IoU-aware single-stage detector tunes the same balance as C^(1-alpha) x IoU^alpha). "
        "benchmarks/quality_power.py measures it on trained checkpoints. Needs dgqp=True", low=0.0, high=10.0,
    ),
    "dgqp_lr_gain": Option(
        1.0, float, "DGQP: learning-rate multiplier of its parameters. Fine-tuning COCO weights, the branch is the one "
        "new part and sees a few hundred steps at the fine-tune's small rate (AdamW ~6e-4 under optimizer=auto): "
        "left at 1 its I barely leaves the initial 0.95. New layers at a higher rate is the usual fine-tuning remedy",
        low=0.01, high=1000.0,
    ),
    "dgqp_clip": Option(
        "together",
        str,
        "how the gradients are clipped (Ultralytics clips their norm at 10 before each step). together (Ultralytics): "
        "one norm over every parameter, so the quality branch's gradient also shrinks the detector's step; apart: the "
        "detector's parameters and the branch's are clipped each on their own, so the detector's step is what it "
        "would be without the branch. Fine-tunes of COCO weights clip at every step (norm ~1,000). Needs dgqp=True",
        choices=("together", "apart"),
    ),
    "dgqp_gain": Option(
        1.0, float, "dgqp_target=iou: weight of I's IoU loss, relative to the classification loss (x Ultralytics' "
        "cls gain)", low=0.0, high=100.0,
    ),
    "cls_target": Option(
        "iou",
        str,
        "vfl/qfl target at the positives: iou (the IoU-aware classification score, VarifocalNet/GFL) or tal (the "
        "assigner's own soft target: TAL's normalised alignment metric scaled to the IoU, as TOOD and PP-YOLOE use)",
        choices=("iou", "tal"),
    ),
    "cls_target_gain": Option(
        1.0, float, "cls_target=tal: the positives' soft targets times this, capped at 1, before the vfl/qfl loss; the "
        "divisor (cls_norm=sum) and the box weights keep the assigner's own targets. GFLv2's joint J = sigmoid(C) x I "
        "with I near a constant I0 asks C for the target / I0 (1.06x at I0 = 0.94): this asks it without DGQP",
        low=0.5, high=2.0,
    ),
    "cls_target_power": Option(
        1.0, float, "cls_target=tal: the positives' soft targets raised to this power, then times cls_target_gain, "
        "before the vfl/qfl loss; the divisor and the box weights keep the assigner's own targets. Below 1 it lifts "
        "the low targets most and keeps their order (1 stays 1), where a gain caps the best ones at 1 alike",
        low=0.25, high=1.0,
    ),
    "cls_norm": Option(
        "pos",
        str,
        "divisor of the vfl/qfl classification loss: pos (number of positives; VarifocalNet, GFL) or sum (sum of the "
        "targets, as Ultralytics divides its BCE by the sum of its targets)",
        choices=("pos", "sum"),
    ),
    "cls_gain": Option(
        1.0, float, "extra gain on the IoU-aware classification loss, on top of Ultralytics' cls gain", low=0.0, high=100.0
    ),
    "box_weight": Option(
        "iou",
        str,
        "weight of each positive's box IoU loss and DFL (normalised by the weights' sum): iou (its predicted box's IoU "
        "with its ground truth; VarifocalNet), target (its classification target: TAL's soft target with "
        "cls_target=tal, as PP-YOLOE/YOLOv6), score (its detached highest predicted score, J with DGQP; GFL as "
        "mmdetection trains it). head=detect only",
        choices=("iou", "target", "score"),
    ),
    "box_gain": Option(
        1.0, float, "extra gain on the box IoU loss, on top of Ultralytics' box gain (recipes with other balances)",
        low=0.0, high=100.0,
    ),
    "dfl_gain": Option(
        1.0, float, "extra gain on DFL, on top of Ultralytics' dfl gain (recipes with other balances)", low=0.0,
        high=100.0,
    ),
    "fg_neg": Option(
        "focal",
        str,
        "loss on the negatives at objects: focal (the class loss's own down-weighting of negatives), bce (plain BCE "
        "towards 0, times fg_neg_weight, on the other classes at a positive anchor: the look-alike classes of a real "
        "object), bce_inbox (also on every class of the negative anchors whose centre lies inside an object); "
        "background anchors keep the focal weighting",
        choices=("focal", "bce", "bce_inbox"),
    ),
    "fg_neg_weight": Option(
        1.0, float, "fg_neg=bce or bce_inbox: weight of that BCE term (1: BCE's full weight)", low=0.0, high=10.0
    ),
    "atss_anchor_scale": Option(
        5.0, float, "ATSS anchor box side in strides (5: mmdetection/YOLOv6's anchor-free ATSS; 8: the ATSS paper "
        "and mmdetection's GFL/VFNet configs)", low=1.0, high=16.0,
    ),
    "atss_epochs": Option(
        0, int, "assigner warm-up: ATSS for the first N epochs, then TAL (YOLOv6: 4 epochs; PP-YOLOE: the first third "
        "of training); 0: off. Needs assigner=tal", low=0, high=100000,
    ),
    "head": Option(
        "detect",
        str,
        "detection head: detect (Ultralytics' Detect, plus DGQP when dgqp=True) or vfnet (VarifocalNet: star-shaped "
        "deformable conv features and box refinement)",
        choices=("detect", "vfnet"),
    ),
    "vfnet_offset_grad": Option(
        0.1, float, "head=vfnet: share of the star offsets' gradient reaching the initial box (VarifocalNet: 0.1)",
        low=0.0, high=1.0,
    ),
    "vfnet_star_op": Option(
        "auto",
        str,
        "head=vfnet: operator of the star convolution: grid_sample (nine bilinear samples + 1x1 conv; exports to every "
        "format), deform_conv2d (torchvision), or auto (grid_sample, the faster one measured on CPU); same values",
        choices=("auto", "grid_sample", "deform_conv2d"),
    ),
    "vfnet_init_weight": Option(
        1.5, float, "head=vfnet: weight of the initial box's GIoU loss within the box loss (VarifocalNet: 1.5)",
        low=0.0, high=100.0,
    ),
    "vfnet_refine_weight": Option(
        2.0, float, "head=vfnet: weight of the refined box's GIoU loss within the box loss (VarifocalNet: 2.0)",
        low=0.0, high=100.0,
    ),
}

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _coerce(name: str, value: Any) -> Any:
    """Return ``value`` converted to option ``name``'s type, or raise GFLOptionError naming the option and fix."""
    opt = OPTIONS[name]
    bad = GFLOptionError(f"yolo_gfl option {name}={value!r} is not valid: expected {opt.allowed()}.")
    if opt.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise bad
    if opt.kind is str:
        if not isinstance(value, str) or value.lower() not in opt.choices:
            raise bad
        return value.lower()
    if isinstance(value, bool):  # bool is an int subclass; True is no number of anchors
        raise bad
    try:
        number = opt.kind(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        raise bad from None
    if opt.kind is int and isinstance(value, float) and not value.is_integer():
        raise bad
    if not (opt.low <= number <= opt.high):  # also rejects NaN
        raise bad
    return number


def _combination_errors(checked: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """(the options involved, the message) of every refused combination in a full option set."""
    errors = []
    if checked["head"] == "vfnet" and checked["dgqp"]:
        errors.append((("head", "dgqp"),
                       "yolo_gfl options head='vfnet' and dgqp=True cannot be combined: the VFNet head predicts the "
                       "IoU-aware score itself. Use head=vfnet with dgqp=False, or dgqp=True with head=detect."))
    for name, what in QUALITY_BRANCH_OPTIONS.items():
        if checked[name] != OPTIONS[name].default and not checked["dgqp"]:
            errors.append(((name, "dgqp"),
                           f"yolo_gfl option {name}={checked[name]!r} {what}, but dgqp=False: add dgqp=True, or leave "
                           f"{name} at {OPTIONS[name].default!r}."))
    if checked["dgqp_anchors"] != "positives" and checked["dgqp_target"] != "iou":
        errors.append((("dgqp_anchors", "dgqp_target"),
                       f"yolo_gfl option dgqp_anchors={checked['dgqp_anchors']!r} chooses where the decoupled I learns "
                       f"the box IoU, but dgqp_target={checked['dgqp_target']!r}: add dgqp_target=iou (with "
                       "dgqp=True), or leave dgqp_anchors at 'positives'."))
    for name in SOFT_TARGET_SHAPERS:
        if checked[name] != 1.0 and (checked["cls_target"] != "tal" or checked["cls_loss"] == "bce"):
            errors.append(((name, "cls_target", "cls_loss"),
                           f"yolo_gfl option {name}={checked[name]} reshapes the assigner's soft targets, but "
                           f"cls_loss={checked['cls_loss']!r} with cls_target={checked['cls_target']!r}: use "
                           f"cls_loss=vfl or qfl with cls_target=tal, or leave {name} at 1."))
    for name in TAL_EXPONENTS:
        if checked[name] != OPTIONS[name].default and checked["assigner"] != "tal":
            errors.append(((name, "assigner"),
                           f"yolo_gfl option {name}={checked[name]} sets an exponent of TAL's alignment metric, but "
                           f"assigner={checked['assigner']!r} does not use it: use assigner=tal (atss_epochs for an "
                           f"ATSS warm-up), or leave {name} at {OPTIONS[name].default}."))
    if checked["atss_epochs"] and checked["assigner"] != "tal":
        errors.append((("atss_epochs", "assigner"),
                       f"yolo_gfl option atss_epochs={checked['atss_epochs']} warms up with ATSS before switching to "
                       f"TAL, but assigner={checked['assigner']!r}: use assigner=tal with atss_epochs, or "
                       "atss_epochs=0."))
    if checked["head"] == "vfnet" and checked["vfnet_init_weight"] + checked["vfnet_refine_weight"] <= 0:
        errors.append((("head", "vfnet_init_weight", "vfnet_refine_weight"),
                       "yolo_gfl options vfnet_init_weight and vfnet_refine_weight are both 0: at least one box loss "
                       "must count."))
    return errors


def validate_options(options: dict[str, Any] | None, overrides: bool = False) -> dict[str, Any]:
    """Return the full, checked option set: defaults overridden by ``options``.

    Args:
        options: option names and values.
        overrides: ``options`` are train-time overrides of a model whose own options are not known yet (``-gfl``
            already has ``dgqp=True``): each value is checked, and a combination only when all its options are given;
            the model's build checks the merged set.

    Raises:
        GFLOptionError: for an unknown name (listing the valid ones), a value outside its allowed set, or a refused
            combination (naming the fix).
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise GFLOptionError(f"unknown yolo_gfl option(s) {unknown}; valid options are: {', '.join(OPTIONS)}.")
    checked = {name: opt.default for name, opt in OPTIONS.items()}
    checked.update({name: _coerce(name, value) for name, value in options.items()})
    for names, message in _combination_errors(checked):
        if not overrides or all(name in options for name in names):
            raise GFLOptionError(message)
    return checked


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword arguments into (yolo_gfl options, everything else for Ultralytics)."""
    ours = {k: v for k, v in kwargs.items() if k in OPTIONS}
    return ours, {k: v for k, v in kwargs.items() if k not in OPTIONS}


def is_stock(options: dict[str, Any] | None) -> bool:
    """Whether ``options`` describe plain YOLOv8 (every option at its default)."""
    return validate_options(options) == validate_options({})


def format_options_help() -> str:
    """A table of the options for ``yolo-gfl help``."""
    rows = [f"  {name:<12} default={opt.default!s:<6} {opt.allowed():<24} {opt.help}" for name, opt in OPTIONS.items()]
    return "yolo_gfl options (train arguments, or the gfl: section of a model YAML):\n" + "\n".join(rows)
