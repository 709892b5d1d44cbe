"""COCO-style box metrics for any YOLO-format dataset, as pure functions.

The pipeline is: YOLO labels -> COCO ground-truth dict (:func:`yolo_to_coco`), per-image detections -> COCO results
list (:func:`detections_to_coco`), then pycocotools' ``COCOeval`` (:func:`coco_evaluate`). Nothing here needs a model:
any detector's outputs can be scored against any YOLO dataset with the official COCO protocol (101-point interpolated
precision averaged over IoU 0.50:0.05:0.95, max 100 detections per image, small/medium/large by box area).

Conventions (the same everywhere in this module, so the GT and the detections always agree):

* **Image ids.** Images are sorted by path. When *every* image stem is a decimal integer and those integers are unique
  (COCO files: ``000000000139.jpg`` -> 139) the id is that integer, so ids agree with the official COCO annotation
  files and do not change when a subset of the images is evaluated. Otherwise every image gets its 1-based index in the
  sorted order (stable for a given set of images, but a different subset renumbers them). One rule for all images,
  never a mix, so the two kinds of id can not collide. :func:`assign_image_ids` exposes the rule.
* **Category ids.** ``class_to_category`` maps a YOLO class index to a COCO category id: ``None`` means
  ``class + 1`` (COCO reserves 0), a mapping ``{class: category_id}`` or a sequence indexed by class (e.g. Ultralytics'
  ``coco80_to_coco91_class()`` to compare with the official COCO ids) may be given.
* **Boxes.** COCO boxes are ``[x, y, w, h]`` in pixels (top-left corner), from the normalised YOLO ``xc yc w h`` times
  the image size; no clipping, so the conversion is exactly invertible (:func:`coco_to_yolo_boxes`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ultralytics.data.utils import IMG_FORMATS, check_det_dataset, exif_size, img2label_paths
from ultralytics.utils import LOGGER

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

PathLike = str | os.PathLike


# ----------------------------------------------------------------------------------------------------------- inputs
def list_images(source: PathLike | Sequence[PathLike]) -> list[str]:
    """Image paths from a folder (searched recursively), a ``.txt`` list file, a single image, or a list of those.

    Follows Ultralytics' ``BaseDataset.get_img_files``: only files whose suffix is in ``IMG_FORMATS`` are kept, and
    list-file lines starting with ``./`` are relative to the list file.

    Returns:
        Sorted list of image path strings.
    """
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    files: list[str] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            files += [str(f) for f in p.rglob("*.*") if f.is_file()]
        elif p.is_file() and p.suffix.lower() == ".txt":
            lines = p.read_text(encoding="utf-8-sig").strip().splitlines()
            files += [str(p.parent / x[2:]) if x.startswith("./") else x.strip() for x in lines if x.strip()]
        elif p.is_file():
            files.append(str(p))
        else:
            raise FileNotFoundError(f"{p} does not exist")
    return sorted(f for f in files if f.rpartition(".")[-1].lower() in IMG_FORMATS)


def assign_image_ids(image_paths: Sequence[PathLike]) -> dict[str, int]:
    """COCO image ids for a set of images: integer stems when all are unique integers, else 1-based sorted index.

    Args:
        image_paths: the complete set of images of the evaluation (the sorted-index rule depends on all of them).

    Returns:
        ``{str(path): image_id}``.
    """
    paths = sorted({os.fspath(p) for p in image_paths})
    stems = [Path(p).stem for p in paths]
    # str.isdigit() also accepts e.g. superscript digits, which int() rejects: check ASCII decimals explicitly.
    if stems and all(s.isascii() and s.isdecimal() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return {p: int(s) for p, s in zip(paths, stems)}
    return {p: i for i, p in enumerate(paths, start=1)}


def _class_to_category_fn(class_to_category: Mapping[int, int] | Sequence[int] | None):
    """Turn the ``class_to_category`` argument into a function ``int class -> int category id``."""
    if class_to_category is None:
        return lambda c: int(c) + 1  # COCO category ids start at 1

    def lookup(c: int) -> int:
        try:
            return int(class_to_category[int(c)])
        except (KeyError, IndexError):
            raise KeyError(f"class {int(c)} has no entry in class_to_category") from None

    return lookup


def _category_to_class_fn(class_to_category: Mapping[int, int] | Sequence[int] | None):
    """Inverse of :func:`_class_to_category_fn`: ``int category id -> int class``."""
    if class_to_category is None:
        return lambda k: int(k) - 1
    items = class_to_category.items() if isinstance(class_to_category, Mapping) else enumerate(class_to_category)
    inverse = {int(cat): int(cls) for cls, cat in items}
    if len(inverse) != len(class_to_category):
        raise ValueError("class_to_category maps two classes to the same category id: it can not be inverted")
    return lambda k: inverse[int(k)]


def _names_dict(names: Mapping[int, str] | Sequence[str] | None) -> dict[int, str]:
    """Class names as ``{class index: name}`` from a dict (Ultralytics style) or a list."""
    if names is None:
        return {}
    if isinstance(names, Mapping):
        return {int(k): str(v) for k, v in names.items()}
    return dict(enumerate(map(str, names)))


def read_yolo_labels(label_file: PathLike) -> np.ndarray:
    """Read one YOLO label file as an (N, 5) float64 array ``[cls, xc, yc, w, h]`` (normalised).

    A missing or empty file gives a (0, 5) array. Polygon rows (``cls x1 y1 x2 y2 ...``, as in Ultralytics'
    segment datasets) become their enclosing box, as Ultralytics' ``segments2boxes`` does. Exact duplicate rows are
    dropped (first kept), as Ultralytics' ``verify_image_label`` does, so both score the same ground truth. Values
    are parsed in float64 (Ultralytics uses float32) so that the conversion round-trips the text exactly.
    """
    label_file = Path(label_file)
    if not label_file.is_file():
        return np.zeros((0, 5))
    rows = []
    for line_no, line in enumerate(label_file.read_text(encoding="utf-8-sig").splitlines(), start=1):
        values = line.split()
        if not values:
            continue
        if len(values) == 5:
            rows.append([float(v) for v in values])
        elif len(values) >= 7 and len(values) % 2 == 1:  # class + (x, y) pairs: a polygon
            xy = np.asarray(values[1:], dtype=np.float64).reshape(-1, 2)
            (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
            rows.append([float(values[0]), (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])
        else:
            raise ValueError(f"{label_file}:{line_no}: expected 'cls xc yc w h' or a polygon, got {len(values)} values")
    if not rows:
        return np.zeros((0, 5))
    labels = np.asarray(rows, dtype=np.float64)
    _, first = np.unique(labels, axis=0, return_index=True)
    if len(first) < len(labels):
        LOGGER.warning(f"{label_file}: {len(labels) - len(first)} duplicate label rows removed (as Ultralytics does)")
        labels = labels[np.sort(first)]
    return labels


def _image_size(path: PathLike) -> tuple[int, int]:
    """(width, height) from the file header only, EXIF orientation applied (``ultralytics.data.utils.exif_size``)."""
    from PIL import Image

    with Image.open(path) as im:  # lazy: reads the header, decodes no pixels
        return tuple(int(v) for v in exif_size(im))


# ------------------------------------------------------------------------------------------------- YOLO <-> COCO
def yolo_to_coco(
    images: PathLike | Sequence[PathLike],
    labels_dir: PathLike | None = None,
    names: Mapping[int, str] | Sequence[str] | None = None,
    class_to_category: Mapping[int, int] | Sequence[int] | None = None,
) -> dict[str, Any]:
    """Build a COCO ground-truth dict from YOLO labels.

    Args:
        images: image paths, or a folder / ``.txt`` list (see :func:`list_images`).
        labels_dir: folder holding ``<stem>.txt`` for every image. ``None`` finds labels the Ultralytics way
            (``ultralytics.data.utils.img2label_paths``: the last ``/images/`` becomes ``/labels/``, suffix ``.txt``).
        names: class names (``{index: name}`` or list). Every named class gets a category even when it has no
            boxes (COCOeval then leaves it out of the means). ``None`` names the classes found ``class_<i>``.
        class_to_category: YOLO class -> COCO category id; ``None`` means ``class + 1``.

    Returns:
        COCO dict: ``info``, ``licenses``, ``images`` (``id, file_name, width, height``; sorted by path),
        ``annotations`` (``id`` from 1, ``image_id, category_id, bbox=[x, y, w, h]`` pixels, ``area=w*h``,
        ``iscrowd=0``) and ``categories`` (``id, name, supercategory``, sorted by id). Images whose label file is
        missing or empty are listed with no annotations.
    """
    paths = list_images(images) if isinstance(images, (str, os.PathLike)) else sorted(map(os.fspath, images))
    ids = assign_image_ids(paths)
    if labels_dir is None:
        label_files = img2label_paths(paths)
    else:
        label_files = [str(Path(labels_dir) / f"{Path(p).stem}.txt") for p in paths]
    to_category = _class_to_category_fn(class_to_category)
    names = _names_dict(names)

    coco_images, annotations, seen_classes = [], [], set()
    for path, label_file in zip(paths, label_files):
        width, height = _image_size(path)
        image_id = ids[path]
        coco_images.append({"id": image_id, "file_name": Path(path).name, "width": width, "height": height})
        for cls, xc, yc, w, h in read_yolo_labels(label_file):
            bw, bh = w * width, h * height
            box = [(xc - w / 2) * width, (yc - h / 2) * height, bw, bh]
            seen_classes.add(int(cls))
            annotations.append(
                {
                    "id": len(annotations) + 1,  # unique and 1-based (pycocotools treats id 0 as falsy in places)
                    "image_id": image_id,
                    "category_id": to_category(cls),
                    "bbox": [float(v) for v in box],
                    "area": float(bw * bh),
                    "iscrowd": 0,
                }
            )

    unnamed = sorted(seen_classes - names.keys())
    if names and unnamed:
        LOGGER.warning(f"label classes {unnamed} are not in names; they get categories named 'class_<i>'")
    classes = sorted(names.keys() | seen_classes)
    categories = [
        {"id": to_category(c), "name": names.get(c, f"class_{c}"), "supercategory": ""} for c in classes
    ]
    categories.sort(key=lambda c: c["id"])
    return {
        "info": {
            "description": "YOLO labels converted by yolo_gfl.eval.yolo_to_coco",
            "date_created": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "licenses": [],
        "images": coco_images,
        "annotations": annotations,
        "categories": categories,
    }


def coco_to_yolo_boxes(
    coco: Mapping[str, Any], class_to_category: Mapping[int, int] | Sequence[int] | None = None
) -> dict[int, np.ndarray]:
    """Inverse of :func:`yolo_to_coco` for the boxes: COCO GT dict -> normalised YOLO labels per image.

    Args:
        coco: COCO dict with ``images`` (``id, width, height``) and ``annotations`` (``image_id, category_id, bbox``).
        class_to_category: the mapping used to build it (``None``: ``category_id - 1``).

    Returns:
        ``{image_id: (N, 5) float64 array [cls, xc, yc, w, h]}`` for every image (``(0, 5)`` when it has no boxes),
        rows in annotation order.
    """
    to_class = _category_to_class_fn(class_to_category)
    sizes = {img["id"]: (img["width"], img["height"]) for img in coco["images"]}
    rows: dict[int, list] = {image_id: [] for image_id in sizes}
    for ann in coco["annotations"]:
        width, height = sizes[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        rows[ann["image_id"]].append(
            [to_class(ann["category_id"]), (x + w / 2) / width, (y + h / 2) / height, w / width, h / height]
        )
    return {k: np.asarray(v, dtype=np.float64).reshape(-1, 5) for k, v in rows.items()}


def load_data_split(data_yaml: PathLike, split: str = "val") -> tuple[list[str], dict[int, str]]:
    """Images and class names of one split of an Ultralytics data YAML.

    Paths are resolved by ``ultralytics.data.utils.check_det_dataset`` (relative to ``path:`` or to the YAML's
    folder); ``autodownload`` is off, so a missing split raises ``FileNotFoundError`` instead of downloading.

    Returns:
        (sorted image paths, ``{class index: name}``).
    """
    data = check_det_dataset(str(data_yaml), autodownload=False, split=split)
    if not data.get(split):
        raise KeyError(f"{data_yaml} has no '{split}:' split")
    return list_images(data[split]), dict(data["names"])


# ------------------------------------------------------------------------------------------------------ detections
def _numpy(x) -> np.ndarray:
    """numpy view of an array-like or (possibly CUDA, grad-requiring) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_detection_arrays(item) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise one image's detections to ``(boxes (N, 4) xyxy, scores (N,), classes (N,))`` float64 arrays.

    Accepts an (N, 6) array/tensor ``[x1, y1, x2, y2, score, cls]`` (the Ultralytics NMS output), a tuple
    ``(boxes, scores, classes)``, a mapping with keys ``boxes|xyxy``, ``scores|conf``, ``classes|cls``, or an
    Ultralytics ``Results`` object (its ``.boxes``).
    """
    if hasattr(item, "boxes") and hasattr(item.boxes, "xyxy"):  # ultralytics Results
        item = item.boxes
    if hasattr(item, "xyxy") and hasattr(item, "conf"):  # ultralytics Boxes
        boxes, scores, classes = item.xyxy, item.conf, item.cls
    elif isinstance(item, Mapping):
        def pick(*keys):
            for key in keys:
                if key in item:
                    return item[key]
            raise KeyError(f"detections mapping needs one of the keys {keys}")

        boxes, scores, classes = pick("boxes", "xyxy"), pick("scores", "conf", "score"), pick("classes", "cls")
    elif isinstance(item, tuple) and len(item) == 3:
        boxes, scores, classes = item
    else:
        arr = _numpy(item).astype(np.float64).reshape(-1, 6)
        boxes, scores, classes = arr[:, :4], arr[:, 4], arr[:, 5]
    boxes = _numpy(boxes).astype(np.float64).reshape(-1, 4)
    scores = _numpy(scores).astype(np.float64).reshape(-1)
    classes = _numpy(classes).astype(np.float64).reshape(-1)
    if not len(boxes) == len(scores) == len(classes):
        raise ValueError(f"detections disagree in length: {len(boxes)} boxes, {len(scores)} scores, {len(classes)}")
    return boxes, scores, classes


def detections_to_coco(
    results: Sequence[Any],
    image_ids: Sequence[int],
    class_to_category: Mapping[int, int] | Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Per-image detections -> COCO results list.

    Args:
        results: one entry per image, any form :func:`as_detection_arrays` takes (xyxy pixel boxes, score, class).
        image_ids: the COCO image id of each entry (see :func:`assign_image_ids`), same length as ``results``.
        class_to_category: YOLO class -> COCO category id; ``None`` means ``class + 1`` (as :func:`yolo_to_coco`).

    Returns:
        ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]``, bbox rounded to 3 decimals (1/1000 px,
        far below any IoU threshold's resolution) and score to 5 (keeps the ranking of near-ties), as plain Python
        numbers so the list is JSON-serialisable.
    """
    if len(results) != len(image_ids):
        raise ValueError(f"{len(results)} results but {len(image_ids)} image ids")
    to_category = _class_to_category_fn(class_to_category)
    out = []
    for item, image_id in zip(results, image_ids):
        boxes, scores, classes = as_detection_arrays(item)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)  # width from unrounded corners
        for box, score, cls in zip(xywh.tolist(), scores.tolist(), classes.tolist()):
            out.append(
                {
                    "image_id": int(image_id),
                    "category_id": to_category(cls),
                    "bbox": [round(v, 3) for v in box],
                    "score": round(score, 5),
                }
            )
    return out


# ------------------------------------------------------------------------------------------------------ evaluation
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
