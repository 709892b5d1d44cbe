"""``GFLDetectionModel``: a YOLOv8 ``DetectionModel`` whose head is ``GFLDetect`` and whose criterion is GFL's.

Ultralytics' ``parse_model`` wires channel arguments only for its own head classes, so the YAML keeps the stock
``Detect`` layer; this model builds the stock graph first (strides, bias init, layer names all stock) and then swaps in
the GFL head, which takes over the stock layers. Stock checkpoints therefore load tensor-for-tensor.
"""

from __future__ import annotations

from ultralytics.nn.modules.head import Detect
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import initialize_weights

from ..configs import load_model_cfg
from ..criterion import GFLDetectionLoss, VFNetDetectionLoss
from ..variant import Variant
from .head import GFLDetect
from .vfnet import VFNetDetect

__all__ = ["GFLDetectionModel", "build_detection_model"]


class GFLDetectionModel(DetectionModel):
    """YOLOv8 detection model with the IoU-aware head and loss of its ``Variant``.

    Args:
        cfg: model YAML path or dict (with an optional ``gfl:`` section of yolo_gfl options); with ``variant``, the
            dict ``load_model_cfg`` returned (it is then used as it is).
        ch: input channels.
        nc: number of classes (overrides the YAML).
        verbose: print the model summary.
        variant: the variant, when the caller has resolved it (``build_detection_model``); else resolved here from
            ``cfg``'s ``gfl:`` section.
    """

    def __init__(self, cfg: str | dict = "yolov8n-gfl.yaml", ch: int = 3, nc: int | None = None, verbose: bool = True,
                 variant: Variant | None = None):
        if variant is None:
            cfg = load_model_cfg(cfg)
            variant = Variant.resolve(cfg.get("gfl"))  # fail before building anything
        super().__init__(cfg, ch=ch, nc=nc, verbose=False)
        self.variant = variant
        self.yaml["gfl"] = variant.as_section()  # the full section travels in checkpoints (and safe ones)
        head = self.model[-1]
        check_head(head, cfg.get("yaml_file") or cfg.get("base"))
        if variant.head == "vfnet":  # VarifocalNet: star-shaped deformable features and box refinement
            self.model[-1] = VFNetDetect.from_detect(head)
        else:
            self.model[-1] = GFLDetect.from_detect(
                head, quality=variant.quality, quality_input=variant.quality_input, quality_detach=variant.quality_detach
            )
        initialize_weights(self.model[-1])  # Ultralytics' BatchNorm eps/momentum for the layers built after its pass
        if verbose:
            self.info()
            LOGGER.info(f"yolo_gfl: {variant.describe()}\n")

    def __setstate__(self, state: dict) -> None:
        """Unpickle a model; one saved by yolo_gfl 0.2.0 (options in ``gfl_options``) gets its ``Variant`` here."""
        super().__setstate__(state)
        if "variant" not in self.__dict__:
            self.variant = Variant.resolve(self.yaml.get("gfl"))  # reads 0.2.0's names; refuses removed knobs
            self.yaml["gfl"] = self.variant.as_section()
            for stale in ("gfl_options", "gfl_epoch"):
                self.__dict__.pop(stale, None)

    def quality_parameters(self) -> list:
        """The quality branch's parameters (empty without one): the trainer's optimizer groups them."""
        branch = getattr(self.model[-1], "quality_branch", None)
        return list(branch.parameters()) if branch is not None else []

    def load(self, weights, verbose: bool = True) -> None:
        """Load every matching tensor (e.g. of a stock YOLOv8 checkpoint); log what was initialised here instead."""
        super().load(weights, verbose=verbose)  # Ultralytics logs 'Transferred N/M items'
        source = (weights.get("ema") or weights["model"]) if isinstance(weights, dict) else weights
        source_sd = source.state_dict()
        head = self.model[-1]
        rebuilt = isinstance(head, VFNetDetect) and head.match_class_width()  # Ultralytics widened cv3 to the source's
        own = self.state_dict()  # after the rebuild: its shapes are final (loading below keeps them)
        if rebuilt:
            initialize_weights(head.cls_star)  # Ultralytics' BatchNorm eps/momentum, as at construction
            # a VFNet source of that width brings its own star blocks
            self.load_state_dict(
                {k: v for k, v in source_sd.items() if ".cls_star." in k and k in own and own[k].shape == v.shape},
                strict=False,
            )
        fresh = [k for k, v in own.items() if k not in source_sd or source_sd[k].shape != v.shape]
        source_names = getattr(source, "names", None) or {}
        placeholder = {i: str(i) for i in range(len(self.names))}
        if self.names == placeholder and len(source_names) == len(self.names) and not any(".cv3." in k for k in fresh):
            self.names = dict(source_names)  # Ultralytics does this only when every tensor transfers; DGQP is new
        if verbose:
            LOGGER.info(
                f"yolo_gfl: {len(own) - len(fresh)}/{len(own)} tensors match the pretrained weights by name and shape;"
                f" initialised here: {', '.join(fresh) if fresh else 'nothing'}"
            )

    def init_criterion(self) -> GFLDetectionLoss:
        """The variant's criterion; VFNet's for head=vfnet."""
        return (VFNetDetectionLoss if self.variant.head == "vfnet" else GFLDetectionLoss)(self, self.variant)

    def _predict_augment(self, x):
        """Test-time augmentation is not supported for the GFL head (Ultralytics' TTA accepts only ``Detect``)."""
        LOGGER.warning("yolo_gfl models do not support augment=True; running single-scale prediction.")
        return self._predict_once(x)


