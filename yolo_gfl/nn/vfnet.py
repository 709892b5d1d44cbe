"""VarifocalNet's star-shaped box representation and box refinement on the YOLOv8 head.

Zhang, Wang, Dayoub, Sünderhauf, "VarifocalNet: An IoU-aware Dense Object Detector", CVPR 2021, Sec. 3.3-3.4.

At every location (x, y) the head first predicts an *initial* box as distances (l', t', r', b') to its four sides. Here
that is YOLOv8's own box branch (``cv2``): four discrete distributions over ``reg_max`` = 16 bins read out by their
integral (DFL), so the initial box is exactly the stock YOLOv8 box. From it come the nine points of the star

    (x, y), (x - l', y), (x, y - t'), (x + r', y), (x, y + b'),
    (x - l', y - t'), (x + r', y - t'), (x - l', y + b'), (x + r', y + b'),

which become the sampling locations of a 3x3 deformable convolution on the head features: the star features see the
box's centre, its four edges and its four corners. From them the head predicts

* the IoU-aware classification score (IACS) logits (class branch, ``cv3``), and
* four scale factors (dl, dt, dr, db) = exp(conv(...)) that refine the box: (dl l', dt t', dr r', db b').

The eval output keeps Ultralytics' layout (B, 4 + nc, anchors) with the *refined* box and sigmoid(IACS logits), so the
stock validator, predictor, NMS and exporters use it unchanged.

Design choices (stated because the paper leaves room, and where this differs from mmdetection's VFNetHead):

* **Offset gradient.** The offsets are computed from ``(1 - g) * box.detach() + g * box`` with g = 0.1, as
  mmdetection's VFNetHead does (``gradient_mul=0.1``): the sampling points follow the initial box, but only a tenth of
  the gradient of the star branch flows back into the box regressor. Fully detached offsets would let the refined and
  classification losses never shape the initial box; full gradient lets the classification loss move the box to places
  where classification is easy, which the VarifocalNet code avoids. ``offset_grad`` sets g.
* **Refined box gradient.** refined = scale x initial.detach(), as in mmdetection: the refinement loss trains the
  scale factors only; the initial box is trained by its own GIoU loss and DFL.
* **Stock weights.** ``cv2`` and ``cv3`` keep Ultralytics' names and shapes, so a stock YOLOv8 checkpoint fills every
  one of them. The star convolution is added as a residual branch, ``f + SiLU(BN(DCN(f)))``, whose BatchNorm scale
  starts at 0 (the "zero-init residual" trick), and the scale-factor conv starts at 0 (exp(0) = 1): a model that
  takes stock weights therefore starts *exactly* as the stock model (refined box = initial box, same class scores)
  and learns the star features from there. mmdetection's head has no shortcut; this one adds it for the transfer.
* **Units.** YOLOv8's DFL distances are in units of the level's stride, which are the feature map's own units, so the
  offsets need no division; ``star_offsets`` takes a ``stride`` for distances given in pixels.
* **Operator.** A 3x3 deformable convolution samples nine points per location and applies a 3x3 kernel to them; the
  same sum is nine bilinear samples (``F.grid_sample``) followed by a 1x1 convolution over the stacked samples
  (:func:`deform_conv3x3_grid_sample`). On this project's CPU that is faster than torchvision's ``deform_conv2d``
  kernel, forward and more so backward (figures in docs/vfnet.md), and every export format has the two operators. ``deform_conv2d``
  stays selectable (the head's ``star_op``): both compute the same function of the same weights, so a checkpoint runs
  with either.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import deform_conv2d
from ultralytics.utils.tal import make_anchors

from .head import GFLDetect

__all__ = [
    "STAR_OPS",
    "DeformConv3x3",
    "StarDeformConv",
    "VFNetDetect",
    "deform_conv3x3_grid_sample",
    "star_offsets",
    "star_points",
]

# Implementations of the star convolution (the head's star_op). "auto" is grid_sample on every device, the faster one
# on CPU by benchmarks/star_op.py (docs/vfnet.md); the two compute the same values.
STAR_OPS = ("auto", "grid_sample", "deform_conv2d")

_OFFSET_LIMIT = 1e4  # |offset| cap in feature-map cells (a real star reaches reg_max x exp(max_log_scale) < 1000)

# Kernel taps of a 3x3 convolution in the row-major order deform_conv2d uses, as (row, col) in {-1, 0, 1}.
_TAPS = [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]


def star_points(ltrb: torch.Tensor) -> torch.Tensor:
    """The nine star points relative to the location, per 3x3 tap: (..., 4) distances -> (..., 9, 2) as (dy, dx).

    Tap (row i, col j) samples: row -1 -> y - t, 0 -> y, +1 -> y + b; col -1 -> x - l, 0 -> x, +1 -> x + r. So the
    taps are (x-l, y-t), (x, y-t), (x+r, y-t), (x-l, y), (x, y), (x+r, y), (x-l, y+b), (x, y+b), (x+r, y+b): the nine
    points of VarifocalNet's star, in the order of the kernel's weights.
    """
    l, t, r, b = ltrb.unbind(-1)
    zero = torch.zeros_like(l)
    ys = {-1: -t, 0: zero, 1: b}
    xs = {-1: -l, 0: zero, 1: r}
    return torch.stack([torch.stack((ys[i], xs[j]), -1) for i, j in _TAPS], -2)


def star_offsets(ltrb: torch.Tensor, stride: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Offsets of a 3x3, dilation-1 deformable convolution that samples VarifocalNet's star of each box.

    Args:
        ltrb: (B, 4, H, W) distances (l', t', r', b') from each location to the sides of its box.
        stride: the feature map's stride in the units of ``ltrb`` (1 when ``ltrb`` is already in feature-map units, as
            YOLOv8's DFL distances are; the level's stride when they are in pixels).

    Returns:
        (B, 18, H, W) offsets in torchvision's layout: for tap k = 3 * row + col, channel 2k is the y offset and
        2k + 1 the x offset, each the star point minus the regular grid point (row - 1, col - 1) of that tap.
    """
    if ltrb.ndim != 4 or ltrb.shape[1] != 4:
        raise ValueError(f"ltrb must be (B, 4, H, W), got {tuple(ltrb.shape)}")
    d = ltrb.permute(0, 2, 3, 1) / stride  # (B, H, W, 4) in feature-map units (explicit permutes export cleanly)
    grid = torch.tensor(_TAPS, dtype=d.dtype, device=d.device)  # (9, 2) regular 3x3 grid, (dy, dx)
    offsets = star_points(d) - grid  # (B, H, W, 9, 2)
    return offsets.flatten(3).permute(0, 3, 1, 2)


