"""The record (``benchmarks/results/*.json``): reading and writing it, the digests that tell a cell's config and recipe,
retiring cells whose recipe changed, and taking over cells of another config with the same recipe."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from .settings import METRICS, ROOT, STOCK, BenchmarkError


def digest(obj: Any) -> str:
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
                             f"give --scale {scale_letter(record.get('stock', STOCK))} or another --record")
    return record


def scale_letter(model: str) -> str | None:
    """The scale letter Ultralytics reads from a config's name (yolov8s-gfl.yaml -> s), None if it names none."""
    from ultralytics.nn.tasks import guess_model_scale

    return guess_model_scale(Path(model)) or None


def write_text_atomic(path: Path, text: str) -> None:
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
    return digest(path.read_text() if path is not None else model)


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
    return digest(cfg)


def config_of(model_stem: str) -> str:
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
    if cell.get("config") == digest(model):
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


def _zoo_result_of(cell: dict[str, Any], cell_dir: Path) -> dict[str, Any] | None:
    """The zoo's result file that made this record cell (same ``finished_at``), or None where it is gone or another
    run's (another machine's folder, a later training)."""
    try:
        result = json.loads((cell_dir / f"{cell['model']}-s{cell['seed']}.json").read_text())
    except (OSError, ValueError):
        return None
    return result if result.get("finished_at") == cell.get("finished_at") else None


def models_lacking_modes(record: dict[str, Any], data: str, seeds: list[int], modes: dict[str, Any] | None,
                         cell_dir: Path) -> tuple[set[str], list[str]]:
    """(models, notes): the models (names, no suffix) whose record cells on ``data`` lack a requested inference mode
    and whose zoo results in ``cell_dir`` are those very cells, every requested seed of them (the zoo runs a model's
    every seed, and would train again one whose result is gone), so the zoo evaluates the modes on their weights
    without training; and one note per model that lacks modes but cannot get them here."""
    lacking: dict[str, set[str]] = {}
    folder_gone: set[str] = set()
    for c in record["cells"]:
        if c["data"] != data or c["seed"] not in seeds or c.get("same_recipe_as"):
            continue
        if _zoo_result_of(c, cell_dir) is None:
            folder_gone.add(c["model"])
        missing = [m for m in modes or {} if m not in (c.get("inference") or {})]
        if missing:
            lacking.setdefault(c["model"], set()).update(missing)
    notes = [f"{m} lacks {', '.join(sorted(lacking[m]))} on some seeds, and the run folder of some of its cells "
             "is gone or another run's: its cells keep the modes they have" for m in sorted(folder_gone & set(lacking))]
    return set(lacking) - folder_gone, notes


def add_zoo_modes(record: dict[str, Any], data: str, cell_dir: Path) -> int:
    """Copy into the record's cells on ``data`` the inference modes their own zoo results (same ``finished_at``) hold
    and they lack; copies of another model's cells (``same_recipe_as``) take them from their source. Returns how many
    modes were added."""
    by_key = {(c["model"], c["seed"]): c for c in record["cells"] if c["data"] == data}
    added = 0
    for c in by_key.values():
        source = by_key.get((c.get("same_recipe_as"), c["seed"])) if c.get("same_recipe_as") else c
        result = _zoo_result_of(source, cell_dir) if source is not None else None
        new = {k: v for k, v in ((result or {}).get("inference") or {}).items() if k not in (c.get("inference") or {})}
        if new:
            c["inference"] = {**(c.get("inference") or {}), **new}
            added += len(new)
    return added


def _recipe_if_unchanged(model_stem: str, config: str | None) -> str | None:
    """The recipe digest of a record cell's model while its config is the one the cell was made with, else None."""
    path = config_of(model_stem)
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
    write_text_atomic(path, json.dumps(record, indent=1, allow_nan=False) + "\n")
