"""``GFLTrainer``: Ultralytics' detection trainer building yolo_gfl models and validators."""

from __future__ import annotations

from copy import copy
from typing import Any

import torch
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from ..atomic import AtomicWritePath, remove_stale_temps
from ..configs import load_model_cfg
from ..nn.model import build_detection_model
from ..options import validate_options
from .validator import GFLValidator

__all__ = ["GFLTrainer"]


def _track_epoch(trainer: DetectionTrainer) -> None:
    """Tell the model and its criterion the epoch that starts (the ATSS warm-up, ``atss_epochs``, switches on it).

    The model keeps it as ``gfl_epoch`` because Ultralytics builds the criterion lazily, on the first loss of a run
    (also of a resumed one), after this callback has run.
    """
    model = unwrap_model(trainer.model)
    model.gfl_epoch = trainer.epoch
    if getattr(trainer, "ema", None) is not None:
        trainer.ema.ema.gfl_epoch = trainer.epoch  # its validation loss assigns as training does
    criterion = getattr(model, "criterion", None)
    if criterion is not None and hasattr(criterion, "epoch"):
        warm = getattr(criterion, "warmup_assigner", None) is not None
        if warm and trainer.epoch == criterion.options["atss_epochs"]:
            LOGGER.info(f"yolo_gfl: ATSS warm-up over after {trainer.epoch} epochs; assigning with TAL from now on")
        criterion.epoch = trainer.epoch


def clip_gradients(parameters: list[torch.nn.Parameter], branch: set[int], mode: str, max_norm: float = 10.0) -> None:
    """Clip the gradients' norm at ``max_norm`` as Ultralytics' ``optimizer_step`` does, or apart.

    Args:
        parameters: every trainable parameter of the model, in its order.
        branch: ``id()`` of the quality branch's parameters.
        mode: ``together`` (Ultralytics: one norm over all of them) or ``apart`` (the detector's parameters, then the
            branch's, each clipped on its own: the detector's step is then what it would be without the branch).
    """
    if mode == "together" or not branch:
        torch.nn.utils.clip_grad_norm_(parameters, max_norm=max_norm)
        return
    torch.nn.utils.clip_grad_norm_([p for p in parameters if id(p) not in branch], max_norm=max_norm)
    torch.nn.utils.clip_grad_norm_([p for p in parameters if id(p) in branch], max_norm=max_norm)


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
        validate_options(gfl_overrides, overrides=True)  # a bad option fails before any run folder is made
        self.gfl_overrides = dict(gfl_overrides or {})
        super().__init__(cfg, overrides, _callbacks)
        # Checkpoints are written whole or not at all, so a stop mid-save keeps the previous last.pt for resume=True.
        self.wdir, self.last, self.best = (AtomicWritePath(p) for p in (self.wdir, self.last, self.best))
        if RANK in {-1, 0}:
            for p in remove_stale_temps(self.wdir):  # left by a run killed mid-save (resume=True starts here)
                LOGGER.info(f"Removed {p.name}, a partial checkpoint copy left by a stopped run.")
        self.add_callback("on_train_epoch_start", _track_epoch)
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
        cfg = load_model_cfg(cfg)
        if self.gfl_overrides:
            cfg["gfl"] = {**(cfg.get("gfl") or {}), **self.gfl_overrides}
        model = build_detection_model(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose and RANK == -1)
        model = self.set_model_names_for_load(model)
        if weights:
            model.load(weights)  # logs 'Transferred N/M items'; new parts such as DGQP keep their initialisation
        return model

    def build_optimizer(self, model, name="auto", lr=0.001, momentum=0.9, decay=1e-5, iterations=1e5):
        """Ultralytics' optimizer, with DGQP's parameters in groups of their own at ``dgqp_lr_gain`` x the rate.

        Each of Ultralytics' groups (biases, weights with decay, norm weights) gives its DGQP members to a copy of
        itself with the rate scaled, so decay, warm-up (which reads each group's own ``initial_lr``) and the schedule
        treat them as before, only faster or slower."""
        optimizer = super().build_optimizer(model, name, lr, momentum, decay, iterations)
        net = unwrap_model(model)
        options = validate_options(getattr(net, "gfl_options", None))
        gain = options["dgqp_lr_gain"]
        dgqp = getattr(net.model[-1], "dgqp", None)
        ids = {id(p) for p in dgqp.parameters()} if dgqp is not None else set()
        # dgqp_clip=apart: the branch's parameters, which optimizer_step clips on their own (read here, once per run,
        # not at every step)
        self.clipped_apart = ids if options["dgqp_clip"] == "apart" else set()
        if dgqp is None or gain == 1.0:
            return optimizer
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
        LOGGER.info(f"yolo_gfl: DGQP's {len(ids)} parameter tensors train at {gain:g}x the learning rate (dgqp_lr_gain)")
        return optimizer

    def optimizer_step(self):
        """Ultralytics' step (unscale, clip at 10, step, EMA), with the clipping that ``dgqp_clip`` chooses."""
        if not getattr(self, "clipped_apart", None):  # set by build_optimizer
            return super().optimizer_step()
        self.scaler.unscale_(self.optimizer)
        clip_gradients(list(self.model.parameters()), self.clipped_apart, "apart")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.ema:
            self.ema.update(self.model)

    def get_validator(self):
        """A ``GFLValidator`` over the validation loader."""
        return GFLValidator(self.test_loader, save_dir=self.save_dir, args=copy(self.args), _callbacks=self.callbacks)
