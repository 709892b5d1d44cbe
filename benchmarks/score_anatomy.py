"""Where do a detector's scores go? Dense (pre-NMS) and post-NMS score anatomy on a data set's val images.

    python benchmarks/score_anatomy.py --data ../shared/datasets/chess/chess.yaml --imgsz 320 \\
        --model runs/real_data/.../yolov8n-s0/train/weights/last.pt --model .../yolov8n-vfl-s0/train/weights/last.pt

The question it answers (real-data benchmark issue): do the IoU-aware variants leave the negatives *around objects*
with scores that survive NMS, so that mediocre boxes pile up where stock's scores rank by quality? For every model,
on un-augmented val images at ``--imgsz``:

* **dense**, per anchor, with the training assignment (Ultralytics' TAL run on the model's own predictions, as the
  loss does): the positives' score at their own class and their highest score at any *other* class (a look-alike
  class at a real object); the highest score of the *in-box negatives* (anchors whose centre lies inside an object
  but that TAL does not pick) and of the *background* anchors (centre inside no object): mean, 99th percentile and
  the share above 0.05;
* **post-NMS** (Ultralytics' validation NMS: conf 0.001, IoU 0.7, 300 per image), each detection by its IoU with the
  best ground truth of its own class: *tight* (>= 0.5), *loose* (0.1-0.5: a mediocre box on an object), *wrong class*
  (< 0.1 with its own class but >= 0.5 with an object of another class), *background* (the rest): detections per
  image and median score of each kind, and the share of loose boxes scoring above the image's median tight box.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    from ultralytics.utils.metrics import box_iou

    return box_iou(a, b) if len(a) and len(b) else torch.zeros(len(a), len(b))


def val_loader(data: str, imgsz: int, batch: int):
    """Batches of the data set's val split, un-augmented and letterboxed to ``imgsz``, in file order."""
    from torch.utils.data import DataLoader
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    cfg = get_cfg(overrides={"imgsz": imgsz, "mode": "val"})
    info = check_det_dataset(data)
    dataset = build_yolo_dataset(cfg, info["val"], batch, info, mode="val", stride=32)
    return DataLoader(dataset, batch_size=batch, shuffle=False, collate_fn=dataset.collate_fn)


def anatomy(model: str, data: str, imgsz: int, max_images: int | None = None, batch: int = 8) -> dict[str, float]:
    from ultralytics.cfg import get_cfg
    from ultralytics.utils.nms import non_max_suppression
    from ultralytics.utils.ops import xywh2xyxy
    from ultralytics.utils.tal import make_anchors

    from yolo_gfl import YOLOGFL
    from yolo_gfl.criterion import GFLDetectionLoss

    net = YOLOGFL(model).model.float().eval()
    cfg = get_cfg(overrides={"imgsz": imgsz, "mode": "val"})
    net.args = cfg
    loader = val_loader(data, imgsz, batch)
    loss = GFLDetectionLoss(net)  # only its assign(): Ultralytics' TAL, as the loss calls it
    strides = [int(s) for s in net.stride.tolist()]
    dense = {k: [] for k in ("pos_own", "pos_other", "inbox", "background")}
    post = {k: [] for k in ("tight", "loose", "wrong", "background")}
    images, loose_above = 0, []
    for b in loader:
        if max_images is not None and images >= max_images:
            break
        img = b["img"].float() / 255
        h, w = img.shape[2:]
        with torch.no_grad():
            out = net(img)
        y = out[0] if isinstance(out, (list, tuple)) else out  # (B, 4 + nc, A): xywh pixels, scores
        feats = [torch.zeros(1, 1, h // s, w // s) for s in strides]
        anchors, stride_t = make_anchors(feats, net.stride, 0.5)
        probs = y[:, 4:].permute(0, 2, 1).clamp(0, 1)  # (B, A, nc)
        boxes = xywh2xyxy(y[:, :4].permute(0, 2, 1))  # (B, A, 4) pixels
        labels, tboxes, _, fg, _ = loss.assign(probs, boxes / stride_t, anchors, stride_t, {"feats": feats}, b)
        own = torch.nn.functional.one_hot(labels.clamp(0, probs.shape[-1] - 1), probs.shape[-1]).bool()
        centres = anchors * stride_t  # (A, 2) pixels
        dets = non_max_suppression(y, conf_thres=0.001, iou_thres=0.7, max_det=300)
        for i in range(len(img)):
            gi = b["batch_idx"] == i
            gt = xywh2xyxy(b["bboxes"][gi] * torch.tensor([w, h, w, h]))
            gcls = b["cls"][gi].view(-1)
            p = probs[i]
            f = fg[i]
            dense["pos_own"].append(p[f][own[i][f]].numpy())
            other = p[f].masked_fill(own[i][f], 0).max(-1).values if f.any() else torch.zeros(0)
            dense["pos_other"].append(other.numpy())
            inside = ((centres[:, None, :] > gt[None, :, :2]) & (centres[:, None, :] < gt[None, :, 2:])).all(-1).any(-1)
            dense["inbox"].append(p[inside & ~f].max(-1).values.numpy())
            dense["background"].append(p[~inside].max(-1).values.numpy())
            d = dets[i]
            same = _iou(d[:, :4], gt)
            match = same.masked_fill(d[:, 5:6] != gcls[None, :], 0).max(-1).values if len(gt) else torch.zeros(len(d))
            anyc = same.max(-1).values if len(gt) else torch.zeros(len(d))
            kind = np.where(match >= 0.5, "tight", np.where(match >= 0.1, "loose",
                            np.where(anyc >= 0.5, "wrong", "background")))
            for k in post:
                post[k].append(d[kind == k, 4].numpy())
            tight = d[kind == "tight", 4]
            if len(tight):
                loose = d[kind == "loose", 4]
                loose_above.append((loose > tight.median()).float().sum().item())
            images += 1
    res: dict[str, float] = {"images": images}
    for k, v in dense.items():
        s = np.concatenate(v) if v else np.zeros(0)
        res[f"{k}_mean"] = float(s.mean()) if len(s) else float("nan")
        res[f"{k}_p99"] = float(np.percentile(s, 99)) if len(s) else float("nan")
        res[f"{k}_gt05"] = float((s > 0.05).mean()) if len(s) else float("nan")
    for k, v in post.items():
        s = np.concatenate(v) if v else np.zeros(0)
        res[f"{k}_per_img"] = len(s) / max(images, 1)
        res[f"{k}_median"] = float(np.median(s)) if len(s) else float("nan")
    res["loose_above_tight_median_per_img"] = sum(loose_above) / max(images, 1)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="checkpoint (repeatable); label = run folder")
    ap.add_argument("--data", required=True, help="data YAML")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--max-images", type=int, default=None)
    args = ap.parse_args(argv)
    rows = []
    for m in args.model:
        p = Path(m)
        label = p.parents[2].name if p.parent.name == "weights" else p.stem
        rows.append((label, anatomy(m, args.data, args.imgsz, args.max_images)))
    keys = list(rows[0][1])
    print("| " + " | ".join(["quantity"] + [r[0] for r in rows]) + " |")
    print("|---|" + "--:|" * len(rows))
    for k in keys:
        print(f"| {k} | " + " | ".join(f"{r[1][k]:.4g}" for r in rows) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
