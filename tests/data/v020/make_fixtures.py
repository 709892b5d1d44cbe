"""Make the 0.2.0 fixtures that tests/test_v020_compat.py checks the current code against.

Run ONCE with yolo_gfl 0.2.0 (git commit a3e6ecc, before the option set was reduced), from the repository root:

    YOLO_OFFLINE=1 python tests/data/v020/make_fixtures.py

It cannot be re-run with later code (it uses 0.2.0's option names and API); that is the point: its outputs are what
0.2.0 did. It writes, beside itself,

* ``yolov8n-<variant>.pt``: a checkpoint of a shipped variant, trained one tiny epoch from a seeded random start (no
  third-party weights in the repository) on a quarter of coco128 at 96 px, stripped as Ultralytics strips ``last.pt``,
  then its weights spread by seeded noise and its class biases raised (``spread``), so that its scores differ from
  box to box as a trained model's do rather than sitting at the initial prior;
* ``predictions.pt``: each checkpoint's predictions (boxes, scores, classes) on two real coco128 val images, and its
  raw eval output on a fixed input tensor;
* ``reference.json``: for every shipped config and the kept probe configs, the full ``gfl:`` section 0.2.0 stored in
  a model, the loss items (box, cls, dfl) and input-gradient norms of its criterion on a fixed batch with seeded
  predictions, and the benchmark's ``recipe_digest``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

CHECKPOINTS = ("gfl", "vfl", "vfnet")  # the three heads/recipes whose loading differs (qfl loads as vfl does)
CONFIGS = [f"{fam}-{v}.yaml" for fam in ("yolov8n", "yolo11n") for v in ("vfl", "qfl", "gfl", "vfnet")]
PROBES = ["benchmarks/configs/yolov8n-stock-tgain125.yaml", "benchmarks/configs/yolov8n-stock-iouconv10-detach.yaml"]
TRAIN = dict(epochs=1, imgsz=96, batch=8, workers=0, device="cpu", plots=False, fraction=0.25, seed=0, val=False)
IMAGES = ("000000000139.jpg", "000000000285.jpg")
PREDICT_CONF = 0.05
CLASS_BIAS_LIFT = 4.0  # raises the prior logit (about -9 at 96 px) towards scores that pass PREDICT_CONF


def seeded_preds(model, nc: int, seed: int = 0, size: int = 64, b: int = 2) -> dict[str, torch.Tensor]:
    """Training-output tensors of a head for a (b, 3, size, size) batch, drawn from ``seed``: what the criterion reads."""
    g = torch.Generator().manual_seed(seed)
    strides = [int(s) for s in model.stride.tolist()]
    feats = [torch.zeros(b, 1, size // s, size // s) for s in strides]
    a = sum(f.shape[2] * f.shape[3] for f in feats)
    preds = {
        "feats": feats,
        "boxes": (torch.randn(b, 64, a, generator=g) * 2.0).requires_grad_(),
        "scores": (torch.randn(b, nc, a, generator=g) - 2.0).requires_grad_(),
    }
    quality = torch.sigmoid(torch.randn(b, 1, a, generator=g) + 1.0)
    refine = torch.exp(0.2 * torch.randn(b, 4, a, generator=g))
    head = model.model[-1]
    if getattr(head, "dgqp", None) is not None:
        preds["quality"] = quality.requires_grad_()
    if hasattr(head, "refine"):
        preds["refine"] = refine.requires_grad_()
    return preds


def fixed_batch() -> dict[str, torch.Tensor]:
    """Three objects in two 64 px images (normalised xywh), as tests/test_criterion.py's make_batch."""
    return {
        "img": torch.zeros(2, 3, 64, 64),
        "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
        "cls": torch.tensor([[0.0], [2.0], [1.0]]),
        "bboxes": torch.tensor([[0.3, 0.3, 0.4, 0.5], [0.7, 0.6, 0.3, 0.3], [0.5, 0.5, 0.8, 0.6]]),
    }


