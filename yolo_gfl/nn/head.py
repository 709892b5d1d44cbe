"""The IoU-aware YOLOv8 detection head: stock ``Detect`` plus GFLv2's Distribution-Guided Quality Predictor.

Per anchor the head predicts, as stock YOLOv8 does,

* C: class logits (``cv3``), and
* the box as four discrete distributions over ``reg_max`` = 16 bins (``cv2``), read out by DFL as their integral;

and, with the quality branch (option ``quality``), a localisation quality I. GFLv2's Distribution-Guided Quality
Predictor (DGQP; Li et al., CVPR 2021, Sec. 3.2) computes it from the shape of those distributions: a sharp
distribution means a confident box. For each side the top-k softmax probabilities and their mean (k = 4: 20 numbers
per anchor) go through FC(20 -> 64) -> ReLU -> FC(64 -> 1) -> sigmoid. The class output is then GFLv2's joint score
J = sigmoid(C) x I, a probability. The experimental ``quality_input=features`` reads I instead from the box tower's
last feature map by one 3x3 conv (:class:`FeatureQuality`, after the IoU-aware single-stage detector).

The eval output keeps Ultralytics' layout (B, 4 + nc, anchors) with J in place of sigmoid(C), so the stock validator,
predictor, NMS and exporters rank detections by the IoU-aware score without knowing about it. Layer names ``cv2``,
``cv3`` and ``dfl`` are stock, so stock YOLOv8 weights load into the head.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from ultralytics.nn.modules.head import Detect

__all__ = ["DGQP", "FeatureQuality", "GFLDetect", "largest_k", "insertion_largest_k"]


def largest_k(x: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """The k largest values of ``x`` along ``dim``, in descending order: ``x.topk(k, dim).values``.

    For CPU inference, ``torch.topk`` over a short, strided axis (16 bins, anchors innermost) costs about 3.3 ms for one
    640 px image, 5% of YOLOv8n's whole forward pass; :func:`insertion_largest_k` computes the same values in about
    0.7 ms and exports to ONNX as Max/Min. Its backward pass, though, is ~100 small ops, slower than topk's one
    scatter, and on other devices one topk kernel beats ~100 small ones; so topk stays for training and off the CPU.
    """
    if x.device.type != "cpu" or (x.requires_grad and torch.is_grad_enabled()):
        return x.topk(k, dim=dim).values
    return insertion_largest_k(x, k, dim)


def insertion_largest_k(x: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """``x.topk(k, dim).values`` by an insertion network: k running maxima, each new entry bubbling down by max/min."""
    bins = x.unbind(dim)
    top = [bins[0]]
    for value in bins[1:]:
        carry, merged = value, []
        for current in top:
            merged.append(torch.maximum(current, carry))
            carry = torch.minimum(current, carry)
        if len(top) < k:
            merged.append(carry)
        top = merged
    return torch.stack(top, dim)


class DGQP(nn.Module):
    """Distribution-Guided Quality Predictor (GFLv2): box distributions -> localisation quality I in (0, 1).

    Args:
        reg_max: bins per box side.
        topk: probabilities taken per side (GFLv2: 4).
        hidden: width of the hidden layer (GFLv2: 64).
        init_quality: the I a fresh predictor outputs, so that a new model starts near J = C (and a model whose
            other weights come from stock YOLOv8 ranks detections almost as the stock model does).
    """

    def __init__(self, reg_max: int = 16, topk: int = 4, hidden: int = 64, init_quality: float = 0.95):
        super().__init__()
        if not 1 <= topk <= reg_max:
            raise ValueError(f"DGQP topk={topk} must be in [1, reg_max={reg_max}]")
        self.reg_max, self.topk = reg_max, topk
        self.fc1 = nn.Linear(4 * (topk + 1), hidden)
        self.fc2 = nn.Linear(hidden, 1)
        # Small output weights make I almost constant at first; the bias sets that constant (sigmoid^-1(init_quality)).
        nn.init.normal_(self.fc2.weight, std=0.01)
        nn.init.constant_(self.fc2.bias, math.log(init_quality / (1 - init_quality)))

    def features(self, box_logits: torch.Tensor) -> torch.Tensor:
        """Statistics of the box distributions: (B, 4 * reg_max, A) logits -> (B, A, 4 * (topk + 1)).

        Not detached: as in GFLv2, the quality loss also shapes the box distributions.
        """
        b, _, a = box_logits.shape
        prob = box_logits.view(b, 4, self.reg_max, a).softmax(2)
        top = largest_k(prob, self.topk, dim=2)  # (B, 4, k, A), descending
        stats = torch.cat((top, top.mean(2, keepdim=True)), 2)  # (B, 4, k + 1, A)
        return stats.view(b, 4 * (self.topk + 1), a).transpose(1, 2)

    def forward(self, box_logits: torch.Tensor) -> torch.Tensor:
        """Quality I: (B, 4 * reg_max, A) box logits -> (B, 1, A) in (0, 1), float32.

        The sigmoid runs in float32: under fp16 autocast (CUDA AMP) I underflows to 0 for an output below -17, and the
        QFL gradient at J = 0 (about 1e12) then overflows float16 into inf/NaN gradients at that positive anchor.
        """
        hidden = self.fc1(self.features(box_logits)).relu()
        return self.fc2(hidden).float().sigmoid().transpose(1, 2)


class FeatureQuality(nn.Module):
    """Localisation quality I read from the box tower's last feature map, not from the box distributions.

    The IoU-aware single-stage detector (Wu, Li, Wang, Image and Vision Computing 2020, Sec. 3.1) predicts each anchor's
    IoU with one 3x3 conv beside the regression output, on the same regression feature. Here that feature is the input
    of each level's last ``cv2`` conv, so the box distributions and I share the whole box tower. The experimental
    ``quality_input=features`` puts this predictor where DGQP sits; everything that teaches and ranks by I is
    unchanged.

    Args:
        channels: channels of each level's box feature (the input of ``cv2[i][-1]``).
        init_quality: the I a fresh predictor outputs (as :class:`DGQP`).
    """

    def __init__(self, channels: tuple[int, ...], init_quality: float = 0.95):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c, 1, 3, padding=1) for c in channels)
        # Constant at first, so that a model from stock weights starts ranking as stock. Zero weights, not DGQP's
        # std 0.01: over 3 x 3 x 64 pretrained features of unit scale that already spreads I over 0.73-0.99.
        for conv in self.convs:
            nn.init.zeros_(conv.weight)
            nn.init.constant_(conv.bias, math.log(init_quality / (1 - init_quality)))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Quality I: per-level (B, C_i, H_i, W_i) box features -> (B, 1, A) in (0, 1), float32 (see DGQP.forward)."""
        b = features[0].shape[0]
        logits = torch.cat([conv(f).view(b, 1, -1) for conv, f in zip(self.convs, features)], -1)
        return logits.float().sigmoid()


