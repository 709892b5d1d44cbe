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
