"""The papers' inference settings at val/predict time: nms=soft, pre_nms_topk, paper=True; their checks and wiring."""

from __future__ import annotations

import math

import pytest
import torch
from ultralytics import YOLO

from yolo_gfl import YOLOGFL
from yolo_gfl.cli import main
from yolo_gfl.engine import GFLValidator
from yolo_gfl.engine.inference import (
    PAPER_SETTINGS,
    check_inference_options,
    head_strides,
    level_sizes,
    postprocess_detections,
    split_inference_options,
)

from .conftest import xywh_preds

# Two boxes of one class overlapping with IoU 1/3 (intersection 50, union 150), and a far box of the other class.
BOXES = [[0, 0, 10, 10], [5, 0, 15, 10], [50, 50, 60, 60]]
SCORES = [[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]]


def test_soft_nms_keeps_overlapping_box_with_decayed_score():
    preds = xywh_preds(BOXES, SCORES)
    hard = postprocess_detections(preds, conf=0.05, iou=0.3, max_det=100)[0]
    soft = postprocess_detections(preds, conf=0.05, iou=0.3, max_det=100, nms="soft", soft_sigma=0.5)[0]
    assert len(hard) == 2 and len(soft) == 3  # hard NMS at IoU 0.3 deletes the 0.8 box; soft-NMS only decays it
    # Hand-worked: 0.9 is kept as is; 0.8 * exp(-(1/3)^2 / 0.5) = 0.8 * exp(-2/9) = 0.64070; 0.7 (other class) as is.
    got = sorted((round(r[4].item(), 5), r[5].item()) for r in soft)  # (score, class)
    assert got == sorted([(0.9, 0.0), (round(0.8 * math.exp(-2 / 9), 5), 0.0), (0.7, 1.0)]), got
    torch.testing.assert_close(soft[0, :4], torch.tensor([0.0, 0.0, 10.0, 10.0]))
    # A smaller sigma decays harder; with conf above the decayed score the box goes, as conf promises.
    harsh = postprocess_detections(preds, conf=0.05, iou=0.3, max_det=100, nms="soft", soft_sigma=0.05)[0]
    assert sorted(r[4].item() for r in harsh)[0] == pytest.approx(0.8 * math.exp(-(1 / 9) / 0.05), rel=1e-5)
    gone = postprocess_detections(preds, conf=0.65, iou=0.3, max_det=100, nms="soft")[0]
    assert sorted(r[4].item() for r in gone) == pytest.approx([0.7, 0.9])
    # Class-agnostic: the far box of class 1 does not overlap, so it is untouched either way.
    agnostic = postprocess_detections(preds, conf=0.05, iou=0.3, max_det=100, nms="soft", agnostic=True)[0]
    assert len(agnostic) == 3 and max(r[4].item() for r in agnostic if r[5] == 1) == pytest.approx(0.7)
    # max_det still caps the output, best first.
    assert postprocess_detections(preds, conf=0.05, iou=0.3, max_det=1, nms="soft")[0][:, 4].tolist() == [
        pytest.approx(0.9)
    ]


def test_pre_nms_topk_caps_candidates_per_level():
    # Level 0 has 5 anchors, level 1 has 3; non-overlapping boxes so NMS itself removes nothing.
    boxes = [[i * 20, 0, i * 20 + 10, 10] for i in range(8)]
    scores = [[s] for s in (0.3, 0.9, 0.5, 0.2, 0.35, 0.4, 0.6, 0.15)]
    preds = xywh_preds(boxes, scores)
    for nms in ("hard", "soft"):
        full = postprocess_detections(preds, conf=0.1, iou=0.5, max_det=100, nms=nms)[0]
        capped = postprocess_detections(preds, conf=0.1, iou=0.5, max_det=100, nms=nms, pre_nms_topk=1, sizes=[5, 3])[0]
        assert len(full) == 8
        assert sorted(capped[:, 4].tolist()) == pytest.approx([0.6, 0.9])  # the best of each level
        two = postprocess_detections(preds, conf=0.1, iou=0.5, max_det=100, nms=nms, pre_nms_topk=2, sizes=[5, 3])[0]
        assert sorted(two[:, 4].tolist()) == pytest.approx([0.4, 0.5, 0.6, 0.9])
    with pytest.raises(ValueError, match="sizes"):
        postprocess_detections(preds, conf=0.1, iou=0.5, max_det=100, pre_nms_topk=1)


def test_level_sizes_and_strides():
    assert level_sizes((640, 640), [8, 16, 32], 8400) == [6400, 1600, 400]
    assert level_sizes((96, 160), [8.0, 16.0, 32.0], 12 * 20 + 6 * 10 + 3 * 5) == [240, 60, 15]
    with pytest.raises(ValueError, match="pre_nms_topk"):
        level_sizes((640, 640), [8, 16, 32], 8000)
    from yolo_gfl.nn import build_detection_model

    assert head_strides(build_detection_model("yolov8n-vfnet.yaml", verbose=False)) == [8.0, 16.0, 32.0]
    assert head_strides(object()) == [8.0, 16.0, 32.0]  # exported models: YOLOv8's P3-P5


