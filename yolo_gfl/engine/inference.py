"""The papers' inference settings at val/predict time: pre-NMS top-k per pyramid level and Gaussian soft-NMS.

FCOS, ATSS, GFL and VarifocalNet all test with: score threshold 0.05, at most 1000 candidates per pyramid level before
NMS, NMS IoU 0.6, at most 100 detections per image; VarifocalNet's VFNet-X entries replace NMS by soft-NMS. In yolo_gfl
these are val/predict options beside Ultralytics' own ``conf``, ``iou`` and ``max_det``:

* ``nms=hard|soft``: ``hard`` (default) is Ultralytics' own NMS, untouched; ``soft`` is Gaussian soft-NMS
  (``yolo_gfl.nms.batched_soft_nms``, per class unless ``agnostic_nms``), which decays the score of every box that
  overlaps a kept one by ``exp(-IoU^2 / soft_sigma)`` instead of deleting it; ``iou`` is then not used. A box is kept
  while its decayed score stays at or above ``conf``, so every returned box still has a score >= ``conf``, as
  Ultralytics' ``conf`` promises. (Ultralytics' own boolean ``nms`` argument keeps its meaning; only the strings
  ``hard``/``soft`` are these.)
* ``soft_sigma`` (default 0.5, the soft-NMS paper's and mmcv's value): smaller is harsher.
  Note: VarifocalNet's released VFNet-X config asks mmcv for ``soft_nms`` with ``iou_threshold=0.65`` and no method,
  and mmcv's default method is *linear* (decay by 1 - IoU above 0.65, drop under 0.001); the Gaussian form here is
  the soft-NMS paper's, as yolo_gfl's issue specifies.
* ``pre_nms_topk=N``: before NMS, keep on each pyramid level only the N anchors with the highest class score
  (``yolo_gfl.nms.topk_per_level``). Default: no cap (Ultralytics').
* ``paper=True``: the papers' set ``conf=0.05 iou=0.6 max_det=100 pre_nms_topk=1000`` (arguments given explicitly win);
  add ``nms=soft`` for VFNet-X's soft-NMS.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from ultralytics.utils import nms as ultralytics_nms
from ultralytics.utils.ops import xywh2xyxy

from ..nms import batched_soft_nms, topk_per_level

__all__ = [
    "INFERENCE_OPTIONS",
    "PAPER_SETTINGS",
    "DEFAULT_INFERENCE",
    "split_inference_options",
    "check_inference_options",
    "head_strides",
    "level_sizes",
    "postprocess_detections",
]

INFERENCE_OPTIONS = ("nms", "pre_nms_topk", "soft_sigma", "paper")
NMS_KINDS = ("hard", "soft")
PAPER_SETTINGS: dict[str, Any] = {"conf": 0.05, "iou": 0.6, "max_det": 100, "pre_nms_topk": 1000}
DEFAULT_INFERENCE: dict[str, Any] = {"nms": "hard", "pre_nms_topk": None, "soft_sigma": 0.5}
DEFAULT_STRIDES = (8, 16, 32)  # YOLOv8's P3-P5, for exported models whose head is not at hand


def split_inference_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split val/predict keyword arguments into (yolo_gfl inference options, Ultralytics' arguments).

    ``nms`` is ours only as a string (``hard``/``soft`` or a typo of them); ``nms=True/False/None`` stays Ultralytics'.
    """
    ours, theirs = {}, {}
    for key, value in kwargs.items():
        if key in INFERENCE_OPTIONS and not (key == "nms" and (value is None or isinstance(value, bool))):
            ours[key] = value
        else:
            theirs[key] = value
    return ours, theirs


