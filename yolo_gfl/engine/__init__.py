"""Ultralytics engine subclasses: trainer, validator (and the ranking oracle's) and predictor for yolo_gfl models."""

from .oracle import OracleValidator
from .predictor import GFLPredictor
from .trainer import GFLTrainer
from .validator import GFLValidator

__all__ = ["GFLPredictor", "GFLTrainer", "GFLValidator", "OracleValidator"]
