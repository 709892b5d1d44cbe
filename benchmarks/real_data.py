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
The parts this script runs, one job each, live in ``benchmarks/record/`` (settings, data, the record, paired
statistics, tables); other scripts import them from there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")  # the weights and images are local; nothing may download

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.record.data import prepare_data  # noqa: E402
from benchmarks.record.settings import (  # noqa: E402
    DATASETS,
    DEFAULT_MODES,
    QUICK_EXTRA,
    QUICK_RECORD,
    RECORD,
    SCALES,
    SHARED,
    SHIPPED,
    STOCK,
    BenchmarkError,
    inference_modes,
    record_for,
    scaled,
    weights_for,
)
from benchmarks.record.store import (  # noqa: E402
    add_zoo_modes,
    config_digest,
    copies_without_source,
    digest,
    edited_config_cells,
    load_record,
    models_lacking_modes,
    recipe_digest,
    recipe_twins,
    record_cell,
    retire,
    retire_for_remeasure,
    retirement_reason,
    save_record,
    scale_letter,
    take_same_recipe_cells,
    write_text_atomic,
)
from benchmarks.record.tables import inference_tables, tables  # noqa: E402


# -------------------------------------------------------------------------------------------------------------- run
def _models(text: str | None, quick: bool, scale: str = "n") -> list[str]:
    """The requested configs with stock first, refusing one of another scale than ``scale``."""
    default = [scaled(m, scale) for m in SHIPPED + (QUICK_EXTRA if quick else [])]
    models = [m.strip() for m in text.split(",") if m.strip()] if text else default
    other = [m for m in models if scale_letter(m) not in (None, scale)]
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
    setting["digest"] = digest(setting)
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
        lacking, notes = models_lacking_modes(record, d, seeds, modes, project / zoo_name / "cells")
        for note in notes:
            print(f"== {d}: {note}", flush=True)
        todo += [m for m in models if Path(m).stem in lacking and m not in todo]  # the zoo adds the modes only
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
        only_modes = [m for m in todo if Path(m).stem in lacking and all((Path(m).stem, s) in have for s in seeds)]
        print(f"== {d}: {len(todo)} model(s) x {len(seeds)} seed(s), {setting['epochs']} epochs at "
              f"{setting['imgsz']} px" + (f"; {len(only_modes)} of them trained before, for new inference modes only"
                                          if only_modes else ""), flush=True)
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
        if add_zoo_modes(record, d, cell_dir):
            print(f"== {d}: inference modes added to recorded cells from their weights", flush=True)
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
        write_text_atomic(record_path.with_suffix(".md"), header + md + "\n")
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
