"""One cell, in its own process: train one model with one seed (or take a checkpoint), evaluate it, time it.

``run_zoo`` starts ``python -m yolo_gfl.zoo --cell <spec.json>`` per cell, so that cells cannot leak into each other's
figures or memory; the cell writes its record (``cells/<key>.json``) only when every figure is in.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .measure import machine_name, peak_memory, time_cell
from .records import finite, jsonable, write_json
from .request import CELL_FORMAT, VAL_KEYS


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


def learning_curve(rows: list[list[str]]) -> list[float] | None:
    """Validation mAP50-95 after each epoch from Ultralytics' results.csv rows (header first); None when the training
    did not validate every epoch (``val=False``: only the last)."""
    header = [c.strip() for c in rows[0]]
    if "metrics/mAP50-95(B)" not in header:
        return None
    col = header.index("metrics/mAP50-95(B)")
    values = [float(r[col]) for r in rows[1:]]
    return values if len(values) > 1 and any(v > 0 for v in values[:-1]) else None


def evaluate_modes(model, spec: dict[str, Any], cell_dir: Path, val_args: dict[str, Any]) -> dict[str, Any]:
    """The cell's weights evaluated under each named inference mode of ``spec["inference_modes"]``: mAP50-95, mAP50,
    AP75 and the score-IoU Spearman figures per mode; a mode the model cannot serve gets ``{"skipped": reason}``."""
    from ..engine.inference import InferenceOptionError

    base = {k: v for k, v in val_args.items() if k not in ("nms", "soft_sigma", "vote_sigma", "vote_weight", "vote_iou")}
    out: dict[str, Any] = {}
    for name, options in spec["inference_modes"].items():
        try:
            metrics = model.val(data=spec["data"], imgsz=spec["imgsz"], split="val", calibration=True,
                                project=str(cell_dir), name=f"val-{name}", exist_ok=True, plots=False, verbose=False,
                                **base, **options)
        except InferenceOptionError as e:
            out[name] = {"skipped": str(e)}
            continue
        cal = metrics.calibration or {}
        top = cal.get("top_per_object") or {}
        out[name] = {"options": options, "mAP50-95": float(metrics.box.map), "mAP50": float(metrics.box.map50),
                     "AP75": float(metrics.box.map75), "spearman": finite(cal.get("spearman")),
                     "spearman_top": finite(top.get("spearman")), "top_pairs": top.get("count"),
                     "dets_per_image": cal.get("detections_per_image")}
    return out


def _val_args(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the evaluation's arguments, the training's) from a cell's spec: val/predict-time options go to the first only."""
    from ..engine.inference import split_inference_options

    inference, args = split_inference_options(dict(spec["args"]))
    val_args = {**{k: args[k] for k in VAL_KEYS if k in args}, **inference}
    if not isinstance(val_args.get("batch"), int) or val_args["batch"] < 1:
        val_args["batch"] = 16  # AutoBatch (-1) or a fraction is a training notion
    return val_args, args


def missing_modes(result: dict[str, Any], modes: dict[str, dict[str, Any]] | None) -> list[str]:
    """The requested inference modes a finished cell's result has no figures for."""
    have = result.get("inference") or {}
    return [name for name in (modes or {}) if name not in have]


def add_modes(spec: dict[str, Any]) -> dict[str, Any]:
    """A finished cell's result with the inference modes of ``spec["inference_modes"]`` it lacks evaluated on its
    weights, nothing trained again; its other figures stay as they were. Write and return it."""
    from ..model import YOLOGFL

    out = Path(spec["result"])
    result = json.loads(out.read_text())
    weights = Path(result["weights"])
    if not weights.is_file():
        raise FileNotFoundError(f"cell {spec['key']}: its weights {weights} are gone, so modes cannot be added; delete "
                                f"{out} to run the cell again")
    missing = {k: spec["inference_modes"][k] for k in missing_modes(result, spec["inference_modes"])}
    val_args, _ = _val_args(spec)
    added = evaluate_modes(YOLOGFL(str(weights)), {**spec, "inference_modes": missing}, Path(spec["cell_dir"]),
                           val_args)
    result["inference"] = {**(result.get("inference") or {}), **added}
    result["spec"]["inference_modes"] = {**(result["spec"].get("inference_modes") or {}), **missing}
    write_json(out, jsonable(result))
    return result


