"""The zoo's driver: check the request, run each cell not done yet in its own process (``jobs`` at a time), time all
models side by side, and write the tables."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .cell import missing_modes
from .measure import measure_speed
from .records import jsonable, read_cell, write_json
from .request import Cell, ZooCellError, check_folder, check_request
from .tables import aggregate, fmt


def build_label_caches(data: str) -> None:
    """Scan a data set's train and val labels once, here, so that cells started side by side find Ultralytics' label
    caches (``*.cache`` beside the labels) ready. Two cells scanning a data set that has none race to replace the same
    file, and the loser stops with FileNotFoundError in ``save_dataset_cache_file`` (seen with ``jobs=2`` on coco128).
    Only a YAML on disk is scanned; a named Ultralytics set is fetched by the first cell, as before."""
    if not Path(data).is_file():
        return
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    info = check_det_dataset(data)
    for split in ("train", "val"):
        if info.get(split):  # building the dataset reads or writes its label cache; no image is loaded
            YOLODataset(img_path=info[split], data=info, imgsz=32, augment=False, prefix=f"zoo {split}: ")


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
    weights: str = "last",
    modes: Any = None,
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
        weights: which weights of a trained cell are evaluated: ``last`` (default), the final ones; ``best``,
            Ultralytics' ``best.pt``, the epoch with the best fitness on the val split, the same split the table reports
            (with ``val=False`` Ultralytics validates only the last epoch, and both are the same).
        modes: also evaluate each cell under these named inference modes (``yolo_gfl.engine.inference``'s
            ``INFERENCE_MODES``, e.g. ``modes=hard,soft,vote``; or a dict of name -> inference options): their figures
            go into the cell's ``inference`` entry. A mode the model cannot serve (``vote-quality`` on a model without
            a quality branch) is recorded with the reason.
        **train_kwargs: Ultralytics train arguments (``batch``, ``device``, ``lr0``, ``pretrained``, ...) and yolo_gfl
            options, identical for every cell; with ``eval_only`` only the evaluation ones (``batch``, ``device``, ...).

    Returns:
        One dict per cell (the zoo.csv columns), in run order (seed-major).

    Raises:
        ZooError: bad input (before anything runs), or a zoo folder holding cells made with other settings.
        ZooCellError: after every other cell ran and the table was written, if some cells failed.
    """
    req = check_request(models, data, epochs, seeds, imgsz, name, eval_only, latency_runs, throughput_batch, jobs,
                        train_kwargs, weights, modes)
    cells = req.cells
    folder = (Path(project) if project is not None else Path("runs")).expanduser().resolve() / name
    cell_root = folder / "cells"
    check_folder(req, folder)
    cell_root.mkdir(parents=True, exist_ok=True)
    request = req.record()
    write_json(folder / "zoo.json", request)

    failed: list[str] = []
    pending = list(enumerate(cells, 1))
    running: list[tuple[int, Cell, subprocess.Popen, Any, float]] = []  # (number, cell, process, log file, start)

    def start(i: int, cell: Cell, modes_to_add: list[str] | None = None) -> None:
        result_file = cell_root / f"{cell.key}.json"
        spec = {**cell.spec, "key": cell.key, "label": cell.label, "seed": cell.seed,
                "latency_runs": req.latency_runs, "throughput_batch": req.throughput_batch,
                "concurrent_cells": req.jobs, "cell_dir": str(cell_root / cell.key), "result": str(result_file)}
        spec_file = cell_root / f"{cell.key}.spec.json"
        if modes_to_add:
            spec["add_modes"] = True
            spec_file = cell_root / f"{cell.key}.add_modes.json"  # the cell's own spec stays as it ran
        write_json(spec_file, spec)
        log = cell_root / f"{cell.key}.log"
        if verbose:
            doing = (f"evaluating {', '.join(modes_to_add)} on its weights (not trained again)" if modes_to_add
                     else "evaluating" if req.eval_only else "training")
            print(f"[zoo] {i}/{len(cells)} {cell.key}: {doing} (log: {log})", flush=True)
        f = open(log, "a")
        f.write(f"\n===== {datetime.now().astimezone().isoformat(timespec='seconds')} cell {cell.key}\n")
        f.flush()
        proc = subprocess.Popen([sys.executable, "-m", "yolo_gfl.zoo", "--cell", str(spec_file)],
                                stdout=f, stderr=subprocess.STDOUT)
        running.append((i, cell, proc, f, time.perf_counter()))

    def finish(i: int, cell: Cell, code: int, seconds: float) -> None:
        log = cell_root / f"{cell.key}.log"
        done = read_cell(cell_root / f"{cell.key}.json")
        if code != 0 or done is None:
            failed.append(f"{cell.key} (exit {code}; see {log})")
            if verbose:
                print(f"[zoo] {i}/{len(cells)} {cell.key}: FAILED with exit code {code}; see {log}", flush=True)
        elif verbose:
            print(f"[zoo] {i}/{len(cells)} {cell.key}: {seconds:.0f}s, mAP50-95 "
                  f"{done['mAP50-95'] * 100:.1f}, COCO AP {fmt(done.get('coco_AP'), None, 100)}, "
                  f"Spearman {fmt(done.get('spearman'), None, 1, 3)}, latency {done['latency_ms']:.1f} ms", flush=True)

    if req.jobs > 1 and any(read_cell(cell_root / f"{c.key}.json") is None for _, c in pending):
        build_label_caches(req.data)
    try:
        while pending or running:
            while pending and len(running) < req.jobs:
                i, cell = pending.pop(0)
                done = read_cell(cell_root / f"{cell.key}.json")
                to_add = missing_modes(done, req.modes) if done is not None else []
                if to_add:
                    start(i, cell, to_add)  # modes asked for since it ran
                    continue
                if done is not None:
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

    results = [r for c in cells if (r := read_cell(cell_root / f"{c.key}.json")) is not None]
    speed = None
    if results:
        weights = {}
        for r in results:  # one checkpoint per model: latency depends on the architecture, not the seed
            weights.setdefault(r["model"], r["weights"])
        if verbose:
            print(f"[zoo] timing {len(weights)} models interleaved ({req.latency_runs} rounds)...", flush=True)
        try:
            speed = measure_speed(weights, req.imgsz, req.train_kwargs.get("device"), req.latency_runs,
                                  req.throughput_batch)
            write_json(folder / "speed.json", jsonable(speed))
        except Exception as e:  # noqa: BLE001 - the cells' own latency figures remain
            print(f"[zoo] interleaved timing failed ({e}); the table uses each cell's own latency", flush=True)
    rows = aggregate(results, folder, request, speed) if results else []
    if verbose and results:
        print(f"\n{(folder / 'zoo.md').read_text()}\n[zoo] table: {folder / 'zoo.md'} and zoo.csv", flush=True)
    if failed:
        raise ZooCellError(f"{len(failed)} of {len(cells)} cells failed: {'; '.join(failed)}. Fix the cause and run "
                           "the same command again: finished cells are kept.")
    return rows
