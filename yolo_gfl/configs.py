"""Where model configs come from: yolo_gfl's own ``cfg/models`` first, then Ultralytics' as usual.

Like Ultralytics, one YAML serves every scale: ``yolov8s-gfl.yaml`` reads ``yolov8-gfl.yaml`` with scale ``s``. A
yolo_gfl YAML names its stock architecture with ``base:`` and adds only its ``gfl:`` options, so the architecture is
Ultralytics' own, not a copy that could drift.
"""

from __future__ import annotations

import re
from copy import deepcopy
from importlib import resources
from pathlib import Path

from ultralytics.nn.tasks import guess_model_scale, yaml_model_load
from ultralytics.utils import ROOT as ULTRALYTICS_ROOT
from ultralytics.utils import YAML
from ultralytics.utils.checks import check_yaml

__all__ = ["CFG_DIR", "model_cfg_names", "resolve_model_cfg", "model_cfg_file", "load_model_cfg"]

CFG_DIR = Path(str(resources.files("yolo_gfl.cfg"))) / "models"


def _unscaled(name: str) -> str:
    """'yolov8n-gfl.yaml' -> 'yolov8-gfl.yaml' (Ultralytics' own naming rule)."""
    path = Path(name)
    return re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", path.stem) + path.suffix


def model_cfg_names() -> list[str]:
    """The unscaled names of yolo_gfl's model configs, e.g. ['yolov8-gfl.yaml', ...]."""
    return sorted(p.name for p in CFG_DIR.glob("*.yaml"))


def resolve_model_cfg(cfg: str | Path) -> str:
    """Map a bare yolo_gfl config name to its path in ``CFG_DIR`` (keeping the scale letter); other names unchanged."""
    path = Path(cfg)
    if path.is_file() or path.suffix not in {".yaml", ".yml"} or len(path.parts) > 1:
        return str(cfg)
    if (CFG_DIR / path.name).exists() or (CFG_DIR / _unscaled(path.name)).exists():
        return str(CFG_DIR / path.name)  # may not exist itself: the unscaled file serves every scale
    if path.exists():  # a folder named like the config, e.g. a run folder named after its model, would shadow it
        return _ultralytics_cfg(path.name) or str(cfg)
    return str(cfg)


def _ultralytics_cfg(name: str) -> str | None:
    """Ultralytics' own config of a bare name, as a full path in its package (scale letter kept), or None."""
    for candidate in (name, _unscaled(name)):
        found = sorted((ULTRALYTICS_ROOT / "cfg").rglob(candidate))
        if found:
            return str(found[0].parent / name)
    return None


def model_cfg_file(cfg: str | Path) -> Path | None:
    """The YAML file a config name reads: the path itself, or yolo_gfl's unscaled file for a scaled name
    ('yolov8n-gfl.yaml' -> cfg/models/yolov8-gfl.yaml); None for a name only Ultralytics knows."""
    path = Path(resolve_model_cfg(cfg))
    if path.is_file():
        return path
    if path.parent == CFG_DIR and (CFG_DIR / _unscaled(path.name)).is_file():
        return CFG_DIR / _unscaled(path.name)
    return None


def load_model_cfg(cfg: str | Path | dict) -> dict:
    """Return the model config dict for a path, a bare name (yolo_gfl's or Ultralytics'), or a dict (copied)."""
    d = deepcopy(cfg) if isinstance(cfg, dict) else yaml_model_load(resolve_model_cfg(cfg))
    if "base" in d:  # also for dicts that Ultralytics' own yaml_model_load read from a yolo_gfl file
        base = YAML.load(check_yaml(d.pop("base")))
        d = {**base, **d}  # the variant's keys (gfl, nc, ...) win over the stock architecture's
        d["scale"] = guess_model_scale(d["yaml_file"])
    return d
