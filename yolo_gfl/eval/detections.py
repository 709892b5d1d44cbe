"""Detections of any detector as COCO results: one image's detections in any common form to arrays, then to the
COCO results list. Ids follow :mod:`yolo_gfl.eval.ids`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .ids import class_to_category_fn

__all__ = ["to_numpy", "as_detection_arrays", "detections_to_coco"]


def to_numpy(x) -> np.ndarray:
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
        arr = to_numpy(item).astype(np.float64).reshape(-1, 6)
        boxes, scores, classes = arr[:, :4], arr[:, 4], arr[:, 5]
    boxes = to_numpy(boxes).astype(np.float64).reshape(-1, 4)
    scores = to_numpy(scores).astype(np.float64).reshape(-1)
    classes = to_numpy(classes).astype(np.float64).reshape(-1)
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
    to_category = class_to_category_fn(class_to_category)
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
