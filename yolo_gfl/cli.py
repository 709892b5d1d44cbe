"""The ``yolo-gfl`` command line (also ``python -m yolo_gfl``), mirroring Ultralytics' ``yolo`` CLI.

    yolo-gfl [detect] MODE key=value ... [flag ...]     (a bare boolean key is key=True, as in `yolo`)
    yolo-gfl help | version | cfg | checks | settings | copy-cfg

Every argument is checked before anything starts: Ultralytics' own arguments against its defaults and value checks,
yolo_gfl's options against theirs, and every path a mode reads (model, data, pretrained, source, resume; see
``yolo_gfl.cli_checks``). A bad one prints one line saying what is wrong and what was expected, and exits with 2
before anything is written. A training that fails after its start removes its run folder if it holds nothing but
``args.yaml``, and keeps it otherwise.
"""

from __future__ import annotations

import shutil
import sys
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from ultralytics.cfg import MODES as ULTRALYTICS_MODES
from ultralytics.cfg import (
    TASKS,
    check_cfg,
    copy_default_cfg,
    handle_yolo_settings,
    merge_equals_args,
    parse_key_value_pair,
)
from ultralytics.utils import ASSETS, DEFAULT_CFG_DICT, YAML
from ultralytics.utils.checks import check_yaml

from . import __version__
from .cli_checks import PathCheckError, check_paths, check_zoo_paths
from .configs import model_cfg_names
from .engine.inference import InferenceOptionError, check_inference_options, split_inference_options
from .engine.validator import EVAL_OPTIONS
from .options import ALL_OPTIONS as OPTIONS  # every name a train argument may set, experimental ones too
from .options import GFLOptionError, format_options_help, split_options, validate_options

__all__ = ["entrypoint", "main", "CLIError"]

MODES = ("train", "val", "predict", "export", "analyze", "zoo")
SPECIAL = ("help", "version", "cfg", "checks", "settings", "copy-cfg")  # commands that are not modes
BARE_FLAGS = {"half", "int8", "end2end", "nms"}  # bare 'yolo' flags whose default is None (ultralytics.cfg.entrypoint)
DEFAULT_MODEL = "yolov8n-gfl.yaml"
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "predict": {"save": True},  # as `yolo predict` does: a CLI user wants the annotated images on disk
}

USAGE = f"""yolo-gfl {__version__}: IoU-aware YOLOv8 and YOLO11 (VarifocalNet, GFL v1/v2) on Ultralytics.

Usage:
    yolo-gfl [detect] MODE key=value ... [flag ...]
        MODE is one of {", ".join(MODES)}; keys are Ultralytics' own arguments (see 'yolo-gfl cfg')
        plus the yolo_gfl options below (train only: a checkpoint carries its variant). A bare boolean key is
        key=True ('resume', 'show', 'save_txt', 'half', 'dynamic', 'quality', ...); cfg=file.yaml supplies defaults.
    yolo-gfl {" | ".join(SPECIAL)}
        checks: system and export-package report; settings [key=value | reset]: Ultralytics' settings;
        copy-cfg: writes Ultralytics' default.yaml here as default_copy.yaml, to edit and pass as cfg=

Examples:
    yolo-gfl train model=yolov8n-gfl.yaml data=synthetic-n1000-v200-i160 imgsz=160 epochs=12  # embedded data set
    yolo-gfl train model=yolov8n.yaml data=path/to/data.yaml epochs=10 imgsz=320      # stock YOLOv8 baseline
    yolo-gfl detect train model=yolo11n-gfl.yaml data=path/to/data.yaml epochs=10     # YOLO11 variants alike
    yolo-gfl train resume model=runs/detect/train/weights/last.pt                    # continue a stopped run
    yolo-gfl train model=yolov8n-qfl.yaml pretrained=path/to/yolov8n.pt cls_loss=vfl data=...  # stock weights
    yolo-gfl val model=runs/detect/train/weights/best.pt data=path/to/data.yaml
    yolo-gfl val model=best.pt data=path/to/data.yaml coco=True calibration=True  # pycocotools AP, score-IoU
    yolo-gfl analyze model=best.pt data=path/to/data.yaml imgsz=320   # ranking oracle + score-IoU calibration
    yolo-gfl zoo models=yolov8n.yaml,yolov8n-gfl.yaml data=synthetic-n500-v100-i160 epochs=10 seeds=0,1,2 imgsz=160
        # train each model per seed alike, evaluate alike: zoo.md/zoo.csv + plots in runs/zoo (rerun resumes);
        # default models: stock yolov8n and every variant (models=yolo11: YOLO11n's); eval_only=True models=a.pt,b.pt;
        # jobs=2 trains two cells at once (on CPU each trains with cpu_count-1 threads)
    yolo-gfl predict model=best.pt source=images/
    yolo-gfl val model=best.pt data=path/to/data.yaml paper=True nms=soft  # conf 0.05, 1000/level, IoU 0.6, soft-NMS
    yolo-gfl export model=best.pt format=onnx

Paths are checked first. Ultralytics' own names work as with 'yolo' (yolov8n.pt, data=coco128.yaml): it
downloads them on first use, online; offline the error says from where, so you can give a local copy's path.

Model configs (every scale n/s/m/l/x, e.g. yolov8s-gfl.yaml, yolo11s-gfl.yaml): {", ".join(model_cfg_names())}, and Ultralytics' own.

{format_options_help()}
"""


