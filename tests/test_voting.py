"""Score voting (nms=vote): the pure function by hand, its invariants, and its wiring into val/predict and the CLI."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from yolo_gfl.cli import main
from yolo_gfl.engine.inference import (
    InferenceOptionError,
    check_inference_options,
    postprocess_detections,
)
from yolo_gfl.nms import VOTE_SIGMA, pairwise_iou, vote_boxes

from .conftest import xywh_preds


# ---------------------------------------------------------------------------------------------- the pure function
def test_hand_worked_cluster_weights_and_mean_box():
    # Kept box [0, 0, 10, 10] (score 0.9); a neighbour shifted by 1 px: intersection 90, union 110, IoU 9/11
    # (score 0.6); a far box of the same class, which does not vote.
    kept = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    weights = torch.tensor([0.9, 0.6, 0.8])
    groups = torch.zeros(3)
    sigma = 0.025
    p_kept = 0.9 * math.exp(0.0)  # IoU 1 with itself
    p_next = 0.6 * math.exp(-((1 - 9 / 11) ** 2) / sigma)
    expect_x1 = (p_kept * 0 + p_next * 1) / (p_kept + p_next)
    expect_x2 = (p_kept * 10 + p_next * 11) / (p_kept + p_next)
    voted = vote_boxes(kept, torch.zeros(1), boxes, weights, groups, iou_threshold=0.5, sigma=sigma)
    torch.testing.assert_close(voted, torch.tensor([[expect_x1, 0.0, expect_x2, 10.0]]))
    # A larger sigma lets the looser neighbour count more; the neighbour of another class never counts.
    wider = vote_boxes(kept, torch.zeros(1), boxes, weights, groups, iou_threshold=0.5, sigma=1.0)
    assert wider[0, 0] > voted[0, 0]
    other_class = vote_boxes(kept, torch.zeros(1), boxes, weights, torch.tensor([0.0, 1.0, 0.0]), 0.5, sigma)
    torch.testing.assert_close(other_class, kept)


def test_exclusive_clusters_are_hard_nms_clusters():
    # Two kept boxes of one class; a candidate overlapping both votes only for the first (which suppressed it),
    # unless clusters are PAA's shared ones.
    kept = torch.tensor([[0.0, 0.0, 10.0, 10.0], [6.0, 0.0, 16.0, 10.0]])
    middle = [3.0, 0.0, 13.0, 10.0]  # IoU 7/13 with each kept box
    boxes = torch.cat((kept, torch.tensor([middle])))
    w, g = torch.tensor([0.9, 0.8, 0.7]), torch.zeros(3)
    exclusive = vote_boxes(kept, torch.zeros(2), boxes, w, g, iou_threshold=0.5, sigma=0.5)
    shared = vote_boxes(kept, torch.zeros(2), boxes, w, g, iou_threshold=0.5, sigma=0.5, exclusive=False)
    assert exclusive[0, 0] > 0 and exclusive[1, 0] == 6.0  # only the first moved
    assert shared[0, 0] > 0 and shared[1, 0] < 6.0  # both moved towards the middle box


def test_single_box_clusters_equal_hard_nms():
    boxes = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 0, 50, 8], [0, 40, 9, 50]]
    scores = [[0.9, 0.0], [0.0, 0.8], [0.7, 0.0], [0.2, 0.6]]
    preds = xywh_preds(boxes, scores)
    hard = postprocess_detections(preds, conf=0.05, iou=0.5, max_det=100)[0]
    vote = postprocess_detections(preds, conf=0.05, iou=0.5, max_det=100, nms="vote")[0]
    torch.testing.assert_close(vote, hard)


coords = st.floats(0, 100, allow_nan=False)


@st.composite
def clusters(draw):
    n = draw(st.integers(1, 12))
    rows = []
    for _ in range(n):
        x1, y1 = draw(coords), draw(coords)
        rows.append([x1, y1, x1 + draw(st.floats(1, 40)), y1 + draw(st.floats(1, 40))])
    weights = [draw(st.floats(0.01, 1)) for _ in range(n)]
    groups = [draw(st.integers(0, 2)) for _ in range(n)]
    return torch.tensor(rows), torch.tensor(weights), torch.tensor(groups, dtype=torch.float32)


@given(clusters(), st.sampled_from([0.3, 0.5, 0.7]), st.booleans())
def test_voted_boxes_lie_in_their_clusters_hull(data, threshold, exclusive):
    boxes, weights, groups = data
    kept_idx = torch.arange(0, len(boxes), 2)
    voted = vote_boxes(boxes[kept_idx], groups[kept_idx], boxes, weights, groups, threshold, exclusive=exclusive)
    iou = pairwise_iou(boxes[kept_idx], boxes)
    for k, i in enumerate(kept_idx):
        members = ((iou[k] > threshold) & (groups == groups[i])) | (torch.arange(len(boxes)) == i)
        lo, hi = boxes[members].min(0).values, boxes[members].max(0).values
        assert (voted[k] >= lo - 1e-3).all() and (voted[k] <= hi + 1e-3).all()


@given(clusters(), st.randoms(use_true_random=False))
def test_invariant_to_the_order_of_candidates(data, rnd):
    boxes, weights, groups = data
    kept_idx = torch.tensor([0])
    perm = list(range(len(boxes)))
    rnd.shuffle(perm)
    perm = torch.tensor(perm)
    a = vote_boxes(boxes[kept_idx], groups[kept_idx], boxes, weights, groups, 0.5)
    b = vote_boxes(boxes[kept_idx], groups[kept_idx], boxes[perm], weights[perm], groups[perm], 0.5)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_fp16_inputs_and_degenerate_boxes():
    kept = torch.tensor([[100.0, 100.0, 600.0, 600.0], [5.0, 5.0, 5.0, 5.0]], dtype=torch.float16)
    boxes = torch.cat((kept, torch.tensor([[102.0, 100.0, 602.0, 600.0]], dtype=torch.float16)))
    voted = vote_boxes(kept, torch.zeros(2), boxes, torch.tensor([0.9, 0.5, 0.8]), torch.zeros(3), 0.5)
    assert voted.dtype == torch.float16 and torch.isfinite(voted).all()
    assert 100 < voted[0, 0] < 102
    torch.testing.assert_close(voted[1], kept[1])  # a zero-area kept box has no voter: it stays
    with pytest.raises(ValueError, match="sigma"):
        vote_boxes(kept, torch.zeros(2), boxes, torch.ones(3), torch.zeros(3), 0.5, sigma=0)


# ------------------------------------------------------------------------------------------------ the postprocess
def random_output(seed: int, batch: int = 3, anchors: int = 400, nc: int = 3):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(batch, 2, anchors, generator=g) * 200
    sizes = 10 + torch.rand(batch, 2, anchors, generator=g) * 40
    scores = torch.rand(batch, nc, anchors, generator=g) ** 3
    return torch.cat((centres, sizes, scores), 1)


def test_classes_scores_and_count_are_hard_nms_ones_and_batched_equals_one_by_one():
    preds = random_output(0)
    kw = dict(conf=0.05, iou=0.5, max_det=50, multi_label=True)
    hard = postprocess_detections(preds, **kw)
    vote = postprocess_detections(preds, nms="vote", **kw)
    moved = 0
    for h, v in zip(hard, vote):
        assert len(h) == len(v) and len(v) > 0
        torch.testing.assert_close(v[:, 4:], h[:, 4:])  # score and class of every detection, in order
        moved += int((v[:, :4] - h[:, :4]).abs().amax(1).gt(1e-3).sum())
    assert moved > 0  # overlapping random boxes: some kept boxes do move
    for i in range(preds.shape[0]):
        torch.testing.assert_close(postprocess_detections(preds[i : i + 1], nms="vote", **kw)[0], vote[i])
    agnostic = postprocess_detections(preds, nms="vote", agnostic=True, **kw)
    assert any(not torch.equal(a, v) for a, v in zip(agnostic, vote))


def test_quality_weights_need_the_quality_and_use_it():
    preds = random_output(1, batch=1)
    quality = torch.rand(1, 1, preds.shape[-1], generator=torch.Generator().manual_seed(2))
    kw = dict(conf=0.05, iou=0.5, max_det=50, nms="vote")
    with pytest.raises(InferenceOptionError, match="quality"):
        postprocess_detections(preds, vote_weight="quality", **kw)
    by_score = postprocess_detections(preds, **kw)[0]
    by_quality = postprocess_detections(preds, vote_weight="quality", quality=quality, **kw)[0]
    by_class = postprocess_detections(preds, vote_weight="class", quality=quality, **kw)[0]
    assert by_quality.shape == by_score.shape == by_class.shape  # the quality channel is not in the output
    torch.testing.assert_close(by_quality[:, 4:], by_score[:, 4:])
    assert not torch.allclose(by_quality[:, :4], by_score[:, :4])
    # J = C x I: weighing by C is weighing by J / I
    j_over_i = postprocess_detections(preds, vote_weight="class", quality=quality, quality_power=1.0, **kw)[0]
    torch.testing.assert_close(by_class, j_over_i)


def test_overlap_weights_ignore_the_scores():
    """vote_weight=overlap: every voter weighs 1, so the voted box is the overlap-weighted mean whatever the scores,
    on any checkpoint (no quality needed); hand-computed on one cluster."""
    kept = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 12.0]])
    sigma = 0.5
    p = torch.tensor([1.0, math.exp(-(1 - 100 / 120) ** 2 / sigma)])
    got = vote_boxes(kept, torch.zeros(1), boxes, torch.ones(2), torch.zeros(2), 0.5, sigma)
    torch.testing.assert_close(got[0], (p[:, None] * boxes).sum(0) / p.sum())
    preds = random_output(1, batch=1)
    kw = dict(conf=0.05, iou=0.5, max_det=50, nms="vote")
    by_overlap = postprocess_detections(preds, vote_weight="overlap", **kw)[0]
    by_score = postprocess_detections(preds, **kw)[0]
    torch.testing.assert_close(by_overlap[:, 4:], by_score[:, 4:])  # the same detections, classes and scores
    assert not torch.allclose(by_overlap[:, :4], by_score[:, :4])
    flat = preds.clone()  # every candidate's score the same: score weights are then overlap weights
    flat[:, 4:] = torch.where(preds[:, 4:] > 0.05, 0.5, preds[:, 4:])
    torch.testing.assert_close(postprocess_detections(flat, vote_weight="overlap", **kw)[0][:, :4],
                               postprocess_detections(flat, **kw)[0][:, :4])


def test_option_checks():
    assert check_inference_options({"nms": "vote"})["vote_sigma"] == VOTE_SIGMA
    out = check_inference_options({"nms": "vote", "vote_sigma": 0.1, "vote_weight": "Quality", "vote_iou": 0.01})
    assert (out["vote_sigma"], out["vote_weight"], out["vote_iou"]) == (0.1, "quality", 0.01)
    for bad, words in (
        ({"nms": "vote", "vote_sigma": 0}, ["vote_sigma", "(0, 10]"]),
        ({"nms": "vote", "vote_sigma": "wide"}, ["vote_sigma"]),
        ({"nms": "vote", "vote_weight": "iou"}, ["vote_weight", "score | class | quality | overlap"]),
        ({"nms": "vote", "vote_iou": 1.5}, ["vote_iou"]),
        ({"vote_sigma": 0.1}, ["nms=vote"]),
    ):
        with pytest.raises(InferenceOptionError) as e:
            check_inference_options(bad)
        assert all(w in str(e.value) for w in words), str(e.value)


@pytest.mark.parametrize("device", ["cuda"])
def test_same_result_on_cpu_and_cuda(device):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    preds = random_output(3)
    kw = dict(conf=0.05, iou=0.5, max_det=50, multi_label=True, nms="vote")
    for a, b in zip(postprocess_detections(preds, **kw), postprocess_detections(preds.to(device), **kw)):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------------------------------ val, predict, CLI, real model
@pytest.mark.slow
def test_val_and_predict_with_vote_on_stock_and_gfl(stock_pt, coco128_yaml, val_images, trained, tmp_path, capsys):
    from yolo_gfl import YOLOGFL

    kw = dict(data=coco128_yaml, imgsz=128, batch=32, device="cpu", plots=False, verbose=False, project=str(tmp_path))
    stock = YOLOGFL(stock_pt)
    hard, vote = stock.val(**kw), stock.val(nms="vote", **kw)
    assert hard.box.map > 0 and vote.box.map > 0 and vote.box.map != hard.box.map
    with pytest.raises(InferenceOptionError, match="quality branch"):
        stock.val(nms="vote", vote_weight="quality", **kw)
    gfl = YOLOGFL(str(trained("gfl") / "weights" / "last.pt"))
    assert stock.val(nms="vote", vote_weight="overlap", **kw).box.map > 0  # no quality branch needed
    for weight in ("score", "class", "quality", "overlap"):
        assert gfl.val(nms="vote", vote_weight=weight, **kw).box.map >= 0
    pkw = dict(imgsz=128, conf=0.1, device="cpu", verbose=False)
    plain, voted = stock.predict(val_images, **pkw), stock.predict(val_images, nms="vote", **pkw)
    for a, b in zip(plain, voted):
        torch.testing.assert_close(a.boxes.conf, b.boxes.conf)
        torch.testing.assert_close(a.boxes.cls, b.boxes.cls)
    assert any(not torch.allclose(a.boxes.xyxy, b.boxes.xyxy) for a, b in zip(plain, voted))
    assert len(gfl.predict(val_images, nms="vote", vote_weight="quality", **pkw)) == len(val_images)
    assert main(["val", f"model={stock_pt}", f"data={coco128_yaml}", "nms=vote", "vote_sigma=-1"]) == 2
    err = capsys.readouterr().err
    assert "vote_sigma" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ["yolov8n-vfl.yaml", "yolov8n-qfl.yaml", "yolov8n-vfnet.yaml", "yolo11n-gfl.yaml"])
def test_every_variant_validates_and_predicts_with_vote_through_the_cli(cfg, coco128_yaml, val_images, capsys):
    """``yolo-gfl val|predict ... nms=vote`` on each shipped variant (built from its config: the head's output, not
    its training, is what voting reads), with the score and with equal weights; C or I alone only where the variant
    has a quality branch."""
    common = [f"model={cfg}", "imgsz=64", "device=cpu", "plots=False"]
    for weight in ("score", "overlap"):
        assert main(["val", *common, f"data={coco128_yaml}", "batch=32", "nms=vote", f"vote_weight={weight}"]) == 0
    assert main(["predict", *common, f"source={val_images[0]}", "nms=vote", "conf=0.0001"]) == 0
    quality = main(["val", *common, f"data={coco128_yaml}", "batch=32", "nms=vote", "vote_weight=quality"])
    err = capsys.readouterr().err
    assert quality == (0 if "gfl" in cfg else 2), err
    if quality == 2:
        assert "quality branch" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_predict_with_vote_on_an_exported_model(trained, val_images, tmp_path, capsys):
    """Exports keep NMS outside the graph, so Ultralytics' predictor runs it in Python and voting applies; the votes
    weighed by I need the PyTorch head, and an exported model is refused them in one line."""
    from yolo_gfl import YOLOGFL

    onnx_file = YOLOGFL(trained("gfl") / "weights" / "best.pt").export(format="onnx", imgsz=96, device="cpu")
    common = [f"model={onnx_file}", f"source={val_images[0]}", "imgsz=96", "conf=0.01", f"project={tmp_path}"]
    assert main(["predict", *common, "nms=vote", "name=vote"]) == 0
    assert list((tmp_path / "vote").glob("*.jpg"))
    capsys.readouterr()
    assert main(["predict", *common, "nms=vote", "vote_weight=quality", "name=refused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exported model" in err[0] and "vote_weight=score" in err[0]
