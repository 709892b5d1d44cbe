"""Checkpoints that load without running code: tensors plus plain data, read with ``torch.load(weights_only=True)``.

An Ultralytics ``.pt`` checkpoint (``best.pt``, ``last.pt``) is a pickle of the whole model object, so loading one
runs whatever code the file names: only load ``.pt`` files from sources you trust. This module converts a trusted
checkpoint into a *safe* file that holds only

* the model's tensors (its ``state_dict``), and
* plain data: the model YAML (with yolo_gfl's ``gfl:`` options), the class names and a few train arguments,

saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``, PyTorch's restricted unpickler that
accepts tensors and primitive containers only; anything else (a class, a function, a ``__reduce__`` payload) is
refused before it can run. The model is then rebuilt from the YAML by :func:`yolo_gfl.nn.build_detection_model` and
the tensors are loaded into it strictly (every name and shape must match).

    from yolo_gfl.checkpoints import save_state_dict, load_safe, safe_yologfl

    save_state_dict("runs/detect/train/weights/best.pt", "best.safe.pt")  # once, on a checkpoint you trust
    model = load_safe("best.safe.pt")  # a GFLDetectionModel (or DetectionModel for stock), eval mode
    yolo = safe_yologfl("best.safe.pt")  # the same, inside the YOLOGFL API: .predict(), .val(), .export()

Registering yolo_gfl's classes with ``torch.serialization.add_safe_globals`` instead was considered and not done: a
pickled model also names every Ultralytics and torch.nn module class, their containers and training state, and
allowing all of those in would widen what a crafted file can construct to most of the model zoo.
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["SAFE_FORMAT", "UnsafeCheckpointError", "save_state_dict", "load_safe", "safe_yologfl"]

SAFE_FORMAT = "yolo_gfl.safe-checkpoint"
SAFE_VERSION = 1
KEPT_ARGS = ("imgsz", "task", "single_cls", "data")  # train arguments worth carrying (all primitives)


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A file refused by the weights_only loader: it is not a safe checkpoint, or it has been tampered with."""


