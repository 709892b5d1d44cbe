"""COCO-style box metrics for any YOLO-format dataset, as pure functions.

The pipeline is: YOLO labels -> COCO ground-truth dict (:func:`yolo_to_coco`, in :mod:`yolo_gfl.eval.ground_truth`),
per-image detections -> COCO results list (:func:`detections_to_coco`, in :mod:`yolo_gfl.eval.detections`), then
pycocotools' ``COCOeval`` (:func:`coco_evaluate`, here). Nothing here needs a model: any detector's outputs can be
scored against any YOLO dataset with the official COCO protocol (101-point interpolated precision averaged over IoU
0.50:0.05:0.95, max 100 detections per image, small/medium/large by box area). The ground truth and the detections
share one convention for image and category ids (:mod:`yolo_gfl.eval.ids`).

The names of the whole pipeline are importable from here too, as they were before it was split by job; the public
place is ``yolo_gfl.eval``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from pathlib import Path
from typing import Any

from ultralytics.utils import LOGGER

from .detections import as_detection_arrays, detections_to_coco
from .ground_truth import coco_to_yolo_boxes, list_images, load_data_split, read_yolo_labels, yolo_to_coco
from .ids import PathLike, assign_image_ids

__all__ = [
    "COCO_STAT_NAMES",
    "assign_image_ids",
    "list_images",
    "read_yolo_labels",
    "yolo_to_coco",
    "coco_to_yolo_boxes",
    "load_data_split",
    "as_detection_arrays",
    "detections_to_coco",
    "coco_evaluate",
]

# The 12 numbers COCOeval.summarize() fills into COCOeval.stats, in its order.
COCO_STAT_NAMES = (
    "AP",  # AP @ IoU 0.50:0.95, all areas, 100 dets
    "AP50",
    "AP75",
    "AP_small",  # area < 32^2
    "AP_medium",  # 32^2 <= area < 96^2
    "AP_large",  # area >= 96^2
    "AR1",  # AR @ IoU 0.50:0.95 with at most 1 detection per image
    "AR10",
    "AR100",
    "AR_small",
    "AR_medium",
    "AR_large",
)


def _load_json(obj, kind: type):
    """``obj`` itself when it already is a ``kind`` (dict/list), else the JSON file it names."""
    if isinstance(obj, kind):
        return obj
    if isinstance(obj, tuple) and kind is list:
        return list(obj)
    with open(obj, encoding="utf-8") as f:
        return json.load(f)


def _complete_gt(gt: dict[str, Any]) -> dict[str, Any]:
    """Deep copy of a COCO GT dict with the keys COCOeval needs filled in (area, iscrowd, ids, info)."""
    gt = copy.deepcopy(gt)
    gt.setdefault("info", {})
    gt.setdefault("licenses", [])
    gt.setdefault("categories", [])
    gt.setdefault("annotations", [])
    for i, ann in enumerate(gt["annotations"], start=1):
        ann.setdefault("id", i)
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
    return gt


def coco_evaluate(
    gt: dict[str, Any] | PathLike,
    dets: list[dict[str, Any]] | PathLike,
    save_dir: PathLike | None = None,
    verbose: bool = True,
) -> dict[str, float]:
    """Run pycocotools ``COCOeval`` (bbox) and return its 12 summary numbers by name.

    Args:
        gt: COCO GT dict (e.g. from :func:`yolo_to_coco`) or path of its JSON file.
        dets: COCO results list (e.g. from :func:`detections_to_coco`) or path of its JSON file.
        save_dir: when given, writes ``coco_gt.json``, ``predictions.json`` (the detections evaluated) and
            ``coco_eval.json`` (the stats plus how they were made: counts, parameters, warnings) there.
        verbose: print COCO's summary table.

    Returns:
        ``{name: float}`` for the names in :data:`COCO_STAT_NAMES` (``AP, AP50, ..., AR_large``). As in COCOeval,
        -1.0 means "undefined": no GT box in that area range. Categories listed in the GT without any GT box are
        left out of the means (COCOeval's -1 per category), detections of categories absent from the GT
        categories, or of images absent from the GT, are dropped with a warning (COCOeval would ignore or reject
        them). With no detections at all (pycocotools' ``loadRes`` fails on an empty list) the evaluation runs on an
        empty result set, which scores 0.0 everywhere the GT has boxes, with a warning.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = _complete_gt(_load_json(gt, dict))
    dets = copy.deepcopy(_load_json(dets, list))  # loadRes writes id/area/segmentation into the dicts it gets
    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        LOGGER.warning(msg)

    image_ids = {img["id"] for img in gt["images"]}
    category_ids = {cat["id"] for cat in gt["categories"]}
    n_given = len(dets)
    if off_images := sum(d["image_id"] not in image_ids for d in dets):
        warn(f"{off_images} detections on image ids absent from the GT were dropped")
    if off_categories := sum(d["category_id"] not in category_ids for d in dets):
        warn(f"{off_categories} detections of category ids absent from the GT categories were dropped")
    dets = [d for d in dets if d["image_id"] in image_ids and d["category_id"] in category_ids]
    if not gt["annotations"]:
        warn("the ground truth has no boxes: every metric is undefined (-1)")
    if not dets:
        warn("no detections to evaluate: every metric with ground truth is 0")

    log = io.StringIO()  # pycocotools prints progress lines; keep them out of the way, show only the summary table
    with contextlib.redirect_stdout(log):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if dets:
            coco_dt = coco_gt.loadRes(dets)
        else:  # what loadRes would build from an empty list, if it did not index anns[0]
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt["images"]), "categories": copy.deepcopy(gt["categories"]),
                               "annotations": []}  # fmt: skip
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            evaluator.summarize()
    stats = {name: float(v) for name, v in zip(COCO_STAT_NAMES, evaluator.stats)}

    n_gt = sum(not a.get("iscrowd", 0) for a in gt["annotations"])
    header = f"COCO bbox evaluation: {len(gt['images'])} images, {n_gt} GT boxes, {len(dets)} detections"
    if verbose:
        print(f"{header}\n{summary.getvalue().rstrip()}")

    if save_dir is not None:
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        params = evaluator.params
        # loadRes added id/area/iscrowd/segmentation to these dicts: save the plain results format instead.
        plain = [{k: d[k] for k in ("image_id", "category_id", "bbox", "score")} for d in dets]
        report = {
            "stats": stats,
            "made_by": "yolo_gfl.eval.coco_evaluate (pycocotools COCOeval, iouType=bbox)",
            "gt_file": "coco_gt.json",
            "predictions_file": "predictions.json",
            "num_images": len(gt["images"]),
            "num_gt_boxes": n_gt,
            "num_categories": len(gt["categories"]),
            "num_detections_given": n_given,
            "num_detections_evaluated": len(dets),
            "iou_thresholds": [round(float(t), 2) for t in params.iouThrs],
            "recall_points": len(params.recThrs),
            "max_dets": [int(m) for m in params.maxDets],
            "area_ranges": dict(zip(params.areaRngLbl, [[float(a), float(b)] for a, b in params.areaRng])),
            "warnings": warnings,
            "summary": summary.getvalue().splitlines(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        for name, obj in (("coco_gt.json", gt), ("predictions.json", plain), ("coco_eval.json", report)):
            with open(save_dir / name, "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=None if name != "coco_eval.json" else 2, allow_nan=False)
    return stats
