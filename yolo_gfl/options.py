"""The yolo_gfl options: the names a user sets to turn a stock YOLO detector into an IoU-aware variant.

A variant is a stock Ultralytics model YAML plus a ``gfl:`` section, e.g. ``yolov8-qfl.yaml`` is ``yolov8.yaml`` with

    gfl:
      cls_loss: qfl
      cls_norm: sum

The same names can be given as train arguments (``cls_loss=vfl``) and override the YAML. The section and the
arguments are resolved once, into a :class:`yolo_gfl.variant.Variant` that the model carries (so every checkpoint,
DDP worker and export has it). This module only holds the tables: what each option is, its default and its allowed
values. ``OPTIONS`` are the product's (what the papers and the shipped variants need); ``EXPERIMENTAL_OPTIONS`` are
research knobs kept only so that the committed real-data record's headline rows can be reproduced
(``benchmarks/configs``); setting one logs a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALL_OPTIONS",
    "EXPERIMENTAL_OPTIONS",
    "OPTIONS",
    "GFLOptionError",
    "Option",
    "check_values",
    "coerce",
    "combination_errors",
    "format_options_help",
    "split_options",
    "validate_options",
]


class GFLOptionError(ValueError):
    """A yolo_gfl option has an unknown name, a value outside its allowed set, or a refused combination."""


@dataclass(frozen=True)
class Option:
    """One option: its default, type, one-line meaning and allowed values (``choices``, or ``low``..``high``)."""

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


OPTIONS: dict[str, Option] = {
    "head": Option(
        "detect", str, "detect: Ultralytics' Detect head; vfnet: VarifocalNet's star-shaped deformable features and "
        "box refinement (Zhang et al., CVPR 2021, Sec. 3.3-3.4)", choices=("detect", "vfnet"),
    ),
    "cls_loss": Option(
        "bce", str, "classification loss. bce: Ultralytics' BCE against TAL's soft target (on J with the quality "
        "branch); vfl: Varifocal Loss on the IoU target (VarifocalNet, Eq. 2); qfl: Quality Focal Loss on the IoU "
        "target (GFL, Eq. 5)", choices=("bce", "vfl", "qfl"),
    ),
    "vfl_alpha": Option(0.75, float, "VFL weight of the negatives (VarifocalNet: 0.75). cls_loss=vfl", low=0.0, high=1.0),
    "vfl_gamma": Option(2.0, float, "VFL focusing exponent (VarifocalNet: 2.0). cls_loss=vfl", low=0.0, high=10.0),
    "qfl_beta": Option(2.0, float, "QFL focusing exponent (GFL: 2.0). cls_loss=qfl", low=0.0, high=10.0),
    "cls_norm": Option(
        "pos", str, "divisor of the vfl/qfl loss: pos, the number of positives (VarifocalNet, GFL); sum, the sum of "
        "the targets, as Ultralytics divides its BCE (bce always divides so)", choices=("pos", "sum"),
    ),
    "quality": Option(
        False, bool, "quality branch: a localisation quality I read from the box distributions (GFLv2's DGQP, Li et "
        "al., CVPR 2021, Sec. 3.2), ranking by the joint score J = sigmoid(C) x I. head=detect",
    ),
    "assigner": Option(
        "tal", str, "label assigner: tal (TOOD's TaskAlignedAssigner, Ultralytics) or atss (Zhang et al., CVPR 2020, "
        "top-9)", choices=("tal", "atss"),
    ),
    "box_loss": Option(
        "ciou", str, "IoU loss of the box: ciou (Ultralytics) or giou (VarifocalNet, GFL)", choices=("ciou", "giou")
    ),
}

EXPERIMENTAL_OPTIONS: dict[str, Option] = {
    "cls_target_gain": Option(
        1.0, float, "TAL's soft target that C learns times this, capped at 1; the divisor and the box weights keep "
        "TAL's own targets. cls_loss=bce", low=0.5, high=2.0,
    ),
    "quality_input": Option(
        "distribution", str, "what the quality branch reads: distribution (GFLv2's DGQP) or features (a 3x3 conv on "
        "each level's box feature, after Wu et al., IVC 2020). quality=True", choices=("distribution", "features"),
    ),
    "quality_detach": Option(
        False, bool, "the quality branch reads a detached input, so its loss trains the branch alone. quality=True"
    ),
    "quality_target": Option(
        "joint", str, "what teaches I: joint (GFLv2: the class loss acts on J) or iou (Wu et al., IVC 2020: C keeps "
        "its own loss, I learns each positive's box IoU by BCE). quality=True", choices=("joint", "iou"),
    ),
    "quality_lr_gain": Option(
        1.0, float, "learning-rate multiplier of the quality branch's parameters (new layers of a fine-tune). "
        "quality=True", low=0.01, high=1000.0,
    ),
}

ALL_OPTIONS: dict[str, Option] = {**OPTIONS, **EXPERIMENTAL_OPTIONS}

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def coerce(name: str, value: Any) -> Any:
    """Return ``value`` converted to option ``name``'s type, or raise GFLOptionError naming the option and its values."""
    opt = ALL_OPTIONS[name]
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
    if isinstance(value, bool):  # bool is an int subclass; True is no exponent
        raise bad
    try:
        number = opt.kind(value)
    except (TypeError, ValueError, OverflowError):
        raise bad from None
    if not (opt.low <= number <= opt.high):  # also rejects NaN
        raise bad
    return number