def reference(cfg_name: str) -> dict:
    from ultralytics.cfg import get_cfg

    from benchmarks.real_data import recipe_digest
    from yolo_gfl.configs import load_model_cfg
    from yolo_gfl.nn import GFLDetectionModel

    cfg = load_model_cfg(str(ROOT / cfg_name) if cfg_name.startswith("benchmarks/") else cfg_name)
    cfg["nc"] = 3
    torch.manual_seed(0)
    model = GFLDetectionModel(cfg, verbose=False)
    model.args = get_cfg()
    preds = seeded_preds(model, 3)
    total, items = model.init_criterion()(preds, fixed_batch())
    total.sum().backward()
    grads = {k: float(v.grad.norm()) for k, v in preds.items() if k != "feats"}
    return {
        "section": dict(model.yaml["gfl"]),
        "loss_items": {k: float(v) for k, v in items.items()},
        "grad_norms": grads,
        "recipe_digest": recipe_digest(str(ROOT / cfg_name) if cfg_name.startswith("benchmarks/") else cfg_name),
    }


def spread(path: Path, nc: int = 80) -> None:
    """Perturb a saved checkpoint's weights in place with seeded noise (a tenth of each tensor's spread) and lift the
    class-logit biases (the biases with ``nc`` outputs) by CLASS_BIAS_LIFT; the file stays what 0.2.0's code wrote."""
    ckpt = torch.load(path, weights_only=False)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in ckpt["model"].named_parameters():
            x = p.float()
            noise = torch.randn(x.shape, generator=g) * 0.1 * (x.std() if x.numel() > 1 else x.abs())
            lift = CLASS_BIAS_LIFT if name.endswith("bias") and x.shape == (nc,) else 0.0
            p.copy_((x + noise + lift).to(p.dtype))
    torch.save(ckpt, path)


def main() -> None:
    from yolo_gfl import YOLOGFL, __version__

    assert __version__ == "0.2.0", __version__
    data = SHARED / "datasets" / "coco128" / "coco128.yaml"
    images = [str(SHARED / "datasets" / "coco128" / "images" / "val2017" / n) for n in IMAGES]
    out = {"yolo_gfl": __version__, "configs": {}}
    for name in [*CONFIGS, *PROBES]:
        out["configs"][name] = reference(name)
    from benchmarks.real_data import recipe_digest

    for stock in ("yolov8n.yaml", "yolo11n.yaml"):
        out["configs"][stock] = {"recipe_digest": recipe_digest(stock)}
    (HERE / "reference.json").write_text(json.dumps(out, indent=1) + "\n")

    predictions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for v in CHECKPOINTS:
            model = YOLOGFL(f"yolov8n-{v}.yaml")
            model.train(data=str(data), project=tmp, name=v, exist_ok=True, **TRAIN)
            path = HERE / f"yolov8n-{v}.pt"
            shutil.copy(Path(tmp) / v / "weights" / "last.pt", path)
            spread(path)
            loaded = YOLOGFL(str(path))
            results = loaded.predict(images, imgsz=160, conf=PREDICT_CONF, device="cpu", verbose=False)
            net = loaded.model.float().eval()
            torch.manual_seed(1)
            x = torch.rand(1, 3, 96, 96)
            with torch.no_grad():
                raw = net(x)
            raw = raw[0] if isinstance(raw, (tuple, list)) else raw
            predictions[v] = {
                "input": x,
                "raw": raw.clone(),
                "boxes": [r.boxes.xyxy.clone() for r in results],
                "conf": [r.boxes.conf.clone() for r in results],
                "cls": [r.boxes.cls.clone() for r in results],
            }
    torch.save({"images": list(IMAGES), "conf": PREDICT_CONF, "predictions": predictions}, HERE / "predictions.pt")


if __name__ == "__main__":
    main()
