"""``GFLTrainer``: Ultralytics' detection trainer building yolo_gfl models and validators."""

from __future__ import annotations

from copy import copy
from typing import Any

import torch
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from ..atomic import AtomicWritePath, remove_stale_temps
from ..nn.model import build_detection_model
from ..options import validate_options
from .validator import GFLValidator

__all__ = ["GFLTrainer"]


class GFLTrainer(DetectionTrainer):
    """Detection trainer whose model is a yolo_gfl variant (or stock YOLOv8 for a config without yolo_gfl options).

    Args:
        cfg, overrides, _callbacks: as for Ultralytics' ``DetectionTrainer``.
        gfl_overrides: yolo_gfl options given as train arguments (``cls_loss=vfl``); they override the model YAML's
            ``gfl:`` section. Ultralytics checks its own arguments strictly, so these travel beside them.
    """

    def __init__(
        self,
        cfg=DEFAULT_CFG,
        overrides: dict[str, Any] | None = None,
        _callbacks: dict | None = None,
        gfl_overrides: dict[str, Any] | None = None,
    ):
        # The arguments' values are checked here, so a bad one fails before any run folder is made; the merged set is
        # resolved once, with the model's own section, when the model is built (get_model).
        self.gfl_overrides = validate_options(gfl_overrides, overrides=True)
        super().__init__(cfg, overrides, _callbacks)
        # Checkpoints are written whole or not at all, so a stop mid-save keeps the previous last.pt for resume=True.
        self.wdir, self.last, self.best = (AtomicWritePath(p) for p in (self.wdir, self.last, self.best))
        if RANK in {-1, 0}:
            for p in remove_stale_temps(self.wdir):  # left by a run killed mid-save (resume=True starts here)
                LOGGER.info(f"Removed {p.name}, a partial checkpoint copy left by a stopped run.")
        if self.resume and self.gfl_overrides:
            LOGGER.warning(f"Resume ignores yolo_gfl options {self.gfl_overrides}, using the checkpoint's variant.")
            self.gfl_overrides = {}
        if self.gfl_overrides and not isinstance(self.model, torch.nn.Module):
            # Ultralytics' multi-GPU launch (ultralytics/utils/dist.py) rebuilds the trainer in each worker from its
            # arguments, which cannot hold yolo_gfl options, and from trainer.model: build the model now, so that the
            # options travel inside it (the workers' setup_model keeps a built model).
            self.setup_model()

    def get_model(self, cfg: str | dict | None = None, weights=None, verbose: bool = True):
        """Build the variant named by ``cfg`` plus the option overrides; load matching ``weights`` tensors."""
        model = build_detection_model(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose and RANK == -1,
                                      overrides=self.gfl_overrides)
        model = self.set_model_names_for_load(model)
        if weights:
            model.load(weights)  # logs 'Transferred N/M items'; new parts such as DGQP keep their initialisation
        return model

    def build_optimizer(self, model, name="auto", lr=0.001, momentum=0.9, decay=1e-5, iterations=1e5):
        """Ultralytics' optimizer; with ``quality_lr_gain`` (experimental), the quality branch's parameters in groups
        of their own at that multiple of the rate.

        Each of Ultralytics' groups (biases, weights with decay, norm weights) gives the branch's members to a copy of
        itself with the rate scaled, so decay, warm-up (which reads each group's own ``initial_lr``) and the schedule
        treat them as before, only faster or slower."""
        optimizer = super().build_optimizer(model, name, lr, momentum, decay, iterations)
        net = unwrap_model(model)
        variant = getattr(net, "variant", None)  # stock DetectionModel: none
        if variant is None or variant.quality_lr_gain == 1.0:
            return optimizer
        gain = variant.quality_lr_gain
        ids = {id(p) for p in net.quality_parameters()}
        for group in list(optimizer.param_groups):
            keep = [i for i, p in enumerate(group["params"]) if id(p) not in ids]
            moved = [i for i, p in enumerate(group["params"]) if id(p) in ids]
            if not moved:
                continue
            faster = {k: v for k, v in group.items() if k not in ("params", "param_names")}
            faster["lr"] = group["lr"] * gain
            faster["params"] = [group["params"][i] for i in moved]
            if "param_names" in group:
                faster["param_names"] = [group["param_names"][i] for i in moved]
                group["param_names"] = [group["param_names"][i] for i in keep]
            group["params"] = [group["params"][i] for i in keep]
            optimizer.add_param_group(faster)
        LOGGER.info(f"yolo_gfl: the quality branch's {len(ids)} parameter tensors train at {gain:g}x the learning "
                    "rate (quality_lr_gain)")
        return optimizer

    def get_validator(self):
        """A ``GFLValidator`` over the validation loader."""
        return GFLValidator(self.test_loader, save_dir=self.save_dir, args=copy(self.args), _callbacks=self.callbacks)