def _plain(value: Any, where: str) -> Any:
    """Return ``value`` as JSON-like data (dict/list/str/int/float/bool/None) or raise naming the offending key."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {(k if isinstance(k, (str, int)) else str(k)): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{where} is a {type(value).__name__}, which a safe checkpoint cannot hold; only plain data")


def _model_of(source: str | Path | torch.nn.Module | dict) -> torch.nn.Module:
    """The model inside a (trusted) checkpoint path, checkpoint dict, YOLOGFL/YOLO object or module."""
    if isinstance(source, (str, Path)):
        from ultralytics.nn.tasks import load_checkpoint

        model, _ = load_checkpoint(str(source), device="cpu")  # full unpickling: the caller vouches for the file
        return model
    if isinstance(source, dict):
        return source.get("ema") or source["model"]
    inner = getattr(source, "model", None)
    if isinstance(inner, torch.nn.Module) and not isinstance(source, torch.nn.Sequential) and hasattr(source, "predict"):
        return inner  # an Ultralytics Model wrapper (YOLOGFL, YOLO)
    return source


def save_state_dict(ckpt_path: str | Path | torch.nn.Module | dict, out_path: str | Path | None = None) -> Path:
    """Write a safe checkpoint of ``ckpt_path``'s model: tensors and plain data only.

    Args:
        ckpt_path: a trusted ``.pt`` checkpoint (it is fully unpickled here), or a loaded model, YOLOGFL object or
            checkpoint dict.
        out_path: where to write; default ``<ckpt stem>.safe.pt`` beside a checkpoint path.

    Returns:
        The path written.
    """
    model = _model_of(ckpt_path)
    if out_path is None:
        if not isinstance(ckpt_path, (str, Path)):
            raise ValueError("out_path is required when saving from a model object")
        out_path = Path(ckpt_path).with_suffix(".safe.pt")
    args = getattr(model, "args", {}) or {}
    args = vars(args) if not isinstance(args, dict) else args
    payload = {
        "format": SAFE_FORMAT,
        "version": SAFE_VERSION,
        "yaml": _plain(model.yaml, "yaml"),
        "names": {int(k): str(v) for k, v in dict(getattr(model, "names", {}) or {}).items()},
        "args": {k: _plain(args[k], f"args.{k}") for k in KEPT_ARGS if k in args},
        "stride": [float(s) for s in model.stride.tolist()],
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, out_path)
    return out_path


def _read_safe(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a safe checkpoint's payload with the weights_only unpickler; refuse anything else with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"safe checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        reason = next((ln for ln in lines if "Unsupported" in ln), lines[0] if lines else "refused")
        raise UnsafeCheckpointError(
            f"{path} was refused by torch.load(weights_only=True): it holds objects other than tensors and plain data "
            f"(a full Ultralytics .pt checkpoint, or a tampered file). Nothing in it was run. If it is your own "
            f"checkpoint from a trusted source, convert it once with yolo_gfl.checkpoints.save_state_dict(). "
            f"Loader said: {reason}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != SAFE_FORMAT:
        raise UnsafeCheckpointError(
            f"{path} loads as plain data but is not a yolo_gfl safe checkpoint (no format={SAFE_FORMAT!r}); write one "
            f"with yolo_gfl.checkpoints.save_state_dict()"
        )
    if payload.get("version", 0) > SAFE_VERSION:
        raise UnsafeCheckpointError(f"{path} is safe-checkpoint version {payload['version']}; this yolo_gfl reads "
                                    f"up to {SAFE_VERSION}: upgrade yolo_gfl")
    return payload


def load_safe(path: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model of a safe checkpoint (written by :func:`save_state_dict`) without unpickling any code.

    Returns:
        ``GFLDetectionModel`` (or stock ``DetectionModel``) in eval mode, float32, with the saved tensors, names and
        train arguments (``model.args``).

    Raises:
        UnsafeCheckpointError: the file holds anything but tensors and plain data, or is not a safe checkpoint.
    """
    from .nn.model import build_detection_model

    payload = _read_safe(path, map_location)
    cfg = payload["yaml"]
    model = build_detection_model(cfg, ch=int(cfg.get("channels", 3)), nc=int(cfg["nc"]), verbose=False)
    model.load_state_dict(payload["state_dict"], strict=True)  # fp16 EMA tensors are widened exactly to float32
    stride = torch.tensor(payload["stride"])
    if not torch.equal(model.stride.cpu(), stride):
        raise UnsafeCheckpointError(f"{path}: rebuilt model has strides {model.stride.tolist()}, file says "
                                    f"{payload['stride']}; the YAML does not describe the saved tensors")
    model.names = {int(k): v for k, v in payload["names"].items()}
    model.args = dict(payload["args"])
    model.pt_path = str(path)
    return model.to(map_location).float().eval()


def safe_yologfl(path: str | Path):
    """A ``YOLOGFL`` whose model comes from :func:`load_safe` (predict, val and export as usual).

    ``YOLOGFL`` builds a model from a YAML file name (its scale letter picks the width/depth), so the saved YAML is
    written, as data, to a temporary file of the original name; the built model is then replaced by the loaded one.
    """
    from .model import YOLOGFL

    model = load_safe(path)
    name = Path(str(model.yaml.get("yaml_file") or "yolov8n-gfl.yaml")).name
    with tempfile.TemporaryDirectory() as tmp:
        import yaml

        cfg_file = Path(tmp) / name
        cfg_file.write_text(yaml.safe_dump({k: v for k, v in model.yaml.items() if k != "yaml_file"}, sort_keys=False))
        wrapper = YOLOGFL(cfg_file)
    wrapper.model = model
    wrapper.overrides.update({k: v for k, v in model.args.items() if k in ("imgsz", "single_cls")})
    wrapper.overrides["model"] = str(path)
    wrapper.ckpt_path = str(path)
    return wrapper
