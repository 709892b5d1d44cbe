"""The Markdown tables of a record: per data set, the summary against stock, the inference modes and the learning
curves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .settings import DATASETS
from .stats import (CURVE_SHARE, GOAL_MEAN_DELTA, epochs_to_reach, goal_check, mean_over_data, mean_sd, mode_value,
                    over_data, paired_by_seed, paired_delta)


def fmt(mean: float | None, sd: float | None, scale: float, digits: int, sign: bool = False) -> str:
    if mean is None:
        return "—"
    text = f"{mean * scale:+.{digits}f}" if sign else f"{mean * scale:.{digits}f}"
    return text + ("" if sd is None else f" ± {sd * scale:.{digits}f}")


COLUMNS = (("mAP50-95", 100, 1), ("mAP50", 100, 1), ("AP75", 100, 1), ("coco_AP", 100, 1), ("spearman", 1, 3),
           ("spearman_kept", 1, 3), ("spearman_top", 1, 3), ("dets_per_image", 1, 1), ("kept_per_image", 1, 1))
DELTAS = (("mAP50-95", 100, 1), ("AP75", 100, 1), ("spearman", 1, 3), ("spearman_top", 1, 3))
LABELS = {"mAP50-95": "mAP50-95", "mAP50": "mAP50", "AP75": "AP75", "coco_AP": "COCO AP", "spearman": "Spearman",
          "spearman_kept": "Spearman (conf >= 0.25)", "spearman_top": "Spearman (top K)", "dets_per_image": "dets/img",
          "kept_per_image": "kept/img"}
FOOTNOTES = {"spearman_top": "²"}  # the mark of the note under the tables that explains the column


def tables(record: dict[str, Any]) -> str:
    """Markdown: one table per data set (means ± std over seeds, paired Δ to stock ± SE) and a summary table."""
    cells = record["cells"]
    stock = Path(record["stock"]).stem
    data_names = [d for d in record["datasets"] if any(c["data"] == d for c in cells)]
    models = list(dict.fromkeys([stock] + [c["model"] for c in cells]))
    out = []
    head = ("| model | seeds | " + " | ".join(LABELS[k] + FOOTNOTES.get(k, "") for k, _, _ in COLUMNS) + " | "
            + " | ".join(f"Δ {LABELS[k]}" for k, _, _ in DELTAS) + " |")
    rule = "|---|" + "--:|" * (len(COLUMNS) + len(DELTAS) + 1)
    summary: dict[str, list[tuple]] = {}
    for d in data_names:
        s = record["datasets"][d]
        out += [f"### {d}", "", f"{s['epochs']} epochs at {s['imgsz']} px, {s.get('train_images') or 'all'} train images, "
                f"batch {s['batch']}; mAP and AP in %.", "", head, rule]
        for m in models:
            rows = [c for c in cells if c["data"] == d and c["model"] == m]
            if not rows:
                continue
            vals = [fmt(*mean_sd([r[k] for r in rows if r.get(k) is not None]), scale, dg) for k, scale, dg in COLUMNS]
            deltas = []
            for key, scale, dg in DELTAS:
                mean, se, n = paired_delta(cells, d, m, key, record["stock"])
                deltas.append("" if m == stock else fmt(mean, se, scale, dg, sign=True))
                if m != stock and key == "mAP50-95" and mean is not None:
                    summary.setdefault(m, []).append((d, mean, se, n))
            out.append(f"| {m} | {len(rows)} | " + " | ".join(vals + deltas) + " |")
        copies = {}
        for c in cells:
            if c["data"] == d and c.get("same_recipe_as"):
                copies.setdefault((c["model"], c["same_recipe_as"]), []).append(str(c["seed"]))
        out += [""] + [f"{m}, seed(s) {', '.join(s)}: the cells of {src}, the same recipe (not trained again)."
                       for (m, src), s in copies.items()]
        resumed = [f"{c['model']} seed {c['seed']}" for c in cells if c["data"] == d and c.get("training_resumed")]
        if resumed:
            out.append(f"Trained in two parts (resumed from last.pt after an interruption, so not bit-identical to a "
                       f"run through): {', '.join(resumed)}.")
        out.append("")
    if summary:
        out += ["### Summary: paired Δ to stock (points, mean over seeds ± SE)", "",
                "| model | " + " | ".join(f"Δ mAP50-95 {d}" for d in data_names) + " | Δ mAP50-95, mean over data sets "
                "| Δ AP75, mean | Δ Spearman, mean | Δ Spearman (top K), mean | goal¹ |",
                "|---|" + "--:|" * (len(data_names) + 4) + "---|"]
        # The goal is over the benchmark's data sets: a record of some of them (a probe's) cannot meet it.
        required = list(DATASETS) if set(data_names) <= set(DATASETS) else data_names
        for m, entries in summary.items():
            by_data = {d: (mean, se) for d, mean, se, _ in entries}
            cols = [fmt(*by_data[d], 100, 2, sign=True) if d in by_data else "—" for d in data_names]
            if set(required) <= set(by_data):
                for key, scale, dg in (("mAP50-95", 100, 2), ("AP75", 100, 2), ("spearman", 1, 3),
                                       ("spearman_top", 1, 3)):
                    cols.append(fmt(*mean_over_data(cells, data_names, m, key, record["stock"]), scale, dg,
                                     sign=True))
                met, misses = goal_check(cells, data_names, m, record["stock"])
                cols.append("met" if met else "not met: " + "; ".join(misses))
            else:
                cols += ["—", "—", "—", "—", f"needs every data set ({len(set(by_data) & set(required))} of "
                                             f"{len(required)})"]
            out.append(f"| {m} | " + " | ".join(cols) + " |")
        out += ["", f"¹ The goal (issue 12): Δ mAP50-95 of at least +{GOAL_MEAN_DELTA * 100:.1f} points on the mean over "
                "the data sets, on no data set below stock by more than one SE, and Δ AP75 and Δ Spearman above 0 on "
                "the mean over the data sets. The SE of a mean over data sets is the root of the sum of squared SEs "
                "over their number.", ""]
    if data_names:
        out += ["² Spearman over each image's K best-scored detections, K its number of objects: a population the same "
                "size for every model, so it compares how the scores order boxes by IoU, where the all-detection "
                "figure also moves with how many weak boxes pass conf 0.001. Cells made before it was added "
                "(2026-12-02) lack it (—).", ""]
    return "\n".join(out)



def inference_tables(record: dict[str, Any]) -> str:
    """Markdown for cells with 'inference' entries: per data set, each model x mode against stock with hard NMS
    (paired by seed); the mean over data sets; voting's gain for each model against stock's gain; and, for cells with
    learning curves, the epochs each model takes to reach 95% of stock's final mAP50-95 on the same seed."""
    cells = [c for c in record["cells"] if c.get("inference") or c.get("curve")]
    if not cells:
        return ""
    stock = Path(record["stock"]).stem
    data_names = [d for d in record["datasets"] if any(c["data"] == d for c in cells)]
    models = list(dict.fromkeys([stock] + [c["model"] for c in cells]))
    modes = list(dict.fromkeys(m for c in cells for m, v in (c.get("inference") or {}).items() if "skipped" not in v))
    hard = lambda key: (lambda c: mode_value(c, "hard", key))  # noqa: E731
    out = ["## Inference modes: each model x mode against stock with hard NMS", "",
           "Paired by seed; points (mAP, AP) ± SE; the same final weights evaluated under each mode.", ""]
    summary: dict[tuple[str, str], dict[str, list]] = {}
    for d in data_names:
        s = record["datasets"][d]
        out += [f"### {d} ({s['epochs']} epochs at {s['imgsz']} px)", "",
                "| model | mode | seeds | mAP50-95 | AP75 | Spearman (top K) | Δ mAP50-95 | Δ AP75 |",
                "|---|---|--:|--:|--:|--:|--:|--:|"]
        for m in models:
            rows = [c for c in cells if c["data"] == d and c["model"] == m]
            for mode in modes:
                vals = {k: [v for v in (mode_value(c, mode, k) for c in rows) if v is not None]
                        for k in ("mAP50-95", "AP75", "spearman_top")}
                if not vals["mAP50-95"]:
                    continue
                deltas = {}
                for key in ("mAP50-95", "AP75"):
                    deltas[key] = paired_by_seed(cells, d, m, lambda c, k=key, mo=mode: mode_value(c, mo, k), hard(key),
                                                 record["stock"])
                    summary.setdefault((m, mode), {}).setdefault(key, []).append(deltas[key])
                same = m == stock and mode == "hard"
                out.append(f"| {m} | {mode} | {len(vals['mAP50-95'])} | "
                           f"{fmt(*mean_sd(vals['mAP50-95']), 100, 1)} | {fmt(*mean_sd(vals['AP75']), 100, 1)} | "
                           f"{fmt(*mean_sd(vals['spearman_top']), 1, 3)} | "
                           + ("" if same else fmt(*deltas["mAP50-95"][:2], 100, 2, sign=True)) + " | "
                           + ("" if same else fmt(*deltas["AP75"][:2], 100, 2, sign=True)) + " |")
        out.append("")
    full = [k for k, v in summary.items() if len(v["mAP50-95"]) == len(data_names)]
    if full:
        out += [f"### Mean over the data sets ({', '.join(data_names)}): Δ to stock with hard NMS", "",
                "| model | mode | Δ mAP50-95 | Δ AP75 |", "|---|---|--:|--:|"]
        for m, mode in full:
            if m == stock and mode == "hard":
                continue
            out.append(f"| {m} | {mode} | {fmt(*over_data(summary[(m, mode)]['mAP50-95']), 100, 2, sign=True)} | "
                       f"{fmt(*over_data(summary[(m, mode)]['AP75']), 100, 2, sign=True)} |")
        out.append("")
    votes = [mode for mode in modes if mode.startswith("vote")]
    if votes and len(models) > 1:
        out += ["### Does an IoU-aware model gain more from voting than stock does?", "",
                "Each model's gain (mode - hard, same weights) minus stock's gain on the same seed, from stock's same "
                "mode where stock can serve it (C and I alone need a quality branch: there stock's `vote`, "
                "score-weighted); stock's own rows: each mode's gain against its `vote`.", "",
                "| model | mode | against stock's | " + " | ".join(f"{d}" for d in data_names) + " | mean |",
                "|---|---|---|" + "--:|" * (len(data_names) + 1)]

        def gain(mode: str, key: str = "mAP50-95") -> Callable[[dict], float | None]:
            def f(c: dict) -> float | None:
                a, b = mode_value(c, mode, key), mode_value(c, "hard", key)
                return None if a is None or b is None else a - b
            return f

        stock_serves = {mode for mode in votes
                        if any(c["model"] == stock and mode_value(c, mode, "mAP50-95") is not None for c in cells)}
        for m in models:
            for mode in votes:
                if m == stock and mode == "vote":
                    continue
                ref = mode if m != stock and mode in stock_serves else "vote"
                per = [paired_by_seed(cells, d, m, gain(mode), gain(ref), record["stock"]) for d in data_names]
                if all(n == 0 for _, _, n in per):
                    continue
                out.append(f"| {m} | {mode} | {ref} | " + " | ".join(fmt(a, b, 100, 2, sign=True) for a, b, _ in per)
                           + f" | {fmt(*over_data(per), 100, 2, sign=True)} |")
        out.append("")
    curved = [c for c in cells if c.get("curve")]
    if curved:
        out += [f"### Learning curves: epochs to reach {CURVE_SHARE:.0%} of stock's final mAP50-95 (same seed)", "",
                "Validation mAP50-95 after every epoch (Ultralytics' val settings); the target is stock's final "
                "epoch on the same seed. Mean ± SE over seeds; Δ: paired, model - stock; — where a model never "
                "reached it.", "",
                "| model | " + " | ".join(data_names) + " | Δ epochs, mean |", "|---|" + "--:|" * (len(data_names) + 1)]
        target = {(c["data"], c["seed"]): CURVE_SHARE * c["curve"][-1] for c in curved if c["model"] == stock}

        def reach(c: dict) -> float | None:
            t = target.get((c["data"], c["seed"]))
            e = epochs_to_reach(c.get("curve"), t) if t is not None else None
            return float(e) if e is not None else None

        for m in models:
            cols, per = [], []
            for d in data_names:
                vals = [v for v in (reach(c) for c in curved if c["data"] == d and c["model"] == m) if v is not None]
                cols.append(fmt(*mean_sd(vals), 1, 1) if vals else "—")
                per.append(paired_by_seed(curved, d, m, reach, reach, record["stock"]))
            mean = "" if m == stock else fmt(*over_data(per), 1, 1, sign=True)
            out.append(f"| {m} | " + " | ".join(cols) + f" | {mean} |")
        out.append("")
    return "\n".join(out)
