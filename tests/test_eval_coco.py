"""YOLO -> COCO conversion (exact round trip, sizes, ids) and COCOeval via yolo_gfl.eval.coco, against hand values."""

from __future__ import annotations

import json
import os

os.environ["YOLO_OFFLINE"] = "1"  # nothing may download at run time

from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from yolo_gfl.eval import (  # noqa: E402
    COCO_STAT_NAMES,
    assign_image_ids,
    coco_evaluate,
    coco_to_yolo_boxes,
    detections_to_coco,
    load_data_split,
    read_yolo_labels,
    yolo_to_coco,
)

TOL = 1e-6  # normalised units, i.e. relative to the image size


def comparable(coco: dict) -> dict:
    """The parts of a COCO dict that must not change between calls (``info`` carries a timestamp)."""
    return {k: coco[k] for k in ("images", "annotations", "categories")}


def gt_as_detections(gt: dict, score: float = 1.0) -> tuple[list[np.ndarray], list[int]]:
    """The GT boxes of every image as (N, 6) ``[x1, y1, x2, y2, score, cls]`` detections (perfect predictions)."""
    per_image = {img["id"]: [] for img in gt["images"]}
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        per_image[ann["image_id"]].append([x, y, x + w, y + h, score, ann["category_id"] - 1])
    ids = list(per_image)
    return [np.asarray(per_image[i], dtype=np.float64).reshape(-1, 6) for i in ids], ids


# ------------------------------------------------------------------------------------------------ synthetic folder
@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """images/{a,b,c}.png of known sizes; labels: a.txt with known boxes, b.txt empty, c.txt missing."""
    sizes = {"a": (64, 48), "b": (100, 50), "c": (30, 40)}  # (width, height)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for stem, (w, h) in sizes.items():
        cv2.imwrite(str(tmp_path / "images" / f"{stem}.png"), np.full((h, w, 3), 127, np.uint8))
    # a.png is 64 x 48: box 1 -> [24, 12, 16, 24] px, box 2 -> [0, 0, 16, 12] px (class 2)
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.25 0.5\n2 0.125 0.125 0.25 0.25\n")
    (tmp_path / "labels" / "b.txt").write_text("")
    return tmp_path


def test_synthetic_conversion_sizes_ids_and_empty_labels(tiny_dataset: Path):
    names = ["cat", "dog", "bird"]
    gt = yolo_to_coco(tiny_dataset / "images", names=names)

    # Non-integer stems: 1-based index in path order; sizes from the files.
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in gt["images"]] == [
        (1, "a.png", 64, 48),
        (2, "b.png", 100, 50),
        (3, "c.png", 30, 40),
    ]
    # Categories: every named class, id = class + 1, even 'dog' which has no box.
    assert gt["categories"] == [
        {"id": 1, "name": "cat", "supercategory": ""},
        {"id": 2, "name": "dog", "supercategory": ""},
        {"id": 3, "name": "bird", "supercategory": ""},
    ]
    # Known pixel boxes; only image 1 has any (b.txt empty, c.txt missing).
    anns = gt["annotations"]
    assert [a["image_id"] for a in anns] == [1, 1]
    assert [a["category_id"] for a in anns] == [1, 3]
    np.testing.assert_allclose([a["bbox"] for a in anns], [[24, 12, 16, 24], [0, 0, 16, 12]], atol=1e-9)
    assert [a["area"] for a in anns] == pytest.approx([16 * 24, 16 * 12])
    assert [a["iscrowd"] for a in anns] == [0, 0]
    assert len({a["id"] for a in anns}) == len(anns)

    # Round trip back to YOLO, exact to 1e-6 of the image size; empty and missing labels give (0, 5).
    back = coco_to_yolo_boxes(gt)
    np.testing.assert_allclose(back[1], np.loadtxt(tiny_dataset / "labels" / "a.txt", ndmin=2), atol=TOL, rtol=0)
    assert back[2].shape == back[3].shape == (0, 5)

    # Stable: a second call, from an unsorted list of paths, gives the same images, ids and annotations.
    paths = [str(tiny_dataset / "images" / f"{s}.png") for s in ("c", "a", "b")]
    assert comparable(yolo_to_coco(paths, names=names)) == comparable(gt)


