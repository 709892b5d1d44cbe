"""A zoo request and its checks: every argument is checked and the cells it asks for are listed before anything runs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .records import jsonable, read_cell

WEIGHTS = ("last", "best")  # the final weights, or Ultralytics' best.pt (picked on the split the zoo reports)
CELL_FORMAT = 1  # bump when a cell JSON's content changes: older cells then count as not done
BASE_MODELS = ("yolov8n.yaml", "yolov8n-vfl.yaml", "yolov8n-qfl.yaml", "yolov8n-gfl.yaml")
OPTIONAL_MODELS = ("yolov8n-vfnet.yaml",)  # included when yolo_gfl has the config
# Set by the zoo itself for every cell, so they cannot be given as train arguments.
RESERVED = {"model": "models", "data": "data", "epochs": "epochs", "imgsz": "imgsz", "seed": "seeds",
            "deterministic": None, "project": "project", "name": "name", "exist_ok": None, "resume": None,
            "mode": None, "task": None}
# Train arguments that also shape the evaluation (the rest concern training only).
VAL_KEYS = ("batch", "device", "half", "workers", "conf", "iou", "max_det", "agnostic_nms", "single_cls", "classes")


class ZooError(ValueError):
    """A zoo request that cannot run; the message names the problem and the fix."""


class ZooCellError(RuntimeError):
    """One or more cells failed; the message names them and their log files."""


FAMILIES = ("yolov8", "yolo11")  # the Ultralytics families yolo_gfl ships variants of
_FAMILY = re.compile(rf"^({'|'.join(FAMILIES)})([nslmx]?)$")


def default_models(scale: str = "n", family: str = "yolov8") -> list[str]:
    """Stock ``family`` (BCE) and each IoU-aware variant yolo_gfl has, at ``scale``; ``-vfnet`` only where it exists."""
    from ..configs import resolve_model_cfg

    names = [n.replace("yolov8n", f"{family}{scale}", 1) for n in (*BASE_MODELS, *OPTIONAL_MODELS)]
    optional = names[len(BASE_MODELS):]  # resolves into yolo_gfl's cfg/models only when the file is there
    return names[: len(BASE_MODELS)] + [n for n in optional if resolve_model_cfg(n) != n]


def _expand_family(models: Any) -> Any:
    """``models=yolo11`` (or ``yolo11s``, ``yolov8m``): stock and every variant of that family at that scale."""
    match = _FAMILY.match(models.strip()) if isinstance(models, str) else None
    return default_models(match.group(2) or "n", match.group(1)) if match else models


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

    from ..data import resolve_data

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

    from ..options import GFLOptionError, split_options, validate_options

    for key in train_kwargs:
        if key in RESERVED:
            fix = f"use the zoo's own '{RESERVED[key]}='" if RESERVED[key] else "the zoo sets it for every cell"
            raise ZooError(f"'{key}' cannot be given as a train argument: {fix}.")
    from ..engine.inference import check_inference_options, split_inference_options

    inference, rest = split_inference_options(train_kwargs)  # nms=soft, paper=True, ...: every cell's evaluation
    try:
        check_inference_options(dict(inference), {})
    except ValueError as e:
        raise ZooError(str(e)) from None
    options, ultra = split_options(rest)
    if options and eval_only:
        raise ZooError(f"yolo_gfl option(s) {sorted(options)} apply to training; with eval_only=True each checkpoint "
                       "already carries its variant. Remove them.")
    try:
        validate_options(options, overrides=True)
    except GFLOptionError as e:
        raise ZooError(str(e)) from None
    unknown = [k for k in ultra if k not in DEFAULT_CFG_DICT]
    if unknown:
        from difflib import get_close_matches

        hints = [f"'{k}'" + (f" (similar: {get_close_matches(k, list(DEFAULT_CFG_DICT), n=2)})"
                             if get_close_matches(k, list(DEFAULT_CFG_DICT), n=2) else "") for k in unknown]
        raise ZooError(f"unknown argument(s) {', '.join(hints)}. The zoo takes models, data, epochs, seeds, imgsz, "
                       "project, name, eval_only, latency_runs, throughput_batch, jobs, weights, modes, Ultralytics' "
                       "train arguments ('yolo-gfl cfg' lists them), yolo_gfl options ('yolo-gfl help') and the val "
                       "options nms=hard|soft|vote, soft_sigma, vote_sigma, vote_weight, vote_iou, pre_nms_topk, paper.")
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


def _checkpoint_facts(path: Path) -> tuple[str, int | None]:
    """(model label, training seed) read from a checkpoint: its model config's stem and ``train_args['seed']``."""
    from ultralytics.utils.patches import torch_load

    try:
        ckpt = torch_load(str(path), map_location="cpu")
        model = ckpt.get("ema") or ckpt["model"]
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same answer
        raise ZooError(f"model={path} is not a readable Ultralytics checkpoint ({e}); give a trained .pt file"
                       ) from None
    yaml_file = (getattr(model, "yaml", None) or {}).get("yaml_file") or path.stem
    seed = (ckpt.get("train_args") or {}).get("seed")
    return Path(str(yaml_file)).stem, seed if isinstance(seed, int) else None


def _check_model(model: str, eval_only: bool) -> str:
    """Raise ZooError unless ``model`` is a model config yolo_gfl or Ultralytics knows, or an existing checkpoint."""
    from ..configs import load_model_cfg, model_cfg_names

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


@dataclass
class Cell:
    """One model with one seed: its key (file names), label (table row), and the settings that define it (spec)."""

    key: str
    label: str
    seed: int | None
    spec: dict[str, Any] = field(default_factory=dict)


