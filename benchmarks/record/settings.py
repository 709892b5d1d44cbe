"""The real-data benchmark's fixed settings: its stock model, shipped variants, data sets and schedules, the
figures a cell records, and the inference modes a cell can be evaluated under."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
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
DEFAULT_MODES = "hard,soft,vote,vote-class,vote-quality,vote-overlap,vote-paa,vote-s0.1"


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