def test_labels_dir_and_custom_category_map(tiny_dataset: Path, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # labels not beside the images
    (elsewhere / "a.txt").write_text((tiny_dataset / "labels" / "a.txt").read_text())
    class_to_category = {0: 7, 1: 8, 2: 20}
    gt = yolo_to_coco(tiny_dataset / "images", labels_dir=elsewhere, names={0: "x", 1: "y", 2: "z"},
                      class_to_category=class_to_category)  # fmt: skip
    assert [a["category_id"] for a in gt["annotations"]] == [7, 20]
    assert [c["id"] for c in gt["categories"]] == [7, 8, 20]
    back = coco_to_yolo_boxes(gt, class_to_category=class_to_category)
    np.testing.assert_allclose(back[1], np.loadtxt(elsewhere / "a.txt", ndmin=2), atol=TOL, rtol=0)


def test_image_id_rule():
    # All stems unique integers (COCO names): the integer itself, whatever the order given.
    assert assign_image_ids(["x/000000000139.jpg", "y/000000000009.jpg"]) == {
        "x/000000000139.jpg": 139,
        "y/000000000009.jpg": 9,
    }
    # One non-integer stem (or a repeated integer) switches every image to its 1-based sorted index.
    assert assign_image_ids(["d/2.jpg", "d/10.jpg", "d/a.jpg"]) == {"d/10.jpg": 1, "d/2.jpg": 2, "d/a.jpg": 3}
    assert assign_image_ids(["p/1.jpg", "q/01.jpg"]) == {"p/1.jpg": 1, "q/01.jpg": 2}


def test_exif_orientation_swaps_width_and_height(tmp_path: Path):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    exif = Image.Exif()
    exif[274] = 6  # orientation: rotate 90 degrees, so the stored 40 x 20 is displayed (and trained on) as 20 x 40
    Image.new("RGB", (40, 20)).save(images / "r.jpg", exif=exif)
    Image.new("RGB", (40, 20)).save(images / "n.jpg")
    gt = yolo_to_coco(images)
    sizes = {i["file_name"]: (i["width"], i["height"]) for i in gt["images"]}
    assert sizes == {"n.jpg": (40, 20), "r.jpg": (20, 40)}
    assert cv2.imread(str(images / "r.jpg")).shape[:2] == (40, 20)  # cv2 applies the same orientation (H=40, W=20)


def test_polygon_rows_and_duplicates(tmp_path: Path):
    label = tmp_path / "l.txt"
    # A polygon row becomes its enclosing box; an exact duplicate row is dropped, as Ultralytics does.
    label.write_text("1 0.1 0.2 0.5 0.2 0.5 0.6 0.1 0.6\n1 0.1 0.2 0.5 0.2 0.5 0.6 0.1 0.6\n0 0.5 0.5 0.2 0.2\n")
    np.testing.assert_allclose(read_yolo_labels(label), [[1, 0.3, 0.4, 0.4, 0.4], [0, 0.5, 0.5, 0.2, 0.2]])
    assert read_yolo_labels(tmp_path / "missing.txt").shape == (0, 5)


# ---------------------------------------------------------------------------------------------------- real coco128
@pytest.fixture(scope="module")
def coco128_val(coco128_yaml) -> tuple[list[str], dict[int, str]]:
    return load_data_split(coco128_yaml, "val")


def test_load_data_split(coco128_val):
    images, names = coco128_val
    assert len(images) == 128 and images == sorted(images)
    assert all("/images/val2017/" in p for p in images)
    assert len(names) == 80 and names[0] == "person"


def test_coco128_round_trip_and_sizes(coco128_val):
    images, names = coco128_val
    subset = images[:6]
    gt = yolo_to_coco(subset, names=names)
    assert [i["id"] for i in gt["images"]] == [int(Path(p).stem) for p in subset]  # COCO ids from the file names
    assert len(gt["categories"]) == 80
    back = coco_to_yolo_boxes(gt)
    for path, img in zip(subset, gt["images"]):
        h, w = cv2.imread(path).shape[:2]
        assert (img["width"], img["height"]) == (w, h)
        label = Path(path.replace("/images/", "/labels/")).with_suffix(".txt")
        np.testing.assert_allclose(back[img["id"]], np.loadtxt(label, ndmin=2), atol=TOL, rtol=0)
    assert comparable(yolo_to_coco(subset, names=names)) == comparable(gt)


def test_perfect_predictions_give_ap_1(coco128_val, tmp_path: Path):
    images, names = coco128_val
    gt = yolo_to_coco(images, names=names)
    results, ids = gt_as_detections(gt)
    dets = detections_to_coco(results, ids)
    assert len(dets) == len(gt["annotations"])

    stats = coco_evaluate(gt, dets, save_dir=tmp_path, verbose=False)
    assert list(stats) == list(COCO_STAT_NAMES)
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    assert stats["AR100"] == pytest.approx(1.0)

    report = json.loads((tmp_path / "coco_eval.json").read_text())
    assert report["stats"] == stats and report["num_detections_evaluated"] == len(dets)
    # The saved files are themselves a valid evaluation input.
    again = coco_evaluate(tmp_path / "coco_gt.json", tmp_path / "predictions.json", verbose=False)
    assert again == stats


# --------------------------------------------------------------------------------------------- hand-computed AP
def tiny_gt(extra_categories=()) -> dict:
    """One 100 x 100 image, two GT boxes of category 1: A = [0, 0, 10, 10] and B = [50, 50, 10, 10] (xywh)."""
    return {
        "images": [{"id": 1, "file_name": "x.png", "width": 100, "height": 100}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "area": 100, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "thing"}] + [{"id": c, "name": f"c{c}"} for c in extra_categories],
    }


