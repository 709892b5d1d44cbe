"""Model zoo: train several detectors with one schedule and seeds, evaluate each the same way, and tabulate them.

    yolo-gfl zoo models=yolov8n.yaml,yolov8n-gfl.yaml data=synthetic-n500-v100-i160 epochs=10 seeds=0,1,2 imgsz=160
    yolo-gfl zoo eval_only=True models=a/weights/best.pt,b/weights/best.pt data=coco128.yaml imgsz=640

    from yolo_gfl.zoo import run_zoo
    rows = run_zoo(models=["yolov8n.yaml", "yolov8n-gfl.yaml"], data="coco128.yaml", epochs=10, seeds=(0, 1, 2),
                   imgsz=320, project="/abs/runs", name="zoo", batch=16, device="cpu")

A *cell* is one model trained with one seed. Every cell gets the same Ultralytics arguments (the schedule, data,
``imgsz`` and any extra train argument), ``seed=<its seed>`` and ``deterministic=True``, so models differ only in
themselves; Ultralytics' seeded loader then gives every model the same data order for a seed. Each cell then runs the
same evaluation on the val split of ``data``:

* Ultralytics' mAP50, mAP75 and mAP50-95 (``metrics.box``), from ``best.pt``;
* pycocotools' AP (``YOLOGFL.val(coco=True)``) and the score-IoU Spearman correlation (``calibration=True``);
* parameters and GFLOPs at the val ``imgsz`` (Ultralytics' ``get_num_params`` / ``get_flops``, unfused model);
* inference latency: the median over ``latency_runs`` timed forward passes of the fused model, batch 1, at ``imgsz``,
  after warm-up, on the cell's device (forward pass only: no pre-processing, no NMS); images/s from it, or from
  batches of ``throughput_batch`` when that is over 1;
* training time per epoch: the mean time of the training loop per epoch (Ultralytics' ``on_train_epoch_start`` to
  ``on_train_epoch_end``, validation excluded), and the total from ``results.csv`` (validation included);
* peak memory of the training: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the peak resident set size of the
  cell's process (every cell runs in its own process, ``python -m yolo_gfl.zoo --cell``, so cells cannot leak into
  each other's figures or memory).

Layout of a zoo folder (``<project>/<name>``)::

    zoo.json                   the request (models, data, schedule, seeds, arguments)
    cells/<model>-s<seed>.json one finished cell: every figure above, its settings, versions, paths
    cells/<model>-s<seed>.log  the cell's full output
    cells/<model>-s<seed>/     train/ (Ultralytics run: weights/best.pt, results.csv) and val/ (BoxPR_curve.png, ...)
    zoo.csv                    one row per cell
    zoo.md                     one row per model: mean and sample standard deviation over the seeds
    zoo_ap_latency.png         mAP50-95 against latency, one point per model (error bars: std over seeds)
    zoo_pr.png                 every model's precision-recall curve at IoU 0.5 (all classes, mean over seeds)

Resume: running the same request again skips every cell whose JSON is complete and made with the same settings; a
cell without its JSON (interrupted) is redone, continuing its training from ``last.pt`` when one is there. A cell
JSON made with other settings stops the run up front (choose another ``name=`` or delete the folder).
``eval_only=True`` takes checkpoints (``models=a.pt,b.pt``) and runs only the evaluation; each checkpoint's model
config and seed, read from it, label its row.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["run_zoo", "default_models", "ZooError", "ZooCellError", "ZOO_CSV_COLUMNS", "main_zoo"]

CELL_FORMAT = 1  # bump when a cell JSON's content changes: older cells then count as not done
BASE_MODELS = ("yolov8n.yaml", "yolov8n-vfl.yaml", "yolov8n-qfl.yaml", "yolov8n-gfl.yaml")
OPTIONAL_MODELS = ("yolov8n-vfnet.yaml",)  # included when yolo_gfl has the config
# Set by the zoo itself for every cell, so they cannot be given as train arguments.
RESERVED = {"model": "models", "data": "data", "epochs": "epochs", "imgsz": "imgsz", "seed": "seeds",
            "deterministic": None, "project": "project", "name": "name", "exist_ok": None, "resume": None,
            "mode": None, "task": None}
# Train arguments that also shape the evaluation (the rest concern training only).
VAL_KEYS = ("batch", "device", "half", "workers", "conf", "iou", "max_det", "agnostic_nms", "single_cls", "classes")
ZOO_CSV_COLUMNS = (
    "model", "seed", "mAP50", "mAP75", "mAP50-95", "coco_AP", "coco_AP50", "coco_AP75", "spearman", "pearson",
    "calib_pairs", "params", "GFLOPs", "latency_ms", "img_per_s", "cell_latency_ms", "threads", "epoch_s", "train_img_per_s",
    "epoch_s_with_val", "train_s", "peak_mem_MB", "peak_mem_kind", "epochs", "imgsz", "device", "source", "weights",
)


class ZooError(ValueError):
    """A zoo request that cannot run; the message names the problem and the fix."""


class ZooCellError(RuntimeError):
    """One or more cells failed; the message names them and their log files."""


def default_models(scale: str = "n") -> list[str]:
    """Stock YOLOv8 (BCE) and each IoU-aware variant yolo_gfl has, at ``scale``; ``-vfnet`` only where it exists."""
    from .configs import resolve_model_cfg

    names = list(BASE_MODELS)
    for name in OPTIONAL_MODELS:
        if resolve_model_cfg(name) != name:  # resolves into yolo_gfl's cfg/models only when the file is there
            names.append(name)
    return [n.replace("yolov8n", f"yolov8{scale}", 1) for n in names]


# ----------------------------------------------------------------------------------------------------------- checks


def _as_list(value: Any, what: str) -> list[str]:
    if isinstance(value, (str, os.PathLike)):
        items = [s.strip() for s in str(value).split(",")]
    elif isinstance(value, (list, tuple)):
        items = [str(s).strip() for s in value]
    else:
        raise ZooError(f"{what}={value!r} must be a list or a comma-separated string, e.g. {what}=a.yaml,b.yaml")
    items = [s for s in items if s]
    if not items:
        raise ZooError(f"{what}= is empty: name at least one, e.g. {what}=yolov8n.yaml,yolov8n-gfl.yaml")
    return items


def _parse_seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, (list, tuple)):
        items = list(seeds)
    elif isinstance(seeds, str):
        items = [s.strip() for s in seeds.split(",") if s.strip()]
    else:
        items = [seeds]
    out = []
    for s in items:
        if isinstance(s, bool) or not (isinstance(s, int) or (isinstance(s, str) and s.lstrip("-").isdigit())):
            raise ZooError(f"seeds={seeds!r}: seeds must be whole numbers, e.g. seeds=0,1,2 (got {s!r})")
        out.append(int(s))
    if not out:
        raise ZooError("seeds= is empty: give at least one, e.g. seeds=0 or seeds=0,1,2")
    if len(set(out)) != len(out):
        raise ZooError(f"seeds={seeds!r} repeats a seed; each seed once, e.g. seeds=0,1,2")
    return tuple(out)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ZooError(f"{name}={value!r} must be a whole number of at least 1, e.g. {name}=10")
    return value


def _resolve_data(data: Any) -> str:
    from ultralytics.utils import ROOT

    from .data import resolve_data

    if data is None or data == "":
        raise ZooError("data= is required: a data YAML (data=path/to/data.yaml, data=coco128.yaml) or the synthetic "
                       "set (data=synthetic-n500-v100-i160)")
    if Path(str(data)).exists():
        return str(Path(str(data)).resolve())
    if str(data).startswith("synthetic"):
        try:
            resolved = resolve_data(str(data))  # generates the set once, here, before any cell runs
        except (ValueError, TypeError) as e:
            raise ZooError(f"data={data}: {e}") from None
        if resolved != str(data):
            return str(Path(resolved).resolve())
    if (ROOT / "cfg" / "datasets" / Path(str(data)).name).exists():
        return str(data)  # one of Ultralytics' named data sets (it fetches the images on first use)
    raise ZooError(f"data={data} not found: give an existing data YAML, one of Ultralytics' dataset names "
                   "(e.g. coco128.yaml) or the synthetic set (e.g. data=synthetic-n500-v100-i160)")


def _check_train_args(train_kwargs: dict[str, Any], eval_only: bool) -> dict[str, Any]:
    from ultralytics.cfg import check_cfg
    from ultralytics.utils import DEFAULT_CFG_DICT

    from .options import GFLOptionError, split_options, validate_options

    for key in train_kwargs:
        if key in RESERVED:
            fix = f"use the zoo's own '{RESERVED[key]}='" if RESERVED[key] else "the zoo sets it for every cell"
            raise ZooError(f"'{key}' cannot be given as a train argument: {fix}.")
    inference, rest = _split_inference(train_kwargs)  # nms=soft, paper=True, ...: evaluation only, for every cell
    try:
        _check_inference(dict(inference), {})
    except ValueError as e:
        raise ZooError(str(e)) from None
    options, ultra = split_options(rest)
    if options and eval_only:
        raise ZooError(f"yolo_gfl option(s) {sorted(options)} apply to training; with eval_only=True each checkpoint "
                       "already carries its variant. Remove them.")
    try:
        validate_options(options)
    except GFLOptionError as e:
        raise ZooError(str(e)) from None
    unknown = [k for k in ultra if k not in DEFAULT_CFG_DICT]
    if unknown:
        from difflib import get_close_matches

        hints = [f"'{k}'" + (f" (similar: {get_close_matches(k, list(DEFAULT_CFG_DICT), n=2)})"
                             if get_close_matches(k, list(DEFAULT_CFG_DICT), n=2) else "") for k in unknown]
        raise ZooError(f"unknown argument(s) {', '.join(hints)}. The zoo takes models, data, epochs, seeds, imgsz, "
                       "project, name, eval_only, latency_runs, throughput_batch, jobs, Ultralytics' train arguments "
                       "('yolo-gfl cfg' lists them), yolo_gfl options ('yolo-gfl help') and the val options "
                       "nms=hard|soft, soft_sigma, pre_nms_topk, paper.")
    if eval_only:
        extra = [k for k in ultra if k not in VAL_KEYS]
        if extra:
            raise ZooError(f"argument(s) {extra} concern training; with eval_only=True only {list(VAL_KEYS)} apply.")
    try:
        check_cfg(dict(ultra))
    except (TypeError, ValueError) as e:
        raise ZooError(str(e)) from None
    if "pretrained" in ultra and isinstance(ultra["pretrained"], str) and not Path(ultra["pretrained"]).exists():
        raise ZooError(f"pretrained={ultra['pretrained']} does not exist: give the path of a checkpoint "
                       "(e.g. pretrained=../shared/weights/yolov8n.pt), or pretrained=False.")
    return dict(train_kwargs)


def _split_inference(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    from .engine.inference import split_inference_options

    return split_inference_options(kwargs)


def _check_inference(options: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    from .engine.inference import check_inference_options

    return check_inference_options(options, args)


def _checkpoint_facts(path: Path) -> tuple[str, int | None]:
    """(model label, training seed) read from a checkpoint: its model config's stem and ``train_args['seed']``."""
    from ultralytics.utils.patches import torch_load

    try:
        ckpt = torch_load(str(path), map_location="cpu")
        model = ckpt.get("ema") or ckpt["model"]
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same answer
        raise ZooError(f"model={path} is not a readable Ultralytics checkpoint ({e}); give a trained .pt file") from None
    yaml_file = (getattr(model, "yaml", None) or {}).get("yaml_file") or path.stem
    seed = (ckpt.get("train_args") or {}).get("seed")
    return Path(str(yaml_file)).stem, seed if isinstance(seed, int) else None


