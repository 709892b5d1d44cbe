"""VarifocalNet's star-shaped box representation and box refinement on the YOLOv8 head.

Zhang, Wang, Dayoub, Sünderhauf, "VarifocalNet: An IoU-aware Dense Object Detector", CVPR 2021, Sec. 3.3-3.4.

At every location (x, y) the head first predicts an *initial* box as distances (l', t', r', b') to its four sides. Here
that is YOLOv8's own box branch (``cv2``): four discrete distributions over ``reg_max`` = 16 bins read out by their
integral (DFL), so the initial box is exactly the stock YOLOv8 box. From it come the nine points of the star

    (x, y), (x - l', y), (x, y - t'), (x + r', y), (x, y + b'),
    (x - l', y - t'), (x + r', y - t'), (x - l', y + b'), (x + r', y + b'),

which become the sampling locations of a 3x3 deformable convolution (``torchvision.ops.deform_conv2d``) on the head
features: the star features see the box's centre, its four edges and its four corners. From them the head predicts

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
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.ops import deform_conv2d
from ultralytics.utils.tal import make_anchors

from .head import GFLDetect

__all__ = ["DeformConv3x3", "StarDeformConv", "VFNetDetect", "star_offsets", "star_points", "DCN_EXPORT_FORMATS", "ONNX_MIN_OPSET"]

# Export formats whose toolchain here runs torchvision's deformable convolution: ONNX (opset >= 19 has DeformConv;
# onnxruntime implements it) and TorchScript (torchvision's op is a registered TorchScript op).
DCN_EXPORT_FORMATS = ("onnx", "torchscript")
ONNX_MIN_OPSET = 19  # the first ONNX opset with DeformConv

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


class DeformConv3x3(nn.Conv2d):
    """A 3x3, stride-1, padding-1 convolution that samples at ``offsets`` (``torchvision.ops.deform_conv2d``).

    A ``nn.Conv2d`` subclass so that FLOP counters (thop, as Ultralytics' ``get_flops`` uses) count its multiply-adds
    as a 3x3 convolution's (the bilinear sampling on top, about 4 x 9 x C_in x H x W, is not counted). It runs in
    float32 with autocast off: torchvision's kernel has no half version on CPU, and sampling positions lose precision
    in half. The result returns to the input's dtype.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        with torch.autocast(device_type=x.device.type, enabled=False):
            # torchvision's CPU kernel casts sampling positions to int: a NaN or huge offset (a diverged model, or the
            # uninitialised input FLOP counters feed) reads out of bounds and crashes the process. Beyond the map
            # the sampled value is 0 anyway, so clamping far outside any map changes nothing else.
            offsets = offsets.float().nan_to_num(0.0, _OFFSET_LIMIT, -_OFFSET_LIMIT).clamp(-_OFFSET_LIMIT, _OFFSET_LIMIT)
            y = deform_conv2d(x.float(), offsets, self.weight.float(), padding=(1, 1))
        return y.to(x.dtype)


class StarDeformConv(nn.Module):
    """Residual star-feature block ``x + SiLU(BN(DCN3x3(x, offsets)))``, BatchNorm scale starting at 0 (identity)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = DeformConv3x3(channels, channels)
        self.bn = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn.weight)  # zero-init residual: the block starts as the identity
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.bn(self.conv(x, offsets)))


class VFNetDetect(GFLDetect):
    """YOLOv8 ``Detect`` with VarifocalNet's star-shaped deformable features and box refinement.

    Training output: Ultralytics' dict ``{"boxes", "scores", "feats"}`` (``boxes``: the initial box distributions,
    ``scores``: IACS logits from the star features) plus ``"refine"``: (B, 4, A) scale factors (dl, dt, dr, db).
    Eval output: (B, 4 + nc, A), the refined box (xywh pixels) and sigmoid(IACS logits).

    Args:
        nc, reg_max, end2end, ch: as ``Detect`` (``end2end`` is not supported: YOLOv8 has no one-to-one head).
        offset_grad: share of the gradient that flows from the star offsets into the initial box (VFNet: 0.1).
        max_log_scale: |log scale| is clamped to this so exp never overflows (exp(4) = 55x is far beyond any useful
            refinement; clamping only matters for a diverging model).
    """

    def __init__(
        self,
        nc: int = 80,
        reg_max: int = 16,
        end2end: bool = False,
        ch: tuple[int, ...] = (),
        offset_grad: float = 0.1,
        max_log_scale: float = 4.0,
        **dgqp_options,
    ):
        if end2end:
            raise ValueError("head=vfnet supports YOLOv8's one-to-many Detect head only (end2end=False).")
        if dgqp_options.get("dgqp"):
            raise ValueError("head=vfnet predicts the IoU-aware score directly; it cannot be combined with dgqp=True.")
        super().__init__(nc=nc, reg_max=reg_max, end2end=False, ch=ch, dgqp=False)
        if reg_max <= 1:
            raise ValueError("head=vfnet needs the DFL box distributions (reg_max > 1).")
        self.offset_grad, self.max_log_scale = float(offset_grad), float(max_log_scale)
        c2 = self.cv2[0][2].in_channels  # box-feature width (stock: max(16, ch[0] // 4, 4 * reg_max))
        c3 = self.cv3[0][2].in_channels  # class-feature width (stock: max(ch[0], min(nc, 100)))
        self.cls_star = nn.ModuleList(StarDeformConv(c3) for _ in ch)
        self.reg_star = nn.ModuleList(StarDeformConv(c2) for _ in ch)
        self.refine = nn.ModuleList(nn.Conv2d(c2, 4, 1) for _ in ch)
        for conv in self.refine:  # scale factors start at exp(0) = 1: refined box = initial box
            nn.init.zeros_(conv.weight)  # still learns: its gradient is the (nonzero) star features
            nn.init.zeros_(conv.bias)

    def forward_head(self, x, box_head=None, cls_head=None) -> dict[str, torch.Tensor]:
        """Initial box distributions, IACS logits and refinement scale factors of every level."""
        if box_head is None or cls_head is None:
            return {}
        bs = x[0].shape[0]
        boxes, scores, refine = [], [], []
        for i in range(self.nl):
            h, w = x[i].shape[2:]
            reg_feat = box_head[i][:2](x[i])
            box_logits = box_head[i][2](reg_feat)  # (B, 4 * reg_max, H, W)
            ltrb = self.dfl(box_logits.view(bs, 4 * self.reg_max, h * w)).view(bs, 4, h, w)  # stride units
            g = self.offset_grad
            ltrb_offset = ltrb.detach() * (1 - g) + ltrb * g if g < 1 else ltrb
            offsets = star_offsets(ltrb_offset)  # stride units are the feature map's units
            cls_logits = cls_head[i][2](self.cls_star[i](cls_head[i][:2](x[i]), offsets))
            log_scale = self.refine[i](self.reg_star[i](reg_feat, offsets))
            boxes.append(box_logits.view(bs, 4 * self.reg_max, -1))
            scores.append(cls_logits.view(bs, self.nc, -1))
            refine.append(log_scale.float().clamp(-self.max_log_scale, self.max_log_scale).exp().view(bs, 4, -1))
        return {
            "boxes": torch.cat(boxes, -1),
            "scores": torch.cat(scores, -1),
            "refine": torch.cat(refine, -1),
            "feats": x,
        }

    def forward(self, x):
        """As ``Detect.forward``; during export, refuse formats whose toolchain cannot run the deformable conv."""
        if self.export and self.format not in DCN_EXPORT_FORMATS:
            raise RuntimeError(
                f"format={self.format!r} cannot be exported for a VFNet head (head=vfnet): its star-shaped deformable "
                f"convolution (torchvision deform_conv2d) is only exported to {' and '.join(DCN_EXPORT_FORMATS)} here. "
                f"Export to format=onnx (opset >= 19) or torchscript, or train and export a variant without deformable "
                f"convolution (e.g. yolov8n-gfl.yaml, yolov8n-vfl.yaml)."
            )
        return super().forward(x)

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



def _onnx_deform_conv2d(g, input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
                        n_weight_grps, n_offset_grps, use_mask):
    """ONNX symbolic of ``torchvision::deform_conv2d``: the standard ``DeformConv`` operator (opset 19).

    torchvision registers no ONNX export for its deformable convolution; ONNX's DeformConv has the same semantics
    (offsets as (dy, dx) per kernel tap, bilinear sampling, zero outside the image), and onnxruntime implements it.
    """
    from torch.onnx import symbolic_helper as sh

    opset = g.opset  # the GraphContext carries the export opset
    if opset < ONNX_MIN_OPSET:
        raise RuntimeError(
            f"ONNX opset {opset} has no DeformConv, which the VFNet head (head=vfnet) needs: export with "
            f"opset={ONNX_MIN_OPSET} or higher (YOLOGFL.export picks it by default), or export a variant without "
            f"deformable convolution (e.g. yolov8n-gfl.yaml)."
        )
    kh, kw = sh._get_tensor_sizes(weight)[-2:]
    ints = [sh._get_const(v, "i", name) for v, name in ((stride_h, "stride_h"), (stride_w, "stride_w"),
                                                         (pad_h, "pad_h"), (pad_w, "pad_w"), (dil_h, "dil_h"),
                                                         (dil_w, "dil_w"), (n_weight_grps, "groups"),
                                                         (n_offset_grps, "offset_groups"))]
    s_h, s_w, p_h, p_w, d_h, d_w, groups, offset_groups = ints
    inputs = [input, weight, offset, bias] + ([mask] if sh._get_const(use_mask, "b", "use_mask") else [])
    return g.op(
        "DeformConv",
        *inputs,
        kernel_shape_i=[kh, kw],
        strides_i=[s_h, s_w],
        pads_i=[p_h, p_w, p_h, p_w],
        dilations_i=[d_h, d_w],
        group_i=groups,
        offset_group_i=offset_groups,
    )


def _register_onnx_symbolic() -> None:
    """Make ``torch.onnx.export`` (TorchScript exporter, which Ultralytics uses) map deform_conv2d to DeformConv.

    Registered from opset 9 on so that a too-low opset fails with a message naming the fix instead of torch's generic
    'operator not supported'; nothing is written in either case, since the exporter fails while building the graph.
    """
    try:
        torch.onnx.register_custom_op_symbolic("torchvision::deform_conv2d", _onnx_deform_conv2d, 9)
    except Exception:  # pragma: no cover - an exporter without TorchScript symbolics; export then fails by itself
        pass


_register_onnx_symbolic()