def test_options_checks_and_paper_settings():
    ours, theirs = split_inference_options({"nms": "soft", "pre_nms_topk": 5, "conf": 0.1, "imgsz": 96})
    assert ours == {"nms": "soft", "pre_nms_topk": 5} and theirs == {"conf": 0.1, "imgsz": 96}
    # Ultralytics' own boolean nms (NMS-free head / embedded NMS) is left to Ultralytics.
    assert split_inference_options({"nms": False}) == ({}, {"nms": False})
    args = {"conf": 0.2}
    opts = check_inference_options({"paper": True}, args)
    assert opts == {"nms": "hard", "pre_nms_topk": 1000, "soft_sigma": 0.5, "vote_sigma": 0.025, "vote_weight": "score",
                    "vote_iou": None}
    assert args == {"conf": 0.2, "iou": 0.6, "max_det": 100}  # explicit conf wins
    assert PAPER_SETTINGS == {"conf": 0.05, "iou": 0.6, "max_det": 100, "pre_nms_topk": 1000}
    assert check_inference_options({"paper": True, "pre_nms_topk": 50, "nms": "SOFT"})["pre_nms_topk"] == 50
    for bad, words in (
        ({"nms": "fast"}, ["nms", "fast", "hard | soft"]),
        ({"pre_nms_topk": 0}, ["pre_nms_topk", "int >= 1"]),
        ({"pre_nms_topk": True}, ["pre_nms_topk"]),
        ({"soft_sigma": -1}, ["soft_sigma", "(0, 10]"]),
        ({"paper": "yes"}, ["paper", "True or False"]),
    ):
        with pytest.raises(ValueError) as e:
            check_inference_options(bad)
        assert all(w in str(e.value) for w in words), str(e.value)


# ------------------------------------------------------------------------------------- wiring, on real images


@pytest.fixture(scope="module")
def real_output(stock_pt, val_images):
    """Raw (B, 84, A) output of stock yolov8n on real images at 160 px, and the input size."""
    from .conftest import letterboxed

    model = YOLO(stock_pt).model.float().fuse().eval()
    x = torch.from_numpy(letterboxed(val_images, 160))
    with torch.no_grad():
        return model(x), x.shape[2:], model


def validator_with(inference, **args):
    v = GFLValidator(args={"conf": 0.001, "iou": 0.7, "max_det": 300, **args}, inference=inference)
    v.end2end = False
    return v


def test_validator_postprocess_soft_and_topk(real_output):
    preds, hw, model = real_output
    outputs = {}
    for name, inference in {
        "hard": None,
        "soft": {"nms": "soft"},
        "topk": {"pre_nms_topk": 20},
    }.items():
        v = validator_with(inference, max_det=3000)  # conf 0.001 as Ultralytics' val; max_det then never binds
        v._img_hw, v._strides = tuple(hw), head_strides(model)
        outputs[name] = v.postprocess(preds)
    from ultralytics.utils.metrics import box_iou

    def max_same_class_iou(out):
        iou = box_iou(out["bboxes"], out["bboxes"]).fill_diagonal_(0)
        return (iou * (out["cls"][:, None] == out["cls"][None])).max().item()

    raw = preds[0] if isinstance(preds, (list, tuple)) else preds
    for i, (hard, soft, topk) in enumerate(zip(outputs["hard"], outputs["soft"], outputs["topk"])):
        # Soft-NMS keeps boxes that overlap a better one of their class beyond the NMS IoU, which hard NMS never does,
        assert max_same_class_iou(hard) <= 0.7 < max_same_class_iou(soft)
        # with decayed scores: values that are no raw class score of any anchor,
        raw_scores = raw[i, 4:].flatten()
        decayed = [c for c in soft["conf"] if (raw_scores - c).abs().min() > 1e-6]
        assert decayed and all(c >= 0.001 for c in soft["conf"])
        assert soft["conf"].max() == pytest.approx(hard["conf"].max().item(), rel=1e-5)  # the best box is untouched
        assert len(hard["conf"]) < 3000 and len(topk["conf"]) <= len(hard["conf"])
        assert len(torch.unique(topk["bboxes"], dim=0)) <= 3 * 20  # 20 anchors per level (each may carry classes)
        assert set(soft) == set(hard) == {"bboxes", "conf", "cls", "extra"}
    assert sum(len(o["conf"]) for o in outputs["topk"]) < sum(len(o["conf"]) for o in outputs["hard"])
    # The default validator is Ultralytics' own postprocess, tensor for tensor.
    from ultralytics.models.yolo.detect import DetectionValidator

    stock = DetectionValidator(args={"conf": 0.001, "iou": 0.7, "max_det": 3000})
    stock.end2end = False
    for ours, theirs in zip(outputs["hard"], stock.postprocess(preds)):
        torch.testing.assert_close(ours["bboxes"], theirs["bboxes"])