def _check_modes(modes: Any) -> dict[str, dict[str, Any]] | None:
    """The named inference modes each cell is also evaluated under (``resolve_modes``), or None."""
    if modes is None:
        return None
    from ..engine.inference import resolve_modes

    try:
        return resolve_modes(modes)
    except ValueError as e:
        raise ZooError(str(e)) from None


def _build_cells(models: list[str], seeds: tuple[int, ...], eval_only: bool, data: str, epochs: int, imgsz: int,
                  train_kwargs: dict[str, Any], given: list[str], weights: str = "last",
                  modes: dict[str, dict[str, Any]] | None = None) -> list[Cell]:
    cells: list[Cell] = []
    args = {k: jsonable(v) for k, v in sorted(train_kwargs.items())}
    extra = {"inference_modes": modes} if modes else {}
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
                    "mtime_ns": st.st_mtime_ns, "data": data, "imgsz": imgsz, "args": args, **extra}
            cells.append(Cell(f"{label}-s{seed if seed is not None else 'x'}", label, seed, spec))
    else:
        labels = [Path(g).stem for g in given]
        for i, label in enumerate(labels):
            if labels.count(label) > 1:
                labels[i] = f"{label}-{i}"
        for seed in seeds:  # seed-major: a partial matrix holds every model at the first seeds
            for model, label in zip(models, labels):
                spec = {"format": CELL_FORMAT, "mode": "train", "model": model, "data": data, "epochs": epochs,
                        "imgsz": imgsz, "seed": seed, "args": args, "weights": weights, **extra}
                cells.append(Cell(f"{label}-s{seed}", label, seed, spec))
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ZooError(f"cells {dup} would share a folder: the same model is listed twice; list each once.")
    return cells



@dataclass
class ZooRequest:
    """A checked request: the schedule every cell shares, and the cells in run order (seed-major)."""

    models: list[str]  # as given (the labels of their rows)
    data: str  # resolved: an absolute YAML path or an Ultralytics dataset name
    epochs: int
    imgsz: int
    seeds: tuple[int, ...]
    eval_only: bool
    latency_runs: int
    throughput_batch: int
    jobs: int
    train_kwargs: dict[str, Any]
    cells: list[Cell]
    weights: str = "last"
    modes: dict[str, dict[str, Any]] | None = None

    def record(self) -> dict[str, Any]:
        """The request as zoo.json holds it."""
        out = {"models": self.models, "data": self.data, "epochs": self.epochs, "imgsz": self.imgsz,
               "seeds": list(self.seeds), "eval_only": self.eval_only, "train_args": jsonable(self.train_kwargs),
               "latency_runs": self.latency_runs, "throughput_batch": self.throughput_batch, "jobs": self.jobs,
               "weights": None if self.eval_only else self.weights, "modes": self.modes,
               "cells": [c.key for c in self.cells]}
        if self.eval_only:
            out["seeds"] = sorted({c.seed for c in self.cells if c.seed is not None})
            out["epochs"] = None  # nothing is trained
        return out


def check_request(models: Any, data: Any, epochs: Any, seeds: Any, imgsz: Any, name: Any, eval_only: Any,
                  latency_runs: Any, throughput_batch: Any, jobs: Any, train_kwargs: dict[str, Any],
                  weights: Any = "last", modes: Any = None) -> ZooRequest:
    """Check every argument of :func:`run_zoo` and list its cells; raise ZooError naming the first problem."""
    if not isinstance(eval_only, bool):
        raise ZooError(f"eval_only={eval_only!r} must be True or False")
    given = _as_list(_expand_family(models) if models is not None else default_models(), "models")
    seeds_t = _parse_seeds(seeds)
    epochs = _check_positive_int("epochs", epochs)
    imgsz = _check_positive_int("imgsz", imgsz)
    latency_runs = _check_positive_int("latency_runs", latency_runs)
    throughput_batch = _check_positive_int("throughput_batch", throughput_batch)
    jobs = _check_positive_int("jobs", jobs)
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ZooError(f"name={name!r} must be a plain folder name, e.g. name=zoo (use project= for the parent path)")
    if weights not in WEIGHTS:
        raise ZooError(f"weights={weights!r} must be last (the final weights, the default) or best (Ultralytics' "
                       "best.pt, picked on the val split the zoo reports)")
    named_modes = _check_modes(modes)
    train_kwargs = _check_train_args(train_kwargs, eval_only)
    checked = [_check_model(m, eval_only) for m in given]
    data_path = _resolve_data(data)
    cells = _build_cells(checked, seeds_t, eval_only, data_path, epochs, imgsz, train_kwargs, given, weights,
                         named_modes)
    return ZooRequest(given, data_path, epochs, imgsz, seeds_t, eval_only, latency_runs, throughput_batch, jobs,
                      train_kwargs, cells, weights, named_modes)


def check_folder(request: ZooRequest, folder: Path) -> None:
    """Raise ZooError if ``folder`` holds finished cells of this request's names made with other settings."""
    stale = []
    for cell in request.cells:
        done = read_cell(folder / "cells" / f"{cell.key}.json")
        if done is not None and done.get("spec", {}).get("format") == CELL_FORMAT:
            # inference modes may be added to a finished cell (evaluated on its weights); a mode it has must agree
            diff = sorted(k for k, v in cell.spec.items()
                          if k != "inference_modes" and jsonable(done["spec"].get(k)) != jsonable(v))
            had = done["spec"].get("inference_modes") or {}
            diff += [f"inference mode {m}" for m, options in (cell.spec.get("inference_modes") or {}).items()
                     if m in had and jsonable(had[m]) != jsonable(options)]
            if diff:
                stale.append(f"{cell.key} (differs in {diff})")
    if stale:
        raise ZooError(f"{folder} holds cells made with other settings: {'; '.join(stale)}. Use another name= for "
                       "this request, or delete that folder to redo it.")
