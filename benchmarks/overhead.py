"""Overhead of each yolo_gfl variant against stock YOLOv8, measured side by side in one run.

    python benchmarks/overhead.py [--scale n] [--imgsz 640] [--runs 30] [--device cpu] [--variants gfl,qfl,vfl,vfnet]
    python benchmarks/overhead.py --variants vfnet,vfnet:vfnet_star_op=deform_conv2d  # a variant with options
    python benchmarks/overhead.py --predict ../shared/weights/yolov8n.pt --images ../shared/datasets/coco128/images/val2017

With ``--predict WEIGHTS``: the cost of each inference mode in ``YOLOGFL.predict`` (what ``yolo-gfl predict`` runs), per
image at ``--imgsz``, hard NMS beside score voting (``nms=vote``; ``vote-quality`` too for a model with a quality
branch), interleaved round by round over the same images; the median per-image time of each and its ratio to hard.

Prints parameters, GFLOPs, inference latency (median over --runs, batch 1 and 16), training step time
(forward + loss + backward, batch 8), loss-function time alone, and NMS time, with ratios to stock. GFLOPs are
Ultralytics' (thop); for vfnet they count the star deformable convolutions as 3x3 convolutions (their multiply-adds),
not the bilinear sampling on top. Variants run interleaved round by round so drifts in machine load hit all alike.
A variant is NAME (``yolov8{scale}-NAME.yaml``) optionally followed by ``:option=value`` pairs of yolo_gfl options.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402
from ultralytics.cfg import get_cfg  # noqa: E402
from ultralytics.utils import nms  # noqa: E402
from ultralytics.utils.torch_utils import get_flops  # noqa: E402

from yolo_gfl.configs import load_model_cfg  # noqa: E402
from yolo_gfl.nn import build_detection_model  # noqa: E402


def synthetic_batch(n: int, imgsz: int, objects: int = 6, nc: int = 80, seed: int = 0) -> dict:
    """A training batch of random images with ``objects`` random boxes each (normalised xywh)."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n * objects, 2, generator=g) * 0.6 + 0.2
    wh = torch.rand(n * objects, 2, generator=g) * 0.3 + 0.05
    return {
        "img": torch.rand(n, 3, imgsz, imgsz, generator=g),
        "batch_idx": torch.arange(n).repeat_interleave(objects).float(),
        "cls": torch.randint(0, nc, (n * objects, 1), generator=g).float(),
        "bboxes": torch.cat((xy, wh), 1),
    }


def variant_cfg(name: str, scale: str) -> dict:
    """The model config of a variant spec: ``stock``, ``NAME`` or ``NAME:option=value:...``."""
    base, *pairs = name.split(":")
    cfg = load_model_cfg(f"yolov8{scale}.yaml" if base == "stock" else f"yolov8{scale}-{base}.yaml")
    if pairs:
        cfg.setdefault("gfl", {}).update(pair.split("=", 1) for pair in pairs)
    return cfg


def timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) * 1000