def run_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """Train (unless eval-only) and evaluate one cell, in this process; write and return its result JSON. With
    ``spec["add_modes"]`` the cell is finished and only the inference modes it lacks are evaluated (``add_modes``)."""
    if spec.get("add_modes"):
        return add_modes(spec)
    import torch
    from ultralytics.utils import __version__ as ultra_version
    from ultralytics.utils.torch_utils import get_flops, get_num_params, select_device

    from .. import __version__
    from ..model import YOLOGFL

    cell_dir, out = Path(spec["cell_dir"]), Path(spec["result"])
    val_args, args = _val_args(spec)
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
        weights = run_dir / "weights" / "best.pt" if spec.get("weights") == "best" else last
        if not weights.exists():
            weights = last
        result["train_s"] = time.perf_counter() - t0
        result["peak_mem_MB"], result["peak_mem_kind"] = peak_memory(device)  # training's peak, before evaluation
        if result.get("train_not_rerun"):
            result["peak_mem_MB"] = None  # that training's peak was never seen by this process
        csv = run_dir / "results.csv"
        if csv.exists():
            lines = [ln.split(",") for ln in csv.read_text().strip().splitlines()]
            col = [c.strip() for c in lines[0]].index("time")
            total = float(lines[-1][col])  # Ultralytics' cumulative seconds since the start of training
            result["epoch_s_with_val"] = total / max(1, len(lines) - 1)
            result["curve"] = learning_curve(lines)
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
    result["GFLOPs"] = finite(get_flops(net, spec["imgsz"]))

    metrics = model.val(data=spec["data"], imgsz=spec["imgsz"], split="val", coco=True, calibration=True,
                        project=str(cell_dir), name="val", exist_ok=True, plots=True, verbose=False, **val_args)
    if spec["mode"] == "eval":
        result["peak_mem_MB"], result["peak_mem_kind"] = peak_memory(device)
    box = metrics.box
    result.update({"mAP50": float(box.map50), "mAP75": float(box.map75), "mAP50-95": float(box.map)})
    coco = metrics.coco or {}
    result.update({"coco_AP": finite(coco.get("AP")), "coco_AP50": finite(coco.get("AP50")),
                   "coco_AP75": finite(coco.get("AP75")), "coco": coco})
    cal = metrics.calibration or {}
    result.update({"spearman": finite(cal.get("spearman")), "pearson": finite(cal.get("pearson")),
                   "calib_pairs": cal.get("count")})
    result["val_speed_ms"] = {k: finite(v) for k, v in (metrics.speed or {}).items()}
    px, prec = box.curves_results[0][0], box.curves_results[0][1]
    if len(prec):
        mean = prec.mean(0)  # the 'all classes' curve of Ultralytics' BoxPR_curve.png
        result["pr_curve"] = {"recall": [float(v) for v in px[::10]], "precision": [float(v) for v in mean[::10]]}
    else:
        result["pr_curve"] = None

    if spec.get("inference_modes"):
        result["inference"] = evaluate_modes(model, spec, cell_dir, val_args)

    result.update(time_cell(net, spec["imgsz"], int(spec["latency_runs"]),
                            int(spec.get("throughput_batch") or 1), device))
    result.update({"weights": str(weights), "val_dir": str(cell_dir / "val"), "cell_s": time.perf_counter() - t0,
                   "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
                   "versions": {"yolo_gfl": __version__, "ultralytics": ultra_version, "torch": torch.__version__,
                                "python": platform.python_version()},
                   "machine": machine_name(device), "complete": True})
    write_json(out, jsonable(result))
    return result


def cell_entry(argv: list[str] | None = None) -> int:
    """``python -m yolo_gfl.zoo --cell <spec.json>``: the process ``run_zoo`` starts for each cell."""
    ap = argparse.ArgumentParser(prog="python -m yolo_gfl.zoo", description="Run one zoo cell (used by run_zoo).")
    ap.add_argument("--cell", required=True, help="the cell's spec JSON, written by run_zoo")
    ns = ap.parse_args(argv)
    run_cell(json.loads(Path(ns.cell).read_text()))
    return 0
