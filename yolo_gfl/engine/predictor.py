"""``GFLPredictor``: Ultralytics' detection predictor for yolo_gfl models.

NMS ranks by the class scores the head outputs, which for yolo_gfl variants are the IoU-aware scores. The inference
settings (``nms=soft|vote``, ``pre_nms_topk=N``, ``soft_sigma``, ``vote_*``; see ``yolo_gfl.engine.inference``) replace
Ultralytics' NMS step when set in ``self.inference_options``; by default prediction is exactly Ultralytics'. They run
wherever Ultralytics' predictor runs NMS in Python (PyTorch and exported models alike); a model exported with NMS in
its graph (``nms=True``) is refused them in one line.
"""

from __future__ import annotations

from typing import Any

from ultralytics.models.yolo.detect import DetectionPredictor
from ultralytics.utils import ops

from .inference import (
    DEFAULT_INFERENCE,
    InferenceOptionError,
    QualityTap,
    check_inference_options,
    head_strides,
    level_sizes,
    postprocess_detections,
    reads_quality,
)

__all__ = ["GFLPredictor"]


class GFLPredictor(DetectionPredictor):
    """Detection predictor for yolo_gfl models (NMS ranked by the IoU-aware score; optional soft-NMS, pre-NMS cap).

    Args:
        cfg, overrides, _callbacks: as Ultralytics' ``DetectionPredictor``.
        inference: yolo_gfl inference options (``nms``, ``pre_nms_topk``, ``soft_sigma``); ``YOLOGFL.predict`` sets
            ``self.inference_options`` before every run.
    """

    def __init__(self, cfg=None, overrides=None, _callbacks=None, inference: dict[str, Any] | None = None):
        kwargs = {"overrides": overrides, "_callbacks": _callbacks}
        if cfg is not None:
            kwargs["cfg"] = cfg
        super().__init__(**kwargs)
        self.inference_options = check_inference_options(inference or {})
        self._tap: QualityTap | None = None

    def inference(self, im, *args, **kwargs):
        """The forward pass; with ``vote_weight=class|quality`` the quality branch's I is kept for the votes."""
        options = self.inference_options
        wants_quality = reads_quality(options)
        if wants_quality and self._tap is None:
            self._tap = QualityTap(self.model, options["vote_weight"])
        elif not wants_quality and self._tap is not None:
            self._tap.close()
            self._tap = None
        return super().inference(im, *args, **kwargs)

    def postprocess(self, preds, img, orig_imgs, **kwargs):
        """Ultralytics' postprocess, or the inference settings given (``nms=soft|vote``, ``pre_nms_topk``)."""
        end2end = getattr(self.model, "end2end", False)
        if self.inference_options == DEFAULT_INFERENCE or getattr(self, "_feats", None) is not None:
            return super().postprocess(preds, img, orig_imgs, **kwargs)
        if end2end:
            raise InferenceOptionError(
                f"nms={self.inference_options['nms']} and pre_nms_topk need the raw detections, but this model was "
                "exported with NMS in its graph (end-to-end): export it without nms=True, or predict with the defaults."
            )
        pred = preds[0] if isinstance(preds, (list, tuple)) else preds
        sizes = None
        if self.inference_options["pre_nms_topk"]:
            sizes = level_sizes(img.shape[2:], head_strides(self.model), pred.shape[-1])
        preds = postprocess_detections(
            pred,
            conf=self.args.conf,
            iou=kwargs.pop("iou", self.args.iou),
            max_det=self.args.max_det,
            sizes=sizes,
            classes=self.args.classes,
            agnostic=self.args.agnostic_nms,
            **self.inference_options,
            **({} if self._tap is None else {"quality": self._tap.take(), "quality_power": self._tap.power}),
        )
        if not isinstance(orig_imgs, list):  # input images are a torch.Tensor, not a list
            orig_imgs = ops.convert_torch2numpy_batch(orig_imgs)[..., ::-1]
        return self.construct_results(preds, img, orig_imgs, **kwargs)
