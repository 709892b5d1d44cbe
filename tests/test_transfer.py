"""Weight transfer from a stock Ultralytics YOLOv8 checkpoint into the GFL variants."""

from __future__ import annotations

import pytest
import torch
from ultralytics import YOLO
from ultralytics.utils.metrics import box_iou

from yolo_gfl import YOLOGFL



@pytest.mark.parametrize("variant", ["gfl", "qfl", "vfl"])
def test_every_stock_tensor_transfers(variant, stock_pt):
    model = YOLOGFL(f"yolov8n-{variant}.yaml").load(stock_pt).model
    stock = YOLO(stock_pt).model
    own = model.state_dict()
    for name, tensor in stock.state_dict().items():
        torch.testing.assert_close(own[name].float(), tensor.float(), msg=name)
    fresh = {k for k in own if k not in stock.state_dict()}
    assert fresh == ({k for k in own if ".dgqp." in k} if variant == "gfl" else set())
    assert model.names == stock.names


def test_detections_after_transfer_match_stock(stock_pt, val_images):
    """With DGQP's initial I near 0.95 everywhere, J = C x I ranks as the stock C does: same boxes, scores x 0.95."""
    stock, ours = YOLO(stock_pt), YOLOGFL("yolov8n-gfl.yaml").load(stock_pt)
    kwargs = dict(imgsz=320, device="cpu", verbose=False)
    compared = 0
    for img in val_images:
        a = stock.predict(img, conf=0.25, **kwargs)[0].boxes
        b = ours.predict(img, conf=0.2, **kwargs)[0].boxes
        if len(a) == 0:
            continue
        iou = box_iou(a.xyxy, b.xyxy)
        best = iou.argmax(1)
        assert (iou.max(1).values > 0.999).all()  # every stock box is found again
        assert (a.cls == b.cls[best]).all()
        ratio = b.conf[best] / a.conf
        assert ((ratio > 0.93) & (ratio < 0.97)).all(), ratio
        compared += len(a)
    assert compared >= 5


def test_train_with_pretrained_logs_transfer(tmp_path, stock_pt, coco128_yaml, capfd):
    from ultralytics.utils import LOGGER

    from .conftest import TINY_TRAIN

    messages = []
    handler_emit = LOGGER.info
    LOGGER.info = lambda msg, *a, **k: (messages.append(str(msg)), handler_emit(msg, *a, **k))
    try:
        model = YOLOGFL("yolov8n-gfl.yaml")
        model.train(
            data=coco128_yaml, pretrained=stock_pt, project=str(tmp_path), name="t", **{**TINY_TRAIN, "fraction": 0.1}
        )
    finally:
        LOGGER.info = handler_emit
    assert any("Transferred 355/359 items" in m for m in messages)
    assert any("initialised here: model.22.dgqp.fc1.weight" in m for m in messages)
    assert model.model.names[0] == "person"
