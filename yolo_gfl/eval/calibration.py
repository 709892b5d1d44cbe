"""Score-IoU calibration: does a detector's confidence rank its boxes by localisation quality?

IoU-aware heads (VFL's IACS, GFL's QFL score, GFLv2's DGQP) are trained so that the classification score predicts the
IoU of the box with its object. This module measures that on real detections:

1. :func:`match_detections` pairs every detection of one image with the IoU to its best ground truth of the same
   class, giving (score, IoU) pairs;
2. :func:`calibration_report` summarises the pairs of a whole data set: Pearson (linear) and Spearman (rank)
   correlation, and a decile table (mean IoU and mean score per score decile), optionally written as CSV, JSON and a
   PNG plot.

Only numpy and matplotlib are used (scipy is not a dependency: Spearman's rho is Pearson's r on average ranks).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .detections import as_detection_arrays, to_numpy

__all__ = ["box_iou_np", "match_detections", "collect_pairs", "top_per_object", "rankdata_average", "pearson",
           "spearman", "calibration_report", "KEEP_CONF"]  # fmt: skip

N_BINS = 10  # score deciles
KEEP_CONF = 0.25  # the detections a user keeps: Ultralytics' default predict confidence threshold


# --------------------------------------------------------------------------------------------------------- matching
def box_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes, (N, 4) x (M, 4) -> (N, M) float64 (0 where the union is empty)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    wh = (np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])).clip(0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    # Degenerate (zero-area) boxes: define IoU 0 rather than dividing by zero.
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _gt_arrays(gts) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth as ``(boxes (K, 4) xyxy, classes (K,))`` from a (K, 5) ``[x1, y1, x2, y2, cls]`` array or a
    ``(boxes, classes)`` tuple."""
    if isinstance(gts, tuple) and len(gts) == 2:
        boxes, classes = gts
    else:
        arr = to_numpy(gts).astype(np.float64).reshape(-1, 5)
        boxes, classes = arr[:, :4], arr[:, 4]
    return to_numpy(boxes).astype(np.float64).reshape(-1, 4), to_numpy(classes).astype(np.float64).reshape(-1)


def match_detections(dets, gts) -> np.ndarray:
    """(score, IoU) pairs of one image: each detection with its best-IoU ground truth of the same class.

    Every detection is paired independently (vectorised: one (N, K) IoU matrix, other-class pairs masked out), so
    several detections may pair with the same GT box. That is intentional: unlike AP matching, the point is to
    measure how the score ranks *all* boxes by their quality, duplicates included -- a well-calibrated head gives a
    sloppy duplicate a lower score than the tight box of the same object. Detections with no same-class GT
    overlapping them (IoU 0: plain false positives) are excluded, since they carry no localisation quality to rank.

    Args:
        dets: N detections in pixels: an (N, 6) ``[x1, y1, x2, y2, score, cls]`` array/tensor or any form
            :func:`yolo_gfl.eval.detections.as_detection_arrays` accepts.
        gts: K ground-truth boxes, same pixel frame: a (K, 5) ``[x1, y1, x2, y2, cls]`` array/tensor or a tuple
            ``(boxes (K, 4), classes (K,))``.

    Returns:
        (M, 2) float64 array of ``[score, iou]`` with M <= N, in detection order.
    """
    boxes, scores, det_classes = as_detection_arrays(dets)
    gt_boxes, gt_classes = _gt_arrays(gts)
    if not len(boxes) or not len(gt_boxes):
        return np.zeros((0, 2))
    iou = box_iou_np(boxes, gt_boxes)  # (N, K)
    iou[det_classes[:, None] != gt_classes[None, :]] = 0.0  # only same-class GT count
    best = iou.max(axis=1)  # (N,)
    keep = best > 0
    return np.stack([scores[keep], best[keep]], axis=1)