def test_hand_computed_ap():
    # Detections, by score (xyxy):
    #   d1 0.9 = A exactly                 -> IoU 1 with A
    #   d2 0.8 = [80, 0, 90, 10]           -> overlaps nothing: FP at every threshold
    #   d3 0.7 = [50, 50, 60, 56.2]        -> inside B: IoU = 10*6.2 / 100 = 0.62 with B
    # So d3 is a TP for t in {0.50, 0.55, 0.60} (3 thresholds) and a FP for t in {0.65, ..., 0.95} (7 thresholds).
    #
    # t <= 0.60: TP, FP, TP with 2 GT -> recall [0.5, 0.5, 1], precision [1, 1/2, 2/3];
    #   COCO makes precision non-increasing from the right: [1, 2/3, 2/3]. At the 101 recall points 0, 0.01, ..., 1
    #   (precision at the first detection reaching that recall): r in [0, 0.5] (51 points) -> 1; r in (0.5, 1]
    #   (50 points) -> 2/3.  AP_t = (51 + 50 * 2/3) / 101 = (51 + 100/3) / 101 = 253/303.
    # t >= 0.65: TP, FP, FP -> recall never passes 0.5: 51 points at precision 1, 50 points at 0.  AP_t = 51/101.
    # AP = mean over the 10 thresholds = (3 * 253/303 + 7 * 51/101) / 10 = (253 + 357) / 1010 = 610/1010.
    results = [np.array([[0, 0, 10, 10, 0.9, 0], [80, 0, 90, 10, 0.8, 0], [50, 50, 60, 56.2, 0.7, 0]])]
    dets = detections_to_coco(results, [1])
    stats = coco_evaluate(tiny_gt(), dets, verbose=False)
    assert stats["AP"] == pytest.approx(610 / 1010, abs=1e-9)
    assert stats["AP50"] == pytest.approx(253 / 303, abs=1e-9)
    assert stats["AP75"] == pytest.approx(51 / 101, abs=1e-9)
    assert stats["AP_small"] == pytest.approx(610 / 1010, abs=1e-9)  # every box has area < 32^2
    assert stats["AP_medium"] == stats["AP_large"] == -1.0  # no GT there: undefined, as COCOeval reports it
    # AR100: recall 1 at 3 thresholds, 0.5 at 7 -> (3 + 3.5) / 10
    assert stats["AR100"] == pytest.approx(0.65, abs=1e-9)
    # AR1: only d1 per image -> recall 0.5 at every threshold
    assert stats["AR1"] == pytest.approx(0.5, abs=1e-9)


def test_no_detections_and_foreign_categories(tmp_path: Path):
    stats = coco_evaluate(tiny_gt(), [], save_dir=tmp_path, verbose=False)
    assert stats["AP"] == 0.0 and stats["AR100"] == 0.0
    report = json.loads((tmp_path / "coco_eval.json").read_text())
    assert any("no detections" in w for w in report["warnings"])
    assert json.loads((tmp_path / "predictions.json").read_text()) == []

    # A category listed in the GT without boxes (5) does not dilute the mean; detections of a category the GT does not
    # know (9) or on an unknown image (7) are dropped, with warnings, instead of crashing loadRes.
    perfect = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.8},
        {"image_id": 1, "category_id": 9, "bbox": [20, 20, 10, 10], "score": 0.99},
        {"image_id": 7, "category_id": 1, "bbox": [20, 20, 10, 10], "score": 0.99},
    ]
    stats = coco_evaluate(tiny_gt(extra_categories=(5,)), perfect, save_dir=tmp_path, verbose=False)
    assert stats["AP"] == pytest.approx(1.0)
    report = json.loads((tmp_path / "coco_eval.json").read_text())
    assert report["num_detections_given"] == 4 and report["num_detections_evaluated"] == 2
    assert len(report["warnings"]) == 2


def test_detections_to_coco_formats_and_rounding():
    boxes = torch.tensor([[1.23456, 2.0, 11.23456, 7.5]])
    expected = [{"image_id": 5, "category_id": 3, "bbox": [1.235, 2.0, 10.0, 5.5], "score": 0.12346}]
    as_tensor = torch.cat([boxes, torch.tensor([[0.123456, 2.0]])], 1).double()
    assert detections_to_coco([as_tensor], [5]) == expected
    assert detections_to_coco([(boxes, torch.tensor([0.123456]), torch.tensor([2]))], [5]) == expected
    as_dict = {"xyxy": boxes.numpy(), "conf": np.array([0.123456]), "cls": np.array([2.0])}
    assert detections_to_coco([as_dict], [5], class_to_category=[0, 0, 3]) == expected
    assert detections_to_coco([np.zeros((0, 6))], [5]) == []
    json.dumps(expected)  # plain Python numbers
    with pytest.raises(ValueError):
        detections_to_coco([as_tensor], [5, 6])
