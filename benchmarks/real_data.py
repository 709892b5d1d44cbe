"""Real-data fine-tune benchmark: COCO yolov8n.pt fine-tuned on real data sets, stock YOLOv8n beside each IoU-aware
variant, same seeds, paired differences to stock.

    python benchmarks/real_data.py                   # the full record: 3 seeds, every data set, stock + shipped variants
    python benchmarks/real_data.py --quick           # the search: seed 0, fewer epochs, stock + shipped + -vfnet
    python benchmarks/real_data.py --quick --models yolov8n.yaml,benchmarks/configs/yolov8n-ppyoloe.yaml --datasets chess
    python benchmarks/real_data.py --report-only     # print the tables of the record; train and write nothing
    python benchmarks/real_data.py --remeasure yolov8n.yaml --datasets chess   # stock's cells lacking a new figure
    python benchmarks/real_data.py --scale s --quick  # yolov8s.pt into yolov8s.yaml and -vfl/-qfl/-gfl at scale s

This is what a user does with yolo_gfl: take Ultralytics' COCO weights, fine-tune them on their own images with
Ultralytics' default training arguments, and keep the detections above a confidence threshold. Every cell builds the
model config fresh, receives every matching tensor of ``yolov8n.pt`` (``pretrained=``), and trains with Ultralytics'
defaults (``optimizer=auto``, mosaic, ``close_mosaic=10``, ...) except what the benchmark must fix: epochs, image size,
batch 16, the seed (with ``deterministic=True``), and ``val=False`` (the final weights are scored once on the val split,
not picked by it). Cells run through the zoo (``yolo_gfl.zoo.run_zoo``, ``jobs=2``: one core per cell here).

Resuming: the zoo keeps finished cells in its folder, and the record (``--record``, committed to git) keeps them
across sessions: a cell already in the record with the same data set, model, seed, schedule and arguments is not run
again. The record is made by this script only: ``{"stock": ..., "datasets": {...}, "cells": [...]}``, one cell per
(data set, model, seed) with mAP50-95, mAP50, AP75, COCO AP, score-IoU Spearman (all matched detections, and those a
user keeps at conf >= 0.25) and detections per image; the Markdown beside it holds the tables this script prints.

The schedules (epochs, image size, subsampling) are chosen from stock's own mAP50-95 curves: see docs/real_data.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import statistics
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")  # the weights and images are local; nothing may download

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
STOCK = "yolov8n.yaml"
SHIPPED = ["yolov8n.yaml", "yolov8n-vfl.yaml", "yolov8n-qfl.yaml", "yolov8n-gfl.yaml"]
QUICK_EXTRA = ["yolov8n-vfnet.yaml"]  # 2x stock's CPU training step (docs/vfnet.md): the search only, until it wins
RECORD = ROOT / "benchmarks" / "results" / "real_data.json"
QUICK_RECORD = ROOT / "benchmarks" / "results" / "real_data_quick.json"
SCALES = "nsmlx"  # --scale: Ultralytics' COCO checkpoint yolov8<scale>.pt into yolov8<scale>.yaml and the variants


def scaled(model: str, scale: str) -> str:
    """One of the default model names (``SHIPPED``, ``QUICK_EXTRA``, ``STOCK``) at another scale."""
    return model.replace("yolov8n", f"yolov8{scale}", 1)


def weights_for(scale: str) -> Path:
    """Where Ultralytics' COCO checkpoint of a scale sits beside the checkout (the default of --weights)."""
    return SHARED / "weights" / f"yolov8{scale}.pt"


def record_for(scale: str, quick: bool) -> Path:
    """The default record of a scale: yolov8n keeps the names it has always had, another scale gets its own file."""
    path = QUICK_RECORD if quick else RECORD
    return path if scale == "n" else path.with_name(f"{path.stem}_{scale}.json")

# Per data set: its YAML under ../shared/datasets, the image size at which its objects survive, the schedule, and an
# optional fixed-seed subsample of the train split (None: all images). See docs/real_data.md for the evidence.
DATASETS: dict[str, dict[str, Any]] = {
    "aquarium": {"yaml": "aquarium/aquarium.yaml", "imgsz": 320, "epochs": 20, "quick_epochs": 8, "train": None},
    "chess": {"yaml": "chess/chess.yaml", "imgsz": 320, "epochs": 30, "quick_epochs": 10, "train": None},
    "cells": {"yaml": "cells/cells.yaml", "imgsz": 224, "epochs": 25, "quick_epochs": 6, "train": 600},
    "coco128": {"yaml": "coco128/coco128.yaml", "imgsz": 320, "epochs": 15, "quick_epochs": 6, "train": None},
}
METRICS = ("mAP50-95", "mAP50", "AP75", "coco_AP", "spearman", "spearman_kept", "spearman_top", "dets_per_image",
           "kept_per_image")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


# The inference modes a cell is evaluated under with --modes (the package's named modes, plus the research ones that
# ask which cluster rule and sigma score voting wants): PAA's shared clusters (every candidate overlapping the kept box
# by IoU > 0.01 votes, as PAA's code), and a wider sigma.
RESEARCH_MODES: dict[str, dict[str, Any]] = {
    "vote-paa": {"nms": "vote", "vote_iou": 0.01},
    "vote-s0.1": {"nms": "vote", "vote_sigma": 0.1},
}
DEFAULT_MODES = "hard,soft,vote,vote-class,vote-quality,vote-paa,vote-s0.1"


def inference_modes(text: str | None) -> dict[str, dict[str, Any]] | None:
    """``--modes``: comma-separated names of the package's INFERENCE_MODES or RESEARCH_MODES -> name: options."""
    if not text:
        return None
    from yolo_gfl.engine.inference import INFERENCE_MODES

    known = {**INFERENCE_MODES, **RESEARCH_MODES}
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in known]
    if unknown:
        raise BenchmarkError(f"--modes: unknown mode(s) {unknown}; choose from {', '.join(known)}")
    return {m: dict(known[m]) for m in names}


class BenchmarkError(ValueError):
    """A request the benchmark cannot run: names the problem and the fix."""


# ------------------------------------------------------------------------------------------------------------- data
def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _split_folder(data_yaml: Path, split: str) -> Path:
    from ultralytics.utils import YAML

    cfg = YAML.load(data_yaml)
    if split not in cfg:
        raise BenchmarkError(f"{data_yaml} has no '{split}:' entry")
    folder = (data_yaml.parent / cfg[split]).resolve()
    if not folder.is_dir():
        raise BenchmarkError(f"{data_yaml}: its {split} folder {folder} does not exist")
    return folder