def collect_pairs(dets_per_image: Sequence[Any], gts_per_image: Sequence[Any]) -> np.ndarray:
    """:func:`match_detections` over a data set: concatenated (M, 2) ``[score, iou]`` pairs of all images."""
    if len(dets_per_image) != len(gts_per_image):
        raise ValueError(f"{len(dets_per_image)} detection entries but {len(gts_per_image)} ground-truth entries")
    pairs = [match_detections(d, g) for d, g in zip(dets_per_image, gts_per_image)]
    return np.concatenate(pairs, axis=0) if pairs else np.zeros((0, 2))


def top_per_object(dets_per_image: Sequence[Any], gts_per_image: Sequence[Any]) -> list[np.ndarray]:
    """Each image's K best-scored detections, K its number of ground-truth objects: a population of the same size
    for every detector, so that Spearman over it compares how two detectors *order* their boxes, not how many weak
    boxes each lets through the confidence threshold (which moves the all-detection figure on its own).

    Args:
        dets_per_image: per image, N_i detections in any form :func:`yolo_gfl.eval.detections.as_detection_arrays` accepts.
        gts_per_image: per image, K_i ground-truth boxes as :func:`match_detections` takes them.

    Returns:
        Per image, a (min(N_i, K_i), 6) ``[x1, y1, x2, y2, score, cls]`` float64 array, highest score first (ties
        keep detection order).
    """
    if len(dets_per_image) != len(gts_per_image):
        raise ValueError(f"{len(dets_per_image)} detection entries but {len(gts_per_image)} ground-truth entries")
    out = []
    for dets, gts in zip(dets_per_image, gts_per_image):
        boxes, scores, classes = as_detection_arrays(dets)
        k = len(_gt_arrays(gts)[0])
        best = np.argsort(-scores, kind="stable")[:k]
        out.append(np.concatenate([boxes[best], scores[best, None], classes[best, None]], axis=1))
    return out


