"""Evaluation as pure functions: COCO metrics for any YOLO-format dataset, the score-IoU calibration report, and the
ranking oracle's re-scoring (VarifocalNet Table 1)."""

from .calibration import (
    box_iou_np,
    calibration_report,
    collect_pairs,
    match_detections,
    pearson,
    rankdata_average,
    spearman,
    top_per_object,
)
from .coco import (
    COCO_STAT_NAMES,
    as_detection_arrays,
    assign_image_ids,
    coco_evaluate,
    coco_to_yolo_boxes,
    detections_to_coco,
    list_images,
    load_data_split,
    read_yolo_labels,
    yolo_to_coco,
)
from .oracle import ORACLE_ROWS, oracle_rescore

__all__ = [
    "COCO_STAT_NAMES",
    "ORACLE_ROWS",
    "as_detection_arrays",
    "assign_image_ids",
    "box_iou_np",
    "calibration_report",
    "coco_evaluate",
    "coco_to_yolo_boxes",
    "collect_pairs",
    "detections_to_coco",
    "list_images",
    "load_data_split",
    "match_detections",
    "oracle_rescore",
    "pearson",
    "rankdata_average",
    "read_yolo_labels",
    "spearman",
    "top_per_object",
    "yolo_to_coco",
]
