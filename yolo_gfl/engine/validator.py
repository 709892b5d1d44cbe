"""``GFLValidator``: Ultralytics' detection validator plus official COCO metrics and the score-IoU calibration report.

The GFL head already emits the IoU-aware score in Ultralytics' output layout, so NMS and Ultralytics' metrics are the
stock ones. On top, for any YOLO-format dataset and any detector (stock models too):

* ``coco=True``: the dataset's YOLO labels become a COCO ground truth (image sizes read from the images), the
  detections COCO results, and pycocotools' COCOeval reports AP, AP50, AP75, AP S/M/L and AR@1/10/100; saved as
  ``coco_eval.json`` (with ``coco_gt.json`` and ``predictions.json``) in the run folder.
* ``calibration=True``: each detection's (score, IoU with its best same-class ground truth) pair, their Pearson and
  Spearman correlation, the mean IoU per score decile and a plot: ``calibration.csv/json/png``.

Both read the post-NMS detections in original-image pixels, the same ones Ultralytics' mAP counts.

The inference settings (``nms=soft|vote``, ``pre_nms_topk=N``, ``soft_sigma``, ``vote_*``; see
``yolo_gfl.engine.inference``) replace Ultralytics' NMS step in ``postprocess`` when given; by default it is Ultralytics' own, run without its time
limit so that a slow evaluation never leaves images without detections.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils import LOGGER, ops

from ..eval import assign_image_ids, calibration_report, coco_evaluate, collect_pairs, detections_to_coco, yolo_to_coco
from .inference import (QualityTap, check_inference_options, head_strides, level_sizes, postprocess_detections,
                        reads_quality)

__all__ = ["GFLValidator", "EVAL_OPTIONS"]

EVAL_OPTIONS = ("coco", "calibration")  # yolo_gfl's validation switches, beside Ultralytics' own arguments


class GFLValidator(DetectionValidator):
    """Detection validator with optional COCO metrics (``coco``) and score-IoU calibration (``calibration``).

    After a run, ``self.coco_stats`` and ``self.calibration`` hold the reports as plain dicts (also attached to the
    returned metrics object as ``metrics.coco`` and ``metrics.calibration``).
    """

    def __init__(
        self, dataloader=None, save_dir=None, args=None, _callbacks=None, coco=False, calibration=False, inference=None
    ):
        super().__init__(dataloader, save_dir, args, _callbacks)
        self.coco, self.calibration_on = bool(coco), bool(calibration)
        # nms / pre_nms_topk / soft_sigma, checked (see yolo_gfl.engine.inference); None: Ultralytics' NMS
        self.inference_options = check_inference_options(inference or {})
        self.coco_stats: dict[str, float] | None = None
        self.calibration: dict[str, Any] | None = None

    @property
    def _collect(self) -> bool:
        return (self.coco or self.calibration_on) and not self.training

    def init_metrics(self, model) -> None:
        super().init_metrics(model)
        self._strides = head_strides(model)  # for the per-level pre-NMS cap
        options = self.inference_options
        self._tap = None
        if not self.training and reads_quality(options):
            self._tap = QualityTap(model, options["vote_weight"])  # C or I alone weigh the votes
        self._images: list[str] = []
        self._dets: list[np.ndarray] = []  # per image (N, 6) x1 y1 x2 y2 score cls, original pixels
        self._gts: list[np.ndarray] = []  # per image (K, 5) x1 y1 x2 y2 cls, original pixels

    def preprocess(self, batch: dict[str, Any]) -> dict[str, Any]:
        batch = super().preprocess(batch)
        self._img_hw = tuple(batch["img"].shape[2:])  # the pyramid levels' sizes follow from it
        return batch

    def postprocess(self, preds) -> list[dict[str, Any]]:
        """Ultralytics' NMS, or the inference settings given (``nms=soft|vote``, ``pre_nms_topk``); never cut short.

        Ultralytics' NMS stops after 2 s + 0.05 s per image of a batch and leaves the remaining images without
        detections (a warning, "NMS time limit exceeded"); on a busy CPU a model that sends many candidates into NMS
        then loses recall. An evaluation must see every image, so here the limit is off (``max_time_img=inf``);
        prediction keeps Ultralytics' limit."""
        if self.end2end:
            return super().postprocess(preds)
        pred = preds[0] if isinstance(preds, (list, tuple)) else preds
        topk = self.inference_options["pre_nms_topk"]
        outputs = postprocess_detections(
            pred,
            conf=self.args.conf,
            iou=self.args.iou,
            max_det=self.args.max_det,
            sizes=level_sizes(self._img_hw, self._strides, pred.shape[-1]) if topk else None,
            agnostic=self.args.single_cls or self.args.agnostic_nms,
            multi_label=True,
            max_time_img=math.inf,
            **self.inference_options,
            **self._quality_of_this_pass(),
        )
        return [{"bboxes": x[:, :4], "conf": x[:, 4], "cls": x[:, 5], "extra": x[:, 6:]} for x in outputs]

    def _quality_of_this_pass(self) -> dict[str, Any]:
        tap = getattr(self, "_tap", None)
        return {} if tap is None else {"quality": tap.take(), "quality_power": tap.power}

    def update_metrics(self, preds: list[dict], batch: dict[str, Any]) -> None:
        super().update_metrics(preds, batch)
        if not self._collect:
            return
        for si, pred in enumerate(preds):
            pbatch = self._prepare_batch(si, batch)
            predn = self.scale_preds(self._prepare_pred(pred), pbatch)
            gt_boxes = ops.scale_boxes(pbatch["imgsz"], pbatch["bboxes"].clone(), pbatch["ori_shape"], pbatch["ratio_pad"])
            self._images.append(pbatch["im_file"])
            self._dets.append(
                np.concatenate(
                    [predn["bboxes"].cpu().numpy(), predn["conf"].cpu().numpy()[:, None], predn["cls"].cpu().numpy()[:, None]], 1
                ).reshape(-1, 6)
            )
            self._gts.append(
                np.concatenate([gt_boxes.cpu().numpy(), pbatch["cls"].cpu().numpy().reshape(-1, 1)], 1).reshape(-1, 5)
            )

    def get_stats(self) -> dict[str, Any]:
        if getattr(self, "_tap", None) is not None:
            self._tap.close()
            self._tap = None
        stats = super().get_stats()
        self.metrics.coco, self.metrics.calibration = None, None  # None, never a made-up 0, when nothing was evaluated
        if not self._collect or not self._images:
            return stats
        if self.coco:
            images = list(self.dataloader.dataset.im_files)  # the whole split, so image ids follow one rule
            ids = assign_image_ids(images)
            gt = yolo_to_coco(images, names=self.names)
            dets = detections_to_coco(self._dets, [ids[str(p)] for p in self._images])
            LOGGER.info("\nCOCO metrics (pycocotools) on the dataset's YOLO labels:")
            self.coco_stats = coco_evaluate(gt, dets, save_dir=self.save_dir, verbose=True)
            stats.update({f"coco/{k}": v for k, v in self.coco_stats.items()})
        if self.calibration_on:
            self.calibration = calibration_report(
                collect_pairs(self._dets, self._gts), save_dir=self.save_dir, detections=self._dets,
                ground_truth=self._gts,
            )
            rho, r = self.calibration["spearman"], self.calibration["pearson"]
            LOGGER.info(
                f"Score-IoU calibration over {self.calibration['count']} matched detections: "
                f"Spearman {rho if rho is None else round(rho, 4)}, Pearson {r if r is None else round(r, 4)} "
                f"(saved to {self.save_dir / 'calibration.png'})"
            )
        self.metrics.coco, self.metrics.calibration = self.coco_stats, self.calibration
        return stats
