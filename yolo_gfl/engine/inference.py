"""Inference settings at val/predict time: the papers' pre-NMS top-k per level, Gaussian soft-NMS and score voting.

FCOS, ATSS, GFL and VarifocalNet all test with: score threshold 0.05, at most 1000 candidates per pyramid level before
NMS, NMS IoU 0.6, at most 100 detections per image; VarifocalNet's VFNet-X entries replace NMS by soft-NMS. In yolo_gfl
these are val/predict options beside Ultralytics' own ``conf``, ``iou`` and ``max_det``:

* ``nms=hard|soft``: ``hard`` (default) is Ultralytics' own NMS, untouched; ``soft`` is Gaussian soft-NMS
  (``yolo_gfl.nms.batched_soft_nms``, per class unless ``agnostic_nms``), which decays the score of every box that
  overlaps a kept one by ``exp(-IoU^2 / soft_sigma)`` instead of deleting it; ``iou`` is then not used. A box is kept
  while its decayed score stays at or above ``conf``, so every returned box still has a score >= ``conf``, as
  Ultralytics' ``conf`` promises. (Ultralytics' own boolean ``nms`` argument keeps its meaning; only the strings
  ``hard``/``soft`` are these.)
* ``nms=vote``: score voting (PAA, Kim and Lee, ECCV 2020, Sec. 3.4; ``yolo_gfl.nms.vote_boxes``). Hard NMS keeps
  exactly the detections Ultralytics' NMS keeps (same candidates, classes, scores and count); each kept box then moves
  to the weighted mean of its cluster, the candidates of its class it suppressed (per class unless ``agnostic_nms``),
  weights ``w_i * exp(-(1 - IoU_i)^2 / vote_sigma)``. Options:

  - ``vote_sigma`` (default 0.025, PAA's sigma_t): larger lets looser neighbours count more;
  - ``vote_weight``: what ``w_i`` is. ``score`` (default): the detection score, J = C x I for a model with a quality
    branch (GFLv2), sigmoid(C) otherwise, so it works on any detection checkpoint, stock or exported; ``class``: C
    alone; ``quality``: the quality I alone (both need a quality branch, read from the PyTorch model's head);
    ``overlap``: w_i = 1, the overlap term alone, so no score weighs (any checkpoint): the control that tells whether
    a score's weighting adds anything to the cluster's geometry;
  - ``vote_iou``: unset (default), the clusters are hard NMS's own at ``iou``; a number t: every candidate of the class
    overlapping the kept box by more than t votes for it, so a candidate may vote for several kept boxes (PAA's code
    votes with all candidates above IoU 0.01).
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
import torchvision
from ultralytics.utils import nms as ultralytics_nms
from ultralytics.utils.ops import xywh2xyxy

from ..nms import VOTE_SIGMA, batched_soft_nms, topk_per_level, vote_boxes

__all__ = [
    "INFERENCE_OPTIONS",
    "InferenceOptionError",
    "INFERENCE_MODES",
    "QUALITY_VOTE_WEIGHTS",
    "reads_quality",
    "resolve_modes",
    "QualityTap",
    "detect_head",
    "PAPER_SETTINGS",
    "DEFAULT_INFERENCE",
    "split_inference_options",
    "check_inference_options",
    "head_strides",
    "level_sizes",
    "postprocess_detections",
]

INFERENCE_OPTIONS = ("nms", "pre_nms_topk", "soft_sigma", "vote_sigma", "vote_weight", "vote_iou", "paper")
NMS_KINDS = ("hard", "soft", "vote")
VOTE_WEIGHTS = ("score", "class", "quality", "overlap")
QUALITY_VOTE_WEIGHTS = ("class", "quality")  # read the quality branch's I (QualityTap)
VOTE_OPTIONS = ("vote_sigma", "vote_weight", "vote_iou")
PAPER_SETTINGS: dict[str, Any] = {"conf": 0.05, "iou": 0.6, "max_det": 100, "pre_nms_topk": 1000}
DEFAULT_INFERENCE: dict[str, Any] = {"nms": "hard", "pre_nms_topk": None, "soft_sigma": 0.5, "vote_sigma": VOTE_SIGMA,
                                     "vote_weight": "score", "vote_iou": None}
DEFAULT_STRIDES = (8, 16, 32)  # YOLOv8's P3-P5, for exported models whose head is not at hand


# Named inference modes, for comparing one checkpoint under several (the zoo's ``modes=``): each is a set of options.
INFERENCE_MODES: dict[str, dict[str, Any]] = {
    "hard": {"nms": "hard"},
    "soft": {"nms": "soft"},
    "vote": {"nms": "vote"},
    "vote-class": {"nms": "vote", "vote_weight": "class"},
    "vote-quality": {"nms": "vote", "vote_weight": "quality"},
    "vote-overlap": {"nms": "vote", "vote_weight": "overlap"},
}


class InferenceOptionError(ValueError):
    """An inference option that is invalid, or that the model at hand cannot serve; the message names the fix."""


def split_inference_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split val/predict keyword arguments into (yolo_gfl inference options, Ultralytics' arguments).

    ``nms`` is ours only as a string (``hard``/``soft``/``vote`` or a typo of them); ``nms=True/False/None`` stays Ultralytics'.
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
        InferenceOptionError: naming the option, the value and what is allowed.
    """
    unknown = sorted(set(options) - set(INFERENCE_OPTIONS))
    if unknown:
        raise InferenceOptionError(f"unknown inference option(s) {unknown}; valid: {', '.join(INFERENCE_OPTIONS)}.")
    out = dict(DEFAULT_INFERENCE)
    paper = options.get("paper", False)
    if not isinstance(paper, bool):
        raise InferenceOptionError(f"inference option paper={paper!r} must be True or False.")
    if paper:
        out["pre_nms_topk"] = PAPER_SETTINGS["pre_nms_topk"]
        if args is not None:
            for key in ("conf", "iou", "max_det"):
                args.setdefault(key, PAPER_SETTINGS[key])
    if "nms" in options:
        kind = options["nms"]
        if not isinstance(kind, str) or kind.lower() not in NMS_KINDS:
            raise InferenceOptionError(f"inference option nms={kind!r} is not valid: expected hard | soft | vote.")
        out["nms"] = kind.lower()
    if options.get("pre_nms_topk") is not None:
        k = options["pre_nms_topk"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InferenceOptionError(f"inference option pre_nms_topk={k!r} is not valid: expected an int >= 1 (e.g. 1000).")
        out["pre_nms_topk"] = k
    if "soft_sigma" in options:
        sigma = options["soft_sigma"]
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 < sigma <= 10:
            raise InferenceOptionError(f"inference option soft_sigma={sigma!r} is not valid: expected a number in (0, 10].")
        out["soft_sigma"] = float(sigma)
    given = [k for k in VOTE_OPTIONS if options.get(k) is not None and options[k] != DEFAULT_INFERENCE[k]]
    if given and out["nms"] != "vote":
        raise InferenceOptionError(f"inference option(s) {', '.join(given)} tune score voting: add nms=vote, or leave "
                                   "them out.")
    if options.get("vote_sigma") is not None:
        sigma = options["vote_sigma"]
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not 0 < sigma <= 10:
            raise InferenceOptionError(f"inference option vote_sigma={sigma!r} is not valid: expected a number in "
                                       f"(0, 10] (PAA's: {VOTE_SIGMA}).")
        out["vote_sigma"] = float(sigma)
    if options.get("vote_weight") is not None:
        weight = options["vote_weight"]
        if not isinstance(weight, str) or weight.lower() not in VOTE_WEIGHTS:
            raise InferenceOptionError(f"inference option vote_weight={weight!r} is not valid: expected "
                                       f"{' | '.join(VOTE_WEIGHTS)}.")
        out["vote_weight"] = weight.lower()
    if options.get("vote_iou") is not None:
        t = options["vote_iou"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < 1:
            raise InferenceOptionError(f"inference option vote_iou={t!r} is not valid: expected a number in [0, 1) "
                                       "(PAA's code: 0.01), or leave it out for hard NMS's clusters.")
        out["vote_iou"] = float(t)
    return out


def detect_head(model: Any) -> nn.Module | None:
    """The detection head of ``model`` (a DetectionModel, or Ultralytics' AutoBackend around one); None for an exported
    model (ONNX, TorchScript, ...), which carries no head module."""
    m = model
    for _ in range(4):
        seq = getattr(m, "model", None)
        if isinstance(seq, nn.Sequential) and len(seq) and torch.is_tensor(getattr(seq[-1], "stride", None)):
            return seq[-1]
        m = seq
        if m is None:
            break
    return None


def resolve_modes(modes: Any) -> dict[str, dict[str, Any]]:
    """Named inference modes: a comma-separated string or list of ``INFERENCE_MODES`` names, or a dict of name ->
    options (each checked). Raises InferenceOptionError naming an unknown mode or a bad option."""
    if isinstance(modes, dict):
        named = {str(k): dict(v) for k, v in modes.items()}
    else:
        names = [m.strip() for m in (modes.split(",") if isinstance(modes, str) else list(modes)) if str(m).strip()]
        unknown = [m for m in names if m not in INFERENCE_MODES]
        if unknown or not names:
            raise InferenceOptionError(f"modes={modes!r}: expected a comma-separated list of {', '.join(INFERENCE_MODES)}"
                                       + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
        named = {m: dict(INFERENCE_MODES[m]) for m in names}
    for name, options in named.items():
        try:
            check_inference_options(options)
        except InferenceOptionError as e:
            raise InferenceOptionError(f"mode {name}: {e}") from None
    return named


def reads_quality(options: dict[str, Any]) -> bool:
    """Whether checked inference options vote with C or I alone, which the quality branch's I must be tapped for."""
    return options["nms"] == "vote" and options["vote_weight"] in QUALITY_VOTE_WEIGHTS


def head_strides(model: Any) -> list[float]:
    """Strides of the detection levels of ``model``; an exported model gets YOLOv8's P3-P5 strides (8, 16, 32)."""
    head = detect_head(model)
    return [float(s) for s in (head.stride.tolist() if head is not None else DEFAULT_STRIDES)]


class QualityTap:
    """Keeps the quality I (B, 1, A) that a model's quality branch computed in its last forward pass, for score voting
    weighted by C or I alone (``vote_weight=class|quality``); the head's output carries only J = C x I^a.

    A forward hook on the branch, removed by ``close()``. Raises InferenceOptionError for a model without a branch.
    """

    def __init__(self, model: Any, weight: str):
        head = detect_head(model)
        branch = getattr(head, "dgqp", None) if head is not None else None
        if branch is None:
            what = "an exported model" if head is None else "this model"
            raise InferenceOptionError(f"vote_weight={weight} needs the quality branch I of a PyTorch model with one "
                                       f"(-gfl); {what} has none: use vote_weight=score.")
        self.power = float(getattr(head, "quality_power", 1.0))  # J = sigmoid(C) x I^power
        self.quality: torch.Tensor | None = None
        self._handle = branch.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output) -> None:
        self.quality = output

    def take(self) -> torch.Tensor:
        """The quality of the last forward pass (and forget it)."""
        if self.quality is None:
            raise RuntimeError("no forward pass of the quality branch since the last take()")
        quality, self.quality = self.quality, None
        return quality

    def close(self) -> None:
        self._handle.remove()


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


def _candidate_rows(
    x: torch.Tensor, nc: int, conf: float, classes, multi_label: bool, max_nms: int
) -> torch.Tensor:
    """One image's (A, 4 + nc + extra) rows (xywh) -> the (n, 6 + extra) xyxy, score, class rows that enter NMS,
    formed as Ultralytics' ``non_max_suppression`` forms them (confidence filter, one row per class above ``conf``
    with ``multi_label``, class filter, the ``max_nms`` best)."""
    box, cls, extra = x[:, :4], x[:, 4 : 4 + nc], x[:, 4 + nc :]
    keep_rows = cls.amax(1) > conf
    box, cls, extra = xywh2xyxy(box[keep_rows]), cls[keep_rows], extra[keep_rows]
    if multi_label and nc > 1:
        i, j = torch.where(cls > conf)
        rows = torch.cat((box[i], cls[i, j, None], j[:, None].to(box.dtype), extra[i]), 1)
    else:
        score, j = cls.max(1, keepdim=True)
        rows = torch.cat((box, score, j.to(box.dtype), extra), 1)[score.view(-1) > conf]
    if classes is not None:
        rows = rows[(rows[:, 5:6] == torch.as_tensor(classes, device=rows.device)).any(1)]
    if rows.shape[0] > max_nms:
        rows = rows[rows[:, 4].argsort(descending=True)[:max_nms]]
    return rows


def _soft_nms_image(
    x: torch.Tensor, nc: int, conf: float, classes, agnostic: bool, multi_label: bool, max_det: int, sigma: float,
    max_nms: int,
) -> torch.Tensor:
    """Soft-NMS on one image's (A, 4 + nc + extra) rows (xywh boxes); returns (K, 6 + extra) rows as Ultralytics'."""
    rows = _candidate_rows(x, nc, conf, classes, multi_label, max_nms)
    group = torch.zeros_like(rows[:, 5]) if agnostic else rows[:, 5]
    keep, new_scores = batched_soft_nms(rows[:, :4], rows[:, 4], group, sigma, score_threshold=conf, max_det=max_det)
    out = rows[keep].float()
    out[:, 4] = new_scores.float()
    return out


MAX_WH = 7680  # Ultralytics' per-class coordinate offset for class-aware NMS (non_max_suppression's max_wh)


def _vote_image(
    x: torch.Tensor, nc: int, conf: float, iou: float, classes, agnostic: bool, multi_label: bool, max_det: int,
    max_nms: int, sigma: float, weight: str, vote_iou: float | None, quality_power: float,
) -> torch.Tensor:
    """Hard NMS as Ultralytics runs it, then score voting within each kept box's cluster, on one image's
    (A, 4 + nc + extra) rows; with ``weight`` in QUALITY_VOTE_WEIGHTS the last extra channel is the quality I
    (dropped from the output). Returns (K, 6 + extra) rows: Ultralytics' detections with the voted boxes."""
    rows = _candidate_rows(x, nc, conf, classes, multi_label, max_nms)
    group = torch.zeros_like(rows[:, 5]) if agnostic else rows[:, 5]
    keep = torchvision.ops.nms(rows[:, :4] + group[:, None] * MAX_WH, rows[:, 4], iou)[:max_det]
    if weight == "score":
        w = rows[:, 4]
    elif weight == "overlap":
        w = torch.ones_like(rows[:, 4])
    else:
        quality = rows[:, -1].float().clamp(min=torch.finfo(torch.float32).tiny)
        w = quality if weight == "quality" else rows[:, 4].float() / quality**quality_power
        rows = rows[:, :-1]
    out = rows[keep]
    exclusive = vote_iou is None
    out[:, :4] = vote_boxes(out[:, :4], group[keep], rows[:, :4], w, group, iou if exclusive else vote_iou, sigma,
                            exclusive=exclusive)
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
    vote_sigma: float = VOTE_SIGMA,
    vote_weight: str = "score",
    vote_iou: float | None = None,
    quality: torch.Tensor | None = None,
    quality_power: float = 1.0,
    sizes: list[int] | None = None,
    classes=None,
    agnostic: bool = False,
    multi_label: bool = False,
    nc: int = 0,
    max_nms: int = 30000,
    max_time_img: float = 0.05,
) -> list[torch.Tensor]:
    """Ultralytics' ``non_max_suppression`` contract, with the pre-NMS per-level cap, soft-NMS and score voting.

    Args:
        preds: (B, 4 + nc + extra, A) model output (xywh pixels, scores), or a tuple whose first element it is.
        conf, iou, max_det, classes, agnostic, multi_label, nc, max_nms: as Ultralytics' ``non_max_suppression``.
        max_time_img: hard NMS stops after 2 s + this many seconds per image and leaves the rest of the batch empty,
            as Ultralytics' (0.05); ``math.inf`` never stops (evaluation). Soft-NMS has no limit.
        nms: ``hard`` (Ultralytics' NMS), ``soft`` (Gaussian soft-NMS with ``soft_sigma``) or ``vote`` (hard NMS, then
            score voting with ``vote_sigma``, ``vote_weight`` and ``vote_iou``; see the module's docstring).
        quality: (B, 1, A) the quality I of the same forward pass, needed by ``vote_weight=class|quality``;
            ``quality_power`` is the head's exponent a in J = sigmoid(C) x I^a.
        pre_nms_topk: keep at most this many anchors per level (ranked by best class score) before NMS.
        sizes: anchors per level (``level_sizes``); needed with ``pre_nms_topk``.

    Returns:
        One (K, 6 + extra) tensor per image: x1, y1, x2, y2, score, class (soft-NMS: the decayed score).
    """
    pred = preds[0] if isinstance(preds, (list, tuple)) else preds
    nc = nc or pred.shape[1] - 4
    if reads_quality({"nms": nms, "vote_weight": vote_weight}):
        if quality is None:
            raise InferenceOptionError(f"vote_weight={vote_weight} needs the quality I of the forward pass (QualityTap).")
        pred = torch.cat((pred, quality.to(pred.dtype)), 1)  # an extra channel, carried through the per-level cap
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
    if nms == "vote":
        return [
            _vote_image(x, nc, conf, iou, classes, agnostic, multi_label, max_det, max_nms, vote_sigma, vote_weight,
                        vote_iou, quality_power)
            for x in pred.transpose(1, 2)
        ]
    if nms != "soft":
        raise InferenceOptionError(f"nms={nms!r} is not valid: expected hard | soft | vote.")
    return [
        _soft_nms_image(x, nc, conf, classes, agnostic, multi_label, max_det, soft_sigma, max_nms)
        for x in pred.transpose(1, 2)
    ]
