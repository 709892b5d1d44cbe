"""Bad data through YOLOGFL.train: a clear error before training, or a warning and the item skipped; never a crash
mid-epoch and never a NaN loss. Ultralytics' dataset checks do the screening; these tests prove it holds for the
yolo_gfl variants (their criterion, assigners and DGQP head see whatever the checks let through).

One small dataset carries every per-item fault at once (the outcomes are independent: each image is checked alone),
and train and val both read it, so the faults reach the training loss (with mosaic) and the validation loss (without).
"""

from __future__ import annotations

import csv
import math
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolo_gfl import YOLOGFL

from .conftest import COCO128_YAML

pytestmark = pytest.mark.slow

NAMES = {0: "a", 1: "b", 2: "c"}  # nc = 3
GOOD = "0 0.5 0.5 0.4 0.4"
TRAIN = dict(epochs=1, imgsz=64, batch=4, workers=0, device="cpu", plots=False, exist_ok=True)

# image stem -> (what is wrong, expected fate: "kept" or a fragment of Ultralytics' skip message)
FAULTS = {
    "ok0": ("clean", "kept"),
    "cls_ge_nc": ("class id 5 with nc=3", "Label class 5 exceeds dataset class count 3"),
    "neg_coord": ("x centre -0.2", "negative label values"),
    "gt1_coord": ("y centre 1.5", "non-normalized or out of bounds coordinates"),
    "nan_coord": ("x centre nan", "non-normalized or out of bounds coordinates"),
    "zero_area": ("boxes with w=0 and w=h=0 beside a good one", "kept"),
    "dupes": ("the same row three times", "2 duplicate labels removed"),
    "empty": ("empty label file", "kept"),
    "nolabel": ("no label file", "kept"),
    "crowd": ("400 objects in one image", "kept"),
    "corrupt": ("random bytes named .jpg", "ignoring corrupt image/label"),
    "zero": ("zero-byte .jpg", "ignoring corrupt image/label"),
    "trunc": ("JPEG cut in half", "ignoring corrupt image/label"),
    "tiny": ("5x5 px image", "<10 pixels"),
    "gray": ("single-channel PNG", "kept"),
    "rgba": ("4-channel PNG", "kept"),
}


