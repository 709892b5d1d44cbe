"""Paired statistics over the record's cells: model minus stock on the same seed, means over data sets, the goal,
and the figures of the inference modes and learning curves."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .settings import STOCK


def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def paired_delta(cells: list[dict], data: str, model: str, key: str = "mAP50-95",
                 stock: str = STOCK) -> tuple[float | None, float | None, int]:
    """Mean over seeds of (model - stock) on the same seed, its standard error, and the number of pairs."""
    by_seed = {c["seed"]: c[key] for c in cells if c["data"] == data and c["model"] == Path(stock).stem
               and c.get(key) is not None}
    diffs = [c[key] - by_seed[c["seed"]] for c in cells if c["data"] == data and c["model"] == model
             and c["seed"] in by_seed and c.get(key) is not None]
    if not diffs:
        return None, None, 0
    mean = statistics.fmean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else None
    return mean, se, len(diffs)


GOAL_MEAN_DELTA = 0.010  # +1.0 point mAP50-95 on the mean over the data sets (issue 12's goal)


def mean_over_data(cells: list[dict], data_names: list[str], model: str, key: str = "mAP50-95",
                   stock: str = STOCK) -> tuple[float | None, float | None]:
    """Mean over data sets of the paired Δ to stock, and its SE (root of the summed squared SEs / number of sets;
    the sets are independent). (None, None) unless every data set has the model paired with stock."""
    per = [paired_delta(cells, d, model, key, stock) for d in data_names]
    if not per or any(n == 0 for _, _, n in per):
        return None, None
    mean = statistics.fmean(m for m, _, _ in per)
    ses = [se for _, se, _ in per]
    return mean, (math.sqrt(sum(x * x for x in ses)) / len(ses) if all(x is not None for x in ses) else None)


def goal_check(cells: list[dict], data_names: list[str], model: str, stock: str = STOCK) -> tuple[bool, list[str]]:
    """Whether ``model`` meets the goal on the record: mean Δ mAP50-95 >= GOAL_MEAN_DELTA, no data set with
    Δ + SE < 0 (below stock by more than one SE), mean Δ AP75 > 0 and mean Δ Spearman > 0. Returns (met, what misses)."""
    misses = []
    mean, _ = mean_over_data(cells, data_names, model, stock=stock)
    if mean is None:
        return False, ["not paired with stock on every data set"]
    if mean < GOAL_MEAN_DELTA:
        misses.append(f"mean {mean * 100:+.2f} < +{GOAL_MEAN_DELTA * 100:.1f}")
    for d in data_names:
        delta, se, _ = paired_delta(cells, d, model, stock=stock)
        if delta + (se or 0.0) < 0:
            misses.append(f"{d} below by more than one SE")
    for key, name in (("AP75", "AP75"), ("spearman", "Spearman")):
        value, _ = mean_over_data(cells, data_names, model, key, stock)
        if value is None or value <= 0:
            misses.append(f"{name} not above stock")
    return not misses, misses



def mode_value(cell: dict[str, Any], mode: str, key: str) -> float | None:
    """A cell's ``key`` under inference ``mode`` (its 'inference' entry); None where it was not evaluated so."""
    entry = (cell.get("inference") or {}).get(mode) or {}
    value = entry.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def paired_by_seed(cells: list[dict], data: str, model: str, value: Callable[[dict], float | None],
                   baseline: Callable[[dict], float | None], stock: str = STOCK) -> tuple[float | None, float | None, int]:
    """Mean over seeds of value(model's cell) - baseline(stock's cell of the same seed), its SE, and the pair count."""
    base = {c["seed"]: baseline(c) for c in cells if c["data"] == data and c["model"] == Path(stock).stem}
    diffs = [value(c) - base[c["seed"]] for c in cells if c["data"] == data and c["model"] == model
             and base.get(c["seed"]) is not None and value(c) is not None]
    if not diffs:
        return None, None, 0
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else None
    return statistics.fmean(diffs), se, len(diffs)


def over_data(per: list[tuple[float | None, float | None, int]]) -> tuple[float | None, float | None]:
    """Mean over data sets of paired figures and its SE (root of summed squared SEs / count); None unless all."""
    if not per or any(n == 0 for _, _, n in per):
        return None, None
    ses = [se for _, se, _ in per]
    return (statistics.fmean(m for m, _, _ in per),
            math.sqrt(sum(x * x for x in ses)) / len(ses) if all(x is not None for x in ses) else None)


def epochs_to_reach(curve: list[float] | None, target: float) -> int | None:
    """The first epoch (1-based) whose validation mAP50-95 is at least ``target``; None if it never is."""
    for epoch, value in enumerate(curve or [], 1):
        if value >= target:
            return epoch
    return None


CURVE_SHARE = 0.95  # issue 34: epochs to reach 95% of stock's final mAP50-95 (same seed)