def _check_model(model: str, eval_only: bool) -> str:
    """Raise ZooError unless ``model`` is a model config yolo_gfl or Ultralytics knows, or an existing checkpoint."""
    from .configs import load_model_cfg, model_cfg_names

    if model.endswith(".pt"):
        if not Path(model).is_file():
            raise ZooError(f"model {model} does not exist: give the path of a checkpoint, e.g. runs/x/weights/best.pt")
        return str(Path(model).resolve())
    if eval_only:
        raise ZooError(f"eval_only=True evaluates checkpoints, and {model} is not one: give .pt files "
                       "(e.g. models=runs/a/weights/best.pt,runs/b/weights/best.pt), or drop eval_only to train it.")
    try:
        load_model_cfg(model)
    except Exception:  # noqa: BLE001 - Ultralytics raises several kinds for a name it cannot find
        names = ", ".join(model_cfg_names())
        raise ZooError(f"model '{model}' is not a model config yolo_gfl or Ultralytics knows. yolo_gfl's: {names} "
                       "at any scale (e.g. yolov8n-gfl.yaml); Ultralytics' own (e.g. yolov8n.yaml); a YAML path; "
                       "or a .pt checkpoint.") from None
    return model


# ------------------------------------------------------------------------------------------------------------- cells


@dataclass
class Cell:
    """One model with one seed: its key (file names), label (table row), and the settings that define it (spec)."""

    key: str
    label: str
    seed: int | None
    spec: dict[str, Any] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _build_cells(models: list[str], seeds: tuple[int, ...], eval_only: bool, data: str, epochs: int, imgsz: int,
                 train_kwargs: dict[str, Any], given: list[str]) -> list[Cell]:
    cells: list[Cell] = []
    args = {k: _jsonable(v) for k, v in sorted(train_kwargs.items())}
    if eval_only:
        facts = [_checkpoint_facts(Path(m)) for m in models]
        labels = [label for label, _ in facts]
        for i, (model, (label, seed)) in enumerate(zip(models, facts)):
            clash = sum(1 for j, f in enumerate(facts) if f == (label, seed)) > 1
            if clash:  # the same variant and seed twice: tell them apart by their run folder, then by position
                run = Path(model).parent.parent.name if Path(model).parent.name == "weights" else Path(model).stem
                label = f"{label}-{run}" if run and run != label else f"{label}-{i}"
                labels[i] = label
            st = Path(model).stat()
            spec = {"format": CELL_FORMAT, "mode": "eval", "model": model, "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns, "data": data, "imgsz": imgsz, "args": args}
            cells.append(Cell(f"{label}-s{seed if seed is not None else 'x'}", label, seed, spec))
    else:
        labels = [Path(g).stem for g in given]
        for i, label in enumerate(labels):
            if labels.count(label) > 1:
                labels[i] = f"{label}-{i}"
        for seed in seeds:  # seed-major: a partial matrix holds every model at the first seeds
            for model, label in zip(models, labels):
                spec = {"format": CELL_FORMAT, "mode": "train", "model": model, "data": data, "epochs": epochs,
                        "imgsz": imgsz, "seed": seed, "args": args}
                cells.append(Cell(f"{label}-s{seed}", label, seed, spec))
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ZooError(f"cells {dup} would share a folder: the same model is listed twice; list each once.")
    return cells


def _read_cell(path: Path) -> dict | None:
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and result.get("complete") is True else None


def _write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temporary file, then rename), so a killed process never leaves half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=False, default=str))
    os.replace(tmp, path)


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _peak_memory(device) -> tuple[float, str]:
    """(MB, kind): CUDA's peak allocated memory on a GPU, else this process's peak resident set size."""
    import torch

    if device is not None and getattr(device, "type", "cpu") == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = max(u.ru_maxrss for u in usage)  # this process, or its largest finished child (data-loader workers)
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return rss * scale / 2**20, "cpu_peak_rss"