def predict_overhead(weights: str, images: str, imgsz: int, runs: int, device: str, limit: int = 16) -> None:
    """Per-image ``YOLOGFL.predict`` time of each inference mode, interleaved; prints medians and ratios to hard."""
    from pathlib import Path

    import cv2

    from yolo_gfl import YOLOGFL
    from yolo_gfl.engine.inference import INFERENCE_MODES, InferenceOptionError, QualityTap

    files = sorted(str(p) for p in Path(images).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:limit]
    if not files:
        raise SystemExit(f"--images {images}: no .jpg/.png images there")
    model = YOLOGFL(weights)
    modes = ["hard", "vote"]
    try:
        QualityTap(model.model, "quality").close()
        modes.append("vote-quality")
    except InferenceOptionError:
        pass  # no quality branch: J is the only score to weigh by
    kw = dict(imgsz=imgsz, device=device, verbose=False, save=False)
    for mode in modes:  # warm-up, and the predictor built once
        model.predict(files[:2], **kw, **INFERENCE_MODES[mode])
    per_image = {m: [] for m in modes}
    boxes = {m: 0 for m in modes}
    for _ in range(runs):
        for mode in modes:
            t = time.perf_counter()
            results = model.predict(files, **kw, **INFERENCE_MODES[mode])
            per_image[mode].append((time.perf_counter() - t) * 1000 / len(files))
            boxes[mode] = sum(len(r.boxes) for r in results)
    # The NMS step alone, on the raw outputs of the same images (predict's conf 0.25 and val's 0.001): what voting adds
    # in milliseconds, which the whole predict call's noise can hide.
    from yolo_gfl.engine.inference import postprocess_detections

    predictor = model.predictor
    raw, quality = [], []
    tap = QualityTap(predictor.model, "quality") if "vote-quality" in modes else None
    for f in files:
        im = predictor.preprocess([cv2.imread(f)])
        with torch.no_grad():
            out = predictor.model(im)
        raw.append(out[0] if isinstance(out, (list, tuple)) else out)
        quality.append(tap.take() if tap else None)
    if tap:
        tap.close()
    nms_ms = {(m, c): [] for m in modes for c in (0.25, 0.001)}
    for _ in range(runs):
        for (mode, conf), times in nms_ms.items():
            options = INFERENCE_MODES[mode]
            t = time.perf_counter()
            for pred, q in zip(raw, quality):
                postprocess_detections(pred, conf=conf, iou=0.7, max_det=300, multi_label=conf < 0.25,
                                       quality=q if options.get("vote_weight") else None, **options)
            times.append((time.perf_counter() - t) * 1000 / len(raw))
    base = statistics.median(per_image["hard"])
    print(f"\n{Path(weights).name}: YOLOGFL.predict at {imgsz} px on {device}, {len(files)} images, "
          f"{torch.get_num_threads()} threads, median of {runs} interleaved rounds")
    print(f"{'mode':14}{'ms / image':>12}{'ratio to hard':>16}{'detections':>12}{'NMS ms (conf .25)':>20}"
          f"{'NMS ms (conf .001)':>20}")
    for mode in modes:
        med = statistics.median(per_image[mode])
        print(f"{mode:14}{med:>12.1f}{med / base:>16.3f}{boxes[mode]:>12}"
              f"{statistics.median(nms_ms[(mode, 0.25)]):>20.2f}{statistics.median(nms_ms[(mode, 0.001)]):>20.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="n")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--variants", default="gfl,qfl,vfl,vfnet")  # any yolov8{scale}-NAME.yaml of yolo_gfl
    ap.add_argument("--predict", default=None, metavar="WEIGHTS", help="time the inference modes of predict instead")
    ap.add_argument("--images", default=None, help="with --predict: a folder of images (the first 16 are used)")
    args = ap.parse_args()
    if args.predict:
        if not args.images:
            raise SystemExit("--predict needs --images DIR")
        predict_overhead(args.predict, args.images, args.imgsz, args.runs, args.device)
        return
    device = torch.device(args.device)
    names = ["stock"] + [v for v in args.variants.split(",") if v]
    models, train_models = {}, {}
    for name in names:
        cfg = variant_cfg(name, args.scale)
        torch.manual_seed(0)
        train_models[name] = build_detection_model(cfg, verbose=False).to(device)
        train_models[name].args = get_cfg()
        models[name] = build_detection_model(cfg, verbose=False).to(device).fuse(verbose=False).eval()

    results = {n: {"params": sum(p.numel() for p in train_models[n].parameters())} for n in names}
    for n in names:
        results[n]["GFLOPs"] = get_flops(train_models[n], args.imgsz)

    x1 = torch.rand(1, 3, args.imgsz, args.imgsz, device=device)
    x16 = torch.rand(16, 3, args.imgsz, args.imgsz, device=device)
    batch = {k: v.to(device) for k, v in synthetic_batch(args.train_batch, args.imgsz).items()}
    samples = {n: {k: [] for k in ("lat1", "lat16", "train", "loss", "nms")} for n in names}
    with torch.no_grad():  # warm-up
        for n in names:
            models[n](x1)
    for r in range(args.runs):
        for n in names:
            m, tm = models[n], train_models[n]
            with torch.no_grad():
                samples[n]["lat1"].append(timed(lambda: m(x1), device))
                if r % 3 == 0:  # batch 16 is 16x the work: a third of the rounds keeps the run short
                    samples[n]["lat16"].append(timed(lambda: m(x16), device))
                out = m(x1)[0]
            samples[n]["nms"].append(timed(lambda: nms.non_max_suppression(out, 0.001, 0.7, max_det=300), device))
            tm.train()
            tm.zero_grad(set_to_none=True)

            def step():
                preds = tm(batch["img"])
                loss, _ = tm.loss(batch, preds)
                loss.sum().backward()

            samples[n]["train"].append(timed(step, device))
            with torch.no_grad():
                preds = tm(batch["img"])
            samples[n]["loss"].append(timed(lambda: tm.loss(batch, preds), device))
    for n in names:
        results[n].update({k: statistics.median(v) for k, v in samples[n].items()})

    cols = [("params", "{:,.0f}"), ("GFLOPs", "{:.2f}"), ("lat1", "{:.1f}"), ("lat16", "{:.1f}"), ("train", "{:.1f}"),
            ("loss", "{:.2f}"), ("nms", "{:.2f}")]
    heads = {"lat1": "infer b1 ms", "lat16": "infer b16 ms", "train": f"train step b{args.train_batch} ms",
             "loss": "loss ms", "nms": "NMS ms"}
    print(f"\nyolov8{args.scale} variants, imgsz {args.imgsz}, device {device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, median of {args.runs} runs (b16: {len(samples['stock']['lat16'])})")
    width = max(10, *(len(n) + 1 for n in names))
    print(f"{'variant':{width}}" + "".join(f"{heads.get(c, c):>20}" for c, _ in cols))
    for n in names:
        print(f"{n:{width}}" + "".join(f"{f.format(results[n][c]):>20}" for c, f in cols))
    print("ratio to stock:")
    for n in names[1:]:
        print(f"{n:{width}}" + "".join(f"{results[n][c] / results['stock'][c]:>20.3f}" for c, _ in cols))


if __name__ == "__main__":
    main()
