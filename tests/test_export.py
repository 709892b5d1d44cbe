"""ONNX export of every variant: outputs match PyTorch on real images; the file predicts through plain `yolo`."""

from __future__ import annotations

import os
import shutil
import subprocess

import cv2
import numpy as np
import pytest
import torch
from ultralytics.data.augment import LetterBox

from yolo_gfl import YOLOGFL

pytestmark = pytest.mark.slow

ATOL = 1e-3  # absolute, on boxes in pixels (imgsz 96) and scores in [0, 1]; float32 kernels differ in summation order


def letterboxed(paths, size):
    imgs = [LetterBox((size, size), auto=False)(image=cv2.imread(p))[..., ::-1] for p in paths]
    return np.ascontiguousarray(np.stack(imgs).transpose(0, 3, 1, 2), dtype=np.float32) / 255


@pytest.mark.parametrize("variant", ["gfl", "qfl", "vfl"])
def test_onnx_matches_pytorch_on_real_images(variant, trained, val_images):
    import onnxruntime as ort

    best = trained(variant) / "weights" / "best.pt"
    onnx_file = YOLOGFL(best).export(format="onnx", imgsz=96, dynamic=True, device="cpu")
    x = letterboxed(val_images, 96)
    session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})[0]
    model = YOLOGFL(best).model.float().fuse().eval()
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x))[0].numpy()
    assert onnx_out.shape == torch_out.shape == (len(val_images), 84, 189)
    np.testing.assert_allclose(onnx_out, torch_out, atol=ATOL, rtol=0)


def test_torchscript_export(trained, val_images):
    best = trained("gfl") / "weights" / "best.pt"
    ts_file = YOLOGFL(best).export(format="torchscript", imgsz=96, device="cpu")
    x = torch.from_numpy(letterboxed(val_images[:1], 96))
    ts_out = torch.jit.load(ts_file)(x)
    with torch.no_grad():
        torch_out = YOLOGFL(best).model.float().fuse().eval()(x)[0]
    torch.testing.assert_close(ts_out, torch_out, atol=ATOL, rtol=0)


def test_exported_onnx_predicts_through_plain_yolo_cli(trained, val_images, tmp_path):
    best = trained("gfl") / "weights" / "best.pt"
    onnx_file = YOLOGFL(best).export(format="onnx", imgsz=96, device="cpu")
    yolo = shutil.which("yolo")
    assert yolo, "Ultralytics installs the `yolo` console script"
    r = subprocess.run(
        [yolo, "predict", f"model={onnx_file}", f"source={val_images[0]}", "imgsz=96", "conf=0.0001",
         f"project={tmp_path}", "name=p"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "YOLO_OFFLINE": "1"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert list((tmp_path / "p").glob("*.jpg"))
