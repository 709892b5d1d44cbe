"""``GFLPredictor``: Ultralytics' detection predictor for yolo_gfl models.

NMS ranks by the class scores the head outputs, which for yolo_gfl variants are the IoU-aware scores; this class is the
seam where yolo_gfl's inference options attach.
"""

from __future__ import annotations

from ultralytics.models.yolo.detect import DetectionPredictor

__all__ = ["GFLPredictor"]


class GFLPredictor(DetectionPredictor):
    """Detection predictor for yolo_gfl models (NMS ranked by the IoU-aware score)."""
