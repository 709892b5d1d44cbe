"""Data sets made by yolo_gfl: a deterministic synthetic shapes detection set (see ``yolo_gfl.data.synthetic``)."""

from .synthetic import SYNTHETIC_NAMES, generate_synthetic_dataset, render_sample, resolve_data, synthetic_dataset

__all__ = ["SYNTHETIC_NAMES", "generate_synthetic_dataset", "render_sample", "resolve_data", "synthetic_dataset"]
