"""Same seed + deterministic=True: bit-identical per-batch losses for the first steps on CPU, run to run."""

from __future__ import annotations

import pytest
import torch

from yolo_gfl import YOLOGFL

pytestmark = pytest.mark.slow

STEPS = 5


class EnoughSteps(Exception):
    """Raised from a callback once the first STEPS optimizer steps are recorded (skips val and checkpoints)."""


def first_losses(tmp_path, coco128_yaml, name, seed=0, **options):
    losses = []

    def record(trainer):
        losses.append(torch.stack([v.detach().clone() for v in trainer.loss_items.values()]))
        if len(losses) == STEPS:
            raise EnoughSteps

    model = YOLOGFL(options.pop("model", "yolov8n-gfl.yaml"))
    model.add_callback("on_train_batch_end", record)
    with pytest.raises(EnoughSteps):
        model.train(data=coco128_yaml, epochs=1, imgsz=64, batch=4, nbs=4, fraction=0.25, workers=0, device="cpu",
                    plots=False, seed=seed, deterministic=True, project=str(tmp_path), name=name, **options)
    # nbs=batch: an optimizer step after every batch, so later losses depend on the updates, not only on the data
    return torch.stack(losses)  # (STEPS, 3): box, cls, dfl after each step


@pytest.mark.parametrize("options", [{}, {"model": "yolov8n-vfl.yaml", "assigner": "atss", "box_loss": "giou"}],
                         ids=["gfl", "vfl-atss-giou"])
def test_same_seed_same_losses(tmp_path, coco128_yaml, options):
    a = first_losses(tmp_path, coco128_yaml, "a", **dict(options))
    b = first_losses(tmp_path, coco128_yaml, "b", **dict(options))
    assert torch.isfinite(a).all() and (a > 0).any()
    assert torch.equal(a, b), f"run-to-run difference:\n{a}\n{b}"
    if not options:  # the comparison has teeth: another seed gives other losses
        c = first_losses(tmp_path, coco128_yaml, "c", seed=1)
        assert not torch.equal(a, c)


def test_a_variant_with_stocks_options_trains_as_stock_bit_for_bit(tmp_path, coco128_yaml):
    """A variant config whose resolved options are stock's (-gfl without its quality branch: BCE on TAL's target) is
    decided once to be stock: it builds Ultralytics' own head and loss, so with one seed its first steps are stock's
    exactly, not merely within rounding."""
    stock = first_losses(tmp_path, coco128_yaml, "stock", model="yolov8n.yaml")
    variant = first_losses(tmp_path, coco128_yaml, "variant", quality=False)
    assert torch.equal(stock, variant), f"stock:\n{stock}\nvariant:\n{variant}"
    with_branch = first_losses(tmp_path, coco128_yaml, "branch")  # the comparison has teeth: -gfl itself differs
    assert not torch.equal(stock, with_branch)


def test_a_finetuned_variant_draws_stocks_new_class_layer_with_the_same_seed(tmp_path, coco128_yaml, stock_pt):
    """Fine-tuned on a data set with other classes, the class head's last conv is drawn afresh (80 COCO classes
    -> 1 here, single_cls). With one seed it must be the same draw in stock and in variants that build new parts
    (DGQP, the feature quality branch, VFNet's head), else a seed-paired difference carries another initialisation."""

    def new_class_conv(model_cfg, **options):
        seen = {}

        def grab(trainer):
            sd = trainer.model.state_dict()
            seen.update({k: v.clone() for k, v in sd.items() if ".cv3." in k and k.endswith(".2.weight")})
            raise EnoughSteps

        model = YOLOGFL(model_cfg)
        model.add_callback("on_train_start", grab)
        with pytest.raises(EnoughSteps):
            model.train(data=coco128_yaml, single_cls=True, pretrained=stock_pt, epochs=1, imgsz=64, batch=4,
                        fraction=0.25, workers=0, device="cpu", plots=False, seed=0, project=str(tmp_path),
                        name=model_cfg, **options)
        return seen

    stock = new_class_conv("yolov8n.yaml")
    assert stock and all(w.shape[0] == 1 for w in stock.values())
    for cfg, options in [("yolov8n-gfl.yaml", {}), ("yolov8n-gfl.yaml", {"quality_input": "features"}),
                         ("yolov8n-vfnet.yaml", {})]:
        variant = new_class_conv(cfg, **options)
        for name, weight in stock.items():
            assert torch.equal(variant[name], weight), f"{cfg} {options}: {name} drawn otherwise than stock's"