def test_validator_nms_is_never_cut_short(real_output, monkeypatch):
    """Ultralytics' NMS gives up after 2 s + 0.05 s per image and leaves the rest of the batch without detections; on a
    busy CPU that cost -vfl 30 points of mAP on one chess cell. Our validator evaluates every image whatever the
    clock says, with and without the papers' settings; Ultralytics' own validator, on the same clock, does not."""
    import types

    import ultralytics.utils.nms as ultralytics_nms
    from ultralytics.models.yolo.detect import DetectionValidator

    preds, hw, model = real_output
    before = validator_with(None).postprocess(preds)
    clock = {"t": 0.0}

    def slow_time():  # every reading of the clock is 10 s later: the limit is passed after the first image
        clock["t"] += 10.0
        return clock["t"]

    monkeypatch.setattr(ultralytics_nms, "time", types.SimpleNamespace(time=slow_time))
    stock = DetectionValidator(args={"conf": 0.001, "iou": 0.7, "max_det": 300})
    stock.end2end = False
    assert any(len(o["conf"]) == 0 for o in stock.postprocess(preds))  # the limit bites Ultralytics' validator
    for inference in (None, {"pre_nms_topk": 1000}):
        v = validator_with(inference)
        v._img_hw, v._strides = tuple(hw), head_strides(model)
        after = v.postprocess(preds)
        assert len(after) == len(before) and all(len(o["conf"]) > 0 for o in after)
        if inference is None:
            for a, b in zip(after, before):
                torch.testing.assert_close(a["bboxes"], b["bboxes"])


@pytest.mark.slow
def test_val_and_predict_through_the_api(stock_pt, coco128_yaml, val_images, tmp_path):
    model = YOLOGFL(stock_pt)
    kw = dict(data=coco128_yaml, imgsz=160, batch=32, device="cpu", plots=False, verbose=False, project=str(tmp_path))
    hard = model.val(**kw)
    paper_soft = model.val(paper=True, nms="soft", **kw)
    capped = model.val(pre_nms_topk=5, **kw)
    assert 0 < paper_soft.box.map <= 1 and hard.box.map > 0
    assert capped.box.map < hard.box.map  # 5 candidates per level cannot find most objects
    assert paper_soft.box.map != hard.box.map

    from ultralytics.utils.metrics import box_iou

    def max_same_class_iou(results):
        worst = 0.0
        for r in results:
            iou = box_iou(r.boxes.xyxy, r.boxes.xyxy).fill_diagonal_(0)
            worst = max(worst, (iou * (r.boxes.cls[:, None] == r.boxes.cls[None])).max().item())
        return worst

    pkw = dict(imgsz=160, conf=0.01, device="cpu", verbose=False)
    a = model.predict(val_images, **pkw)
    predictor = model.predictor
    b = model.predict(val_images, nms="soft", **pkw)  # the same predictor object, new options
    assert model.predictor is predictor
    c = model.predict(val_images, **pkw)  # and back to Ultralytics' NMS
    # soft-NMS keeps overlapping boxes (with decayed scores) that hard NMS at iou=0.7 removes (hard NMS's own outputs
    # can exceed 0.7 a little after boxes are clipped to the original image)
    assert max_same_class_iou(b) > max(0.8, max_same_class_iou(a))
    assert all((r.boxes.conf >= 0.01).all() for r in b)
    for x, z in zip(a, c):
        torch.testing.assert_close(x.boxes.data, z.boxes.data)
    d = model.predict(val_images, paper=True, **pkw)
    assert all(len(r.boxes) <= 100 for r in d)


@pytest.mark.slow
def test_cli_val_with_paper_settings(stock_pt, coco128_yaml, tmp_path, capsys):
    code = main(["val", f"model={stock_pt}", f"data={coco128_yaml}", "imgsz=96", "batch=64", "device=cpu",
                 "plots=False", "nms=soft", "pre_nms_topk=1000", "paper=True", f"project={tmp_path}", "name=v"])
    assert code == 0
    for argv, words in (
        (["val", f"model={stock_pt}", "nms=fast"], ["nms", "fast", "hard | soft"]),
        (["train", "model=yolov8n.yaml", "pre_nms_topk=10"], ["pre_nms_topk", "val/predict"]),
        (["predict", f"model={stock_pt}", "soft_sigma=0"], ["soft_sigma"]),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert all(w in err for w in words), err
