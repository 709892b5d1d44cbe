"""``YOLOGFL``: the Python API, an Ultralytics ``Model`` with yolo_gfl's task map (as RT-DETR and YOLO-World do)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from ultralytics.engine.model import Model

from .configs import resolve_model_cfg
from .data import resolve_data
from .engine import GFLPredictor, GFLTrainer, GFLValidator
from .engine.inference import QualityTap, check_inference_options, reads_quality, split_inference_options
from .engine.validator import EVAL_OPTIONS
from .nn.model import build_detection_model
from .options import split_options

__all__ = ["YOLOGFL"]


class YOLOGFL(Model):
    """IoU-aware YOLOv8 detectors through Ultralytics' trainer, validator, predictor and exporter.

    Examples:
        >>> model = YOLOGFL("yolov8n-gfl.yaml")  # GFLv2's quality branch (DGQP), joint score J = C x I, stock's loss
        >>> model.train(data="coco128.yaml", epochs=3, imgsz=320)
        >>> model.train(data="coco128.yaml", epochs=3, cls_loss="vfl", quality=False)  # options as train arguments
        >>> YOLOGFL("yolov8n.yaml").train(data="coco128.yaml", epochs=3)  # stock YOLOv8 through the same path
        >>> YOLOGFL("runs/detect/train/weights/best.pt").predict("image.jpg")
    """

    def __init__(self, model: str | Path = "yolov8n-gfl.yaml", task: str | None = None, verbose: bool = False):
        if isinstance(model, (str, Path)):
            model = resolve_model_cfg(model)
        super().__init__(model=model, task=task or "detect", verbose=verbose)

    @property
    def task_map(self) -> dict[str, dict[str, Any]]:
        """yolo_gfl's model builder, trainer, validator and predictor for detection."""
        return {
            "detect": {
                "model": build_detection_model,
                "trainer": GFLTrainer,
                "validator": GFLValidator,
                "predictor": GFLPredictor,
            }
        }

    def train(self, trainer=None, **kwargs: Any):
        """Train like ``YOLO.train``; yolo_gfl options (``cls_loss``, ``quality``, ...) may be given as arguments.

        They travel to the trainer, which checks them before anything runs and resolves them with the model's own
        ``gfl:`` section when it builds the model."""
        options, kwargs = split_options(kwargs)
        if "data" in kwargs:
            kwargs["data"] = resolve_data(kwargs["data"])  # data=synthetic makes the embedded set on first use
        trainer = partial(trainer or self._smart_load("trainer"), gfl_overrides=options)
        return super().train(trainer=trainer, **kwargs)

    def val(self, validator=None, **kwargs: Any):
        """Validate like ``YOLO.val``; ``coco=True`` adds pycocotools metrics, ``calibration=True`` the score-IoU report.

        The reports are returned on the metrics object as ``metrics.coco`` and ``metrics.calibration`` (plain dicts) and
        saved in the run folder.
        """
        switches = {k: kwargs.pop(k) for k in EVAL_OPTIONS if k in kwargs}
        for key, value in switches.items():
            if not isinstance(value, bool):
                raise ValueError(f"val option {key}={value!r} must be True or False")
        inference, kwargs = split_inference_options(kwargs)  # nms=soft, pre_nms_topk=1000, paper=True, ...
        inference = check_inference_options(inference, kwargs)
        self._check_quality_votes(inference)
        if "data" in kwargs:
            kwargs["data"] = resolve_data(kwargs["data"])
        validator = partial(validator or self._smart_load("validator"), inference=inference, **switches)
        return super().val(validator=validator, **kwargs)

    def _check_quality_votes(self, inference: dict[str, Any]) -> None:
        """Votes weighed by C or I alone need this model's quality branch: refused before anything starts otherwise
        (a stock model, or an exported one, whose head is not at hand)."""
        if reads_quality(inference):
            QualityTap(self.model, inference["vote_weight"]).close()

    def predict(self, source=None, stream: bool = False, predictor=None, **kwargs: Any):
        """Predict like ``YOLO.predict``; the papers' inference settings are options (see ``yolo_gfl.engine.inference``).

        ``nms=soft`` (Gaussian soft-NMS, ``soft_sigma=0.5``), ``pre_nms_topk=N`` (at most N candidates per pyramid
        level before NMS), ``paper=True`` (``conf=0.05 iou=0.6 max_det=100 pre_nms_topk=1000``), beside ``conf``,
        ``iou`` and ``max_det``. Defaults are Ultralytics' own.
        """
        inference, kwargs = split_inference_options(kwargs)
        self._inference = check_inference_options(inference, kwargs)
        self._check_quality_votes(self._inference)
        if not getattr(self, "_inference_hooked", False):  # the predictor (new or reused) takes the options per run
            self.add_callback("on_predict_start", lambda p: setattr(p, "inference_options", self._inference))
            self._inference_hooked = True
        return super().predict(source, stream, predictor=predictor, **kwargs)

    def export(self, **kwargs: Any):
        """Export like ``YOLO.export``, after yolo_gfl's up-front check that the format can hold this variant."""
        if isinstance(self.model, torch.nn.Module):
            from .export import check_export

            check_export(self.model, str(kwargs.get("format", self.overrides.get("format", "torchscript"))).lower())
        return super().export(**kwargs)
