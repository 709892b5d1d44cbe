"""VarifocalNet head (head=vfnet): star offsets, box refinement, gradient policy, loss, AMP, training, export."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from torchvision.ops import deform_conv2d
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.utils.tal import make_anchors

from yolo_gfl import YOLOGFL
from yolo_gfl.criterion import VFNetDetectionLoss
from yolo_gfl.nn import GFLDetectionModel, VFNetDetect, build_detection_model, star_offsets
from yolo_gfl.nn.vfnet import DeformConv3x3, deform_conv3x3_grid_sample, star_points
from yolo_gfl.options import GFLOptionError, validate_options

from .conftest import ROOT, TINY_TRAIN


def vfnet_model(**gfl) -> GFLDetectionModel:
    from yolo_gfl.configs import load_model_cfg

    cfg = load_model_cfg("yolov8n-vfnet.yaml")
    cfg["gfl"].update(gfl)
    torch.manual_seed(0)
    model = build_detection_model(cfg, nc=3, verbose=False)
    model.args = get_cfg()
    return model


def activate(head: VFNetDetect, refine_std: float = 0.1) -> None:
    """Give the zero-initialised star branches non-trivial weights (as training would)."""
    torch.manual_seed(1)
    for i in range(head.nl):
        head.cls_star[i].bn.weight.data.fill_(1.0)
        head.reg_star[i].bn.weight.data.fill_(1.0)
        torch.nn.init.normal_(head.refine[i].weight, std=refine_std)
        torch.nn.init.normal_(head.refine[i].bias, std=0.3)  # scale factors visibly away from 1


# ---------------------------------------------------------------------------------------------------- star offsets


def test_star_offsets_hand_computed():
    # A box with l'=2, t'=1, r'=3, b'=4 (feature-map cells). Tap (row, col) of the regular 3x3 grid sits at
    # (dy, dx) = (row, col) in {-1, 0, 1}; the star point for row -1 is y - t' = -1, row +1 is y + b' = 4,
    # col -1 is x - l' = -2, col +1 is x + r' = 3. Offset = star point - grid point:
    expected = [
        (0, -1), (0, 0), (0, 2),  # (x-l', y-t') - (-1,-1), (x, y-t') - (-1,0), (x+r', y-t') - (-1,1)
        (0, -1), (0, 0), (0, 2),  # (x-l', y) - (0,-1),     centre,             (x+r', y) - (0,1)
        (3, -1), (3, 0), (3, 2),  # (x-l', y+b') - (1,-1),  (x, y+b') - (1,0),  (x+r', y+b') - (1,1)
    ]
    ltrb = torch.tensor([2.0, 1.0, 3.0, 4.0]).view(1, 4, 1, 1)
    got = star_offsets(ltrb)
    assert got.shape == (1, 18, 1, 1)
    assert got.flatten().tolist() == [float(v) for pair in expected for v in pair]
    # The same box in pixels on a stride-8 level gives the same offsets (offsets are in feature-map units).
    torch.testing.assert_close(star_offsets(ltrb * 8, stride=8), got)
    # Points: the nine star points of VarifocalNet, as (dy, dx) relative to the location.
    pts = star_points(torch.tensor([2.0, 1.0, 3.0, 4.0]))
    assert {tuple(p) for p in pts.tolist()} == {
        (0, 0), (0, -2), (-1, 0), (0, 3), (4, 0), (-1, -2), (-1, 3), (4, -2), (4, 3)
    }


@pytest.mark.parametrize("op", ["deform_conv2d", "grid_sample"])
def test_star_conv_samples_exactly_the_star_points(op):
    """With a one-hot kernel, the star convolution at (y, x) returns the input at the star point of each tap."""
    h, w = 12, 14
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    feat = (100 * ys + xs).view(1, 1, h, w)  # value encodes its position
    ltrb = torch.tensor([2.0, 1.5, 3.0, 2.25]).view(1, 4, 1, 1).expand(1, 4, h, w).contiguous()
    offsets = star_offsets(ltrb)
    y0, x0 = 5, 6  # every star point of this location lies inside the map, so bilinear sampling is exact (linear map)
    conv = DeformConv3x3(1, 1)
    for k, (dy, dx) in enumerate(star_points(torch.tensor([2.0, 1.5, 3.0, 2.25])).tolist()):
        conv.weight.data.zero_()
        conv.weight.data.view(-1)[k] = 1.0
        out = conv(feat, offsets, op)
        assert out[0, 0, y0, x0].item() == pytest.approx(100 * (y0 + dy) + (x0 + dx), abs=1e-4), k


def op_outputs_and_grads(fn, x, offsets, weight):
    """fn's output and the gradients of a fixed non-uniform function of it to x, offsets and weight."""
    x, offsets, weight = (t.detach().requires_grad_() for t in (x, offsets, weight))
    y = fn(x, offsets, weight)
    probe = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)  # every output counts, each differently
    return (y, *torch.autograd.grad((y * probe).sum() + (y * y).sum(), (x, offsets, weight)))


