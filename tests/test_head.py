"""GFLDetect / DGQP: feature shape and range, J = sigmoid(C) x I, parameter overhead, stock weight compatibility."""

from __future__ import annotations

import pytest
import torch

from yolo_gfl.nn import DGQP, GFLDetect, GFLDetectionModel, build_detection_model
from yolo_gfl.nn.head import FeatureQuality, insertion_largest_k, largest_k


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {v: build_detection_model(f"yolov8n-{v}.yaml" if v else "yolov8n.yaml", verbose=False) for v in ("", "gfl")}


def test_dgqp_features_shape_and_range():
    dgqp = DGQP(reg_max=16, topk=4)
    logits = torch.randn(2, 4 * 16, 10) * 3
    feats = dgqp.features(logits)
    assert feats.shape == (2, 10, 20)  # 4 sides x (top-4 + mean)
    assert feats.min() >= 0 and feats.max() <= 1
    top4 = feats.view(2, 10, 4, 5)[..., :4]
    assert (top4[..., :-1] >= top4[..., 1:]).all()  # sorted top-k of each side
    torch.testing.assert_close(feats.view(2, 10, 4, 5)[..., 4], top4.mean(-1))
    # the top-4 are the largest softmax probabilities of that side
    side0 = logits.view(2, 4, 16, 10)[0, 0, :, 3].softmax(0)
    torch.testing.assert_close(top4[0, 3, 0], side0.sort(descending=True).values[:4])
    quality = dgqp(logits)
    assert quality.shape == (2, 1, 10) and ((quality > 0) & (quality < 1)).all()


@pytest.mark.parametrize("k", [1, 2, 4, 7, 16])
def test_insertion_largest_k_equals_topk_values_and_gradients(k):
    torch.manual_seed(k)
    x = torch.randn(2, 4, 16, 9)
    x[0, 0, 3] = x[0, 0, 5]  # ties: values must still match topk's
    x.requires_grad_()
    ours = insertion_largest_k(x, k, dim=2)
    with torch.no_grad():  # the inference path of DGQP on CPU takes the network, training takes topk
        torch.testing.assert_close(largest_k(x, k, dim=2), ours, rtol=0, atol=0)
    ours.mul(torch.arange(1.0, k + 1).view(1, 1, k, 1)).sum().backward()  # position-dependent weights
    grad_ours, x.grad = x.grad.clone(), None
    ref = x.topk(k, dim=2).values
    ref.mul(torch.arange(1.0, k + 1).view(1, 1, k, 1)).sum().backward()
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    torch.testing.assert_close(grad_ours.sum(2), x.grad.sum(2))  # tied bins may share their gradient differently
    untied = torch.ones_like(x, dtype=torch.bool)
    untied[0, 0] = False
    torch.testing.assert_close(grad_ours[untied], x.grad[untied], rtol=0, atol=0)


def test_fresh_dgqp_starts_near_one_constant():
    quality = DGQP(16, init_quality=0.95)(torch.randn(1, 64, 500) * 4)
    assert (quality - 0.95).abs().max() < 0.02


def test_eval_output_is_sigmoid_c_times_i(models):
    model = models["gfl"].eval()
    head = model.model[-1]
    assert isinstance(head, GFLDetect) and head.quality_branch is not None
    x = torch.rand(2, 3, 96, 128)
    y, preds = model(x)
    assert y.shape == (2, 4 + 80, preds["scores"].shape[-1])  # Ultralytics layout, (B, 4 + nc, anchors)
    expected = preds["scores"].sigmoid() * head.quality_branch(preds["boxes"])
    torch.testing.assert_close(y[:, 4:], expected)
    torch.testing.assert_close(preds["quality"], head.quality_branch(preds["boxes"]))


def test_without_dgqp_head_equals_stock_detect(models):
    stock = models[""].eval()
    variant = build_detection_model("yolov8n-qfl.yaml", verbose=False).eval()
    assert isinstance(variant.model[-1], GFLDetect) and variant.model[-1].quality_branch is None
    variant.load_state_dict(stock.state_dict())  # same tensor names, nothing missing or extra
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(variant(x)[0], stock(x)[0])


def test_parameter_overhead_under_half_percent(models):
    n_stock = sum(p.numel() for p in models[""].parameters())
    n_gfl = sum(p.numel() for p in models["gfl"].parameters())
    assert n_stock == 3_157_200  # Ultralytics' YOLOv8n
    assert 0 < (n_gfl - n_stock) / n_stock < 0.005


def test_stock_state_dict_loads_into_gfl_model(models):
    stock_sd, gfl_sd = models[""].state_dict(), models["gfl"].state_dict()
    assert set(stock_sd) <= set(gfl_sd)
    assert {k for k in gfl_sd if k not in stock_sd} == {k for k in gfl_sd if ".quality_branch." in k}
    assert all(stock_sd[k].shape == gfl_sd[k].shape for k in stock_sd)


@pytest.mark.parametrize("scale", "nslmx")
def test_every_scale_builds(scale):
    from yolo_gfl.configs import load_model_cfg

    cfg = load_model_cfg(f"yolov8{scale}-gfl.yaml")
    shipped = {"cls_loss": "bce", "quality": True}  # GFLv2's quality branch on Ultralytics' loss
    assert cfg["scale"] == scale and cfg["gfl"] == shipped and "backbone" in cfg
    if scale in "ns":  # building l/x costs seconds each; their configs differ only by the scale row
        model = GFLDetectionModel(cfg, verbose=False)
        assert model.yaml["scale"] == scale


