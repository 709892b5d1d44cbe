"""``GFLValidator``: Ultralytics' detection validator for yolo_gfl models.

The GFL head already emits the IoU-aware score in Ultralytics' output layout, so validation, NMS and metrics are the
stock ones; this class is the seam where yolo_gfl's evaluation options attach.
"""

from __future__ import annotations

from ultralytics.models.yolo.detect import DetectionValidator

__all__ = ["GFLValidator"]


class GFLValidator(DetectionValidator):
    """Detection validator for yolo_gfl models (ranking by the IoU-aware score the head outputs)."""