def check_head(head, name: str | None) -> None:
    """Refuse an architecture whose head yolo_gfl cannot take over, naming why (before any training starts).

    The IoU-aware losses need Ultralytics' plain ``Detect`` with box *distributions* (``reg_max`` > 1: DFL trains
    them, DGQP reads their top-k) and one-to-many assignment. YOLO26 (``reg_max: 1``, ``end2end: True``) regresses
    each side directly (its DFL layer is an identity, there is no distribution for DFL or DGQP) and trains a second,
    one-to-one head for NMS-free output; YOLOv10's ``v10Detect`` is end-to-end too.
    """
    reasons = []
    if type(head) is not Detect:
        reasons.append(f"its head is {type(head).__name__}, not Ultralytics' plain Detect")
    if head.reg_max < 2:
        reasons.append(f"reg_max={head.reg_max} (no box distribution for DFL and DGQP)")
    if getattr(head, "one2one_cv2", None) is not None:  # the one-to-one copy that end2end heads carry
        reasons.append("it is end-to-end (a one-to-one NMS-free head that the IoU-aware loss does not train)")
    if reasons:
        raise ValueError(
            f"{name}: yolo_gfl cannot build an IoU-aware variant of this architecture: {'; '.join(reasons)}. Use a "
            f"family with a DFL Detect head (base: yolov8.yaml, yolo11.yaml, yolo12.yaml, yolov9c.yaml, ...)."
        )


def build_detection_model(
    cfg: str | dict, ch: int = 3, nc: int | None = None, verbose: bool = True, overrides: dict | None = None
) -> DetectionModel | GFLDetectionModel:
    """Build the model of ``cfg`` (a name, path or dict) with the train arguments' yolo_gfl ``overrides``.

    The config is read and the variant resolved here, once. A stock variant builds Ultralytics' own
    ``DetectionModel``, so its checkpoints need nothing of yolo_gfl to load.
    """
    cfg = load_model_cfg(cfg)
    variant = Variant.resolve(cfg.get("gfl"), overrides)
    if variant.is_stock:
        cfg.pop("gfl", None)
        return DetectionModel(cfg, ch=ch, nc=nc, verbose=verbose)
    return GFLDetectionModel(cfg, ch=ch, nc=nc, verbose=verbose, variant=variant)
