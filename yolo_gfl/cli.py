"""The ``yolo-gfl`` command line (also ``python -m yolo_gfl``), mirroring Ultralytics' ``yolo`` CLI.

    yolo-gfl MODE key=value ...

Every argument is checked before anything starts: Ultralytics' own arguments against its defaults and value checks,
yolo_gfl's options against theirs. A bad key or value prints what is wrong and the valid choices and exits with 2.
"""

from __future__ import annotations

import sys
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from ultralytics.cfg import check_cfg, merge_equals_args, parse_key_value_pair
from ultralytics.utils import ASSETS, DEFAULT_CFG_DICT

from . import __version__
from .configs import model_cfg_names
from .engine.inference import check_inference_options, split_inference_options
from .engine.validator import EVAL_OPTIONS
from .options import OPTIONS, GFLOptionError, format_options_help, split_options, validate_options

__all__ = ["entrypoint", "main", "CLIError"]

MODES = ("train", "val", "predict", "export", "analyze", "zoo")
DEFAULT_MODEL = "yolov8n-gfl.yaml"
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "predict": {"save": True},  # as `yolo predict` does: a CLI user wants the annotated images on disk
}

USAGE = f"""yolo-gfl {__version__}: IoU-aware YOLOv8 (VarifocalNet, GFL v1/v2) on Ultralytics.

Usage:
    yolo-gfl MODE key=value ...
        MODE is one of {", ".join(MODES)}; keys are Ultralytics' own arguments (see 'yolo-gfl cfg')
        plus the yolo_gfl options below (train only: a checkpoint carries its variant).
    yolo-gfl help | version | cfg

Examples:
    yolo-gfl train model=yolov8n-gfl.yaml data=coco128.yaml epochs=10 imgsz=320
    yolo-gfl train model=yolov8n.yaml data=coco128.yaml epochs=10 imgsz=320          # stock YOLOv8 baseline
    yolo-gfl train model=yolov8n-qfl.yaml pretrained=yolov8n.pt cls_loss=vfl data=...  # stock weights transfer
    yolo-gfl val model=runs/detect/train/weights/best.pt data=coco128.yaml
    yolo-gfl val model=best.pt data=coco128.yaml coco=True calibration=True  # pycocotools AP, score-IoU report
    yolo-gfl analyze model=best.pt data=coco128.yaml imgsz=320   # ranking oracle + score-IoU calibration
    yolo-gfl zoo models=yolov8n.yaml,yolov8n-gfl.yaml data=synthetic-n500-v100-i160 epochs=10 seeds=0,1,2 imgsz=160
        # train each model per seed alike, evaluate alike: zoo.md/zoo.csv + plots in runs/zoo (rerun resumes);
        # default models: stock yolov8n and every variant; eval_only=True models=a.pt,b.pt compares checkpoints;
        # jobs=2 trains two cells at once (on CPU each trains with cpu_count-1 threads)
    yolo-gfl predict model=best.pt source=images/
    yolo-gfl val model=best.pt data=coco128.yaml paper=True nms=soft  # conf 0.05, 1000/level, IoU 0.6, 100 dets, soft-NMS
    yolo-gfl export model=best.pt format=onnx

Model configs (every scale n/s/m/l/x, e.g. yolov8s-gfl.yaml): {", ".join(model_cfg_names())}, and Ultralytics' own.

{format_options_help()}
"""


class CLIError(Exception):
    """A command line that cannot run; the message says what is wrong and how to fix it."""


def parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Split ``MODE key=value ...`` into the mode and a dict of typed values (Ultralytics' parsing rules)."""
    if not argv:
        raise CLIError("no mode given. " + f"Valid modes: {', '.join(MODES)} (or help, version, cfg).")
    mode, *pairs = argv
    if mode not in MODES:
        close = get_close_matches(mode, MODES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise CLIError(f"unknown mode '{mode}'.{hint} Valid modes: {', '.join(MODES)} (or help, version, cfg).")
    try:
        pairs = merge_equals_args(pairs)
    except SyntaxError as e:
        raise CLIError(str(e)) from None
    args: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise CLIError(f"argument '{pair}' is not of the form key=value (e.g. 'epochs=10').")
        try:
            key, value = parse_key_value_pair(pair)
        except AssertionError as e:
            raise CLIError(f"{e} in '{pair}': give a value, e.g. '{pair}10'.") from None
        args[key] = value
    return mode, args


def check(mode: str, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check every argument up front; return (yolo_gfl options, Ultralytics arguments) or raise CLIError."""
    options, ultralytics_args = split_options(args)
    inference, ultralytics_args = split_inference_options(ultralytics_args)  # nms=soft, pre_nms_topk=, paper=, ...
    if inference:
        if mode not in ("val", "predict"):
            raise CLIError(f"{sorted(inference)} are val/predict options (e.g. 'yolo-gfl val ... nms=soft').")
        try:
            check_inference_options(inference)
        except ValueError as e:
            raise CLIError(str(e)) from None
    for key in EVAL_OPTIONS:  # validation switches travel with the Ultralytics arguments to YOLOGFL.val
        if key in ultralytics_args:
            if mode != "val":
                raise CLIError(f"'{key}' is a val option; use it as 'yolo-gfl val ... {key}=True'.")
            if not isinstance(ultralytics_args[key], bool):
                raise CLIError(f"'{key}={ultralytics_args[key]}' must be True or False.")
    if options and mode != "train":
        raise CLIError(
            f"yolo_gfl option(s) {sorted(options)} apply to train only: a trained checkpoint already carries its "
            f"variant. Remove them from the '{mode}' command."
        )
    try:
        validate_options(options)
    except GFLOptionError as e:
        raise CLIError(str(e)) from None
    unknown = [k for k in ultralytics_args if k not in DEFAULT_CFG_DICT and k not in EVAL_OPTIONS]
    if unknown:
        lines = []
        for key in unknown:
            close = get_close_matches(key, list(DEFAULT_CFG_DICT) + list(OPTIONS), n=3)
            lines.append(f"'{key}' is not a valid argument." + (f" Similar: {close}." if close else ""))
        raise CLIError(" ".join(lines) + " See 'yolo-gfl cfg' for Ultralytics' arguments and 'yolo-gfl help'.")
    try:
        check_cfg({k: v for k, v in ultralytics_args.items() if k not in EVAL_OPTIONS})  # Ultralytics' own checks
    except (TypeError, ValueError) as e:
        raise CLIError(str(e)) from None
    model = ultralytics_args.get("model")
    if mode == "analyze" and "data" not in ultralytics_args:
        raise CLIError("'analyze' needs a dataset, e.g. 'yolo-gfl analyze model=best.pt data=coco128.yaml'.")
    if mode != "train" and model is None:
        raise CLIError(f"'{mode}' needs a model, e.g. 'yolo-gfl {mode} model=runs/detect/train/weights/best.pt'.")
    if model is not None and str(model).endswith(".pt") and not Path(str(model)).exists():
        raise CLIError(f"model={model} does not exist. Give the path of a trained checkpoint (e.g. weights/best.pt).")
    return options, {**ultralytics_args, **inference}


def run(mode: str, options: dict[str, Any], args: dict[str, Any]):
    """Run a checked command through ``YOLOGFL``."""
    from .model import YOLOGFL

    args = {**MODE_DEFAULTS.get(mode, {}), **args}
    args.pop("mode", None)
    args.pop("task", None)  # yolo_gfl models are detectors
    model = YOLOGFL(args.pop("model", DEFAULT_MODEL))
    if mode == "predict" and "source" not in args:
        args["source"] = ASSETS  # Ultralytics' bundled sample images, as `yolo predict` does
    if mode == "train":
        return model.train(**args, **options)
    if mode == "analyze":
        from .analyze import analyze

        return analyze(model, data=args.pop("data", None), **args)
    return getattr(model, mode)(**args)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in ([], ["help"], ["-h"], ["--help"]):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] in ("version", "--version"):
        print(__version__)
        return 0
    if argv[0] == "cfg":
        print("\n".join(f"{k}={v}" for k, v in DEFAULT_CFG_DICT.items()))
        return 0
    try:
        mode, args = parse(argv)
        if mode == "zoo":  # its own arguments (models=, seeds=, eval_only=, ...), checked by yolo_gfl.zoo
            from .zoo import main_zoo

            return main_zoo(args)
        options, ultralytics_args = check(mode, args)
    except CLIError as e:
        print(f"yolo-gfl: error: {e}", file=sys.stderr)
        return 2
    from .analyze import AnalyzeError

    try:
        run(mode, options, ultralytics_args)
    except AnalyzeError as e:  # a table that would measure nothing: say why instead of writing it
        print(f"yolo-gfl: error: {e}", file=sys.stderr)
        return 1
    return 0


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
