"""Ultralytics engine subclasses: trainer, validator and predictor for yolo_gfl models."""

from .predictor import GFLPredictor
from .trainer import GFLTrainer
from .validator import GFLValidator

__all__ = ["GFLPredictor", "GFLTrainer", "GFLValidator"]