@pytest.mark.parametrize(
    "shape,reach",
    [
        ((2, 6, 9, 11), 3.0),  # most points inside, some across the border
        ((1, 5, 7, 8), 12.0),  # most points outside the map, all four borders and corners
        ((2, 4, 1, 1), 1.5),  # a 1x1 map (P5 of a 32 px image): every neighbour outside
        ((1, 3, 6, 1), 2.0),  # a one-pixel-wide map
    ],
)
def test_grid_sample_operator_equals_deform_conv2d_values_and_gradients(shape, reach):
    """Random features, kernels and offsets (not only stars): float32 values and all three gradients agree."""
    b, c, h, w = shape
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(b, c, h, w, generator=g)
    offsets = (torch.rand(b, 18, h, w, generator=g) * 2 - 1) * reach
    weight = torch.randn(5, c, 3, 3, generator=g)
    want = op_outputs_and_grads(lambda *a: deform_conv2d(*a, padding=1), x, offsets, weight)
    got = op_outputs_and_grads(deform_conv3x3_grid_sample, x, offsets, weight)
    taps = torch.tensor([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=x.dtype).view(1, 9, 2, 1, 1)
    points = offsets.view(b, 9, 2, h, w) + taps
    py = points[:, :, 0] + torch.arange(h).view(1, 1, h, 1)
    px = points[:, :, 1] + torch.arange(w).view(1, 1, 1, w)
    off_map = (py < 0) | (py > h - 1) | (px < 0) | (px > w - 1)  # at least one bilinear neighbour outside
    assert off_map.float().mean() > 0.1  # the case exercises the borders
    for name, a, e in zip(("output", "grad x", "grad offsets", "grad weight"), got, want):
        assert e.abs().max() > 0, name  # a gradient that is zero everywhere would prove nothing
        torch.testing.assert_close(a, e, atol=1e-4, rtol=1e-4, msg=name)


def test_grid_sample_operator_takes_non_contiguous_tensors():
    """Channels-last features and a permuted kernel (as the trainer can hand over) give deform_conv2d's result."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 5, 6, 7, generator=g).to(memory_format=torch.channels_last)
    offsets = torch.randn(2, 18, 6, 7, generator=g).mul(3).to(memory_format=torch.channels_last)
    weight = torch.randn(4, 3, 3, 5, generator=g).permute(0, 3, 1, 2)  # (4, 5, 3, 3), not contiguous
    assert not weight.is_contiguous() and not x.is_contiguous()
    torch.testing.assert_close(
        deform_conv3x3_grid_sample(x, offsets, weight), deform_conv2d(x, offsets, weight, padding=1), atol=1e-4, rtol=1e-4
    )


def test_star_op_under_cpu_autocast():
    """Under bfloat16 autocast both operators still run in float32 and agree; the result keeps the input's dtype."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 8, 10, 10, generator=g)
    offsets = star_offsets(torch.rand(2, 4, 10, 10, generator=g) * 6)
    conv = DeformConv3x3(8, 8)
    outs = {}
    for op in ("deform_conv2d", "grid_sample"):
        xr, off = x.clone().requires_grad_(), offsets.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(xr.bfloat16(), off.bfloat16(), op)
        assert y.dtype == torch.bfloat16
        y.float().square().sum().backward()
        outs[op] = (y.float(), xr.grad, off.grad)
    for a, e in zip(outs["grid_sample"], outs["deform_conv2d"]):
        torch.testing.assert_close(a, e, atol=1e-2, rtol=1e-2)  # inputs rounded to bfloat16 alike; sums in float32


@pytest.mark.parametrize("train", [False, True])
def test_model_gives_the_same_outputs_and_gradients_with_either_operator(train):
    """A whole -vfnet with trained-looking star branches: eval boxes and scores, and every parameter's gradient of
    the loss, agree between star_op=deform_conv2d and grid_sample."""
    model = vfnet_model()
    head = model.model[-1]
    activate(head)
    batch = synthetic_batch()
    results = {}
    for op in ("deform_conv2d", "grid_sample"):
        head.star_op = op
        model.zero_grad(set_to_none=True)
        if train:
            loss, _ = model.loss(batch, model.train()(batch["img"]))
            loss.sum().backward()
            results[op] = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        else:
            with torch.no_grad():
                results[op] = {"eval": model.eval()(batch["img"])[0]}
    assert results["grid_sample"].keys() == results["deform_conv2d"].keys()
    for name, value in results["deform_conv2d"].items():
        torch.testing.assert_close(results["grid_sample"][name], value, atol=1e-4, rtol=1e-3, msg=name)


def test_star_offsets_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\)"):
        star_offsets(torch.zeros(1, 3, 2, 2))


