"""Tests of the synthetic shapes data set: determinism, exact visible-part boxes, atomic reuse and option checks."""

import os

os.environ["YOLO_OFFLINE"] = "1"  # nothing may download, not even from Ultralytics' dataset checks

import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from ultralytics.data.utils import check_det_dataset  # noqa: E402

from yolo_gfl.data import synthetic  # noqa: E402
from yolo_gfl.data.synthetic import (  # noqa: E402
    SYNTHETIC_NAMES,
    generate_synthetic_dataset,
    render_sample,
    synthetic_dataset,
)

SMALL = dict(n_train=6, n_val=3, imgsz=128)
SMALL_FOLDER = "synthetic-s0-n6-v3-i128"


def data_files(root: Path) -> dict[str, bytes]:
    """Every image and label file under ``root``, by relative path."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for folder in ("images", "labels")
        for path in sorted((root / folder).rglob("*"))
        if path.is_file()
    }


def mtimes(root: Path) -> dict[str, int]:
    return {str(path.relative_to(root)): path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}


def read_labels(label_file: Path) -> np.ndarray:
    """The rows ``cls xc yc w h`` of a label file as an (n, 5) array."""
    return np.array([[float(v) for v in line.split()] for line in label_file.read_text().splitlines()]).reshape(-1, 5)


def tight_yolo_box(mask: np.ndarray) -> np.ndarray:
    """xc, yc, w, h (normalised) of the box from the first to one past the last nonzero pixel."""
    ys, xs = np.nonzero(mask)
    height, width = mask.shape
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return np.array([(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The small seed-0 data set, generated once for the read-only tests."""
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "set", **SMALL, progress=False).parent


def test_layout(dataset):
    for split, count in (("train", SMALL["n_train"]), ("val", SMALL["n_val"])):
        assert len(list((dataset / "images" / split).glob("*.png"))) == count
        assert len(list((dataset / "labels" / split).glob("*.txt"))) == count
    meta = json.loads((dataset / "meta.json").read_text())
    assert meta["options"] == {**SMALL, "seed": 0}
    assert meta["format_version"] == synthetic.FORMAT_VERSION
    assert not list(dataset.parent.glob(".*partial*")), "the staging folder must be renamed away"


def test_same_seed_gives_identical_files(dataset, tmp_path):
    again = generate_synthetic_dataset(tmp_path / "again", **SMALL, progress=False).parent
    assert data_files(again) == data_files(dataset)
    assert (again / "meta.json").read_bytes() == (dataset / "meta.json").read_bytes()


def test_different_seed_gives_different_images(dataset, tmp_path):
    other = generate_synthetic_dataset(tmp_path / "other", **SMALL, seed=1, progress=False).parent
    ours, theirs = data_files(dataset), data_files(other)
    assert ours.keys() == theirs.keys()
    assert all(ours[name] != theirs[name] for name in ours if name.startswith("images"))


def test_splits_differ():
    train, _ = render_sample(0, imgsz=128, split="train")
    val, _ = render_sample(0, imgsz=128, split="val")
    assert not np.array_equal(train, val)


def test_files_match_render_sample_and_boxes_are_tight_visible_masks(dataset):
    for split, count in (("train", SMALL["n_train"]), ("val", SMALL["n_val"])):
        for index in range(count):
            image, objects = render_sample(index, imgsz=128, seed=0, split=split)
            assert np.array_equal(cv2.imread(str(dataset / "images" / split / f"{index:06d}.png")), image)
            labels = read_labels(dataset / "labels" / split / f"{index:06d}.txt")
            assert len(labels) == len(objects) >= 1
            for row, obj in zip(labels, objects):
                assert row[0] == obj.cls
                np.testing.assert_allclose(row[1:], tight_yolo_box(obj.mask), rtol=0, atol=1e-6)


