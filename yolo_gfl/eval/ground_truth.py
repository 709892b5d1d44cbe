"""YOLO-format data sets as COCO ground truth: find the images, read the labels, convert both ways.

Boxes: COCO boxes are ``[x, y, w, h]`` in pixels (top-left corner), from the normalised YOLO ``xc yc w h`` times the
image size; no clipping, so the conversion is exactly invertible (:func:`coco_to_yolo_boxes`). Ids follow
:mod:`yolo_gfl.eval.ids`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ultralytics.data.utils import IMG_FORMATS, check_det_dataset, exif_size, img2label_paths
from ultralytics.utils import LOGGER

from .ids import PathLike, assign_image_ids, category_to_class_fn, class_to_category_fn

__all__ = ["list_images", "read_yolo_labels", "yolo_to_coco", "coco_to_yolo_boxes", "load_data_split"]


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
    to_category = class_to_category_fn(class_to_category)
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
    to_class = category_to_class_fn(class_to_category)
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