def prepare_data(name: str, data_yaml: Path, out_dir: Path, train: int | None, val: int | None) -> Path:
    """The data YAML a cell trains on: the original, or one whose splits are fixed-seed subsamples (image lists).

    A subsample draws ``train`` (``val``) images of the split with ``random.Random(0)``, so every session and machine
    trains on the same images; Ultralytics reads the list file and finds each label beside ``images/`` as usual.
    """
    if train is None and val is None:
        return data_yaml.resolve()
    from ultralytics.utils import YAML

    cfg = YAML.load(data_yaml)
    out_dir.mkdir(parents=True, exist_ok=True)
    derived = {"names": cfg["names"]}
    for split, n in (("train", train), ("val", val)):
        folder = _split_folder(data_yaml, split)
        images = _images(folder)
        if n is not None and n < len(images):
            images = sorted(random.Random(0).sample(images, n))
            listing = out_dir / f"{name}-{split}-{n}.txt"
            listing.write_text("".join(f"{p}\n" for p in images))
            derived[split] = str(listing)
        else:
            derived[split] = str(folder)
    out = out_dir / f"{name}-t{train}-v{val}.yaml"
    YAML.save(out, derived)
    return out


# ----------------------------------------------------------------------------------------------------------- record
def _digest(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


def load_record(path: Path, stock: str = STOCK) -> dict[str, Any]:
    """The record at ``path`` (a new one if absent), refused if it pairs its cells with another stock model."""
    if not path.exists():
        return {"stock": stock, "datasets": {}, "cells": []}
    try:
        record = json.loads(path.read_text())
    except ValueError as e:
        raise BenchmarkError(f"{path} is not valid JSON ({e}); restore it from git (`git checkout {path}`)") from None
    if not isinstance(record, dict) or not isinstance(record.get("cells"), list):
        raise BenchmarkError(f"{path} is not a benchmark record (no 'cells' list); restore it from git")
    record.setdefault("datasets", {})
    if record.get("stock", STOCK) != stock:
        raise BenchmarkError(f"{path} pairs its cells with {record.get('stock')}, not {stock}: a record holds one scale; "
                             f"give --scale {_scale_letter(record.get('stock', STOCK))} or another --record")
    return record


def _scale_letter(model: str) -> str | None:
    """The scale letter Ultralytics reads from a config's name (yolov8s-gfl.yaml -> s), None if it names none."""
    from ultralytics.nn.tasks import guess_model_scale

    return guess_model_scale(Path(model)) or None


def _write_atomic(path: Path, text: str) -> None:
    from yolo_gfl.atomic import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def _extras(cell: dict) -> dict[str, Any]:
    """What the zoo's table row lacks, read from the cell's calibration report (written by GFLValidator)."""
    val_dir = cell.get("val_dir")
    report = {}
    if val_dir and (Path(val_dir) / "calibration.json").exists():
        report = json.loads((Path(val_dir) / "calibration.json").read_text())
    kept, top = report.get("kept") or {}, report.get("top_per_object") or {}
    return {"spearman_kept": kept.get("spearman"), "kept_pairs": kept.get("count"),
            "spearman_top": top.get("spearman"), "top_pairs": top.get("count"),
            "dets_per_image": report.get("detections_per_image"), "kept_per_image": report.get("kept_per_image")}


def config_digest(model: str) -> str:
    """A digest of a model config's text (for a scaled name such as yolov8n-gfl.yaml, the file it reads), so a cell
    made with an older version of a config is not taken as done. Ultralytics' own names digest as the name."""
    from yolo_gfl.configs import model_cfg_file

    path = model_cfg_file(model)
    return _digest(path.read_text() if path is not None else model)


def recipe_digest(model: str) -> str:
    """A digest of what a config builds and trains: its resolved architecture and scale and every yolo_gfl option with
    its default filled in, not its file name or its comments. Two configs with one recipe train the same runs: with
    ``deterministic=True`` one seed gives the same cell on one machine (across CPUs, the same within float noise), so
    a cell of one is a cell of the other. The options are digested in yolo_gfl 0.2.0's spelling
    (``benchmarks/recipe_v020.py``), so a recipe keeps the digest its record cells were made with."""
    from benchmarks.recipe_v020 import section_v020
    from yolo_gfl.configs import load_model_cfg

    cfg = load_model_cfg(model)
    cfg.pop("yaml_file", None)
    if "gfl" in cfg:
        cfg["gfl"] = section_v020(cfg["gfl"] or {})
    return _digest(cfg)


def _config_of(model_stem: str) -> str:
    """The config a record cell's model name came from: benchmarks/configs/<name>.yaml, else the bare name (yolo_gfl's
    or Ultralytics')."""
    path = ROOT / "benchmarks" / "configs" / f"{model_stem}.yaml"
    return str(path) if path.is_file() else f"{model_stem}.yaml"


def retire(record: dict[str, Any], cells: list[dict[str, Any]], reason: Callable[[dict[str, Any]], str]) -> None:
    """Move ``cells`` from the record's tables to its ``retired`` list (kept), each stamped with the time and
    ``reason(cell)``."""
    when = datetime.now().astimezone().isoformat(timespec="seconds")
    record["cells"] = [c for c in record["cells"] if c not in cells]
    record.setdefault("retired", []).extend({**c, "retired": f"{when}: {reason(c)}"} for c in cells)


def retirement_reason(cell: dict[str, Any], model: str) -> str:
    """Why a cell whose config digest no longer matches is retired. Before config_digest read a shipped config's file
    it digested the name given, so such a cell's config may be unchanged: the reason says so instead of claiming an
    edit."""
    if cell.get("config") == _digest(model):
        return ("its config digest was taken from the name (before the digest read the file); the config may be "
                "unchanged")
    return "its config changed"


def edited_config_cells(record: dict[str, Any], data: str, configs: dict[str, str],
                        recipes: dict[str, str]) -> list[dict[str, Any]]:
    """The cells of ``data`` whose config has changed in what it trains, to be retired; ``configs`` and ``recipes``:
    each requested model's ``config_digest`` and ``recipe_digest`` by name.

    A cell made with the config text as it is now gains its ``recipe`` (cells made before cells carried one). A cell
    whose config text has changed but whose recipe is the current one (a comment or layout edit) is kept, and takes the
    new text's digest. Only a cell whose recipe differs, or is unknown, is returned."""
    stale = []
    for c in record["cells"]:
        if c["data"] != data or c["model"] not in configs:
            continue
        if c.get("config") == configs[c["model"]]:
            if not c.get("recipe"):
                c["recipe"] = recipes[c["model"]]
        elif c.get("recipe") and c["recipe"] == recipes[c["model"]]:
            c["config"] = configs[c["model"]]
        else:
            stale.append(c)
    return stale


# A Spearman may be None when measured (fewer than two pairs); its pair count, None only when the calibration report
# lacked that population, tells the two apart.
PAIR_COUNT = {"spearman_kept": "kept_pairs", "spearman_top": "top_pairs"}


def lacks_figure(cell: dict[str, Any]) -> bool:
    """Whether a record cell lacks one of ``METRICS``: made before the script recorded it (no key, or a Spearman
    whose pair count is None because the cell's calibration report had no such population)."""
    return any(k not in cell or (k in PAIR_COUNT and cell[k] is None and cell.get(PAIR_COUNT[k]) is None)
               for k in METRICS)


def copies_without_source(record: dict[str, Any], data: str, models: set[str], seeds: list[int]) -> dict[str, str]:
    """The requested models (names, no suffix) whose cells on ``data`` that lack a figure are copies
    (``same_recipe_as``) of a model not requested too, by name, with that source. Measuring only the copy would bring
    it back from its unmeasured source, so the source has to be measured (once) as well."""
    return {c["model"]: c["same_recipe_as"] for c in record["cells"]
            if c["data"] == data and c["seed"] in seeds and c["model"] in models and c.get("same_recipe_as")
            and c["same_recipe_as"] not in models and lacks_figure(c)}


def retire_for_remeasure(record: dict[str, Any], data: str, models: set[str], seeds: list[int],
                         cell_dir: Path) -> list[dict[str, Any]]:
    """Move the record's cells of ``models`` (names, no suffix) on ``data`` and ``seeds`` that lack a figure the
    script now records (one of ``METRICS``, added after they were made) to its ``retired`` list, with the cells
    copied from them (``same_recipe_as``), and set aside each one's zoo result (``<cell_dir>/<model>-s<seed>.json``
    -> ``.json.retired``) when it is the one the record holds, so that the zoo runs the cell again: it evaluates the
    finished weights anew where the cell's folder keeps them, else trains. A cell measured anew has every figure, so
    the same request run again (to resume) does not retire it."""
    dated = {(c["model"], c["seed"]) for c in record["cells"] if c["data"] == data and c["seed"] in seeds
             and c["model"] in models and lacks_figure(c)}
    gone = [c for c in record["cells"] if c["data"] == data
            and ((c["model"], c["seed"]) in dated or (c.get("same_recipe_as"), c["seed"]) in dated)]
    for c in gone:
        result = cell_dir / f"{c['model']}-s{c['seed']}.json"
        try:
            same = json.loads(result.read_text()).get("finished_at") == c.get("finished_at")
        except (OSError, ValueError):
            same = False
        if same and not c.get("same_recipe_as"):
            os.replace(result, result.with_name(result.name + ".retired"))
    retire(record, gone, lambda c: "measured anew on request (--remeasure)")
    if gone:
        print(f"== {data}: {len(gone)} cell(s) of {sorted({c['model'] for c in gone})} retired to be measured anew "
              "(kept in the record's 'retired' list)", flush=True)
    return gone


def _recipe_if_unchanged(model_stem: str, config: str | None) -> str | None:
    """The recipe digest of a record cell's model while its config is the one the cell was made with, else None."""
    path = _config_of(model_stem)
    try:
        return recipe_digest(path) if config_digest(path) == config else None
    except (OSError, ValueError, KeyError):  # a config that is gone or no longer loads
        return None


def same_recipe_cells(record: dict[str, Any], data: str, setting: dict[str, Any], models: list[str],
                      configs: dict[str, str], recipes: dict[str, str], seeds: list[int]) -> list[dict[str, Any]]:
    """Record entries for requested (model, seed) cells that the record lacks but holds under another model name with
    the same recipe (``recipe_digest``), data set, settings and seed: the same training run, taken over with
    ``same_recipe_as`` naming the cell it copies. ``configs``, ``recipes``: each requested model's ``config_digest`` and
    ``recipe_digest`` by name. A record cell counts only while its config file is unchanged."""
    have = {(c["model"], c["seed"]) for c in record["cells"] if c["data"] == data}
    wanted = {Path(m).stem: (recipes[Path(m).stem], configs[Path(m).stem]) for m in models}
    cell_recipes: dict[str, str | None] = {}
    taken = []
    for cell in record["cells"]:
        if cell["data"] != data or cell.get("setting") != setting["digest"] or cell.get("same_recipe_as"):
            continue
        if cell["model"] not in cell_recipes:
            cell_recipes[cell["model"]] = _recipe_if_unchanged(cell["model"], cell.get("config"))
        for stem, (recipe, config) in wanted.items():
            if (stem != cell["model"] and recipe == cell_recipes[cell["model"]] and cell["seed"] in seeds
                    and (stem, cell["seed"]) not in have):
                taken.append({**cell, "model": stem, "config": config, "same_recipe_as": cell["model"]})
                have.add((stem, cell["seed"]))
    return taken


def take_same_recipe_cells(record: dict[str, Any], data: str, setting: dict[str, Any], models: list[str],
                           configs: dict[str, str], recipes: dict[str, str], seeds: list[int]) -> None:
    """Add ``same_recipe_cells`` to the record, saying so for each."""
    for cell in same_recipe_cells(record, data, setting, models, configs, recipes, seeds):
        print(f"== {data}: {cell['model']} seed {cell['seed']} has the recipe of {cell['same_recipe_as']}: its cell "
              "is taken from the record, not retrained (--retrain-same-recipe trains it)", flush=True)
        record["cells"].append(cell)


def recipe_twins(models: list[str]) -> dict[str, str]:
    """Requested models that train the same runs as one listed before them (the same ``recipe_digest``): each one's
    name (no suffix) mapped to that earlier model's. Only the first of each recipe is trained; the others take its
    cells over once they exist (``same_recipe_cells``)."""
    first: dict[str, str] = {}
    twins = {}
    for m in models:
        stem = Path(m).stem
        recipe = recipe_digest(m)
        if recipe in first and first[recipe] != stem:
            twins[stem] = first[recipe]
        else:
            first.setdefault(recipe, stem)
    return twins


def record_cell(data: str, setting: dict[str, Any], zoo_row: dict[str, Any], config: str,
                recipe: str | None = None) -> dict[str, Any]:
    """One record entry from a finished zoo cell; ``recipe`` is its config's ``recipe_digest``."""
    return {
        "data": data, "model": zoo_row["model"], "seed": zoo_row["seed"], "setting": setting["digest"],
        "config": config, "recipe": recipe,
        "epochs": setting["epochs"], "imgsz": setting["imgsz"],
        "mAP50-95": zoo_row["mAP50-95"], "mAP50": zoo_row["mAP50"], "AP75": zoo_row["mAP75"],
        "coco_AP": zoo_row.get("coco_AP"), "coco_AP75": zoo_row.get("coco_AP75"), "spearman": zoo_row.get("spearman"),
        **_extras(zoo_row),
        "train_images": zoo_row.get("train_images"), "train_s": zoo_row.get("train_s"),
        "epoch_s": zoo_row.get("epoch_s"), "machine": zoo_row.get("machine"),
        "versions": zoo_row.get("versions"), "finished_at": zoo_row.get("finished_at"),
        # a training resumed from last.pt after an interruption is not bit-identical to one run through (evaluating
        # finished weights again is)
        "training_resumed": bool(zoo_row.get("resumed") and not zoo_row.get("train_not_rerun")),
        # each --modes evaluation of the same final weights, and the validation mAP50-95 after each epoch (--curves)
        **({"inference": zoo_row["inference"]} if zoo_row.get("inference") else {}),
        **({"curve": zoo_row["curve"]} if zoo_row.get("curve") else {}),
    }  # fmt: skip


def save_record(record: dict[str, Any], path: Path) -> None:
    """Write the record, first taking in cells another run of this script wrote there meanwhile (two runs on other
    data sets or models may share one record)."""
    on_disk = load_record(path)
    have = {(c["data"], c["model"], c["seed"]) for c in record["cells"]}
    for d, setting in on_disk["datasets"].items():
        record["datasets"].setdefault(d, setting)

    def key(c: dict[str, Any]) -> tuple:
        # finished_at tells a cell measured anew (--remeasure) from the one it replaced, with which it shares the rest
        return c["data"], c["model"], c["seed"], c.get("config"), c.get("setting"), c.get("finished_at")

    gone = {key(r) for r in record.get("retired", [])}
    retired = record.get("retired", []) + [c for c in on_disk.get("retired", []) if key(c) not in gone]
    gone |= {key(r) for r in retired}
    if retired:
        record["retired"] = retired
    record["cells"] += [c for c in on_disk["cells"] if (c["data"], c["model"], c["seed"]) not in have
                        and key(c) not in gone and record["datasets"][c["data"]]["digest"] == c["setting"]]
    order = list(record["datasets"])
    stock = Path(record["stock"]).stem
    record["cells"].sort(key=lambda c: (order.index(c["data"]), c["model"] != stock, c["model"], c["seed"]))
    record["updated"] = datetime.now().astimezone().isoformat(timespec="seconds")
    _write_atomic(path, json.dumps(record, indent=1, allow_nan=False) + "\n")


# ------------------------------------------------------------------------------------------------------- statistics
def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def paired_delta(cells: list[dict], data: str, model: str, key: str = "mAP50-95",
                 stock: str = STOCK) -> tuple[float | None, float | None, int]:
    """Mean over seeds of (model - stock) on the same seed, its standard error, and the number of pairs."""
    by_seed = {c["seed"]: c[key] for c in cells if c["data"] == data and c["model"] == Path(stock).stem
               and c.get(key) is not None}
    diffs = [c[key] - by_seed[c["seed"]] for c in cells if c["data"] == data and c["model"] == model
             and c["seed"] in by_seed and c.get(key) is not None]
    if not diffs:
        return None, None, 0
    mean = statistics.fmean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else None
    return mean, se, len(diffs)


GOAL_MEAN_DELTA = 0.010  # +1.0 point mAP50-95 on the mean over the data sets (issue 12's goal)


def mean_over_data(cells: list[dict], data_names: list[str], model: str, key: str = "mAP50-95",
                   stock: str = STOCK) -> tuple[float | None, float | None]:
    """Mean over data sets of the paired Δ to stock, and its SE (root of the summed squared SEs / number of sets;
    the sets are independent). (None, None) unless every data set has the model paired with stock."""
    per = [paired_delta(cells, d, model, key, stock) for d in data_names]
    if not per or any(n == 0 for _, _, n in per):
        return None, None
    mean = statistics.fmean(m for m, _, _ in per)
    ses = [se for _, se, _ in per]
    return mean, (math.sqrt(sum(x * x for x in ses)) / len(ses) if all(x is not None for x in ses) else None)


def goal_check(cells: list[dict], data_names: list[str], model: str, stock: str = STOCK) -> tuple[bool, list[str]]:
    """Whether ``model`` meets the goal on the record: mean Δ mAP50-95 >= GOAL_MEAN_DELTA, no data set with
    Δ + SE < 0 (below stock by more than one SE), mean Δ AP75 > 0 and mean Δ Spearman > 0. Returns (met, what misses)."""
    misses = []
    mean, _ = mean_over_data(cells, data_names, model, stock=stock)
    if mean is None:
        return False, ["not paired with stock on every data set"]
    if mean < GOAL_MEAN_DELTA:
        misses.append(f"mean {mean * 100:+.2f} < +{GOAL_MEAN_DELTA * 100:.1f}")
    for d in data_names:
        delta, se, _ = paired_delta(cells, d, model, stock=stock)
        if delta + (se or 0.0) < 0:
            misses.append(f"{d} below by more than one SE")
    for key, name in (("AP75", "AP75"), ("spearman", "Spearman")):
        value, _ = mean_over_data(cells, data_names, model, key, stock)
        if value is None or value <= 0:
            misses.append(f"{name} not above stock")
    return not misses, misses


def _fmt(mean: float | None, sd: float | None, scale: float, digits: int, sign: bool = False) -> str:
    if mean is None:
        return "—"
    text = f"{mean * scale:+.{digits}f}" if sign else f"{mean * scale:.{digits}f}"
    return text + ("" if sd is None else f" ± {sd * scale:.{digits}f}")


COLUMNS = (("mAP50-95", 100, 1), ("mAP50", 100, 1), ("AP75", 100, 1), ("coco_AP", 100, 1), ("spearman", 1, 3),
           ("spearman_kept", 1, 3), ("spearman_top", 1, 3), ("dets_per_image", 1, 1), ("kept_per_image", 1, 1))
DELTAS = (("mAP50-95", 100, 1), ("AP75", 100, 1), ("spearman", 1, 3), ("spearman_top", 1, 3))
LABELS = {"mAP50-95": "mAP50-95", "mAP50": "mAP50", "AP75": "AP75", "coco_AP": "COCO AP", "spearman": "Spearman",
          "spearman_kept": "Spearman (conf >= 0.25)", "spearman_top": "Spearman (top K)", "dets_per_image": "dets/img",
          "kept_per_image": "kept/img"}
FOOTNOTES = {"spearman_top": "²"}  # the mark of the note under the tables that explains the column


def tables(record: dict[str, Any]) -> str:
    """Markdown: one table per data set (means ± std over seeds, paired Δ to stock ± SE) and a summary table."""
    cells = record["cells"]
    stock = Path(record["stock"]).stem
    data_names = [d for d in record["datasets"] if any(c["data"] == d for c in cells)]
    models = list(dict.fromkeys([stock] + [c["model"] for c in cells]))
    out = []
    head = ("| model | seeds | " + " | ".join(LABELS[k] + FOOTNOTES.get(k, "") for k, _, _ in COLUMNS) + " | "
            + " | ".join(f"Δ {LABELS[k]}" for k, _, _ in DELTAS) + " |")
    rule = "|---|" + "--:|" * (len(COLUMNS) + len(DELTAS) + 1)
    summary: dict[str, list[tuple]] = {}
    for d in data_names:
        s = record["datasets"][d]
        out += [f"### {d}", "", f"{s['epochs']} epochs at {s['imgsz']} px, {s.get('train_images') or 'all'} train images, "
                f"batch {s['batch']}; mAP and AP in %.", "", head, rule]
        for m in models:
            rows = [c for c in cells if c["data"] == d and c["model"] == m]
            if not rows:
                continue
            vals = [_fmt(*_mean_sd([r[k] for r in rows if r.get(k) is not None]), scale, dg) for k, scale, dg in COLUMNS]
            deltas = []
            for key, scale, dg in DELTAS:
                mean, se, n = paired_delta(cells, d, m, key, record["stock"])
                deltas.append("" if m == stock else _fmt(mean, se, scale, dg, sign=True))
                if m != stock and key == "mAP50-95" and mean is not None:
                    summary.setdefault(m, []).append((d, mean, se, n))
            out.append(f"| {m} | {len(rows)} | " + " | ".join(vals + deltas) + " |")
        copies = {}
        for c in cells:
            if c["data"] == d and c.get("same_recipe_as"):
                copies.setdefault((c["model"], c["same_recipe_as"]), []).append(str(c["seed"]))
        out += [""] + [f"{m}, seed(s) {', '.join(s)}: the cells of {src}, the same recipe (not trained again)."
                       for (m, src), s in copies.items()]
        resumed = [f"{c['model']} seed {c['seed']}" for c in cells if c["data"] == d and c.get("training_resumed")]
        if resumed:
            out.append(f"Trained in two parts (resumed from last.pt after an interruption, so not bit-identical to a "
                       f"run through): {', '.join(resumed)}.")
        out.append("")
    if summary:
        out += ["### Summary: paired Δ to stock (points, mean over seeds ± SE)", "",
                "| model | " + " | ".join(f"Δ mAP50-95 {d}" for d in data_names) + " | Δ mAP50-95, mean over data sets "
                "| Δ AP75, mean | Δ Spearman, mean | Δ Spearman (top K), mean | goal¹ |",
                "|---|" + "--:|" * (len(data_names) + 4) + "---|"]
        # The goal is over the benchmark's data sets: a record of some of them (a probe's) cannot meet it.
        required = list(DATASETS) if set(data_names) <= set(DATASETS) else data_names
        for m, entries in summary.items():
            by_data = {d: (mean, se) for d, mean, se, _ in entries}
            cols = [_fmt(*by_data[d], 100, 2, sign=True) if d in by_data else "—" for d in data_names]
            if set(required) <= set(by_data):
                for key, scale, dg in (("mAP50-95", 100, 2), ("AP75", 100, 2), ("spearman", 1, 3),
                                       ("spearman_top", 1, 3)):
                    cols.append(_fmt(*mean_over_data(cells, data_names, m, key, record["stock"]), scale, dg,
                                     sign=True))
                met, misses = goal_check(cells, data_names, m, record["stock"])
                cols.append("met" if met else "not met: " + "; ".join(misses))
            else:
                cols += ["—", "—", "—", "—", f"needs every data set ({len(set(by_data) & set(required))} of "
                                             f"{len(required)})"]
            out.append(f"| {m} | " + " | ".join(cols) + " |")
        out += ["", f"¹ The goal (issue 12): Δ mAP50-95 of at least +{GOAL_MEAN_DELTA * 100:.1f} points on the mean over "
                "the data sets, on no data set below stock by more than one SE, and Δ AP75 and Δ Spearman above 0 on "
                "the mean over the data sets. The SE of a mean over data sets is the root of the sum of squared SEs "
                "over their number.", ""]
    if data_names:
        out += ["² Spearman over each image's K best-scored detections, K its number of objects: a population the same "
                "size for every model, so it compares how the scores order boxes by IoU, where the all-detection "
                "figure also moves with how many weak boxes pass conf 0.001. Cells made before it was added "
                "(2026-12-02) lack it (—).", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------ inference modes and curves
def mode_value(cell: dict[str, Any], mode: str, key: str) -> float | None:
    """A cell's ``key`` under inference ``mode`` (its 'inference' entry); None where it was not evaluated so."""
    entry = (cell.get("inference") or {}).get(mode) or {}
    value = entry.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def paired_by_seed(cells: list[dict], data: str, model: str, value: Callable[[dict], float | None],
                   baseline: Callable[[dict], float | None], stock: str = STOCK) -> tuple[float | None, float | None, int]:
    """Mean over seeds of value(model's cell) - baseline(stock's cell of the same seed), its SE, and the pair count."""
    base = {c["seed"]: baseline(c) for c in cells if c["data"] == data and c["model"] == Path(stock).stem}
    diffs = [value(c) - base[c["seed"]] for c in cells if c["data"] == data and c["model"] == model
             and base.get(c["seed"]) is not None and value(c) is not None]
    if not diffs:
        return None, None, 0
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else None
    return statistics.fmean(diffs), se, len(diffs)


def _over_data(per: list[tuple[float | None, float | None, int]]) -> tuple[float | None, float | None]:
    """Mean over data sets of paired figures and its SE (root of summed squared SEs / count); None unless all."""
    if not per or any(n == 0 for _, _, n in per):
        return None, None
    ses = [se for _, se, _ in per]
    return (statistics.fmean(m for m, _, _ in per),
            math.sqrt(sum(x * x for x in ses)) / len(ses) if all(x is not None for x in ses) else None)


def epochs_to_reach(curve: list[float] | None, target: float) -> int | None:
    """The first epoch (1-based) whose validation mAP50-95 is at least ``target``; None if it never is."""
    for epoch, value in enumerate(curve or [], 1):
        if value >= target:
            return epoch
    return None


CURVE_SHARE = 0.95  # issue 34: epochs to reach 95% of stock's final mAP50-95 (same seed)


def inference_tables(record: dict[str, Any]) -> str:
    """Markdown for cells with 'inference' entries: per data set, each model x mode against stock with hard NMS
    (paired by seed); the mean over data sets; voting's gain for each model against stock's gain; and, for cells with
    learning curves, the epochs each model takes to reach 95% of stock's final mAP50-95 on the same seed."""
    cells = [c for c in record["cells"] if c.get("inference") or c.get("curve")]
    if not cells:
        return ""
    stock = Path(record["stock"]).stem
    data_names = [d for d in record["datasets"] if any(c["data"] == d for c in cells)]
    models = list(dict.fromkeys([stock] + [c["model"] for c in cells]))
    modes = list(dict.fromkeys(m for c in cells for m, v in (c.get("inference") or {}).items() if "skipped" not in v))
    hard = lambda key: (lambda c: mode_value(c, "hard", key))  # noqa: E731
    out = ["## Inference modes: each model x mode against stock with hard NMS", "",
           "Paired by seed; points (mAP, AP) ± SE; the same final weights evaluated under each mode.", ""]
    summary: dict[tuple[str, str], dict[str, list]] = {}
    for d in data_names:
        s = record["datasets"][d]
        out += [f"### {d} ({s['epochs']} epochs at {s['imgsz']} px)", "",
                "| model | mode | seeds | mAP50-95 | AP75 | Spearman (top K) | Δ mAP50-95 | Δ AP75 |",
                "|---|---|--:|--:|--:|--:|--:|--:|"]
        for m in models:
            rows = [c for c in cells if c["data"] == d and c["model"] == m]
            for mode in modes:
                vals = {k: [v for v in (mode_value(c, mode, k) for c in rows) if v is not None]
                        for k in ("mAP50-95", "AP75", "spearman_top")}
                if not vals["mAP50-95"]:
                    continue
                deltas = {}
                for key in ("mAP50-95", "AP75"):
                    deltas[key] = paired_by_seed(cells, d, m, lambda c, k=key, mo=mode: mode_value(c, mo, k), hard(key),
                                                 record["stock"])
                    summary.setdefault((m, mode), {}).setdefault(key, []).append(deltas[key])
                same = m == stock and mode == "hard"
                out.append(f"| {m} | {mode} | {len(vals['mAP50-95'])} | "
                           f"{_fmt(*_mean_sd(vals['mAP50-95']), 100, 1)} | {_fmt(*_mean_sd(vals['AP75']), 100, 1)} | "
                           f"{_fmt(*_mean_sd(vals['spearman_top']), 1, 3)} | "
                           + ("" if same else _fmt(*deltas["mAP50-95"][:2], 100, 2, sign=True)) + " | "
                           + ("" if same else _fmt(*deltas["AP75"][:2], 100, 2, sign=True)) + " |")
        out.append("")
    full = [k for k, v in summary.items() if len(v["mAP50-95"]) == len(data_names)]
    if full:
        out += [f"### Mean over the data sets ({', '.join(data_names)}): Δ to stock with hard NMS", "",
                "| model | mode | Δ mAP50-95 | Δ AP75 |", "|---|---|--:|--:|"]
        for m, mode in full:
            if m == stock and mode == "hard":
                continue
            out.append(f"| {m} | {mode} | {_fmt(*_over_data(summary[(m, mode)]['mAP50-95']), 100, 2, sign=True)} | "
                       f"{_fmt(*_over_data(summary[(m, mode)]['AP75']), 100, 2, sign=True)} |")
        out.append("")
    votes = [mode for mode in modes if mode.startswith("vote")]
    if votes and len(models) > 1:
        out += ["### Does an IoU-aware model gain more from voting than stock does?", "",
                "Each model's gain (mode - hard, same weights) minus stock's gain (vote - hard) on the same seed; "
                "stock's gain is from its own `vote` (score-weighted).", "",
                "| model | mode | " + " | ".join(f"{d}" for d in data_names) + " | mean |",
                "|---|---|" + "--:|" * (len(data_names) + 1)]

        def gain(mode: str, key: str = "mAP50-95") -> Callable[[dict], float | None]:
            def f(c: dict) -> float | None:
                a, b = mode_value(c, mode, key), mode_value(c, "hard", key)
                return None if a is None or b is None else a - b
            return f

        for m in models[1:]:
            for mode in votes:
                per = [paired_by_seed(cells, d, m, gain(mode), gain("vote"), record["stock"]) for d in data_names]
                if all(n == 0 for _, _, n in per):
                    continue
                out.append(f"| {m} | {mode} | " + " | ".join(_fmt(a, b, 100, 2, sign=True) for a, b, _ in per)
                           + f" | {_fmt(*_over_data(per), 100, 2, sign=True)} |")
        out.append("")
    curved = [c for c in cells if c.get("curve")]
    if curved:
        out += [f"### Learning curves: epochs to reach {CURVE_SHARE:.0%} of stock's final mAP50-95 (same seed)", "",
                "Validation mAP50-95 after every epoch (Ultralytics' val settings); the target is stock's final "
                "epoch on the same seed. Mean ± SE over seeds; Δ: paired, model - stock; — where a model never "
                "reached it.", "",
                "| model | " + " | ".join(data_names) + " | Δ epochs, mean |", "|---|" + "--:|" * (len(data_names) + 1)]
        target = {(c["data"], c["seed"]): CURVE_SHARE * c["curve"][-1] for c in curved if c["model"] == stock}

        def reach(c: dict) -> float | None:
            t = target.get((c["data"], c["seed"]))
            e = epochs_to_reach(c.get("curve"), t) if t is not None else None
            return float(e) if e is not None else None

        for m in models:
            cols, per = [], []
            for d in data_names:
                vals = [v for v in (reach(c) for c in curved if c["data"] == d and c["model"] == m) if v is not None]
                cols.append(_fmt(*_mean_sd(vals), 1, 1) if vals else "—")
                per.append(paired_by_seed(curved, d, m, reach, reach, record["stock"]))
            mean = "" if m == stock else _fmt(*_over_data(per), 1, 1, sign=True)
            out.append(f"| {m} | " + " | ".join(cols) + f" | {mean} |")
        out.append("")
    return "\n".join(out)


# -------------------------------------------------------------------------------------------------------------- run
def _models(text: str | None, quick: bool, scale: str = "n") -> list[str]:
    """The requested configs with stock first, refusing one of another scale than ``scale``."""
    default = [scaled(m, scale) for m in SHIPPED + (QUICK_EXTRA if quick else [])]
    models = [m.strip() for m in text.split(",") if m.strip()] if text else default
    other = [m for m in models if _scale_letter(m) not in (None, scale)]
    if other:
        raise BenchmarkError(f"{other}: not scale {scale}; every model is paired with stock yolov8{scale} fine-tuned "
                             f"from yolov8{scale}.pt, so name the configs at that scale or give --scale")
    stock = scaled(STOCK, scale)
    if stock not in models:
        models.insert(0, stock)  # every difference is paired with stock on the same seed
    return models


def settings_for(name: str, args: argparse.Namespace) -> dict[str, Any]:
    spec = DATASETS[name]
    epochs = args.epochs or (spec["quick_epochs"] if args.quick else spec["epochs"])
    imgsz = args.imgsz or spec["imgsz"]
    train = args.train_images if args.train_images is not None else spec["train"]
    setting = {"yaml": spec["yaml"], "epochs": epochs, "imgsz": imgsz, "batch": args.batch, "train_images": train,
               "val_images": args.val_images, "weights": Path(args.weights).name, "train_args": args.extra}
    if getattr(args, "curves", False):  # validated after every epoch (the learning curves); absent from older records' settings
        setting["curves"] = True
    setting["digest"] = _digest(setting)
    return setting


def run(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.zoo_args import extra_train_args
    from yolo_gfl.zoo import ZooCellError, ZooError, run_zoo

    record_path = Path(args.record)
    record = load_record(record_path, scaled(STOCK, args.scale))
    args.extra = extra_train_args(args)
    modes = inference_modes(getattr(args, "modes", None))  # checked before anything runs
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in names if d not in DATASETS]
    if unknown:
        raise BenchmarkError(f"unknown data set(s) {unknown}: choose from {', '.join(DATASETS)}")
    shared = Path(args.shared)
    weights = Path(args.weights)
    seeds = [int(s) for s in str(args.seeds or ("0" if args.quick else "0,1,2")).split(",") if s.strip()]
    remeasure = {Path(m.strip()).stem for m in (args.remeasure or "").split(",") if m.strip()}
    models = _models(args.models, args.quick, args.scale)
    if remeasure - {Path(m).stem for m in models}:
        raise BenchmarkError(f"--remeasure {sorted(remeasure)}: every model to measure anew must be among --models "
                             f"({args.models or 'the default'}); add it there")
    for d in names if remeasure else []:
        orphans = copies_without_source(record, d, remeasure, seeds)
        if orphans:
            sources = sorted(set(orphans.values()))
            raise BenchmarkError(f"--remeasure {sorted(orphans)}: on {d} its cells are copies of {sources} (the same "
                                 f"recipe), which would bring them back unmeasured; add {sources} to --remeasure and "
                                 "--models: it is measured once and the copies taken from it")
    if not args.report_only:
        if not weights.is_file():
            raise BenchmarkError(f"--weights {weights} does not exist: give Ultralytics' yolov8{args.scale}.pt "
                                 f"(expected at {weights_for(args.scale)})")
        for d in names:
            if not (shared / "datasets" / DATASETS[d]["yaml"]).is_file():
                raise BenchmarkError(f"data set {d}: {shared / 'datasets' / DATASETS[d]['yaml']} does not exist; "
                                     "give --shared, the folder holding datasets/ (../shared beside the checkout)")
    configs = {} if args.report_only else {Path(m).stem: config_digest(m) for m in models}
    recipes = {} if args.report_only else {Path(m).stem: recipe_digest(m) for m in models}
    failed = []
    for d in names:
        setting = settings_for(d, args)
        record["datasets"].setdefault(d, {k: v for k, v in setting.items()})
        if record["datasets"][d]["digest"] != setting["digest"]:
            raise BenchmarkError(f"{record_path} holds {d} cells made with other settings "
                                 f"({record['datasets'][d]}); use another --record for this request")
        if args.report_only:
            continue
        stale = edited_config_cells(record, d, configs, recipes)
        if stale:  # an edited recipe (e.g. a shipped variant's new one): its old cells are kept aside, not lost
            by_stem = {Path(m).stem: m for m in models}
            retire(record, stale, lambda c: retirement_reason(c, by_stem[c["model"]]))
            print(f"== {d}: {len(stale)} cell(s) of {sorted({c['model'] for c in stale})} were made with an earlier "
                  "version of their config: moved to the record's 'retired' list (kept, out of the tables)", flush=True)
        project, zoo_name = Path(args.project), f"real_data-{d}-{setting['digest']}"
        if remeasure:
            retire_for_remeasure(record, d, remeasure, seeds, project / zoo_name / "cells")
            save_record(record, record_path)  # at once, so the old cells stay retired if this run is stopped
        if not args.retrain_same_recipe:
            take_same_recipe_cells(record, d, setting, models, configs, recipes, seeds)
        have = {(c["model"], c["seed"]) for c in record["cells"] if c["data"] == d}
        todo = [m for m in models if any((Path(m).stem, s) not in have for s in seeds)]
        if not args.retrain_same_recipe:  # two requested configs with one recipe: train it once, copy it after
            twins = recipe_twins(todo)
            for stem, source in twins.items():
                print(f"== {d}: {stem} has the recipe of {source}: its cells are taken from {source}'s once they are "
                      "made (--retrain-same-recipe trains it)", flush=True)
            todo = [m for m in todo if Path(m).stem not in twins]
        if not todo:
            print(f"== {d}: every requested cell is in the record", flush=True)
            save_record(record, record_path)
            continue
        data_yaml = prepare_data(d, shared / "datasets" / setting["yaml"], project / "data",
                                 setting["train_images"], setting["val_images"])
        print(f"== {d}: {len(todo)} model(s) x {len(seeds)} seed(s), {setting['epochs']} epochs at "
              f"{setting['imgsz']} px", flush=True)
        train_args = dict(batch=args.batch, workers=args.workers, device=args.device, val=bool(args.curves),
                          pretrained=str(weights.resolve()), **args.extra)
        try:
            rows = run_zoo(models=todo, data=str(data_yaml), epochs=setting["epochs"], seeds=seeds,
                           imgsz=setting["imgsz"], project=str(project), name=zoo_name,
                           latency_runs=args.latency_runs, jobs=args.jobs, weights="last",
                           modes=modes, **train_args)
        except ZooError as e:
            raise BenchmarkError(str(e)) from None
        except ZooCellError as e:
            print(f"error: {e}", file=sys.stderr)
            failed.append(d)
            rows = []
        cell_dir = project / zoo_name / "cells"
        for row in rows:
            if (row["model"], row["seed"]) in have:
                continue
            full = json.loads((cell_dir / f"{row['model']}-s{row['seed']}.json").read_text())  # the zoo's cell file
            record["cells"].append(record_cell(d, setting, {**full, **row}, configs[row["model"]],
                                               recipes[row["model"]]))
            have.add((row["model"], row["seed"]))
        if not args.retrain_same_recipe:  # the twins of the models just trained
            take_same_recipe_cells(record, d, setting, models, configs, recipes, seeds)
        save_record(record, record_path)  # after every data set
    md = tables(record)
    extra = inference_tables(record)
    if extra:
        md += "\n" + extra
    header = (f"# Real-data fine-tune benchmark\n\nMade by `python {' '.join(['benchmarks/real_data.py'] + args.argv)}`"
              f" from `{record_path.name}` (never edited by hand); updated {record.get('updated', '—')}.\n\n")
    if not args.report_only:
        _write_atomic(record_path.with_suffix(".md"), header + md + "\n")
    print(md)
    if failed:
        raise SystemExit(f"cells failed on {failed}: see the zoo logs; rerun the same command to resume")
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="search mode: seed 0, the shorter schedules, -vfnet too, "
                    f"record {QUICK_RECORD.relative_to(ROOT)}")
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated (default %(default)s)")
    ap.add_argument("--models", default=None, help=f"comma-separated configs (default {','.join(SHIPPED)}; "
                    f"--quick adds {','.join(QUICK_EXTRA)}); stock is always added")
    ap.add_argument("--seeds", default=None, help="comma-separated (default 0,1,2; --quick: 0)")
    ap.add_argument("--epochs", type=int, default=None, help="override every data set's schedule")
    ap.add_argument("--imgsz", type=int, default=None, help="override every data set's image size")
    ap.add_argument("--train-images", type=int, default=None, help="fixed-seed subsample of every train split")
    ap.add_argument("--val-images", type=int, default=None, help="fixed-seed subsample of every val split")
    ap.add_argument("--batch", type=int, default=16, help="batch size (default %(default)s, Ultralytics' default)")
    ap.add_argument("--workers", type=int, default=2, help="data-loader workers (default %(default)s)")
    ap.add_argument("--device", default="cpu", help="cpu, or a CUDA device such as 0 (default %(default)s)")
    ap.add_argument("--jobs", type=int, default=2, help="cells trained at once (default %(default)s)")
    ap.add_argument("--latency-runs", type=int, default=5, help="timed forward passes per cell (default %(default)s)")
    ap.add_argument("--scale", default="n", choices=list(SCALES), help="the model scale (default %(default)s): "
                    "yolov8<scale>.pt fine-tuned into yolov8<scale>.yaml and the variants at that scale, in a record "
                    "of its own (real_data_<scale>.json; n keeps real_data.json)")
    ap.add_argument("--weights", default=None, help=f"the COCO checkpoint (default {SHARED / 'weights'}/yolov8<scale>.pt)")
    ap.add_argument("--shared", default=str(SHARED), help="folder holding datasets/ (default %(default)s)")
    ap.add_argument("--project", default=str(ROOT / "runs" / "real_data"), help="zoo folders (default %(default)s)")
    ap.add_argument("--record", default=None, help=f"record JSON (default {RECORD.relative_to(ROOT)}; --quick: "
                    f"{QUICK_RECORD.relative_to(ROOT)}; another --scale: real_data[_quick]_<scale>.json)")
    ap.add_argument("--retrain-same-recipe", action="store_true", help="train a cell even when the record holds "
                    "it under another model name with the same recipe (default: take that cell over)")
    ap.add_argument("--remeasure", default=None, metavar="MODELS",
                    help="comma-separated models among --models whose cells of the requested data sets and seeds "
                    "lack a figure the script now records: those cells are retired (kept) and measured anew, from "
                    "their weights where the zoo folder still holds them, else by training the same run again")
    ap.add_argument("--curves", action="store_true", help="validate after every epoch and record the learning curve "
                    "(a setting of its own: use a record made with it, e.g. --record "
                    "benchmarks/results/real_data_inference.json); the final weights are still the ones evaluated")
    ap.add_argument("--modes", default=None, help="also evaluate every trained cell's final weights under these "
                    f"inference modes, recorded in the cell's 'inference' entry (e.g. {DEFAULT_MODES})")
    ap.add_argument("--report-only", action="store_true", help="print the tables of the record; run nothing")
    ap.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                    help="another Ultralytics train argument or yolo_gfl option for every cell (repeatable)")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.record = args.record or str(record_for(args.scale, args.quick))
    args.weights = args.weights or str(weights_for(args.scale))
    try:
        run(args)
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