def test_label_values_in_range(dataset):
    rows = np.concatenate([read_labels(f) for f in sorted((dataset / "labels").rglob("*.txt"))])
    classes, boxes = rows[:, 0], rows[:, 1:]
    assert np.array_equal(classes, classes.round()) and classes.min() >= 0 and classes.max() < len(SYNTHETIC_NAMES)
    assert boxes.min() >= 0 and boxes.max() <= 1
    assert (boxes[:, 2:] > 0).all()
    xc, yc, w, h = boxes.T
    assert (xc - w / 2 >= -1e-6).all() and (xc + w / 2 <= 1 + 1e-6).all()
    assert (yc - h / 2 >= -1e-6).all() and (yc + h / 2 <= 1 + 1e-6).all()
    for line in next((dataset / "labels" / "train").glob("*.txt")).read_text().splitlines():
        assert all(len(value.split(".")[1]) == 6 for value in line.split()[1:]), "6 decimals"


@settings(max_examples=25, deadline=None)
@given(
    index=st.integers(0, 10_000),
    imgsz=st.sampled_from([32, 64, 128, 320]),
    seed=st.integers(0, 2**32),
    split=st.sampled_from(["train", "val"]),
)
def test_objects_are_visible_disjoint_and_boxed_exactly(index, imgsz, seed, split):
    image, objects = render_sample(index, imgsz=imgsz, seed=seed, split=split)
    assert image.shape == (imgsz, imgsz, 3) and image.dtype == np.uint8
    assert 1 <= len(objects) <= synthetic.MAX_OBJECTS
    covered = np.zeros((imgsz, imgsz), bool)
    for obj in objects:
        assert obj.mask.shape == (imgsz, imgsz) and obj.mask.dtype == bool
        assert not (covered & obj.mask).any(), "visible parts of different objects never share a pixel"
        covered |= obj.mask
        ys, xs = np.nonzero(obj.mask)
        assert obj.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert min(obj.box[2] - obj.box[0], obj.box[3] - obj.box[1]) >= synthetic.MIN_BOX_SIDE
        label_box = [float(value) for value in obj.label_line().split()[1:]]
        np.testing.assert_allclose(label_box, tight_yolo_box(obj.mask), rtol=0, atol=1e-6)


def test_yaml_loads_with_ultralytics(dataset):
    data = check_det_dataset(str(dataset / "data.yaml"))
    assert data["nc"] == len(SYNTHETIC_NAMES)
    assert data["names"] == dict(enumerate(SYNTHETIC_NAMES))
    assert Path(data["train"]) == dataset / "images" / "train"
    assert Path(data["val"]) == dataset / "images" / "val"


def test_reuse_does_not_regenerate_but_other_options_do(tmp_path):
    yaml_file = synthetic_dataset(**SMALL, root=tmp_path, progress=False)
    assert yaml_file == tmp_path.resolve() / SMALL_FOLDER / "data.yaml"
    before = mtimes(yaml_file.parent)
    assert synthetic_dataset(**SMALL, root=tmp_path, progress=False) == yaml_file
    assert mtimes(yaml_file.parent) == before

    other = synthetic_dataset(**{**SMALL, "n_val": 4}, root=tmp_path, progress=False)
    assert other.parent.name == "synthetic-s0-n6-v4-i128"
    assert len(list((other.parent / "images" / "val").glob("*.png"))) == 4
    assert mtimes(yaml_file.parent) == before, "another option set lives in its own folder"


def test_mismatched_meta_regenerates(tmp_path):
    yaml_file = synthetic_dataset(**SMALL, root=tmp_path, progress=False)
    meta_file = yaml_file.parent / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "format_version": meta["format_version"] - 1}))
    stale_image = yaml_file.parent / "images" / "train" / "000000.png"
    stale_image.write_bytes(b"not an image")

    assert synthetic_dataset(**SMALL, root=tmp_path, progress=False) == yaml_file
    assert json.loads(meta_file.read_text()) == meta
    assert np.array_equal(cv2.imread(str(stale_image)), render_sample(0, imgsz=128)[0])