def deform_conv3x3_grid_sample(x: torch.Tensor, offsets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``deform_conv2d(x, offsets, weight, padding=1)`` for a 3x3 kernel, as nine bilinear samples and a 1x1 conv.

    Tap k = 3 * row + col of output location (y, x) reads the input at (y + row - 1 + dy_k, x + col - 1 + dx_k),
    bilinearly, with zeros outside the map, and the kernel weighs the nine samples: that is ``grid_sample`` with zero
    padding at those points, stacked channel-major (c * 9 + k, the order of ``weight.view(C_out, C_in * 9)``), then a
    1x1 convolution. Values and gradients (to ``x``, ``offsets`` and ``weight``) equal torchvision's within float
    rounding (tests/test_vfnet.py checks them, borders included).

    Args:
        x: (B, C_in, H, W) features.
        offsets: (B, 18, H, W) in torchvision's layout: channel 2k the y offset of tap k, 2k + 1 its x offset.
        weight: (C_out, C_in, 3, 3) kernel.
    """
    b, c, h, w = x.shape
    taps = torch.tensor(_TAPS, dtype=offsets.dtype, device=offsets.device).view(1, 9, 2, 1, 1)
    rows = torch.arange(h, dtype=offsets.dtype, device=offsets.device).view(1, 1, h, 1)
    cols = torch.arange(w, dtype=offsets.dtype, device=offsets.device).view(1, 1, 1, w)
    points = offsets.reshape(b, 9, 2, h, w) + taps  # (dy, dx) of each tap from its location
    py, px = points[:, :, 0] + rows, points[:, :, 1] + cols  # (B, 9, H, W) sampling positions in pixels
    # grid_sample's normalised coordinates with align_corners=False: pixel p sits at (2p + 1) / size - 1. (With
    # align_corners=True a map of width 1 would divide by zero.)
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), -1).view(b, 9 * h, w, 2)
    samples = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (B, C, 9H, W)
    # The kernel's shape comes from the kernel alone (ONNX needs it static when the input is dynamic); flatten and
    # reshape, not view, because the trainer may hand over a kernel that is not contiguous.
    return F.conv2d(samples.reshape(b, c * 9, h, w), weight.flatten(1)[:, :, None, None])


class DeformConv3x3(nn.Conv2d):
    """A 3x3, stride-1, padding-1 convolution that samples at ``offsets``, with either operator of ``STAR_OPS``.

    A ``nn.Conv2d`` subclass so that FLOP counters (thop, as Ultralytics' ``get_flops`` uses) count its multiply-adds
    as a 3x3 convolution's (the bilinear sampling on top, about 4 x 9 x C_in x H x W, is not counted). It runs in
    float32 with autocast off: torchvision's kernel has no half version on CPU, and sampling positions lose precision
    in half. The result returns to the input's dtype.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor, offsets: torch.Tensor, op: str = "grid_sample") -> torch.Tensor:  # type: ignore[override]
        with torch.autocast(device_type=x.device.type, enabled=False):
            if op == "deform_conv2d":
                # torchvision's CPU kernel casts sampling positions to int: a NaN or huge offset (a diverged model, or
                # the uninitialised input FLOP counters feed) reads out of bounds and crashes the process. Beyond the
                # map the sampled value is 0 anyway, so clamping far outside any map changes nothing else.
                # (grid_sample needs no guard: out-of-map points read 0 and NaN ones give NaN, without crashing;
                # nan_to_num would also keep the graph out of OpenVINO, which has no conversion for it.)
                offsets = offsets.float().nan_to_num(0.0, _OFFSET_LIMIT, -_OFFSET_LIMIT).clamp(-_OFFSET_LIMIT, _OFFSET_LIMIT)
                y = deform_conv2d(x.float(), offsets, self.weight.float(), padding=(1, 1))
            else:
                y = deform_conv3x3_grid_sample(x.float(), offsets.float(), self.weight.float())
        return y.to(x.dtype)


class StarDeformConv(nn.Module):
    """Residual star-feature block ``x + SiLU(BN(DCN3x3(x, offsets)))``, BatchNorm scale starting at 0 (identity)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = DeformConv3x3(channels, channels)
        self.bn = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn.weight)  # zero-init residual: the block starts as the identity
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, offsets: torch.Tensor, op: str = "grid_sample") -> torch.Tensor:
        return x + self.act(self.bn(self.conv(x, offsets, op)))


class VFNetDetect(GFLDetect):
    """YOLOv8 ``Detect`` with VarifocalNet's star-shaped deformable features and box refinement.

    Training output: Ultralytics' dict ``{"boxes", "scores", "feats"}`` (``boxes``: the initial box distributions,
    ``scores``: IACS logits from the star features) plus ``"refine"``: (B, 4, A) scale factors (dl, dt, dr, db).
    Eval output: (B, 4 + nc, A), the refined box (xywh pixels) and sigmoid(IACS logits).

    Args:
        nc, reg_max, end2end, ch: as ``Detect`` (``end2end`` is not supported: YOLOv8 has no one-to-one head).
        offset_grad: share of the gradient that flows from the star offsets into the initial box (VFNet: 0.1).
        star_op: implementation of the star convolution, one of ``STAR_OPS`` (same values; ``auto`` = grid_sample).
            Export always traces grid_sample, which every format holds.
        max_log_scale: |log scale| is clamped to this so exp never overflows (exp(4) = 55x is far beyond any useful
            refinement; clamping only matters for a diverging model).
    """

    star_op = "auto"  # class default: heads pickled before the option existed load with it

    def __init__(
        self,
        nc: int = 80,
        reg_max: int = 16,
        end2end: bool = False,
        ch: tuple[int, ...] = (),
        offset_grad: float = 0.1,
        star_op: str = "auto",
        max_log_scale: float = 4.0,
    ):
        if end2end:
            raise ValueError("head=vfnet supports YOLOv8's one-to-many Detect head only (end2end=False).")
        super().__init__(nc=nc, reg_max=reg_max, end2end=False, ch=ch, quality=False)
        if reg_max <= 1:
            raise ValueError("head=vfnet needs the DFL box distributions (reg_max > 1).")
        if star_op not in STAR_OPS:
            raise ValueError(f"star_op={star_op!r} is not one of {', '.join(STAR_OPS)}.")
        self.star_op = star_op
        self.offset_grad, self.max_log_scale = float(offset_grad), float(max_log_scale)
        c2 = self.cv2[0][2].in_channels  # box-feature width (stock: max(16, ch[0] // 4, 4 * reg_max))
        c3 = self.cv3[0][2].in_channels  # class-feature width (stock: max(ch[0], min(nc, 100)))
        self.cls_star = nn.ModuleList(StarDeformConv(c3) for _ in ch)
        self.reg_star = nn.ModuleList(StarDeformConv(c2) for _ in ch)
        self.refine = nn.ModuleList(nn.Conv2d(c2, 4, 1) for _ in ch)
        for conv in self.refine:  # scale factors start at exp(0) = 1: refined box = initial box
            nn.init.zeros_(conv.weight)  # still learns: its gradient is the (nonzero) star features
            nn.init.zeros_(conv.bias)

    def match_class_width(self) -> bool:
        """Rebuild the class star blocks at the class branch's current width; return whether they were rebuilt.

        Ultralytics' ``DetectionModel.load`` (8.4) rebuilds ``cv3`` at the source checkpoint's width when the class
        counts differ (its width is max(ch[0], min(nc, 100)): 80 for COCO's yolov8n.pt, 64 for a 12-class yolov8n), so
        that its hidden layers transfer. Star blocks built for the old width would no longer fit the features they
        read. The rebuilt blocks start as the identity, as at construction.
        """
        width = self.cv3[0][-1].in_channels
        if self.cls_star[0].conv.in_channels == width:
            return False
        ref = self.cls_star[0].conv.weight
        self.cls_star = nn.ModuleList(StarDeformConv(width) for _ in self.cls_star).to(ref.device, ref.dtype)
        return True

    def forward_head(self, x, box_head=None, cls_head=None) -> dict[str, torch.Tensor]:
        """Initial box distributions, IACS logits and refinement scale factors of every level."""
        if box_head is None or cls_head is None:
            return {}
        bs = x[0].shape[0]
        op = "grid_sample" if self.export or self.star_op == "auto" else self.star_op
        boxes, scores, refine = [], [], []
        for i in range(self.nl):
            h, w = x[i].shape[2:]
            reg_feat = box_head[i][:2](x[i])
            box_logits = box_head[i][2](reg_feat)  # (B, 4 * reg_max, H, W)
            ltrb = self.dfl(box_logits.view(bs, 4 * self.reg_max, h * w)).view(bs, 4, h, w)  # stride units
            g = self.offset_grad
            ltrb_offset = ltrb.detach() * (1 - g) + ltrb * g if g < 1 else ltrb
            offsets = star_offsets(ltrb_offset)  # stride units are the feature map's units
            cls_logits = cls_head[i][2](self.cls_star[i](cls_head[i][:2](x[i]), offsets, op))
            log_scale = self.refine[i](self.reg_star[i](reg_feat, offsets, op))
            boxes.append(box_logits.view(bs, 4 * self.reg_max, -1))
            scores.append(cls_logits.view(bs, self.nc, -1))
            refine.append(log_scale.float().clamp(-self.max_log_scale, self.max_log_scale).exp().view(bs, 4, -1))
        return {
            "boxes": torch.cat(boxes, -1),
            "scores": torch.cat(scores, -1),
            "refine": torch.cat(refine, -1),
            "feats": x,
        }

    def refined_ltrb(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, 4, A) refined distances in stride units: scale factors x initial DFL distances."""
        return self.dfl(x["boxes"]) * x["refine"].to(x["boxes"].dtype)

    def _inference(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        """Refined boxes (xywh pixels) and sigmoid(IACS logits), in Ultralytics' (B, 4 + nc, A) layout."""
        shape = x["feats"][0].shape
        if self.dynamic or self.shape != shape:
            self.anchors, self.strides = (a.transpose(0, 1) for a in make_anchors(x["feats"], self.stride, 0.5))
            self.shape = shape
        dbox = self.decode_bboxes(self.refined_ltrb(x), self.anchors.unsqueeze(0)) * self.strides
        return torch.cat((dbox, x["scores"].sigmoid()), 1)