# ------------------------------------------------------------------------------------------------------ statistics
def rankdata_average(x: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array with ties given their average rank (``scipy.stats.rankdata(method="average")``).

    (N,) -> (N,) float64. Example: [10, 20, 20, 30] -> [1, 2.5, 2.5, 4].
    """
    x = np.asarray(x).reshape(-1)
    n = len(x)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts_group = np.r_[True, sorted_x[1:] != sorted_x[:-1]] if n else np.zeros(0, bool)
    group = np.cumsum(starts_group) - 1  # group index of each sorted position
    first = np.flatnonzero(starts_group)  # 0-based first position of each tie group
    last = np.r_[first[1:], n] - 1  # 0-based last position
    mean_rank = (first + last) / 2 + 1  # 1-based average of the group's positions
    ranks = np.empty(n, np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation of two (N,) arrays; ``None`` when undefined (N < 2 or either is constant)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2:
        return None
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    if denom == 0.0 or not math.isfinite(denom):
        return None
    return float(np.clip(float(dx @ dy) / denom, -1.0, 1.0))  # rounding can land a hair outside [-1, 1]


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rho: Pearson correlation of the average ranks (the standard tie handling); ``None`` if undefined."""
    return pearson(rankdata_average(x), rankdata_average(y))


def _correlations(scores: np.ndarray, ious: np.ndarray) -> dict[str, Any]:
    """``{count, spearman, pearson}`` of one population of (score, IoU) pairs, (M,) and (M,)."""
    return {"count": len(scores), "spearman": spearman(scores, ious), "pearson": pearson(scores, ious)}


def _as_pairs(pairs_or_arrays) -> np.ndarray:
    """(M, 2) ``[score, iou]`` from an (M, 2) array, a ``(scores, ious)`` tuple, a mapping with ``score``/``iou``
    keys, or a list of per-image (M_i, 2) pair arrays."""
    if isinstance(pairs_or_arrays, Mapping):
        scores = pairs_or_arrays.get("score", pairs_or_arrays.get("scores"))
        ious = pairs_or_arrays.get("iou", pairs_or_arrays.get("ious"))
        pairs_or_arrays = (scores, ious)
    if isinstance(pairs_or_arrays, tuple) and len(pairs_or_arrays) == 2:
        scores, ious = (to_numpy(a).astype(np.float64).reshape(-1) for a in pairs_or_arrays)
        if len(scores) != len(ious):
            raise ValueError(f"{len(scores)} scores but {len(ious)} IoUs")
        return np.stack([scores, ious], axis=1)
    if isinstance(pairs_or_arrays, list) and pairs_or_arrays and all(np.ndim(p) == 2 for p in pairs_or_arrays):
        return np.concatenate([to_numpy(p).astype(np.float64).reshape(-1, 2) for p in pairs_or_arrays], axis=0)
    return to_numpy(pairs_or_arrays).astype(np.float64).reshape(-1, 2)


def _decile_table(scores: np.ndarray, ious: np.ndarray) -> list[dict[str, float | int]]:
    """Mean IoU / mean score / count per score decile, as a list of row dicts (empty bins omitted).

    Bins are equal-count over the score ranks: bin = floor(10 * (rank - 1) / N) with *average* ranks, so with distinct
    scores every bin holds N/10 pairs, while a group of tied scores always lands whole in one bin (quantile edges
    would instead collapse into empty or duplicated bins, or split a tie arbitrarily). Bins are numbered 0..9 by
    where their ranks fall, so a heavily tied set may leave some numbers out.
    """
    n = len(scores)
    if n == 0:
        return []
    bins = np.minimum(np.floor(N_BINS * (rankdata_average(scores) - 1) / n).astype(int), N_BINS - 1)
    table = []
    for b in range(N_BINS):
        mask = bins == b
        if mask.any():
            s, q = scores[mask], ious[mask]
            table.append({"bin": b, "count": int(mask.sum()), "score_min": float(s.min()), "score_max": float(s.max()),
                          "score_mean": float(s.mean()), "iou_mean": float(q.mean())})  # fmt: skip
    return table


def calibration_report(
    pairs_or_arrays,
    save_dir: str | os.PathLike | None = None,
    name: str = "calibration",
    detections: Sequence[Any] | None = None,
    keep_conf: float = KEEP_CONF,
    ground_truth: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Correlation between detection score and IoU, with a per-decile table; optionally saved as CSV/JSON/PNG.

    Args:
        pairs_or_arrays: M (score, IoU) pairs: an (M, 2) array (e.g. from :func:`collect_pairs`), a tuple
            ``(scores (M,), ious (M,))``, a mapping with ``score``/``iou`` keys, or a list of per-image (M_i, 2)
            arrays. Non-finite pairs are dropped (with a warning).
        save_dir: when given, writes ``<name>.csv`` (the decile table), ``<name>.json`` (this dict) and ``<name>.png``
            (score vs IoU: scatter, or a 2-D histogram for many pairs, with the decile means and y = x overlaid).
        name: file stem for the outputs.
        detections: optionally the per-image detections the pairs came from (each (N_i, 6) ``[x1, y1, x2, y2,
            score, cls]``), to count how many a detector emits per image, matched or not.
        keep_conf: the score from which a user keeps a detection (Ultralytics' predict default, 0.25).
        ground_truth: with ``detections``, the per-image ground truth (as :func:`collect_pairs` takes it), to rank
            each image's top-K detections, K its number of objects (:func:`top_per_object`).

    Returns:
        Plain dict: ``count`` (int), ``pearson`` and ``spearman`` (float in [-1, 1], or **None** when undefined:
        fewer than 2 pairs, or constant scores or IoUs -- a made-up 0.0 would read as "no correlation", whereas None
        says "not measurable", and None is valid JSON where NaN is not), ``score_mean``/``iou_mean`` (float or None
        when empty), ``deciles`` (list of ``{bin, count, score_min, score_max, score_mean, iou_mean}``), and
        ``warning`` (str, or None when all is well); ``kept``: ``{conf, count, spearman, pearson}`` over the pairs
        scoring at least ``keep_conf`` (the ranking among the boxes a user keeps); with ``detections``,
        ``detections_per_image`` and ``kept_per_image`` (means over images, all detections, matched or not); with
        ``ground_truth`` too, ``top_per_object``: ``{count, spearman, pearson}`` over the matched pairs among each
        image's top-K detections, a population the same size for every detector.
    """
    if ground_truth is not None and detections is None:
        raise ValueError("calibration_report: ground_truth ranks each image's detections, so it needs detections= "
                         "too (the per-image detections the pairs came from)")
    pairs = _as_pairs(pairs_or_arrays)
    warnings = []
    finite = np.isfinite(pairs).all(axis=1)
    if not finite.all():
        warnings.append(f"{int((~finite).sum())} pairs with non-finite score or IoU were dropped")
        pairs = pairs[finite]
    scores, ious = pairs[:, 0], pairs[:, 1]
    n = len(pairs)

    r, rho = pearson(scores, ious), spearman(scores, ious)
    if n < 2:
        warnings.append(f"correlation undefined with {n} pair(s): reported as None")
    elif r is None:
        constant = "scores" if np.ptp(scores) == 0 else "IoUs"
        warnings.append(f"correlation undefined: all {constant} are equal; reported as None")

    report = {
        "count": n,
        "pearson": r,
        "spearman": rho,
        "score_mean": float(scores.mean()) if n else None,
        "iou_mean": float(ious.mean()) if n else None,
        "deciles": _decile_table(scores, ious),
        "warning": "; ".join(warnings) or None,
    }
    kept = scores >= keep_conf
    report["kept"] = {"conf": float(keep_conf), **_correlations(scores[kept], ious[kept])}
    if detections is not None:
        per_image = [as_detection_arrays(d)[1] for d in detections]
        n_img = max(1, len(per_image))
        report["detections_per_image"] = sum(len(s_) for s_ in per_image) / n_img
        report["kept_per_image"] = sum(int((s_ >= keep_conf).sum()) for s_ in per_image) / n_img
        if ground_truth is not None:
            top = collect_pairs(top_per_object(detections, ground_truth), ground_truth)
            top = top[np.isfinite(top).all(axis=1)]
            report["top_per_object"] = _correlations(top[:, 0], top[:, 1])

    if save_dir is not None:
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        columns = ["bin", "count", "score_min", "score_max", "score_mean", "iou_mean"]
        with open(save_dir / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(report["deciles"])
        with open(save_dir / f"{name}.json", "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, allow_nan=False)  # allow_nan=False: fail loudly rather than write bad JSON
        _plot(scores, ious, report, save_dir / f"{name}.png")
    return report


def _plot(scores: np.ndarray, ious: np.ndarray, report: dict[str, Any], file: Path) -> None:
    """Score-vs-IoU figure: points (or their 2-D density when there are many), decile means and the y = x line."""
    # The object-oriented API with an explicit Agg canvas: no pyplot state, no GUI backend, safe in threads and tests.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if len(scores) > 2000:  # a scatter of many points is an opaque blob: show the density instead
        _, _, _, image = ax.hist2d(scores, ious, bins=50, range=[[0, 1], [0, 1]], cmap="Blues", cmin=1)
        fig.colorbar(image, ax=ax, label="pairs")
    elif len(scores):
        ax.scatter(scores, ious, s=6, alpha=0.4, color="tab:blue", linewidths=0, label="detections")
    ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=1, label="score = IoU")
    if report["deciles"]:
        ax.plot([row["score_mean"] for row in report["deciles"]], [row["iou_mean"] for row in report["deciles"]],
                "o-", color="tab:red", ms=5, label="decile means")  # fmt: skip

    def fmt(v):
        return "n/a" if v is None else f"{v:.3f}"

    r, rho, n = fmt(report["pearson"]), fmt(report["spearman"]), report["count"]
    ax.set_title(f"Pearson r = {r}, Spearman ρ = {rho}, n = {n}")
    ax.set_xlabel("score")
    ax.set_ylabel("IoU with best same-class GT")
    lo = min(0.0, float(scores.min())) if len(scores) else 0.0  # scores of raw logits could fall outside [0, 1]
    hi = max(1.0, float(scores.max())) if len(scores) else 1.0
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(file)