def _time_forward(net, x, runs: int, warmup: int, device) -> list[float]:
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            sync()
            t = time.perf_counter()
            net(x)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - t) * 1000)
    return times


def _training_state(last: Path, spec: dict) -> str | None:
    """``"unfinished"`` or ``"finished"`` when ``last.pt`` is a training of this cell (same epochs and seed; Ultralytics
    marks a finished one epoch -1), else None (absent, unreadable, or another cell's)."""
    from ultralytics.utils.patches import torch_load

    if not last.exists():
        return None
    try:
        ckpt = torch_load(str(last), map_location="cpu")
    except Exception:  # noqa: BLE001
        return None
    args = ckpt.get("train_args") or {}
    if args.get("epochs") != spec["epochs"] or args.get("seed") != spec["seed"]:
        return None
    epoch = ckpt.get("epoch")
    if epoch == -1:
        return "finished"
    return "unfinished" if isinstance(epoch, int) and epoch >= 0 else None


def run_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """Train (unless eval-only) and evaluate one cell, in this process; write and return its result JSON."""
    import torch
    from ultralytics.utils import __version__ as ultra_version
    from ultralytics.utils.torch_utils import get_flops, get_num_params, select_device

    from . import __version__
    from .model import YOLOGFL

    cell_dir, out = Path(spec["cell_dir"]), Path(spec["result"])
    inference, args = _split_inference(dict(spec["args"]))  # val/predict-time options go to the evaluation only
    val_args = {**{k: args[k] for k in VAL_KEYS if k in args}, **inference}
    if not isinstance(val_args.get("batch"), int) or val_args["batch"] < 1:
        val_args["batch"] = 16  # AutoBatch (-1) or a fraction is a training notion
    device = select_device(args.get("device", ""), verbose=False)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result: dict[str, Any] = {"format": CELL_FORMAT, "key": spec["key"], "model": spec["label"], "seed": spec["seed"],
                              "source": spec["model"], "epochs": spec.get("epochs"), "imgsz": spec["imgsz"],
                              "device": str(device), "spec": {k: spec[k] for k in spec if k not in ("result",)}}
    epoch_times: list[float] = []
    t0 = time.perf_counter()
    if spec["mode"] == "train":
        run_dir = cell_dir / "train"
        last = run_dir / "weights" / "last.pt"
        marks: dict[str, float] = {}

        def epoch_start(trainer):
            result["train_images"] = len(trainer.train_loader.dataset)
            marks["t"] = time.perf_counter()

        def epoch_end(trainer):
            epoch_times.append(time.perf_counter() - marks.pop("t", time.perf_counter()))

        state = _training_state(last, spec)
        if state == "unfinished":
            print(f"[zoo] {spec['key']}: resuming the interrupted training from {last}", flush=True)
            model = YOLOGFL(str(last))
            model.add_callback("on_train_epoch_start", epoch_start)
            model.add_callback("on_train_epoch_end", epoch_end)
            model.train(resume=True, data=spec["data"])
            result["resumed"] = True
        elif state == "finished" and (run_dir / "results.csv").exists():
            result["resumed"] = True  # the training ended but the evaluation did not: evaluate it
            result["train_not_rerun"] = True
        else:
            shutil.rmtree(run_dir, ignore_errors=True)  # a stale, unusable partial run
            model = YOLOGFL(spec["model"])
            model.add_callback("on_train_epoch_start", epoch_start)
            model.add_callback("on_train_epoch_end", epoch_end)
            train_args = {"plots": False, **args}
            model.train(data=spec["data"], epochs=spec["epochs"], imgsz=spec["imgsz"], seed=spec["seed"],
                        deterministic=True, project=str(cell_dir), name="train", exist_ok=True, **train_args)
        weights = run_dir / "weights" / "best.pt"
        if not weights.exists():
            weights = last
        result["train_s"] = time.perf_counter() - t0
        result["peak_mem_MB"], result["peak_mem_kind"] = _peak_memory(device)  # training's peak, before evaluation
        if result.get("train_not_rerun"):
            result["peak_mem_MB"] = None  # that training's peak was never seen by this process
        csv = run_dir / "results.csv"
        if csv.exists():
            lines = [ln.split(",") for ln in csv.read_text().strip().splitlines()]
            col = [c.strip() for c in lines[0]].index("time")
            total = float(lines[-1][col])  # Ultralytics' cumulative seconds since the start of training
            result["epoch_s_with_val"] = total / max(1, len(lines) - 1)
        result["epoch_times_s"] = epoch_times
        result["epoch_s"] = statistics.fmean(epoch_times) if epoch_times else None
        if result["epoch_s"] and result.get("train_images"):
            result["train_img_per_s"] = result["train_images"] / result["epoch_s"]
    else:
        weights = Path(spec["model"])

    # Parameters and GFLOPs of the unfused model, as Ultralytics' model.info() reports them.
    model = YOLOGFL(str(weights))
    net = model.model
    result["params"] = int(get_num_params(net))
    result["GFLOPs"] = _finite(get_flops(net, spec["imgsz"]))

    metrics = model.val(data=spec["data"], imgsz=spec["imgsz"], split="val", coco=True, calibration=True,
                        project=str(cell_dir), name="val", exist_ok=True, plots=True, verbose=False, **val_args)
    if spec["mode"] == "eval":
        result["peak_mem_MB"], result["peak_mem_kind"] = _peak_memory(device)
    box = metrics.box
    result.update({"mAP50": float(box.map50), "mAP75": float(box.map75), "mAP50-95": float(box.map)})
    coco = metrics.coco or {}
    result.update({"coco_AP": _finite(coco.get("AP")), "coco_AP50": _finite(coco.get("AP50")),
                   "coco_AP75": _finite(coco.get("AP75")), "coco": coco})
    cal = metrics.calibration or {}
    result.update({"spearman": _finite(cal.get("spearman")), "pearson": _finite(cal.get("pearson")),
                   "calib_pairs": cal.get("count")})
    result["val_speed_ms"] = {k: _finite(v) for k, v in (metrics.speed or {}).items()}
    px, prec = box.curves_results[0][0], box.curves_results[0][1]
    if len(prec):
        mean = prec.mean(0)  # the 'all classes' curve of Ultralytics' BoxPR_curve.png
        result["pr_curve"] = {"recall": [float(v) for v in px[::10]], "precision": [float(v) for v in mean[::10]]}
    else:
        result["pr_curve"] = None

    # Latency: the fused model's forward pass, batch 1, at the val size, on the cell's device.
    import copy

    fused = copy.deepcopy(net).float().to(device).fuse(verbose=False).eval()
    runs, warmup = int(spec["latency_runs"]), max(3, int(spec["latency_runs"]) // 10)
    x = torch.rand(1, 3, spec["imgsz"], spec["imgsz"], device=device)
    times = _time_forward(fused, x, runs, warmup, device)
    result["latency_ms"] = statistics.median(times)
    result["latency_iqr_ms"] = (statistics.quantiles(times, n=4)[2] - statistics.quantiles(times, n=4)[0]
                                if len(times) >= 4 else None)
    b = int(spec.get("throughput_batch") or 1)
    if b > 1:
        xb = torch.rand(b, 3, spec["imgsz"], spec["imgsz"], device=device)
        tb = statistics.median(_time_forward(fused, xb, max(3, runs // 5), 2, device))
        result["img_per_s"] = b * 1000 / tb
    else:
        result["img_per_s"] = 1000 / result["latency_ms"]
    result["throughput_batch"] = b
    result["threads"] = torch.get_num_threads()
    result.update({"weights": str(weights), "val_dir": str(cell_dir / "val"), "cell_s": time.perf_counter() - t0,
                   "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
                   "versions": {"yolo_gfl": __version__, "ultralytics": ultra_version, "torch": torch.__version__,
                                "python": platform.python_version()},
                   "machine": _machine(device), "complete": True})
    _write_json(out, _jsonable(result))
    return result


def _machine(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs"


# ------------------------------------------------------------------------------------------------------- aggregation


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None, int]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None, 0
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None), len(vals)


def _fmt(mean: float | None, std: float | None, scale: float = 1.0, digits: int = 1) -> str:
    if mean is None:
        return "n/a"
    s = f"{mean * scale:.{digits}f}"
    return s + (f" ± {std * scale:.{digits}f}" if std else "")  # no spread shown where there is none


MD_COLUMNS = (  # (cell field, header, scale, digits)
    ("mAP50", "mAP50", 100, 1),
    ("mAP75", "mAP75", 100, 1),
    ("mAP50-95", "mAP50-95", 100, 1),
    ("coco_AP", "COCO AP", 100, 1),
    ("spearman", "Spearman", 1, 3),
    ("params", "params (M)", 1e-6, 3),
    ("GFLOPs", "GFLOPs", 1, 2),
    ("latency_ms", "latency (ms)", 1, 1),
    ("img_per_s", "images/s", 1, 1),
    ("epoch_s", "epoch (s)", 1, 1),
    ("train_img_per_s", "train img/s", 1, 1),
    ("peak_mem_MB", "peak mem (MB)", 1, 0),
)


def aggregate(results: list[dict], folder: Path, request: dict[str, Any], speed: dict | None = None) -> list[dict]:
    """Write zoo.csv (per cell), zoo.md (per model: mean ± sample std over seeds) and the two plots; return the rows."""
    import csv

    speed = speed or {}
    rows = []
    for r in results:
        row = {c: r.get(c) for c in ZOO_CSV_COLUMNS}
        row["cell_latency_ms"] = r.get("latency_ms")
        if r["model"] in speed:  # the interleaved measurement of all models in one process (see measure_speed)
            row.update({k: speed[r["model"]][k] for k in ("latency_ms", "img_per_s", "threads")})
        rows.append(row)
    with open(folder / "zoo.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ZOO_CSV_COLUMNS)
        w.writeheader()
        w.writerows(rows)

    labels = list(dict.fromkeys(r["model"] for r in rows))
    by_model = {m: [r for r in rows if r["model"] == m] for m in labels}
    stats = {m: {c: _mean_std([_finite(r.get(c)) for r in rs]) for c, *_ in MD_COLUMNS} for m, rs in by_model.items()}
    base = labels[0] if labels else None
    heads = ["model", "seeds"] + [h for _, h, _, _ in MD_COLUMNS] + [f"Δ mAP50-95 vs {base}"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join(["---"] + ["--:"] * (len(heads) - 1)) + "|"]
    for m in labels:
        cells = [m, ",".join(str(r["seed"]) for r in by_model[m])]
        cells += [_fmt(*stats[m][c][:2], scale, digits) for c, _, scale, digits in MD_COLUMNS]
        cells.append(_delta(stats[base]["mAP50-95"], stats[m]["mAP50-95"]) if m != base else "—")
        lines.append("| " + " | ".join(cells) + " |")
    first = results[0] if results else {}
    kinds = sorted({str(r.get("peak_mem_kind")) for r in results})
    side_by_side = max(int(r.get("spec", {}).get("concurrent_cells") or 1) for r in results)  # each cell's own record
    notes = [
        "",
        f"Data: `{request.get('data')}` (val split); "
        + (f"epochs {request.get('epochs')}, " if request.get("epochs") else "") + f"imgsz {request.get('imgsz')}, "
        f"seeds {request.get('seeds')}; train arguments {request.get('train_args') or '{}'}"
        + (" (eval_only: existing checkpoints)" if request.get("eval_only") else "") + ".",
        "Each entry is the mean ± sample standard deviation (n-1) over the seeds (a single value where one seed); "
        "the Δ column is the difference of the means ± its standard error, in points. "
        "mAP50/mAP75/mAP50-95: Ultralytics' val metrics, in %; COCO AP: pycocotools' AP@[.50:.95], in %; "
        "Spearman: rank correlation of detection score with IoU to its best same-class ground truth; "
        "params and GFLOPs: unfused model at the val imgsz; latency: median forward pass (no NMS) of the fused model, "
        f"batch 1, {'all models measured in one process, interleaved round by round' if speed else 'measured in each cell'}; images/s: {_throughput_note(first.get('throughput_batch'))}; "
        f"epoch: mean training-loop time per epoch (validation excluded), train img/s: training images per second of "
        f"it; peak mem: {', '.join(kinds)} of {'evaluation' if request.get('eval_only') else 'training'}"
        + (f"; cells ran up to {side_by_side} at a time, so the epoch times and peak RSS were taken side by side"
           if side_by_side > 1 else "") + ".",
        f"Machine: {first.get('machine')}, device {first.get('device')}, {first.get('threads')} threads; "
        f"versions {first.get('versions')}; written {datetime.now().astimezone().isoformat(timespec='seconds')}.",
    ]
    (folder / "zoo.md").write_text("\n".join(lines + notes) + "\n")
    _plots(results, labels, stats, folder)
    return rows


def measure_speed(weights: dict[str, str], imgsz: int, device: str | None, runs: int, throughput_batch: int = 1,
                  ) -> dict[str, dict[str, Any]]:
    """Latency (and images/s) of each model, all in this process, interleaved round by round.

    Cells run one after another, so their own latency figures meet whatever else the machine did at the time; here
    every model is timed in turn within each round, so a change in load hits all of them alike (the method of
    benchmarks/overhead.py). Returns ``{label: {latency_ms, latency_iqr_ms, img_per_s, threads, runs}}``.
    """
    import copy

    import torch
    from ultralytics.utils.torch_utils import select_device

    from .model import YOLOGFL

    dev = select_device(device or "", verbose=False)  # also sets torch's CPU threads as Ultralytics does in training
    nets = {m: copy.deepcopy(YOLOGFL(w).model).float().to(dev).fuse(verbose=False).eval() for m, w in weights.items()}
    x = torch.rand(1, 3, imgsz, imgsz, device=dev)
    times: dict[str, list[float]] = {m: [] for m in nets}
    for m, net in nets.items():
        _time_forward(net, x, 0, max(3, runs // 10), dev)  # warm-up
    for _ in range(runs):
        for m, net in nets.items():
            times[m] += _time_forward(net, x, 1, 0, dev)
    out = {}
    for m, t in times.items():
        q = statistics.quantiles(t, n=4) if len(t) >= 4 else None
        out[m] = {"latency_ms": statistics.median(t), "latency_iqr_ms": q[2] - q[0] if q else None,
                  "img_per_s": 1000 / statistics.median(t), "threads": torch.get_num_threads(), "runs": runs,
                  "device": str(dev), "weights": weights[m]}
    if throughput_batch > 1:
        xb = torch.rand(throughput_batch, 3, imgsz, imgsz, device=dev)
        tb: dict[str, list[float]] = {m: [] for m in nets}
        for _ in range(max(3, runs // 5)):
            for m, net in nets.items():
                tb[m] += _time_forward(net, xb, 1, 1, dev)
        for m in nets:
            out[m]["img_per_s"] = throughput_batch * 1000 / statistics.median(tb[m])
    return out


def _throughput_note(batch: int | None) -> str:
    return "1000 / latency" if (batch or 1) == 1 else f"forward passes at batch {batch}"


def _delta(base: tuple, other: tuple) -> str:
    """Difference of two means in points, with its standard error sqrt(s1^2/n1 + s2^2/n2) where both have a spread."""
    (b, bs, bn), (v, vs, vn) = base, other
    if b is None or v is None:
        return "n/a"
    se = math.sqrt(bs**2 / bn + vs**2 / vn) if bs is not None and vs is not None else None
    return f"{(v - b) * 100:+.1f}" + (f" ± {se * 100:.1f}" if se is not None else "")


def _plots(results: list[dict], labels: list[str], stats: dict, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for m in labels:
        (lat, lat_sd, _), (ap, ap_sd, _) = stats[m]["latency_ms"], stats[m]["mAP50-95"]
        if lat is None or ap is None:
            continue
        ax.errorbar(lat, ap * 100, xerr=lat_sd or 0, yerr=(ap_sd or 0) * 100, fmt="o", capsize=3, label=m)
        ax.annotate(m, (lat, ap * 100), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("latency per image, batch 1 (ms)")
    ax.set_ylabel("mAP50-95 (%)")
    ax.set_title("accuracy against latency (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    if labels:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "zoo_ap_latency.png", dpi=150)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for m in labels:
        curves = [r["pr_curve"] for r in results if r["model"] == m and r.get("pr_curve")]
        if not curves:
            continue
        recall = np.asarray(curves[0]["recall"])
        precision = np.mean([c["precision"] for c in curves], 0)
        ap50 = stats[m]["mAP50"][0]
        ax.plot(recall, precision, label=f"{m} (mAP50 {ap50 * 100:.1f})" if ap50 is not None else m)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("precision-recall at IoU 0.5, all classes (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "zoo_pr.png", dpi=150)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------------------ driver


def run_zoo(
    models: Any = None,
    data: Any = None,
    epochs: int = 10,
    seeds: Any = (0,),
    imgsz: int = 640,
    project: str | os.PathLike | None = None,
    name: str = "zoo",
    eval_only: bool = False,
    latency_runs: int = 50,
    throughput_batch: int = 1,
    jobs: int = 1,
    verbose: bool = True,
    **train_kwargs: Any,
) -> list[dict]:
    """Train and evaluate every (model, seed) cell not done yet; write zoo.csv, zoo.md and plots; return the cell rows.

    Args:
        models: model configs (or checkpoints), a list or comma-separated string; default: :func:`default_models`.
        data: data YAML, Ultralytics dataset name, or synthetic set name (``synthetic-n500-v100-i160``).
        epochs, imgsz: the schedule every cell trains with; ``imgsz`` is also the evaluation and latency size.
        seeds: one or more ints; each model trains once per seed (ignored with ``eval_only``: read from checkpoints).
        project, name: the zoo folder is ``<project>/<name>`` (default ``./runs/zoo``); rerunning resumes it.
        eval_only: the models are checkpoints to evaluate, nothing is trained.
        latency_runs: timed forward passes per cell (median reported; a tenth, at least 3, warm up first).
        throughput_batch: images/s measured at this batch size (1: from the batch-1 latency).
        jobs: cells run at once, each in its own process. On CPU Ultralytics trains with ``cpu_count - 1`` threads
            (1 on a 2-core machine), so ``jobs=2`` there uses both cores and halves the wall time; the metrics do not
            change (each cell is seeded and deterministic), but the cells' own timings are then taken side by side.
            The table's latency comes from the interleaved pass after all cells, which always runs alone.
        verbose: print one progress line per cell (each cell's full output goes to ``cells/<key>.log``).
        **train_kwargs: Ultralytics train arguments (``batch``, ``device``, ``lr0``, ``pretrained``, ...) and yolo_gfl
            options, identical for every cell; with ``eval_only`` only the evaluation ones (``batch``, ``device``, ...).

    Returns:
        One dict per cell (the zoo.csv columns), in run order (seed-major).

    Raises:
        ZooError: bad input (before anything runs), or a zoo folder holding cells made with other settings.
        ZooCellError: after every other cell ran and the table was written, if some cells failed.
    """
    if not isinstance(eval_only, bool):
        raise ZooError(f"eval_only={eval_only!r} must be True or False")
    given = _as_list(models if models is not None else default_models(), "models")
    seeds_t = _parse_seeds(seeds)
    epochs = _check_positive_int("epochs", epochs)
    imgsz = _check_positive_int("imgsz", imgsz)
    latency_runs = _check_positive_int("latency_runs", latency_runs)
    throughput_batch = _check_positive_int("throughput_batch", throughput_batch)
    jobs = _check_positive_int("jobs", jobs)
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ZooError(f"name={name!r} must be a plain folder name, e.g. name=zoo (use project= for the parent path)")
    train_kwargs = _check_train_args(train_kwargs, eval_only)
    checked = [_check_model(m, eval_only) for m in given]
    data_path = _resolve_data(data)
    cells = _build_cells(checked, seeds_t, eval_only, data_path, epochs, imgsz, train_kwargs, given)

    folder = (Path(project) if project is not None else Path("runs")).expanduser().resolve() / name
    cell_root = folder / "cells"
    stale = []
    for cell in cells:
        done = _read_cell(cell_root / f"{cell.key}.json")
        if done is not None and done.get("spec", {}).get("format") == CELL_FORMAT:
            mine = {k: done["spec"].get(k) for k in cell.spec}
            if _jsonable(mine) != _jsonable(cell.spec):
                diff = sorted(k for k in cell.spec if _jsonable(mine.get(k)) != _jsonable(cell.spec[k]))
                stale.append(f"{cell.key} (differs in {diff})")
    if stale:
        raise ZooError(f"{folder} holds cells made with other settings: {'; '.join(stale)}. Use another name= for "
                       "this request, or delete that folder to redo it.")
    cell_root.mkdir(parents=True, exist_ok=True)
    request = {"models": given, "data": data_path, "epochs": epochs, "imgsz": imgsz, "seeds": list(seeds_t),
               "eval_only": eval_only, "train_args": _jsonable(train_kwargs), "latency_runs": latency_runs,
               "throughput_batch": throughput_batch, "jobs": jobs, "cells": [c.key for c in cells]}
    if eval_only:
        request["seeds"] = sorted({c.seed for c in cells if c.seed is not None})
        request["epochs"] = None  # nothing is trained
    _write_json(folder / "zoo.json", request)

    failed: list[str] = []
    pending = list(enumerate(cells, 1))
    running: list[tuple[int, Cell, subprocess.Popen, Any, float]] = []  # (number, cell, process, log file, start)

    def start(i: int, cell: Cell) -> None:
        result_file = cell_root / f"{cell.key}.json"
        spec = {**cell.spec, "key": cell.key, "label": cell.label, "seed": cell.seed, "latency_runs": latency_runs,
                "throughput_batch": throughput_batch, "concurrent_cells": jobs, "cell_dir": str(cell_root / cell.key),
                "result": str(result_file)}
        spec_file = cell_root / f"{cell.key}.spec.json"
        _write_json(spec_file, spec)
        log = cell_root / f"{cell.key}.log"
        if verbose:
            print(f"[zoo] {i}/{len(cells)} {cell.key}: {'evaluating' if eval_only else 'training'} (log: {log})",
                  flush=True)
        f = open(log, "a")
        f.write(f"\n===== {datetime.now().astimezone().isoformat(timespec='seconds')} cell {cell.key}\n")
        f.flush()
        proc = subprocess.Popen([sys.executable, "-m", "yolo_gfl.zoo", "--cell", str(spec_file)],
                                stdout=f, stderr=subprocess.STDOUT)
        running.append((i, cell, proc, f, time.perf_counter()))

    def finish(i: int, cell: Cell, code: int, seconds: float) -> None:
        log = cell_root / f"{cell.key}.log"
        done = _read_cell(cell_root / f"{cell.key}.json")
        if code != 0 or done is None:
            failed.append(f"{cell.key} (exit {code}; see {log})")
            if verbose:
                print(f"[zoo] {i}/{len(cells)} {cell.key}: FAILED with exit code {code}; see {log}", flush=True)
        elif verbose:
            print(f"[zoo] {i}/{len(cells)} {cell.key}: {seconds:.0f}s, mAP50-95 "
                  f"{done['mAP50-95'] * 100:.1f}, COCO AP {_fmt(done.get('coco_AP'), None, 100)}, "
                  f"Spearman {_fmt(done.get('spearman'), None, 1, 3)}, latency {done['latency_ms']:.1f} ms", flush=True)

    try:
        while pending or running:
            while pending and len(running) < jobs:
                i, cell = pending.pop(0)
                if _read_cell(cell_root / f"{cell.key}.json") is not None:
                    if verbose:
                        print(f"[zoo] {i}/{len(cells)} {cell.key}: done before, kept "
                              f"({cell_root / f'{cell.key}.json'})", flush=True)
                    continue
                start(i, cell)
            for entry in [r for r in running if r[2].poll() is not None]:
                running.remove(entry)
                i, cell, proc, f, t = entry
                f.close()
                finish(i, cell, proc.returncode, time.perf_counter() - t)
            if running:
                time.sleep(0.2)
    except BaseException:  # Ctrl-C or a kill of the driver: stop the running cells too; their JSONs are never written
        for _, _, proc, f, _ in running:
            proc.terminate()
        for _, _, proc, f, _ in running:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            f.close()
        raise

    results = [r for c in cells if (r := _read_cell(cell_root / f"{c.key}.json")) is not None]
    speed = None
    if results:
        weights = {}
        for r in results:  # one checkpoint per model: latency depends on the architecture, not the seed
            weights.setdefault(r["model"], r["weights"])
        if verbose:
            print(f"[zoo] timing {len(weights)} models interleaved ({latency_runs} rounds)...", flush=True)
        try:
            speed = measure_speed(weights, imgsz, train_kwargs.get("device"), latency_runs, throughput_batch)
            _write_json(folder / "speed.json", _jsonable(speed))
        except Exception as e:  # noqa: BLE001 - the cells' own latency figures remain
            print(f"[zoo] interleaved timing failed ({e}); the table uses each cell's own latency", flush=True)
    rows = aggregate(results, folder, request, speed) if results else []
    if verbose and results:
        print(f"\n{(folder / 'zoo.md').read_text()}\n[zoo] table: {folder / 'zoo.md'} and zoo.csv", flush=True)
    if failed:
        raise ZooCellError(f"{len(failed)} of {len(cells)} cells failed: {'; '.join(failed)}. Fix the cause and run "
                           "the same command again: finished cells are kept.")
    return rows


# ---------------------------------------------------------------------------------------------------------- commands


def main_zoo(args: dict[str, Any]) -> int:
    """``yolo-gfl zoo key=value ...`` (parsed by the CLI): run the zoo, print the table; exit code 0, 1 or 2."""
    args = dict(args)
    args.pop("mode", None)
    if "model" in args:
        print("yolo-gfl: error: the zoo takes 'models=' (a comma-separated list), not 'model='.", file=sys.stderr)
        return 2
    if "models" in args and isinstance(args["models"], (int, float)):
        args["models"] = str(args["models"])
    try:
        run_zoo(**args)
    except ZooError as e:
        print(f"yolo-gfl: error: {e}", file=sys.stderr)
        return 2
    except ZooCellError as e:
        print(f"yolo-gfl: zoo: {e}", file=sys.stderr)
        return 1
    return 0


def _cell_entry(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m yolo_gfl.zoo", description="Run one zoo cell (used by run_zoo).")
    ap.add_argument("--cell", required=True, help="the cell's spec JSON, written by run_zoo")
    ns = ap.parse_args(argv)
    run_cell(json.loads(Path(ns.cell).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(_cell_entry())