# --------------------------------------------------------------------------------------------------- head outputs


def test_refined_box_is_scale_times_initial_box():
    model = vfnet_model().eval()
    head = model.model[-1]
    activate(head)
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        y, raw = model(x)
        initial_ltrb = head.dfl(raw["boxes"])  # (B, 4, A) stride units
        scale = raw["refine"]
        assert scale.shape == initial_ltrb.shape and (scale > 0).all() and not torch.allclose(scale, torch.ones_like(scale))
        anchors, strides = (a.transpose(0, 1) for a in make_anchors(raw["feats"], head.stride, 0.5))
        # Undo the decoding of the eval output: xywh pixels -> ltrb in stride units around each anchor.
        xy, wh = y[:, :2] / strides, y[:, 2:4] / strides
        refined_ltrb = torch.cat((anchors - (xy - wh / 2), (xy + wh / 2) - anchors), 1)
    torch.testing.assert_close(refined_ltrb, scale * initial_ltrb, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(y[:, 4:], raw["scores"].sigmoid())


def test_fresh_head_on_stock_weights_predicts_exactly_as_stock(stock_pt):
    """Zero-initialised star branches: the transferred model starts as stock YOLOv8 (refined = initial box)."""
    ours = YOLOGFL("yolov8n-vfnet.yaml").load(stock_pt).model.eval()
    stock = YOLO(stock_pt).model.float().eval()
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], stock(x)[0], atol=1e-4, rtol=1e-4)


def test_every_stock_tensor_transfers(stock_pt):
    model = YOLOGFL("yolov8n-vfnet.yaml").load(stock_pt).model
    stock = YOLO(stock_pt).model
    own = model.state_dict()
    for name, tensor in stock.state_dict().items():
        torch.testing.assert_close(own[name].float(), tensor.float(), msg=name)
    fresh = {k.split(".")[2] for k in own if k not in stock.state_dict()}
    assert fresh == {"cls_star", "reg_star", "refine"}
    assert model.names == stock.names


