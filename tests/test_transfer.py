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
    assert fresh == ({k for k in own if ".quality_branch." in k} if variant == "gfl" else set())
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


@pytest.mark.slow
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
    assert any("initialised here: model.22.quality_branch.fc1.weight" in m for m in messages)
    assert model.model.names[0] == "person"


@pytest.fixture(scope="module")
def stock_yolo11_pt(tmp_path_factory, coco128_yaml) -> str:
    """A stock YOLO11n checkpoint made here (none ships offline): one tiny epoch of yolo11n.yaml on coco128."""
    from .conftest import TINY_TRAIN

    project = tmp_path_factory.mktemp("yolo11")
    YOLO("yolo11n.yaml").train(data=coco128_yaml, project=str(project), name="stock",
                               **{**TINY_TRAIN, "fraction": 0.1, "imgsz": 64})
    return str(project / "stock" / "weights" / "last.pt")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["gfl", "qfl", "vfl", "vfnet"])
def test_yolo11_stock_checkpoint_transfers_into_every_variant(variant, stock_yolo11_pt, capfd):
    from ultralytics.utils import LOGGER

    messages = []
    emit = LOGGER.info
    LOGGER.info = lambda msg, *a, **k: (messages.append(str(msg)), emit(msg, *a, **k))
    try:
        model = YOLOGFL(f"yolo11n-{variant}.yaml").load(stock_yolo11_pt).model
    finally:
        LOGGER.info = emit
    stock = YOLO(stock_yolo11_pt).model
    own, theirs = model.state_dict(), stock.state_dict()
    assert len(theirs) > 400  # YOLO11n's C3k2/C2PSA graph, not YOLOv8's 355 tensors
    for name, tensor in theirs.items():  # every stock tensor has its place, with the stock values
        torch.testing.assert_close(own[name].float(), tensor.float(), msg=name)
    fresh = sorted(k for k in own if k not in theirs)
    new_parts = {"gfl": (".quality_branch.",), "vfnet": ("_star.", ".refine.")}.get(variant, ())  # the branches yolo_gfl adds
    assert all(any(part in k for part in new_parts) for k in fresh) and bool(fresh) == bool(new_parts), fresh
    summary = next(m for m in messages if m.startswith("yolo_gfl:") and "tensors match" in m)
    assert f"{len(own) - len(fresh)}/{len(own)} tensors match" in summary
    assert all(k in summary for k in fresh)  # the log names every new tensor
