"""Multi-GPU readiness on CPU: the pieces of Ultralytics' DDP launch (ultralytics/utils/dist.py) that a machine
without GPUs can run.

Ultralytics trains on several GPUs by pickling the trainer class, its arguments and the built model into a file
(``generate_ddp_file``) and re-launching a script that rebuilds the trainer from it under ``torch.distributed.run``;
each worker then calls ``init_process_group`` on a CUDA device, which needs GPUs. Here: (1) the pickled state read in a
fresh interpreter still describes the variant, options given as train arguments included; (2) every parameter gets a
gradient in a step without positives; (3) two gloo processes train each variant a few steps under
``DistributedDataParallel`` to finite weights, identical on both ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ultralytics.cfg import get_cfg

from yolo_gfl import YOLOGFL
from yolo_gfl.configs import load_model_cfg
from yolo_gfl.engine import GFLTrainer
from yolo_gfl.nn.model import build_detection_model

VARIANTS = ("yolov8n.yaml", "yolov8n-vfl.yaml", "yolov8n-qfl.yaml", "yolov8n-gfl.yaml", "yolov8n-vfnet.yaml")


@pytest.mark.parametrize("cfg", [*VARIANTS, "yolo11n-gfl.yaml", "yolo11n-vfnet.yaml"])
def test_step_without_positives_gives_every_parameter_a_gradient(cfg):
    torch.manual_seed(0)
    model = build_detection_model(load_model_cfg(cfg), nc=3, verbose=False)
    model.args = get_cfg()
    model.train()
    empty = {"img": torch.rand(2, 3, 64, 64), "batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1),
             "bboxes": torch.zeros(0, 4)}
    loss, _ = model.loss(empty)
    loss.sum().backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"outside the graph without positives (DDP with find_unused_parameters=False fails): {missing}"
    head = model.model[-1]
    assert head.cv3[0][-1].weight.grad.abs().sum() > 0  # the negatives still train the class branch


class Launched(Exception):
    """Raised instead of launching the DDP workers; carries the state file Ultralytics wrote for them."""


def write_ddp_state(trainer):
    """What a multi-GPU ``train()`` does before launching workers (``generate_ddp_file``), then stop."""
    from ultralytics.utils.dist import generate_ddp_file

    raise Launched(generate_ddp_file(trainer))


READ_STATE = """
import json, sys
from ultralytics.utils import DEFAULT_CFG_DICT
from ultralytics.utils.patches import torch_load
state = torch_load(sys.argv[1], map_location="cpu")
cfg = DEFAULT_CFG_DICT.copy()
cfg.update(save_dir="")  # as the generated DDP script does
trainer = state["trainer"](cfg=cfg, overrides=state["args"], _callbacks=state["callbacks"])
trainer.model = state["model"]
trainer.setup_model()  # keeps a built model, as each worker's _setup_train does
trainer.data = {**trainer.data, "nc": len(trainer.data["names"])}
trainer.set_model_attributes()  # nc, names, args: as _setup_train does before the first loss
print(json.dumps({"trainer": type(trainer).__name__, "model": type(trainer.model).__name__,
                  "options": trainer.model.variant.as_section(), "criterion": type(trainer.model.init_criterion()).__name__}))
"""


def test_ddp_state_carries_the_variant_and_train_argument_options(tmp_path, coco128_yaml, monkeypatch):
    monkeypatch.setattr(GFLTrainer, "train", write_ddp_state)  # the class itself is pickled by reference
    model = YOLOGFL("yolov8n-qfl.yaml")
    with pytest.raises(Launched) as launched:
        model.train(data=coco128_yaml, imgsz=64, epochs=1, batch=8, device="cpu",
                    workers=0, project=str(tmp_path), name="ddp", qfl_beta=1.5, quality=True)
    script = Path(str(launched.value))
    state = script.with_suffix(".pt")
    try:
        assert "state = torch_load(" in script.read_text() and state.exists()
        r = subprocess.run([sys.executable, "-c", READ_STATE, str(state)], capture_output=True, text=True,
                           timeout=300, env={**os.environ, "YOLO_OFFLINE": "1", "YOLO_VERBOSE": "False"})
        assert r.returncode == 0, r.stderr[-3000:]
        seen = json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        script.unlink(missing_ok=True)
        state.unlink(missing_ok=True)
    assert seen["trainer"] == "GFLTrainer" and seen["model"] == "GFLDetectionModel"
    assert seen["criterion"] == "GFLDetectionLoss"
    assert seen["options"]["cls_loss"] == "qfl" and seen["options"]["qfl_beta"] == 1.5 and seen["options"]["quality"]


@pytest.mark.slow
def test_two_gloo_processes_train_every_variant_to_identical_weights(tmp_path, coco128_yaml):
    out = tmp_path / "ddp.json"
    worker = Path(__file__).with_name("ddp_gloo_worker.py")
    r = subprocess.run([sys.executable, str(worker), str(out), coco128_yaml, *VARIANTS], capture_output=True,
                       text=True, timeout=600, env={**os.environ, "YOLO_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads(out.read_text())
    assert sorted(results) == sorted(VARIANTS)
    for name, res in results.items():
        assert res["finite"], name
        assert res["max_rank_diff"] == 0.0, (name, res["max_rank_diff"])  # DDP averaged the same gradients
        assert res["moved"] > 1e-4, name  # the steps changed the weights
        assert res["labels_per_step"][1] == 0 and res["labels_per_step"][0] > 0, name  # a step without positives
    assert results["yolov8n-gfl.yaml"]["variant"]["quality"] is True
    assert results["yolov8n-vfnet.yaml"]["variant"]["head"] == "vfnet"