def check_inference_options(options: dict[str, Any], args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the full, checked inference options; with ``paper=True`` also put the papers' settings into ``args``.

    Args:
        options: the yolo_gfl inference options given (a subset of ``INFERENCE_OPTIONS``).
        args: Ultralytics' val/predict arguments, updated in place by ``paper=True`` where not given explicitly.

    Raises:
        ValueError: naming the option, the value and what is allowed.
    """
    unknown = sorted(set(options) - set(INFERENCE_OPTIONS))
    if unknown:
        raise ValueError(f"unknown inference option(s) {unknown}; valid: {', '.join(INFERENCE_OPTIONS)}.")
    out = dict(DEFAULT_INFERENCE)
    paper = options.get("paper", False)
    if not isinstance(paper, bool):
        raise ValueError(f"inference option paper={paper!r} must be True or False.")
    if paper:
        out["pre_nms_topk"] = PAPER_SETTINGS["pre_nms_topk"]
        if args is not None:
            for key in ("conf", "iou", "max_det"):
                args.setdefault(key, PAPER_SETTINGS[key])
    if "nms" in options:
        kind = options["nms"]
        if not isinstance(kind, str) or kind.lower() not in NMS_KINDS:
            raise ValueError(f"inference option nms={kind!r} is not valid: expected hard | soft.")
        out["nms"] = kind.lower()
    if options.get("pre_nms_topk") is not None:
        k = options["pre_nms_topk"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"inference option pre_nms_topk={k!r} is not valid: expected an int >= 1 (e.g. 1000).")
        out["pre_nms_topk"] = k
    if "soft_sigma" in options:
        sigma = options["soft_sigma"]
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 < sigma <= 10:
            raise ValueError(f"inference option soft_sigma={sigma!r} is not valid: expected a number in (0, 10].")
        out["soft_sigma"] = float(sigma)
    return out


def head_strides(model: Any) -> list[float]:
    """Strides of the detection levels of ``model`` (a DetectionModel, or Ultralytics' AutoBackend around one).

    Exported models (ONNX, TorchScript, ...) carry no head module; they get YOLOv8's P3-P5 strides (8, 16, 32).
    """
    m = model
    for _ in range(4):
        seq = getattr(m, "model", None)
        if isinstance(seq, nn.Sequential) and len(seq) and torch.is_tensor(getattr(seq[-1], "stride", None)):
            return [float(s) for s in seq[-1].stride.tolist()]
        m = seq
        if m is None:
            break
    return [float(s) for s in DEFAULT_STRIDES]


def level_sizes(img_hw: tuple[int, int], strides: list[float], num_anchors: int) -> list[int]:
    """Anchors per pyramid level for an input of ``img_hw`` pixels (each level is ceil(h/s) x ceil(w/s)).

    Raises:
        ValueError: when they do not add up to the model's ``num_anchors`` (a head with other levels than assumed).
    """
    h, w = (int(v) for v in img_hw)
    sizes = [-(-h // int(s)) * -(-w // int(s)) for s in strides]
    if sum(sizes) != num_anchors:
        raise ValueError(
            f"pre_nms_topk: the model output has {num_anchors} anchors, but levels of strides {strides} on a {h}x{w} "
            f"input give {sum(sizes)}; the per-level cap cannot be placed. Run without pre_nms_topk."
        )
    return sizes


def _soft_nms_image(
    x: torch.Tensor, nc: int, conf: float, classes, agnostic: bool, multi_label: bool, max_det: int, sigma: float,
    max_nms: int,
) -> torch.Tensor:
    """Soft-NMS on one image's (A, 4 + nc + extra) rows (xywh boxes); returns (K, 6 + extra) rows as Ultralytics'."""
    box, cls, extra = x[:, :4], x[:, 4 : 4 + nc], x[:, 4 + nc :]
    keep_rows = cls.amax(1) > conf
    box, cls, extra = xywh2xyxy(box[keep_rows]), cls[keep_rows], extra[keep_rows]
    if multi_label and nc > 1:
        i, j = torch.where(cls > conf)
        rows = torch.cat((box[i], cls[i, j, None], j[:, None].float(), extra[i]), 1)
    else:
        score, j = cls.max(1, keepdim=True)
        rows = torch.cat((box, score, j.float(), extra), 1)[score.view(-1) > conf]
    if classes is not None:
        rows = rows[(rows[:, 5:6] == torch.as_tensor(classes, device=rows.device)).any(1)]
    if rows.shape[0] > max_nms:  # as Ultralytics: only the best max_nms candidates enter NMS
        rows = rows[rows[:, 4].topk(max_nms).indices]
    group = torch.zeros_like(rows[:, 5]) if agnostic else rows[:, 5]
    keep, new_scores = batched_soft_nms(rows[:, :4], rows[:, 4], group, sigma, score_threshold=conf, max_det=max_det)
    out = rows[keep].float()
    out[:, 4] = new_scores.float()
    return out


def postprocess_detections(
    preds,
    *,
    conf: float,
    iou: float,
    max_det: int,
    nms: str = "hard",
    pre_nms_topk: int | None = None,
    soft_sigma: float = 0.5,
    sizes: list[int] | None = None,
    classes=None,
    agnostic: bool = False,
    multi_label: bool = False,
    nc: int = 0,
    max_nms: int = 30000,
    max_time_img: float = 0.05,
) -> list[torch.Tensor]:
    """Ultralytics' ``non_max_suppression`` contract, with the pre-NMS per-level cap and soft-NMS on top.

    Args:
        preds: (B, 4 + nc + extra, A) model output (xywh pixels, scores), or a tuple whose first element it is.
        conf, iou, max_det, classes, agnostic, multi_label, nc, max_nms: as Ultralytics' ``non_max_suppression``.
        max_time_img: hard NMS stops after 2 s + this many seconds per image and leaves the rest of the batch empty,
            as Ultralytics' (0.05); ``math.inf`` never stops (evaluation). Soft-NMS has no limit.
        nms: ``hard`` (Ultralytics' NMS) or ``soft`` (Gaussian soft-NMS with ``soft_sigma``).
        pre_nms_topk: keep at most this many anchors per level (ranked by best class score) before NMS.
        sizes: anchors per level (``level_sizes``); needed with ``pre_nms_topk``.

    Returns:
        One (K, 6 + extra) tensor per image: x1, y1, x2, y2, score, class (soft-NMS: the decayed score).
    """
    pred = preds[0] if isinstance(preds, (list, tuple)) else preds
    nc = nc or pred.shape[1] - 4
    if pre_nms_topk:
        if sizes is None:
            raise ValueError("pre_nms_topk needs the anchors per pyramid level (sizes=...).")
        idx = topk_per_level(pred[:, 4 : 4 + nc].transpose(1, 2), sizes, pre_nms_topk)  # (B, K)
        pred = pred.gather(2, idx.unsqueeze(1).expand(-1, pred.shape[1], -1))
    if nms == "hard":
        return ultralytics_nms.non_max_suppression(
            pred, conf, iou, classes, agnostic, multi_label=multi_label, max_det=max_det, nc=nc, max_nms=max_nms,
            max_time_img=max_time_img,
        )
    if nms != "soft":
        raise ValueError(f"nms={nms!r} is not valid: expected hard | soft.")
    return [
        _soft_nms_image(x, nc, conf, classes, agnostic, multi_label, max_det, soft_sigma, max_nms)
        for x in pred.transpose(1, 2)
    ]