def test_default_root_is_env_then_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_GFL_DATASETS", str(tmp_path / "env"))
    assert synthetic_dataset(**SMALL, progress=False) == (tmp_path / "env" / SMALL_FOLDER / "data.yaml").resolve()
    monkeypatch.delenv("YOLO_GFL_DATASETS")
    monkeypatch.chdir(tmp_path)
    expected = (tmp_path / "datasets" / SMALL_FOLDER / "data.yaml").resolve()
    assert synthetic_dataset(**SMALL, progress=False) == expected


def test_moved_dataset_keeps_images_and_gets_its_path_rewritten(tmp_path):
    yaml_file = synthetic_dataset(**SMALL, root=tmp_path / "old", progress=False)
    (tmp_path / "new").mkdir()
    moved = yaml_file.parent.rename(tmp_path / "new" / SMALL_FOLDER)
    images_before = {k: v for k, v in mtimes(moved).items() if k.startswith("images")}
    new_yaml = synthetic_dataset(**SMALL, root=tmp_path / "new", progress=False)
    assert new_yaml == moved.resolve() / "data.yaml"
    assert {k: v for k, v in mtimes(moved).items() if k.startswith("images")} == images_before
    assert Path(check_det_dataset(str(new_yaml))["val"]) == moved.resolve() / "images" / "val"


def test_interrupted_generation_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    real_render = synthetic.render_sample

    def render_then_fail(index, *args, **kwargs):
        if index == 2:
            raise KeyboardInterrupt  # as a user stopping it half-way
        return real_render(index, *args, **kwargs)

    monkeypatch.setattr(synthetic, "render_sample", render_then_fail)
    with pytest.raises(KeyboardInterrupt):
        synthetic_dataset(**SMALL, root=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == [], "neither the data set folder nor its staging folder may remain"

    monkeypatch.setattr(synthetic, "render_sample", real_render)
    yaml_file = synthetic_dataset(**SMALL, root=tmp_path, progress=False)
    assert len(list((yaml_file.parent / "images" / "train").glob("*.png"))) == SMALL["n_train"]


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not a synthetic data set"):
        generate_synthetic_dataset(tmp_path / "mine", **SMALL, progress=False)
    assert (tmp_path / "mine" / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize(
    "option, value",
    [
        ("n_train", 0),
        ("n_train", 2.5),
        ("n_train", True),
        ("n_val", 0),
        ("n_val", "3"),
        ("imgsz", 16),
        ("imgsz", 100),
        ("imgsz", 4128),
        ("seed", -1),
        ("seed", None),
    ],
)
def test_bad_options_raise_value_error_naming_them(tmp_path, option, value):
    for make in (synthetic_dataset, generate_synthetic_dataset):
        target = {"root": tmp_path} if make is synthetic_dataset else {"root": tmp_path / "set"}
        with pytest.raises(ValueError, match=rf"^{option} must be .*, got {re.escape(repr(value))}$") as error:
            make(**{**SMALL, option: value}, **target, progress=False)
        assert "[" in str(error.value) or ">=" in str(error.value), "the message states the allowed range"
    assert list(tmp_path.iterdir()) == [], "nothing is written before the options are checked"


def test_render_sample_checks_its_arguments():
    with pytest.raises(ValueError, match="split"):
        render_sample(0, split="test")
    with pytest.raises(ValueError, match="index"):
        render_sample(-1)


def test_resolve_data_names(tmp_path, monkeypatch):
    from yolo_gfl.data import resolve_data

    monkeypatch.setenv("YOLO_GFL_DATASETS", str(tmp_path))
    yaml_path = resolve_data("synthetic-n3-v2-i64-s5")
    assert Path(yaml_path) == tmp_path / "synthetic-s5-n3-v2-i64" / "data.yaml" and Path(yaml_path).exists()
    assert resolve_data("coco128.yaml") == "coco128.yaml"  # other names pass through to Ultralytics
    assert resolve_data("synthetic-q3") == "synthetic-q3"  # not the synthetic pattern: left alone
    own = tmp_path / "synthetic.yaml"
    own.write_text("path: .\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_data("synthetic.yaml") == "synthetic.yaml"  # a user's own file of that name wins