def check_values(options: dict[str, Any]) -> dict[str, Any]:
    """The given options with their values checked and converted; GFLOptionError for an unknown name or bad value."""
    unknown = sorted(set(options) - set(ALL_OPTIONS))
    if unknown:
        raise GFLOptionError(f"unknown yolo_gfl option(s) {unknown}; valid options are: {', '.join(OPTIONS)} "
                             f"(experimental: {', '.join(EXPERIMENTAL_OPTIONS)}).")
    return {name: coerce(name, value) for name, value in options.items()}


# The experimental options that shape the quality branch, each with what it does for its error message.
_QUALITY_KNOBS = {
    "quality_input": "chooses what the quality branch reads",
    "quality_detach": "detaches the quality branch's input",
    "quality_target": "chooses what teaches the quality I",
    "quality_lr_gain": "scales the quality branch's learning rate",
}
# Each loss's own parameters: set for another loss they would do nothing.
_LOSS_PARAMETERS = {"vfl_alpha": "vfl", "vfl_gamma": "vfl", "qfl_beta": "qfl"}


def combination_errors(full: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """(the options involved, the one-line message naming the fix) of every refused combination in a full set."""
    errors = []
    if full["head"] == "vfnet" and full["quality"]:
        errors.append((("head", "quality"),
                       "yolo_gfl options head='vfnet' and quality=True cannot be combined: the VFNet head predicts the "
                       "IoU-aware score itself. Use head=vfnet with quality=False, or quality=True with head=detect."))
    for name, loss in _LOSS_PARAMETERS.items():
        if full[name] != ALL_OPTIONS[name].default and full["cls_loss"] != loss:
            errors.append(((name, "cls_loss"),
                           f"yolo_gfl option {name}={full[name]} is a parameter of cls_loss={loss}, but "
                           f"cls_loss={full['cls_loss']!r}: use cls_loss={loss}, or leave {name} at "
                           f"{ALL_OPTIONS[name].default}."))
    for name, what in _QUALITY_KNOBS.items():
        if full[name] != ALL_OPTIONS[name].default and not full["quality"]:
            errors.append(((name, "quality"),
                           f"yolo_gfl option {name}={full[name]!r} {what}, but quality=False: add quality=True, or "
                           f"leave {name} at {ALL_OPTIONS[name].default!r}."))
    if full["cls_target_gain"] != 1.0 and full["cls_loss"] != "bce":
        errors.append((("cls_target_gain", "cls_loss"),
                       f"yolo_gfl option cls_target_gain={full['cls_target_gain']} scales TAL's soft target, which only "
                       f"cls_loss=bce learns, but cls_loss={full['cls_loss']!r}: use cls_loss=bce, or leave "
                       "cls_target_gain at 1."))
    return errors


def validate_options(options: dict[str, Any] | None, overrides: bool = False) -> dict[str, Any]:
    """Check options a user gave at an entry point (CLI, zoo request) before anything runs.

    Args:
        options: option names and values.
        overrides: ``options`` are train-time overrides of a model whose own section is not known yet: each value is
            checked, and a combination only when all its options are given (the model's build resolves the merged
            set once, into its :class:`~yolo_gfl.variant.Variant`).

    Returns:
        The given options with checked values (``overrides=True``), or the full set with defaults filled in.

    Raises:
        GFLOptionError: an unknown name (listing the valid ones), a value outside its allowed set, or a refused
            combination (naming the fix).
    """
    checked = check_values(dict(options or {}))
    full = {name: opt.default for name, opt in ALL_OPTIONS.items()} | checked
    for names, message in combination_errors(full):
        if not overrides or all(name in checked for name in names):
            raise GFLOptionError(message)
    return checked if overrides else full


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword arguments into (yolo_gfl options, everything else for Ultralytics)."""
    ours = {k: v for k, v in kwargs.items() if k in ALL_OPTIONS}
    return ours, {k: v for k, v in kwargs.items() if k not in ALL_OPTIONS}


def format_options_help() -> str:
    """The options for ``yolo-gfl help``: the product's first, then the experimental ones under their own heading."""

    def rows(table: dict[str, Option]) -> str:
        return "\n".join(f"  {n:<16} default={o.default!s:<12} {o.allowed():<28} {o.help}" for n, o in table.items())

    return (
        "yolo_gfl options (train arguments, or the gfl: section of a model YAML):\n" + rows(OPTIONS) + "\n\n"
        "Experimental options (research knobs kept to reproduce benchmarks/configs probes; a warning is logged when "
        "one is set):\n" + rows(EXPERIMENTAL_OPTIONS)
    )
