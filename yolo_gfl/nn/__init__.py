"""Network pieces: the GFL detection head and the detection model that uses it."""

from .head import DGQP, GFLDetect
from .model import GFLDetectionModel, build_detection_model
from .vfnet import VFNetDetect, star_offsets

__all__ = ["DGQP", "GFLDetect", "GFLDetectionModel", "VFNetDetect", "build_detection_model", "star_offsets"]