def test_swapped_head_keeps_ultralytics_batchnorm_settings(models):
    """The GFL head is built after Ultralytics' init pass; its BatchNorms must still get eps 1e-3, momentum 0.03."""
    import torch.nn as nn

    stock = [(m.eps, m.momentum) for m in models[""].modules() if isinstance(m, nn.BatchNorm2d)]
    ours = [(m.eps, m.momentum) for m in models["gfl"].modules() if isinstance(m, nn.BatchNorm2d)]
    assert ours == stock and set(ours) == {(1e-3, 0.03)}


def feature_quality_model(**options) -> GFLDetectionModel:
    from yolo_gfl.configs import load_model_cfg

    torch.manual_seed(0)
    cfg = load_model_cfg("yolov8n.yaml")
    cfg["gfl"] = {"quality": True, "quality_input": "features", "quality_target": "iou", **options}
    return GFLDetectionModel(cfg, verbose=False)


def test_feature_quality_reads_the_box_tower_and_keeps_the_stock_outputs(models):
    """quality_input=features: boxes and class logits are exactly stock YOLOv8's; I is sigmoid of a 3x3 conv on the input
    of each level's last box conv, computed here by hand; the eval score is sigmoid(C) x I; a fresh I is constant."""
    stock, model = models[""].eval(), feature_quality_model().eval()
    head = model.model[-1]
    assert isinstance(head.quality_branch, FeatureQuality)
    assert [c.kernel_size for c in head.quality_branch.convs] == [(3, 3)] * 3
    missing, unexpected = model.load_state_dict(stock.state_dict(), strict=False)
    assert not unexpected and set(missing) == {k for k in model.state_dict() if ".quality_branch." in k}
    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        y, preds = model(x)
        torch.testing.assert_close(preds["quality"], torch.full_like(preds["quality"], 0.95))  # zero weights at first
        levels = [head.cv2[i][1](head.cv2[i][0](f)) for i, f in enumerate(preds["feats"])]
        scale = max(f.std().item() for f in levels)  # a fresh tower's features are tiny: size I's weights to them
        for conv in head.quality_branch.convs:  # give I something to read
            conv.weight.normal_(std=0.5 / scale)
        y, preds = model(x)
        y_stock, preds_stock = stock(x)
        torch.testing.assert_close(preds["boxes"], preds_stock["boxes"])
        torch.testing.assert_close(preds["scores"], preds_stock["scores"])
        torch.testing.assert_close(y[:, :4], y_stock[:, :4])
        by_hand = torch.cat([torch.nn.functional.conv2d(f, c.weight, c.bias, padding=1).flatten(2)
                             for f, c in zip(levels, head.quality_branch.convs)], -1).sigmoid()
        assert by_hand.shape == (2, 1, y.shape[-1]) and by_hand.std() > 0.01
        torch.testing.assert_close(preds["quality"], by_hand)
        torch.testing.assert_close(y[:, 4:], preds["scores"].sigmoid() * by_hand)
        fused = model.fuse()(x)[0]  # Conv+BN folded: the split of the box tower still holds
    torch.testing.assert_close(fused, y, atol=1e-4, rtol=1e-4)


def test_feature_quality_gradient_reaches_the_box_tower_not_the_class_tower():
    model = feature_quality_model().train()
    head = model.model[-1]
    for conv in head.quality_branch.convs:
        torch.nn.init.normal_(conv.weight)
    preds = model(torch.rand(1, 3, 64, 64))
    preds["quality"].sum().backward()
    assert head.quality_branch.convs[0].weight.grad.abs().sum() > 0
    assert head.cv2[0][0].conv.weight.grad.abs().sum() > 0  # I shares the box tower, as the box distributions do
    assert head.cv2[0][-1].weight.grad is None  # the distributions' own conv is beside I, not under it
    assert head.cv3[0][0].conv.weight.grad is None


def test_feature_quality_needs_the_quality_branch():
    from yolo_gfl.options import GFLOptionError, validate_options

    with pytest.raises(GFLOptionError, match="quality_input='features' .*add quality=True"):
        validate_options({"quality_input": "features"})
    with pytest.raises(GFLOptionError, match="quality_input"):
        validate_options({"quality": True, "quality_input": "conv"})
    assert validate_options({"quality": True, "quality_input": "features"})["quality_input"] == "features"


@pytest.mark.parametrize("quality_input", ["distribution", "features"])
def test_quality_detach_keeps_the_quality_loss_out_of_the_detector(quality_input):
    """quality_detach=True: I's gradient trains the branch and nothing under it; without it, it reaches the box tower."""
    from yolo_gfl.options import GFLOptionError, validate_options

    grads = {}
    for detach in (False, True):
        model = feature_quality_model(quality_input=quality_input, quality_detach=detach).train()
        head = model.model[-1]
        for p in head.quality_branch.parameters():  # weights that pass a gradient back (the fresh feature branch's are zero)
            if p.dim() > 1:
                torch.nn.init.normal_(p)
        preds = model(torch.rand(1, 3, 64, 64))
        preds["quality"].sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.quality_branch.parameters() if p.dim() > 1)
        grad = head.cv2[0][0].conv.weight.grad
        grads[detach] = 0.0 if grad is None else grad.abs().sum().item()
    assert grads[False] > 0 and grads[True] == 0.0
    with pytest.raises(GFLOptionError, match="quality_detach=True .*add quality=True"):
        validate_options({"quality_detach": True})
