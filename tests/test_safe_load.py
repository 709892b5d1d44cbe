"""Safe loading: a weights_only checkpoint reproduces the model exactly; a tampered file is refused, nothing runs."""

from __future__ import annotations

import os

import pytest
import torch

from yolo_gfl import YOLOGFL
from yolo_gfl.checkpoints import SAFE_FORMAT, UnsafeCheckpointError, load_safe, safe_yologfl, save_state_dict
from yolo_gfl.nn import GFLDetectionModel


class Payload:
    """Unpickling this runs code: it writes a marker file (what a malicious checkpoint would do, harmlessly)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real yolo_gfl checkpoint with non-default options and names, saved as Ultralytics saves (fp16 EMA)."""
    from ultralytics.cfg import get_cfg

    from yolo_gfl.configs import load_model_cfg

    torch.manual_seed(0)
    cfg = load_model_cfg("yolov8n-gfl.yaml")
    cfg["gfl"] = {**cfg["gfl"], "cls_loss": "qfl", "qfl_beta": 1.5, "cls_norm": "sum"}
    model = GFLDetectionModel(cfg, nc=3, verbose=False)
    model.names = {0: "cat", 1: "dog", 2: "bird"}
    model.args = vars(get_cfg(overrides={"imgsz": 96}))
    with torch.no_grad():  # non-trivial BatchNorm statistics, so buffers matter
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    torch.save({"epoch": 3, "model": None, "ema": model.half(), "optimizer": None, "train_args": model.args}, path)
    return path


def test_safe_checkpoint_reproduces_outputs_exactly(checkpoint, tmp_path):
    safe = save_state_dict(checkpoint, tmp_path / "best.safe.pt")
    payload = torch.load(safe, weights_only=True)  # loads under PyTorch's restricted unpickler
    assert payload["format"] == SAFE_FORMAT and payload["yaml"]["gfl"]["qfl_beta"] == 1.5

    ours = load_safe(safe)
    reference = YOLOGFL(checkpoint).model.float().eval()  # the full (trusted) unpickling path
    assert type(ours) is type(reference) and ours.variant == reference.variant
    assert ours.names == {0: "cat", 1: "dog", 2: "bird"} and ours.args["imgsz"] == 96
    assert ours.model[-1].quality_branch is not None and ours.variant.cls_norm == "sum"
    for k, v in reference.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        a, b = ours(x), reference(x)
    assert torch.equal(a[0], b[0])

    # through the YOLOGFL API: same predictions as the original checkpoint
    wrapped = safe_yologfl(safe)
    img = (torch.rand(96, 96, 3) * 255).byte().numpy()
    kw = dict(imgsz=96, conf=1e-6, max_det=30, device="cpu", verbose=False)
    p, q = wrapped.predict(img, **kw)[0], YOLOGFL(checkpoint).predict(img, **kw)[0]
    assert len(p.boxes) > 0 and torch.equal(p.boxes.data, q.boxes.data)
    assert wrapped.names == {0: "cat", 1: "dog", 2: "bird"}


def test_tampered_checkpoint_is_refused_and_runs_nothing(checkpoint, tmp_path):
    safe = save_state_dict(checkpoint, tmp_path / "best.safe.pt")
    payload = torch.load(safe, weights_only=True)
    marker = tmp_path / "pwned"
    tampered = tmp_path / "tampered.safe.pt"
    torch.save({**payload, "args": {**payload["args"], "imgsz": Payload(marker)}}, tampered)

    with pytest.raises(UnsafeCheckpointError, match=r"refused by torch.load\(weights_only=True\).*Nothing in it was run"):
        load_safe(tampered)
    assert not marker.exists()

    # the payload is real: the ordinary (unsafe) loader does run it
    torch.load(tampered, weights_only=False)
    assert marker.read_text() == "ran"
    os.remove(marker)


def test_full_ultralytics_checkpoint_is_refused_with_the_fix(checkpoint):
    with pytest.raises(UnsafeCheckpointError, match="save_state_dict") as e:
        load_safe(checkpoint)
    assert "Unsupported global" in str(e.value) or "GLOBAL" in str(e.value)


def test_plain_data_that_is_not_a_safe_checkpoint(tmp_path):
    other = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, other)
    with pytest.raises(UnsafeCheckpointError, match="not a yolo_gfl safe checkpoint"):
        load_safe(other)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_safe(tmp_path / "missing.safe.pt")
