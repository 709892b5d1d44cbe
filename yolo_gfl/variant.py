"""``Variant``: a model's yolo_gfl options, resolved and checked once, carried by the model.

A variant is made once per model build, by :meth:`Variant.resolve` from the model YAML's ``gfl:`` section merged with
the train arguments' overrides. The model keeps it (``model.variant``) and writes its full section back into
``model.yaml["gfl"]``, so every checkpoint, DDP worker, safe checkpoint and export rebuilds the same variant; the
head, the criterion, the assigner choice and the trainer read it and nothing else. Whether the loss is Ultralytics'
own is decided here too (:attr:`Variant.is_stock`), not per step.

Checkpoints of yolo_gfl 0.2.0 stored 37 options under other names. :func:`from_v020` reads such a section: the
renamed options take their new names, a recipe that 0.2.0 spelled through several options is named as what it is
(``cls_loss=qfl qfl_beta=0 cls_target=tal cls_norm=sum box_weight=target`` is Ultralytics' BCE against TAL's target,
``cls_loss=bce``), and a removed option set to anything but its 0.2.0 default is refused, naming it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ultralytics.utils import LOGGER

from .options import ALL_OPTIONS, EXPERIMENTAL_OPTIONS, OPTIONS, GFLOptionError, check_values, combination_errors

__all__ = ["Variant", "from_v020"]


@dataclass(frozen=True)
class Variant:
    """The resolved options of one model (see ``yolo_gfl.options`` for what each one is)."""

    head: str = OPTIONS["head"].default
    cls_loss: str = OPTIONS["cls_loss"].default
    vfl_alpha: float = OPTIONS["vfl_alpha"].default
    vfl_gamma: float = OPTIONS["vfl_gamma"].default
    qfl_beta: float = OPTIONS["qfl_beta"].default
    cls_norm: str = OPTIONS["cls_norm"].default
    quality: bool = OPTIONS["quality"].default
    assigner: str = OPTIONS["assigner"].default
    box_loss: str = OPTIONS["box_loss"].default
    cls_target_gain: float = EXPERIMENTAL_OPTIONS["cls_target_gain"].default
    quality_input: str = EXPERIMENTAL_OPTIONS["quality_input"].default
    quality_detach: bool = EXPERIMENTAL_OPTIONS["quality_detach"].default
    quality_target: str = EXPERIMENTAL_OPTIONS["quality_target"].default
    quality_lr_gain: float = EXPERIMENTAL_OPTIONS["quality_lr_gain"].default

    @classmethod
    def resolve(cls, section: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None) -> Variant:
        """The variant of a model YAML's ``gfl:`` section with the train arguments' ``overrides`` on top.

        A section written by yolo_gfl 0.2.0 (a checkpoint's ``model.yaml["gfl"]``) is read through :func:`from_v020`.

        Raises:
            GFLOptionError: an unknown name, a value outside its allowed set, or a refused combination, in one line
                that names the fix.
        """
        section = dict(section or {})
        if set(section) & set(V020_ONLY):
            section = from_v020(section)
        merged = check_values(section) | check_values(dict(overrides or {}))
        variant = cls(**merged)
        for _, message in combination_errors(asdict(variant)):
            raise GFLOptionError(message)
        experimental = {k: v for k, v in merged.items() if k in EXPERIMENTAL_OPTIONS
                        and v != EXPERIMENTAL_OPTIONS[k].default}
        if experimental:
            LOGGER.warning(f"yolo_gfl: experimental option(s) {experimental} set: research knobs kept to reproduce "
                           "benchmark probes, not product options.")
        return variant

    @property
    def is_stock(self) -> bool:
        """Whether Ultralytics' own DetectionModel and v8DetectionLoss are this variant: BCE against TAL's target,
        TAL, CIoU, Detect without a quality branch."""
        return (self.head == "detect" and self.cls_loss == "bce" and not self.quality and self.assigner == "tal"
                and self.box_loss == "ciou" and self.cls_target_gain == 1.0)

    @property
    def decoupled_quality(self) -> bool:
        """Whether the quality branch learns the IoU on its own (``quality_target=iou``) while C keeps its own loss."""
        return self.quality and self.quality_target == "iou"

    def as_section(self) -> dict[str, Any]:
        """The full ``gfl:`` section (every option, defaults included) that rebuilds this variant."""
        return asdict(self)

    def describe(self) -> str:
        """One line for the training log: the product options, then any experimental option set."""
        main = " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self) if f.name in OPTIONS
                        and (f.name not in ("vfl_alpha", "vfl_gamma", "qfl_beta", "cls_norm")
                             or getattr(self, f.name) != OPTIONS[f.name].default))
        extra = [f"{k}={getattr(self, k)}" for k, o in EXPERIMENTAL_OPTIONS.items() if getattr(self, k) != o.default]
        return main + (f" experimental: {' '.join(extra)}" if extra else "")


# yolo_gfl 0.2.0's options that this version names otherwise, and their new names.
V020_RENAMED = {
    "dgqp": "quality",
    "dgqp_input": "quality_input",
    "dgqp_detach": "quality_detach",
    "dgqp_target": "quality_target",
    "dgqp_lr_gain": "quality_lr_gain",
}
# 0.2.0's options that spelled the class loss's target and the box weights; read by from_v020 (their 0.2.0 defaults).
V020_RECIPE = {"cls_target": "iou", "box_weight": "iou"}
# 0.2.0's research knobs removed since, at their 0.2.0 defaults: a section may carry them only at these values.
V020_REMOVED = {
    "tal_alpha": 0.5, "tal_beta": 6.0, "dgqp_topk": 4, "dgqp_hidden": 64, "dgqp_init": 0.95,
    "dgqp_anchors": "positives", "quality_power": 1.0, "dgqp_clip": "together", "dgqp_gain": 1.0,
    "cls_target_power": 1.0, "cls_gain": 1.0, "box_gain": 1.0, "dfl_gain": 1.0, "fg_neg": "focal",
    "fg_neg_weight": 1.0, "atss_anchor_scale": 5.0, "atss_epochs": 0, "vfnet_offset_grad": 0.1,
    "vfnet_init_weight": 1.5, "vfnet_refine_weight": 2.0,
    "vfnet_star_op": None,  # any: its implementations compute the same function of the same weights
}
V020_ONLY = {**{k: None for k in V020_RENAMED}, **V020_RECIPE, **V020_REMOVED}


def from_v020(section: dict[str, Any]) -> dict[str, Any]:
    """This version's options for a ``gfl:`` section written with yolo_gfl 0.2.0's names (checkpoints of 0.2.0).

    Raises:
        GFLOptionError: the section sets a removed option to another value than its 0.2.0 default, or spells a
            recipe that this version does not train the same way.
    """
    old = dict(section)
    removed = {k: old[k] for k, default in V020_REMOVED.items()
               if k in old and default is not None and old[k] != default}
    if removed:
        raise GFLOptionError(f"this 0.2.0 model sets yolo_gfl option(s) {removed}, research knobs removed since; "
                             "train it with yolo_gfl 0.2.0, or rebuild it without them.")
    new = {V020_RENAMED.get(k, k): v for k, v in old.items() if k not in V020_REMOVED and k not in V020_RECIPE}
    unknown = sorted(set(new) - set(ALL_OPTIONS))
    if unknown:
        raise GFLOptionError(f"unknown yolo_gfl option(s) {unknown} in a 0.2.0 section.")
    new = check_values(new)
    full = {k: o.default for k, o in ALL_OPTIONS.items()} | new
    cls_target = str(old.get("cls_target", V020_RECIPE["cls_target"])).lower()
    box_weight = str(old.get("box_weight", V020_RECIPE["box_weight"])).lower()
    # 0.2.0 weighted the box loss by TAL's target only with box_weight=target and cls_target=tal (or on
    # Ultralytics' own path, or in the VFNet head, which weights its boxes its own way)
    by_target = (box_weight == "target" and cls_target == "tal") or full["head"] == "vfnet"
    stock_path = full["cls_loss"] == "bce" and Variant(**{**full, "cls_loss": "bce"}).is_stock
    if full["cls_loss"] == "bce":
        recipe_ok = by_target or stock_path
    elif cls_target == "tal":  # QFL at beta 0 is soft BCE (GFL Eq. 5): with TAL's target and its sum, stock's loss
        recipe_ok = full["cls_loss"] == "qfl" and full["qfl_beta"] == 0 and full["cls_norm"] == "sum" and by_target
        if recipe_ok:
            new = {k: v for k, v in new.items() if k not in ("qfl_beta", "cls_norm")} | {"cls_loss": "bce"}
    else:  # the IoU target: box_weight=target then meant the IoU too
        recipe_ok = box_weight in ("iou", "target") or full["head"] == "vfnet"
    if not recipe_ok:
        raise GFLOptionError(
            f"this 0.2.0 model trains cls_loss={full['cls_loss']} with cls_target={cls_target} and "
            f"box_weight={box_weight}, a research recipe removed since; train it with yolo_gfl 0.2.0."
        )
    if new.get("cls_loss") == "bce":  # 0.2.0 kept the unused parameters of the other losses; they mean nothing here
        new = {k: v for k, v in new.items() if k not in ("vfl_alpha", "vfl_gamma", "qfl_beta", "cls_norm")}
    elif new.get("cls_loss") == "vfl":
        new.pop("qfl_beta", None)
    elif new.get("cls_loss") == "qfl":
        new = {k: v for k, v in new.items() if k not in ("vfl_alpha", "vfl_gamma")}
    return new
