"""Network pieces: the GFL detection head and the detection model that uses it."""

from .head import DGQP, GFLDetect
from .model import GFLDetectionModel, build_detection_model

__all__ = ["DGQP", "GFLDetect", "GFLDetectionModel", "build_detection_model"]