class GFLDetect(Detect):
    """YOLOv8 ``Detect`` with an optional quality branch (DGQP or FeatureQuality); without it the outputs are exactly
    the stock ones.

    Training output: Ultralytics' dict ``{"boxes", "scores", "feats"}`` plus ``"quality"`` (B, 1, A) with the branch.
    Eval output: (B, 4 + nc, A) with class scores J = sigmoid(C) x I (or sigmoid(C) without the branch).
    """

    def __init__(
        self,
        nc: int = 80,
        reg_max: int = 16,
        end2end: bool = False,
        ch: tuple[int, ...] = (),
        quality: bool = False,
        quality_input: str = "distribution",
        quality_detach: bool = False,
    ):
        super().__init__(nc=nc, reg_max=reg_max, end2end=end2end, ch=ch)
        if not quality:
            self.quality_branch = None
        elif quality_input == "features":
            self.quality_branch = FeatureQuality(tuple(seq[-1].in_channels for seq in self.cv2))
        elif quality_input == "distribution":
            self.quality_branch = DGQP(reg_max)
        else:
            raise ValueError(f"quality_input={quality_input!r} must be 'distribution' or 'features'")
        # quality_detach: the branch reads a detached input, so I's loss trains the branch alone and the detector
        # learns only from its own losses (GFLv2 and the IoU-aware single-stage detector let it shape the features).
        self.quality_detach = bool(quality_detach)

    @property
    def dgqp(self) -> nn.Module | None:
        """The quality branch (the name yolo_gfl 0.2.0 gave it, kept for readers of that name)."""
        return self.quality_branch

    def __setstate__(self, state: dict) -> None:
        """Unpickle a head saved by yolo_gfl 0.2.0, whose quality branch was the submodule ``dgqp``."""
        modules = state.get("_modules", {})
        if "dgqp" in modules:
            state["_modules"] = type(modules)((("quality_branch" if k == "dgqp" else k), v) for k, v in modules.items())
        if "dgqp" in state:  # a head without the branch held it as a plain attribute, None
            state["quality_branch"] = state.pop("dgqp")
        state["quality_detach"] = state.pop("dgqp_detach", state.get("quality_detach", False))
        state.pop("quality_power", None)  # 0.2.0's ranking exponent: 1 in every 0.2.0 variant (others are refused)
        super().__setstate__(state)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Read the quality branch's tensors also under 0.2.0's name (``<prefix>dgqp.``: its safe checkpoints)."""
        old = prefix + "dgqp."
        for key in [k for k in state_dict if k.startswith(old)]:
            state_dict[prefix + "quality_branch." + key[len(old):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @classmethod
    def from_detect(cls, head: Detect, **options) -> GFLDetect:
        """Build a GFLDetect that takes over ``head``'s layers, strides and graph position (``i``, ``f``, ``type``)."""
        channels = tuple(seq[0].conv.in_channels for seq in head.cv2)
        # Built on a fork of the global RNG, so that a variant leaves it where stock's build does: with one seed,
        # whatever the trainer draws next (the class head's last conv, re-initialised for a new data set's classes)
        # starts the same in every variant as in stock, and seed-paired comparisons pair like with like. The new
        # parts (DGQP, VFNet's layers) still draw deterministically, from the fork.
        with torch.random.fork_rng(devices=[]):
            new = cls(head.nc, head.reg_max, getattr(head, "one2one_cv2", None) is not None, channels, **options)
        new.load_state_dict(head.state_dict(), strict=False)  # stock layers keep their (bias-initialised) weights
        new.stride = head.stride
        for attr in ("i", "f", "type", "inplace"):
            if hasattr(head, attr):
                setattr(new, attr, getattr(head, attr))
        new.np = sum(p.numel() for p in new.parameters())
        return new

    def forward_head(self, x, box_head=None, cls_head=None) -> dict[str, torch.Tensor]:
        """Stock head outputs, plus the quality I under ``"quality"`` when the branch is on."""
        branch = self.quality_branch
        if not isinstance(branch, FeatureQuality) or box_head is None or cls_head is None:
            preds = super().forward_head(x, box_head, cls_head)
            if branch is not None and preds:
                preds["quality"] = branch(self._quality_input(preds["boxes"]))
            return preds
        # quality_input=features: stop each box tower before its last conv, whose input I reads too.
        bs = x[0].shape[0]
        box_features = [box_head[i][:-1](x[i]) for i in range(self.nl)]
        boxes = torch.cat([box_head[i][-1](f).view(bs, 4 * self.reg_max, -1) for i, f in enumerate(box_features)], -1)
        scores = torch.cat([cls_head[i](x[i]).view(bs, self.nc, -1) for i in range(self.nl)], -1)
        quality = branch([self._quality_input(f) for f in box_features])
        return {"boxes": boxes, "scores": scores, "feats": x, "quality": quality}

    def _quality_input(self, tensor: torch.Tensor) -> torch.Tensor:
        """The quality branch's input, detached under ``quality_detach``."""
        return tensor.detach() if self.quality_detach else tensor

    def _inference(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        """Decoded boxes and the ranking score: J = sigmoid(C) x I with the quality branch, else sigmoid(C)."""
        scores = x["scores"].sigmoid()
        if "quality" in x:
            scores = scores * x["quality"].to(scores.dtype)  # keep the head's dtype (half export/inference)
        return torch.cat((self._get_decode_boxes(x), scores), 1)
