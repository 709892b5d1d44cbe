"""A variant's ``gfl:`` section spelled in yolo_gfl 0.2.0's option names: what the records' recipe digests were taken of.

The real-data records (``benchmarks/results/*.json``) key each cell by ``recipe_digest``, a digest of its config with
every yolo_gfl option filled in. They were made with 0.2.0's 37 options; the package now has fewer, under other names.
So that a recipe keeps the digest its committed cells carry (and the benchmark still resumes them), the digest is
taken of the 0.2.0 spelling of the resolved variant, from the frozen table below. It lives here, not in the package,
because only the records need it.
"""

from __future__ import annotations

from typing import Any

from yolo_gfl.variant import Variant

__all__ = ["OPTIONS_V020", "section_v020"]

# yolo_gfl 0.2.0's options and their defaults (yolo_gfl/options.py at commit a3e6ecc), frozen.
OPTIONS_V020: dict[str, Any] = {
    "cls_loss": "bce", "dgqp": False, "assigner": "tal", "tal_alpha": 0.5, "tal_beta": 6.0, "box_loss": "ciou",
    "vfl_alpha": 0.75, "vfl_gamma": 2.0, "qfl_beta": 2.0, "dgqp_topk": 4, "dgqp_hidden": 64, "dgqp_init": 0.95,
    "dgqp_input": "distribution", "dgqp_detach": False, "dgqp_target": "joint", "dgqp_anchors": "positives",
    "quality_power": 1.0, "dgqp_lr_gain": 1.0, "dgqp_clip": "together", "dgqp_gain": 1.0, "cls_target": "iou",
    "cls_target_gain": 1.0, "cls_target_power": 1.0, "cls_norm": "pos", "cls_gain": 1.0, "box_weight": "iou",
    "box_gain": 1.0, "dfl_gain": 1.0, "fg_neg": "focal", "fg_neg_weight": 1.0, "atss_anchor_scale": 5.0,
    "atss_epochs": 0, "head": "detect", "vfnet_offset_grad": 0.1, "vfnet_star_op": "auto", "vfnet_init_weight": 1.5,
    "vfnet_refine_weight": 2.0,
}


def section_v020(section: dict[str, Any] | None) -> dict[str, Any]:
    """The full 0.2.0 option set that trains what ``section`` (this version's names) resolves to."""
    v = Variant.resolve(section)
    old = dict(OPTIONS_V020)
    old.update(head=v.head, assigner=v.assigner, box_loss=v.box_loss, dgqp=v.quality, dgqp_input=v.quality_input,
               dgqp_detach=v.quality_detach, dgqp_target=v.quality_target, dgqp_lr_gain=v.quality_lr_gain)
    if v.cls_loss == "bce" and not v.is_stock:
        # 0.2.0 spelled Ultralytics' loss outside Ultralytics' own path as QFL at beta 0 (soft BCE) on TAL's target,
        # over the targets' sum, with the box loss and DFL weighted by that target
        old.update(cls_loss="qfl", qfl_beta=0.0, cls_target="tal", cls_norm="sum", box_weight="target",
                   cls_target_gain=v.cls_target_gain)
    else:
        old.update(cls_loss=v.cls_loss, vfl_alpha=v.vfl_alpha, vfl_gamma=v.vfl_gamma, qfl_beta=v.qfl_beta,
                   cls_norm=v.cls_norm)
    return old
