"""The two id conventions every COCO dict of yolo_gfl.eval follows, so the ground truth and the detections agree.

* **Image ids.** Images are sorted by path. When *every* image stem is a decimal integer and those integers are unique
  (COCO files: ``000000000139.jpg`` -> 139) the id is that integer, so ids agree with the official COCO annotation
  files and do not change when a subset of the images is evaluated. Otherwise every image gets its 1-based index in the
  sorted order (stable for a given set of images, but a different subset renumbers them). One rule for all images,
  never a mix, so the two kinds of id can not collide. :func:`assign_image_ids` is the rule.
* **Category ids.** ``class_to_category`` maps a YOLO class index to a COCO category id: ``None`` means
  ``class + 1`` (COCO reserves 0), a mapping ``{class: category_id}`` or a sequence indexed by class (e.g. Ultralytics'
  ``coco80_to_coco91_class()`` to compare with the official COCO ids) may be given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["PathLike", "assign_image_ids", "class_to_category_fn", "category_to_class_fn"]

PathLike = str | os.PathLike


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


def class_to_category_fn(class_to_category: Mapping[int, int] | Sequence[int] | None):
    """Turn the ``class_to_category`` argument into a function ``int class -> int category id``."""
    if class_to_category is None:
        return lambda c: int(c) + 1  # COCO category ids start at 1

    def lookup(c: int) -> int:
        try:
            return int(class_to_category[int(c)])
        except (KeyError, IndexError):
            raise KeyError(f"class {int(c)} has no entry in class_to_category") from None

    return lookup


def category_to_class_fn(class_to_category: Mapping[int, int] | Sequence[int] | None):
    """Inverse of :func:`class_to_category_fn`: ``int category id -> int class``."""
    if class_to_category is None:
        return lambda k: int(k) - 1
    items = class_to_category.items() if isinstance(class_to_category, Mapping) else enumerate(class_to_category)
    inverse = {int(cat): int(cls) for cls, cat in items}
    if len(inverse) != len(class_to_category):
        raise ValueError("class_to_category maps two classes to the same category id: it can not be inverted")
    return lambda k: inverse[int(k)]