def test_stock_weights_transfer_into_a_head_with_another_class_count(stock_pt):
    """Fine-tuning yolov8n.pt on 12 classes: Ultralytics widens the class branch to the checkpoint's 80 channels to
    transfer it; the class star blocks must follow, and the fresh model's boxes are stock's (star = identity)."""
    from ultralytics.nn.tasks import load_checkpoint

    from yolo_gfl.configs import load_model_cfg

    source, _ = load_checkpoint(stock_pt)
    ours = build_detection_model(load_model_cfg("yolov8n-vfnet.yaml"), nc=12, verbose=False)
    stock = build_detection_model(load_model_cfg("yolov8n.yaml"), nc=12, verbose=False)
    assert ours.model[-1].cls_star[0].conv.in_channels == 64  # max(ch[0], min(nc, 100)) for 12 classes
    ours.load(source, verbose=False)
    stock.load(source, verbose=False)
    head = ours.model[-1]
    for i in range(head.nl):
        assert head.cls_star[i].conv.in_channels == head.cv3[i][-1].in_channels == 80
        assert head.cls_star[i].bn.weight.abs().sum() == 0 and head.cls_star[i].bn.eps == 1e-3  # identity, Ultralytics BN
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x)[0][:, :4], stock.eval()(x)[0][:, :4], atol=1e-3, rtol=1e-4)
    ours.train().args = get_cfg()
    batch = {"img": x, "batch_idx": torch.tensor([0.0, 1.0]), "cls": torch.tensor([[3.0], [11.0]]),
             "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.3], [0.3, 0.6, 0.2, 0.5]])}
    loss, _ = ours.loss(batch)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and head.cls_star[0].bn.weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_fine_tune_from_stock_weights_on_a_data_set_with_other_classes(tmp_path, stock_pt):
    """The user's path: yolov8n.pt fine-tuned into -vfnet on real chess images (12 classes), through the trainer."""
    chess = ROOT.parent / "shared" / "datasets" / "chess" / "chess.yaml"
    if not chess.exists():
        pytest.skip(f"real data set needed: {chess} is absent (it sits beside the checkout in ../shared)")
    model = YOLOGFL("yolov8n-vfnet.yaml")
    model.train(data=str(chess), pretrained=stock_pt, project=str(tmp_path), name="chess",
                **{**TINY_TRAIN, "imgsz": 64, "fraction": 0.05, "val": False})
    head = model.model.model[-1]
    rows = (tmp_path / "chess" / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 2 and "nan" not in rows[1].lower()
    assert head.nc == 12 and head.cls_star[0].conv.in_channels == head.cv3[0][-1].in_channels


def test_offset_gradient_share():
    """Offsets come from (1 - g) box.detach() + g box: the class branch's gradient into the box regressor scales with g."""
    grads = {}
    for g in (0.0, 0.1, 1.0):
        model = vfnet_model().train()
        head = model.model[-1]
        head.offset_grad = g  # the head's share (VarifocalNet: 0.1), not an option
        activate(head)
        preds = model(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
        preds["scores"].sum().backward()  # a loss on the class logits only
        grads[g] = head.cv2[0][2].weight.grad.clone()  # the layer producing the initial box distributions
    assert grads[0.0].abs().max() == 0
    assert grads[1.0].abs().max() > 0
    torch.testing.assert_close(grads[0.1], 0.1 * grads[1.0], atol=1e-7, rtol=1e-4)


def test_options_and_errors():
    assert validate_options({"head": "VFNET"})["head"] == "vfnet"
    with pytest.raises(GFLOptionError, match="head"):
        validate_options({"head": "dcn"})
    with pytest.raises(GFLOptionError, match="quality"):
        validate_options({"head": "vfnet", "quality": True})
    with pytest.raises(GFLOptionError, match="unknown"):  # VarifocalNet's constants, not options (0.2.0 had them)
        validate_options({"vfnet_offset_grad": 0.5})
    model = build_detection_model("yolov8s-vfnet.yaml", verbose=False)  # every scale builds
    assert isinstance(model.model[-1], VFNetDetect) and model.variant.assigner == "atss"
    assert model.model[-1].star_op == "auto" and model.model[-1].offset_grad == 0.1
    with pytest.raises(ValueError, match="star_op"):
        VFNetDetect(nc=2, ch=(16, 32, 64), star_op="dcn")


# ----------------------------------------------------------------------------------------------------------- loss


def synthetic_batch(n=2, imgsz=96):
    return {
        "img": torch.rand(n, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0)),
        "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
        "cls": torch.tensor([[0.0], [1.0], [2.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.5], [0.25, 0.3, 0.2, 0.2], [0.6, 0.55, 0.5, 0.6]]),
    }


@pytest.mark.parametrize("assigner", ["atss", "tal"])
def test_loss_is_finite_and_reaches_every_branch(assigner):
    model = vfnet_model(assigner=assigner).train()
    activate(model.model[-1])
    batch = synthetic_batch()
    loss, items = model.loss(batch, model(batch["img"]))
    assert isinstance(model.criterion, VFNetDetectionLoss)
    assert list(items) == ["box_loss", "cls_loss", "dfl_loss"]
    assert torch.isfinite(loss).all() and all(v > 0 for v in items.values()), items
    loss.sum().backward()
    head = model.model[-1]
    for name in ("cls_star.0.conv.weight", "reg_star.0.conv.weight", "refine.0.weight", "cv2.0.2.weight", "cv3.0.2.weight"):
        grad = head.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_box_loss_weights_split_initial_and_refined(monkeypatch):
    """box = hyp.box * (w_i L_init + w_r L_refined) / (w_i + w_r): weight only on the refined box trains no initial box."""
    batch = synthetic_batch()
    from yolo_gfl import criterion

    monkeypatch.setattr(criterion, "VFNET_INIT_WEIGHT", 0.0)  # the split's two ends (VarifocalNet: 1.5 and 2.0)
    model = vfnet_model()
    model.model[-1].offset_grad = 0.0  # offsets fully detached here
    activate(model.model[-1])
    preds = model.train()(batch["img"])
    loss, _ = model.loss(batch, preds)
    loss[0].backward()  # box loss alone
    head = model.model[-1]
    assert head.cv2[0][2].weight.grad.abs().max() == 0  # refined = scale x initial.detach(): no path to the initial box
    assert head.refine[0].weight.grad.abs().sum() > 0

    monkeypatch.setattr(criterion, "VFNET_INIT_WEIGHT", 1.5)
    monkeypatch.setattr(criterion, "VFNET_REFINE_WEIGHT", 0.0)
    model = vfnet_model()
    activate(model.model[-1])
    loss, _ = model.loss(batch, model.train()(batch["img"]))
    loss[0].backward()
    head = model.model[-1]
    assert head.cv2[0][2].weight.grad.abs().sum() > 0
    assert head.refine[0].weight.grad.abs().max() == 0


def test_batch_without_objects():
    model = vfnet_model().train()
    batch = synthetic_batch()
    batch.update(batch_idx=torch.zeros(0), cls=torch.zeros(0, 1), bboxes=torch.zeros(0, 4))
    loss, items = model.loss(batch, model(batch["img"]))
    assert torch.isfinite(loss).all() and items["box_loss"] == 0 and items["dfl_loss"] == 0 and items["cls_loss"] > 0
    loss.sum().backward()
    assert model.model[-1].refine[0].weight.grad is not None  # every output stays in the graph (DDP)


def test_cpu_autocast_bfloat16():
    model = vfnet_model().train()
    activate(model.model[-1])
    batch = synthetic_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        preds = model(batch["img"])
        loss, items = model.loss(batch, preds)
    assert torch.isfinite(loss).all() and all(torch.isfinite(v) for v in items.values())
    loss.sum().backward()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA AMP needs a GPU")
def test_cuda_amp_float16():
    model = vfnet_model().cuda().train()
    activate(model.model[-1])
    batch = {k: v.cuda() for k, v in synthetic_batch().items()}
    with torch.autocast("cuda", dtype=torch.float16):
        preds = model(batch["img"])
        loss, items = model.loss(batch, preds)
    assert torch.isfinite(loss).all() and all(torch.isfinite(v) for v in items.values())
    loss.sum().backward()
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        y = model(batch["img"])[0]
    assert torch.isfinite(y).all()


# ------------------------------------------------------------------------------------------- training and export


@pytest.fixture(scope="module")
def vfnet_run(tmp_path_factory, coco128_yaml):
    """One tiny epoch of yolov8n-vfnet (star op auto = grid_sample) with ATSS on real coco128 images, through the
    Ultralytics trainer."""
    project = tmp_path_factory.mktemp("vfnet")
    YOLOGFL("yolov8n-vfnet.yaml").train(
        data=coco128_yaml, project=str(project), name="vfnet", assigner="atss", **TINY_TRAIN
    )
    return project / "vfnet"


@pytest.mark.slow
def test_train_one_epoch_then_val_and_predict(vfnet_run, coco128_yaml, val_images):
    import csv

    with open(vfnet_run / "results.csv") as f:
        rows = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    assert len(rows) == 1
    for key in ("train/box_loss", "train/cls_loss", "train/dfl_loss", "val/box_loss", "val/cls_loss", "val/dfl_loss"):
        assert math.isfinite(rows[0][key]) and rows[0][key] > 0, (key, rows[0][key])

    best = vfnet_run / "weights" / "best.pt"
    ours, plain = YOLOGFL(best), YOLO(best)
    for model in (ours, plain):  # plain Ultralytics unpickles the yolo_gfl model and uses its own validator
        head = model.model.model[-1]
        assert isinstance(head, VFNetDetect) and head.star_op == "auto"
        assert head.cls_star[0].bn.weight.abs().sum() > 0  # the star branch was trained (it starts at 0)
        assert model.model.variant.head == "vfnet" and model.model.variant.assigner == "atss"
        metrics = model.val(data=coco128_yaml, imgsz=96, batch=16, device="cpu", plots=False, verbose=False)
        assert 0 <= metrics.box.map <= 1
    kwargs = dict(imgsz=96, conf=1e-6, max_det=50, device="cpu", verbose=False)
    for a, b in zip(ours.predict(val_images, **kwargs), plain.predict(val_images, **kwargs)):
        assert len(a.boxes) > 0
        torch.testing.assert_close(a.boxes.data, b.boxes.data)
    soft = ours.predict(val_images, nms="soft", pre_nms_topk=100, **kwargs)
    assert all(len(r.boxes) > 0 for r in soft)


def exported_outputs(fmt: str, exported: str, x: np.ndarray) -> np.ndarray:
    """Raw (B, 4 + nc, A) output of an exported model on the letterboxed batch ``x``, in its own runtime."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(exported, providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    if fmt == "torchscript":
        return np.concatenate([torch.jit.load(exported)(torch.from_numpy(xi[None])).numpy() for xi in x])
    import openvino as ov
    from pathlib import Path

    # float32, as the exported graph is checked and not the runtime's arithmetic: on CPUs with bf16 units (Intel AMX)
    # OpenVINO's default is bf16, which moves boxes by a tenth of a pixel (benchmarks/export_check.py, openvino_in_f32)
    compiled = ov.Core().compile_model(next(Path(exported).glob("*.xml")), "CPU",
                                       {"INFERENCE_PRECISION_HINT": ov.Type.f32})
    return np.concatenate([compiled(xi[None])[0] for xi in x])  # exported with a fixed batch of 1


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "openvino"])
def test_export_matches_pytorch_on_real_images(fmt, vfnet_run, val_images, tmp_path):
    """The trained -vfnet exports with the grid_sample star op, at Ultralytics' default settings, and the exported
    file gives PyTorch's outputs on real images."""
    if fmt == "openvino":
        pytest.importorskip("openvino", reason="OpenVINO export needs the openvino package (pip install .[export])")
    from .conftest import ATOL, letterboxed

    best = tmp_path / "best.pt"  # exports land beside the checkpoint: keep them out of the shared run folder
    best.write_bytes((vfnet_run / "weights" / "best.pt").read_bytes())
    exported = YOLOGFL(best).export(format=fmt, imgsz=96, device="cpu", dynamic=fmt == "onnx")
    if fmt == "onnx":
        import onnx
        from ultralytics.utils.export.engine import best_onnx_opset

        graph = onnx.load(exported)
        ops = {n.op_type for n in graph.graph.node}
        assert "GridSample" in ops and "DeformConv" not in ops, ops
        opset = max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))
        assert opset == best_onnx_opset(onnx)  # Ultralytics' default: no opset raised for this head
    x = letterboxed(val_images, 96)
    got = exported_outputs(fmt, exported, x)
    model = YOLOGFL(best).model.float().fuse().eval()
    with torch.no_grad():
        want = model(torch.from_numpy(x))[0].numpy()
        head = model.model[-1]
        head.star_op = "deform_conv2d"  # the same model with torchvision's kernel: the exported op computes the same
        np.testing.assert_allclose(model(torch.from_numpy(x))[0].numpy(), want, atol=ATOL, rtol=0)
    assert got.shape == want.shape == (len(val_images), 84, 189)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_exported_model_predicts_through_plain_yolo_cli(fmt, vfnet_run, val_images, tmp_path):
    import subprocess
    import sys

    if fmt == "openvino":
        pytest.importorskip("openvino", reason="OpenVINO export needs the openvino package (pip install .[export])")
    best = tmp_path / "best.pt"
    best.write_bytes((vfnet_run / "weights" / "best.pt").read_bytes())
    exported = YOLOGFL(best).export(format=fmt, imgsz=96, device="cpu")
    # Ultralytics' `yolo` entry point run by this interpreter: a `yolo` script first on PATH may belong to another
    # Python (e.g. one without openvino).
    yolo = [sys.executable, "-c", "from ultralytics.cfg import entrypoint; entrypoint()"]
    r = subprocess.run(
        [*yolo, "predict", f"model={exported}", f"source={val_images[0]}", "imgsz=96", "conf=0.0001",
         "save_txt=True", f"project={tmp_path}", "name=p"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "YOLO_OFFLINE": "1"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    labels = list((tmp_path / "p" / "labels").glob("*.txt"))
    assert labels and labels[0].read_text().strip(), "the exported model predicted no box at conf=0.0001"