class CLIError(Exception):
    """A command line that cannot run; the message says what is wrong and how to fix it."""


def _flag(token: str) -> bool:
    """Whether a bare ``token`` means ``token=True`` (Ultralytics' rule in ``ultralytics.cfg.entrypoint``, plus
    yolo_gfl's own switches): a key whose default is a bool, or one of the flags whose default is None."""
    if token in DEFAULT_CFG_DICT and isinstance(DEFAULT_CFG_DICT[token], bool) or token in BARE_FLAGS:
        return True
    if token in OPTIONS:
        return isinstance(OPTIONS[token].default, bool)
    return token in EVAL_OPTIONS or token == "paper"


def _cfg_file(path: str) -> dict[str, Any]:
    """The arguments of a ``cfg=`` YAML (e.g. one written by ``copy-cfg``): the keys that differ from the defaults."""
    if Path(path).is_dir():
        raise CLIError(f"cfg={path} is a folder; expected a YAML file of arguments (write one with 'yolo-gfl copy-cfg').")
    try:
        loaded = YAML.load(check_yaml(path))
    except FileNotFoundError:
        raise CLIError(f"cfg={path} does not exist. Write one with 'yolo-gfl copy-cfg' and edit it.") from None
    except (AssertionError, ValueError, OSError) as e:  # not .yaml, a syntax error, not a mapping, unreadable
        raise CLIError(f"cfg={path} cannot be read as a YAML file of arguments: {str(e).splitlines()[0]}") from None
    if not loaded:
        raise CLIError(f"cfg={path} is empty; expected key: value lines (write one with 'yolo-gfl copy-cfg').")
    return {k: v for k, v in loaded.items() if k != "cfg" and not (k in DEFAULT_CFG_DICT and DEFAULT_CFG_DICT[k] == v)}


def parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Read a command line as ``yolo`` does: the mode (and task) anywhere, ``key=value`` pairs typed by Ultralytics'
    rules, a bare boolean key meaning ``key=True``, ``cfg=file.yaml`` as defaults for the other arguments."""
    try:
        tokens = merge_equals_args(argv)
    except SyntaxError as e:
        raise CLIError(str(e)) from None
    modes, args, from_file = [], {}, {}
    for i, token in enumerate(tokens):
        token = token.removeprefix("--")  # 'yolo' accepts '--epochs=3' with a warning
        if "=" in token:
            try:
                key, value = parse_key_value_pair(token)
            except AssertionError as e:
                raise CLIError(f"{e} in '{token}': give a value, e.g. '{token}10'.") from None
            if key == "cfg" and value is not None:
                from_file = _cfg_file(str(value))
            elif key == "mode":
                modes.append(str(value))
            else:
                args[key] = value
        elif token in TASKS:
            args["task"] = token
        elif token in MODES or token in ULTRALYTICS_MODES or (i == 0 and token not in DEFAULT_CFG_DICT):
            modes.append(token)
        elif _flag(token):
            args[token] = True
        elif token in DEFAULT_CFG_DICT or token in OPTIONS:
            example = OPTIONS[token].default if token in OPTIONS else DEFAULT_CFG_DICT[token]
            raise CLIError(f"argument '{token}' is not of the form key=value: give it a value, e.g. '{token}={example}'.")
        else:
            close = get_close_matches(token, [*MODES, *DEFAULT_CFG_DICT, *OPTIONS], n=3)
            hint = f" Similar: {close}." if close else ""
            raise CLIError(f"'{token}' is neither a mode nor a key=value argument.{hint} Valid modes: {', '.join(MODES)}.")
    args = {**from_file, **args}  # the command line wins over the cfg file
    modes = modes or ([args.pop("mode")] if "mode" in args else [])
    args.pop("mode", None)
    if len(set(modes)) > 1:
        raise CLIError(f"more than one mode given ({', '.join(modes)}): give one of {', '.join(MODES)}.")
    if not modes:
        raise CLIError("no mode given. " + f"Valid modes: {', '.join(MODES)} (or {', '.join(SPECIAL)}).")
    mode = modes[0]
    if mode not in MODES:
        close = get_close_matches(mode, MODES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close and mode not in ULTRALYTICS_MODES else ""
        other = " (an Ultralytics mode that yolo-gfl does not offer: use plain 'yolo', which loads yolo_gfl checkpoints)"
        raise CLIError(f"unknown mode '{mode}'{other if mode in ULTRALYTICS_MODES else ''}.{hint} "
                       f"Valid modes: {', '.join(MODES)} (or {', '.join(SPECIAL)}).")
    task = args.pop("task", "detect")
    if task != "detect":
        raise CLIError(f"task '{task}' is not available: yolo_gfl models are detectors (task=detect, the default).")
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
        validate_options(options, overrides=True)
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
    if mode == "train" and ultralytics_args.get("resume") is True and not str(model or "").endswith(".pt"):
        raise CLIError("'resume' needs the checkpoint of the run to continue: "
                       "'yolo-gfl train resume model=runs/detect/train/weights/last.pt'.")
    if mode == "analyze" and "data" not in ultralytics_args:
        raise CLIError("'analyze' needs a dataset, e.g. 'yolo-gfl analyze model=best.pt data=coco128.yaml'.")
    if mode != "train" and model is None:
        raise CLIError(f"'{mode}' needs a model, e.g. 'yolo-gfl {mode} model=runs/detect/train/weights/best.pt'.")
    try:
        check_paths(mode, ultralytics_args, DEFAULT_MODEL)
    except PathCheckError as e:
        raise CLIError(str(e)) from None
    return options, {**ultralytics_args, **inference}


def remove_if_empty(run_dir: Path | None) -> bool:
    """Remove a run folder that holds nothing but ``args.yaml`` and an empty ``weights/`` (what a start that failed
    before its first epoch leaves); return whether it did. Anything more (a checkpoint, results.csv, a plot) stays."""
    if run_dir is None or not run_dir.is_dir():
        return False
    weights = run_dir / "weights"
    if {p.name for p in run_dir.iterdir()} - {"args.yaml", "weights"} or (weights.is_dir() and any(weights.iterdir())):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True


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
        # The trainer makes its run folder before it reads the data set; this callback, which Ultralytics runs right
        # after, learns the folder even when the trainer's construction fails.
        started: dict[str, Path] = {}
        model.add_callback("on_pretrain_routine_start", lambda trainer: started.setdefault("dir", trainer.save_dir))
        try:
            return model.train(**args, **options)
        except BaseException:
            remove_if_empty(Path(started["dir"]) if "dir" in started else None)
            raise
    if mode == "analyze":
        from .analyze import analyze

        return analyze(model, data=args.pop("data", None), **args)
    return getattr(model, mode)(**args)


def checks() -> None:
    """Ultralytics' system report, then yolo_gfl's version and which optional export packages are installed."""
    from ultralytics.utils.checks import collect_system_info

    from .export import export_support

    collect_system_info()
    print(f"yolo_gfl {__version__} ({Path(__file__).parent})")
    for fmt, note in export_support().items():
        print(f"  export format={fmt:<12} {note}")


def special(command: str, rest: list[str]) -> int:
    """Run a command that is not a mode (help, version, cfg, checks, settings, copy-cfg); return the exit code."""
    if command == "help":
        print(USAGE)
    elif command == "version":
        print(__version__)
    elif command == "cfg":
        print("\n".join(f"{k}={v}" for k, v in DEFAULT_CFG_DICT.items()))
    elif command == "checks":
        checks()
    elif command == "settings":  # Ultralytics' settings (runs_dir, datasets_dir, ...) are the ones yolo_gfl runs use
        handle_yolo_settings(rest)
    elif command == "copy-cfg":  # Ultralytics' default.yaml, to edit and pass back as 'cfg=default_copy.yaml'
        copy_default_cfg()
        print("yolo_gfl options (cls_loss, quality, ...) may be added to the copy as keys of their own.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(USAGE)
        return 2
    command = argv[0].lstrip("-")  # '-h', '--help', '--version' as in 'yolo'
    command = {"h": "help", "v": "version"}.get(command, command)
    if command in SPECIAL:
        return special(command, argv[1:])
    try:
        mode, args = parse(argv)
        if mode == "zoo":  # its own arguments (models=, seeds=, eval_only=, ...), checked by yolo_gfl.zoo
            from .zoo import main_zoo

            try:
                check_zoo_paths(args)  # the same path checks as the modes', before the zoo makes its folder
            except PathCheckError as e:
                raise CLIError(str(e)) from None
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
    except InferenceOptionError as e:  # an inference option this model cannot serve (known once it is loaded)
        print(f"yolo-gfl: error: {e}", file=sys.stderr)
        return 2
    return 0


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