def build_bad_dataset(root: Path) -> Path:
    coco = COCO128_YAML.parent / "images" / "train2017"
    sources = sorted(coco.glob("*.jpg"))[:12]
    images, labels = root / "images" / "train", root / "labels" / "train"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)

    def put(stem, lines, src=0, image=None, suffix=".jpg"):
        if image is None:
            shutil.copy(sources[src], images / f"{stem}{suffix}")
        else:
            cv2.imwrite(str(images / f"{stem}{suffix}"), image)
        if lines is not None:
            (labels / f"{stem}.txt").write_text("".join(f"{line}\n" for line in lines))

    put("ok0", [GOOD, "1 0.3 0.3 0.2 0.2"], 0)
    put("cls_ge_nc", [GOOD, "5 0.5 0.5 0.2 0.2"], 1)
    put("neg_coord", [GOOD, "0 -0.2 0.5 0.2 0.2"], 2)
    put("gt1_coord", [GOOD, "0 0.5 1.5 0.2 0.2"], 3)
    put("nan_coord", ["0 nan 0.5 0.2 0.2"], 4)
    put("zero_area", [GOOD, "1 0.3 0.3 0.0 0.2", "2 0.6 0.6 0.0 0.0"], 5)
    put("dupes", [GOOD] * 3, 6)
    put("empty", [], 7)
    put("nolabel", None, 8)
    rng = np.random.default_rng(0)
    xy, wh = rng.uniform(0.1, 0.9, (400, 2)), rng.uniform(0.01, 0.1, (400, 2))
    put("crowd", [f"{i % 3} {x:.4f} {y:.4f} {w:.4f} {h:.4f}" for i, ((x, y), (w, h)) in enumerate(zip(xy, wh))], 9)
    (images / "corrupt.jpg").write_bytes(rng.bytes(2000))
    (images / "zero.jpg").write_bytes(b"")
    data = sources[0].read_bytes()
    (images / "trunc.jpg").write_bytes(data[: len(data) // 2])
    put("tiny", [GOOD], image=np.full((5, 5, 3), 128, np.uint8), suffix=".png")
    for stem in ("corrupt", "zero", "trunc"):
        (labels / f"{stem}.txt").write_text(GOOD + "\n")
    put("gray", [GOOD], image=cv2.imread(str(sources[10]), cv2.IMREAD_GRAYSCALE), suffix=".png")
    bgr = cv2.imread(str(sources[11]))
    put("rgba", [GOOD], image=np.dstack([bgr, np.full(bgr.shape[:2], 200, np.uint8)]), suffix=".png")
    assert cv2.imread(str(images / "rgba.png"), cv2.IMREAD_UNCHANGED).shape[2] == 4
    assert cv2.imread(str(images / "gray.png"), cv2.IMREAD_UNCHANGED).ndim == 2

    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames: {NAMES}\n")
    return yaml


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory, coco128_yaml) -> Path:
    return build_bad_dataset(tmp_path_factory.mktemp("bad_data"))


def read_results(run: Path) -> list[dict[str, float]]:
    with open(run / "results.csv") as f:
        return [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.mark.parametrize(
    "model,options",
    [("yolov8n-gfl.yaml", {}), ("yolov8n-vfl.yaml", {"assigner": "atss", "box_loss": "giou"})],
    ids=["gfl", "vfl-atss"],
)
def test_bad_items_are_skipped_with_a_message_and_losses_stay_finite(bad_data, tmp_path, model, options):
    batch_losses = []

    def record(trainer):
        batch_losses.append({k: float(v) for k, v in trainer.loss_items.items()})

    yolo = YOLOGFL(model)
    yolo.add_callback("on_train_batch_end", record)
    yolo.train(data=str(bad_data), project=str(tmp_path), name="r", **TRAIN, **options)

    # which items the checks kept, and what they said about the others (Ultralytics' label cache records both)
    cache = np.load(bad_data.parent / "labels" / "train.cache", allow_pickle=True).item()
    kept = {Path(lb["im_file"]).stem: lb for lb in cache["labels"]}
    messages = "\n".join(cache["msgs"])
    for stem, (fault, fate) in FAULTS.items():
        if fate == "kept":
            assert stem in kept, f"{stem} ({fault}) should be trained on"
        else:
            assert stem not in kept or stem == "dupes", f"{stem} ({fault}) should be skipped"
            line = next((m for m in cache["msgs"] if f"/{stem}." in m), "")
            assert fate in line, f"{stem} ({fault}): expected '{fate}' in the message, got {line!r}\n{messages}"
    assert len(kept["dupes"]["cls"]) == 1 and len(kept["crowd"]["cls"]) == 400 and len(kept["empty"]["cls"]) == 0
    assert (kept["zero_area"]["bboxes"][:, 2] == 0).sum() == 2  # zero-area boxes pass the checks: the loss sees them

    # training and validation ran over every batch with finite losses
    assert len(batch_losses) == math.ceil(len(kept) / TRAIN["batch"])
    assert all(math.isfinite(v) and v >= 0 for step in batch_losses for v in step.values()), batch_losses
    row = read_results(tmp_path / "r")[-1]
    for key in ("train/box_loss", "train/cls_loss", "train/dfl_loss", "val/box_loss", "val/cls_loss", "val/dfl_loss"):
        assert math.isfinite(row[key]) and row[key] >= 0, (key, row[key])
    assert (tmp_path / "r" / "weights" / "last.pt").exists()


def test_dataset_errors_come_before_training(tmp_path):
    """Missing, malformed or empty datasets: a clear error before the first batch (the run folder Ultralytics makes
    first holds only args.yaml, no weights)."""
    (tmp_path / "nopath.yaml").write_text(f"path: {tmp_path}/absent\ntrain: images\nval: images\nnames: {NAMES}\n")
    (tmp_path / "nonames.yaml").write_text(f"path: {tmp_path}\ntrain: images\nval: images\n")
    (tmp_path / "syntax.yaml").write_text("path: [unclosed\n")
    bad = tmp_path / "allbad"
    (bad / "images").mkdir(parents=True)
    (bad / "labels").mkdir()
    for i in range(3):
        (bad / "images" / f"{i}.jpg").write_bytes(os.urandom(500))
        (bad / "labels" / f"{i}.txt").write_text(GOOD + "\n")
    (tmp_path / "allbad.yaml").write_text(f"path: {bad}\ntrain: images\nval: images\nnames: {NAMES}\n")
    (tmp_path / "noimages" / "images").mkdir(parents=True)
    (tmp_path / "noimages.yaml").write_text(f"path: {tmp_path}/noimages\ntrain: images\nval: images\nnames: {NAMES}\n")

    cases = {
        str(tmp_path / "missing.yaml"): (RuntimeError, "does not exist"),
        "no_such_dataset.yaml": (RuntimeError, "does not exist"),
        str(tmp_path / "nopath.yaml"): (RuntimeError, "images not found, missing path"),
        str(tmp_path / "nonames.yaml"): (RuntimeError, "either 'names' or 'nc' are required"),
        str(tmp_path / "syntax.yaml"): (RuntimeError, "YAML syntax error"),
        str(tmp_path / "allbad.yaml"): (RuntimeError, "No valid images found"),
        str(tmp_path / "noimages.yaml"): (FileNotFoundError, "Error loading data from"),
        str(bad): (RuntimeError, "No YAML file found"),
    }
    started = []
    for i, (data, (error, words)) in enumerate(cases.items()):
        yolo = YOLOGFL("yolov8n-gfl.yaml")
        yolo.add_callback("on_train_batch_start", lambda trainer: started.append(data))
        with pytest.raises(error) as e:
            yolo.train(data=data, project=str(tmp_path / "runs"), name=f"r{i}", **TRAIN)
        assert words in str(e.value), (data, str(e.value))
        assert not list((tmp_path / "runs" / f"r{i}").rglob("*.pt"))
    assert not started
