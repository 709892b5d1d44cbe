"""yolo_gfl: IoU-aware YOLOv8 detectors (VarifocalNet and Generalized Focal Loss v1/v2) inside Ultralytics."""

__version__ = "0.3.0"

from .model import YOLOGFL  # noqa: E402

__all__ = ["YOLOGFL", "__version__"]
