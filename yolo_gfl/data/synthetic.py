"""A deterministic synthetic detection data set of coloured shapes, made on first use in Ultralytics' YOLO format.

It needs no download and generates in seconds, so trainings, tests and benchmarks have a small real task to learn:

    from yolo_gfl.data.synthetic import synthetic_dataset

    data = synthetic_dataset()  # datasets/synthetic-s0-n800-v200-i320/data.yaml, made once, reused afterwards
    model.train(data=str(data), imgsz=320)

Layout (the Ultralytics detection format)::

    <root>/images/{train,val}/000000.png   imgsz x imgsz BGR images
    <root>/labels/{train,val}/000000.txt   one line per object: ``cls xc yc w h``, normalised to [0, 1], 6 decimals
    <root>/data.yaml                       path (absolute root), train, val, names (index -> name)
    <root>/meta.json                       generator, format version, options: checked before a folder is reused

What an image shows (shapes, clutter, occlusion, exact boxes of the visible part) is drawn by
``yolo_gfl.data.shapes``; this module stores data sets made of those images.

Storage: ``synthetic_dataset`` keeps each option set in its own folder,
``synthetic-s{seed}-n{n_train}-v{n_val}-i{imgsz}``, under ``$YOLO_GFL_DATASETS`` or else ``./datasets``. A data set
is written into a hidden ``.<name>.partial-*`` sibling and renamed into place only when complete, with ``meta.json``
written last, so an interrupted generation is never taken for a finished one (a killed process may leave its
``.partial-*`` folder behind; it is never read). ``FORMAT_VERSION`` changes whenever the images drawn for given
options change, which makes existing folders regenerate.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

import cv2
import yaml
from ultralytics.utils import LOGGER, TQDM

from ..atomic import write_atomic
from .shapes import (
    FORMAT_VERSION,
    IMGSZ_STRIDE,
    MAX_IMGSZ,
    MAX_OBJECTS,
    MIN_BOX_SIDE,
    MIN_IMGSZ,
    SPLITS,
    SYNTHETIC_NAMES,
    SyntheticObject,
    render_sample,
    require_int,
)

__all__ = [
    "SYNTHETIC_NAMES",
    "FORMAT_VERSION",
    "MAX_OBJECTS",
    "MIN_BOX_SIDE",
    "SyntheticObject",
    "render_sample",
    "generate_synthetic_dataset",
    "synthetic_dataset",
]

_GENERATOR = "yolo_gfl.data.synthetic"
_META_FILE = "meta.json"
_YAML_FILE = "data.yaml"


def _validated_options(n_train: object, n_val: object, imgsz: object, seed: object) -> dict[str, int]:
    """The generation options, checked, as plain ints in a fixed order (they go into meta.json)."""
    return {
        "n_train": require_int("n_train", n_train, low=1),
        "n_val": require_int("n_val", n_val, low=1),
        "imgsz": require_int("imgsz", imgsz, low=MIN_IMGSZ, high=MAX_IMGSZ, multiple_of=IMGSZ_STRIDE),
        "seed": require_int("seed", seed, low=0),
    }


def _meta(options: dict[str, int]) -> dict:
    """What meta.json holds for a data set made with ``options``: reuse requires an exact match."""
    return {
        "generator": _GENERATOR,
        "format_version": FORMAT_VERSION,
        "options": options,
        "names": list(SYNTHETIC_NAMES),
    }


def _read_meta(root: Path) -> dict | None:
    """The meta.json of ``root``, or None where there is none or it does not parse."""
    try:
        return json.loads((root / _META_FILE).read_text())
    except (OSError, ValueError):
        return None


def _is_complete(root: Path, options: dict[str, int]) -> bool:
    """Whether ``root`` holds a finished data set made with ``options`` by this ``FORMAT_VERSION``."""
    return _read_meta(root) == _meta(options) and (root / _YAML_FILE).is_file()


def _is_replaceable(root: Path) -> bool:
    """Whether the existing ``root`` may be deleted to make room: an empty folder or a data set made here."""
    return root.is_dir() and (not any(root.iterdir()) or (_read_meta(root) or {}).get("generator") == _GENERATOR)


def _write_data_yaml(yaml_file: Path, root: Path) -> None:
    """Write the data YAML for the data set at ``root`` through a temporary file, so readers never see half of it."""
    data = {"path": str(root), "train": "images/train", "val": "images/val", "names": dict(enumerate(SYNTHETIC_NAMES))}
    header = f"# Synthetic shapes made by {_GENERATOR}; see meta.json for the options.\n"
    write_atomic(yaml_file, header + yaml.safe_dump(data, sort_keys=False))


def _write_split(folder: Path, split: str, options: dict[str, int], progress_bar: TQDM) -> int:
    """Write the images and labels of one split under ``folder``; return the number of objects."""
    image_dir, label_dir = folder / "images" / split, folder / "labels" / split
    image_dir.mkdir(parents=True)
    label_dir.mkdir(parents=True)
    n_objects = 0
    for index in range(options[f"n_{split}"]):
        image, objects = render_sample(index, options["imgsz"], options["seed"], split)
        image_file = image_dir / f"{index:06d}.png"
        if not cv2.imwrite(str(image_file), image):
            raise OSError(f"could not write {image_file}")
        (label_dir / f"{index:06d}.txt").write_text("".join(obj.label_line() + "\n" for obj in objects))
        n_objects += len(objects)
        progress_bar.update()
    return n_objects


def generate_synthetic_dataset(
    root: str | os.PathLike,
    n_train: int = 800,
    n_val: int = 200,
    imgsz: int = 320,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Generate the synthetic data set into the folder ``root``, replacing an earlier synthetic data set there.

    Everything is written into a hidden sibling folder that is renamed to ``root`` once complete. A ``root`` that
    exists and holds anything but a data set made here is left alone (FileExistsError).

    Returns:
        The path of the data YAML, ``root/data.yaml``.
    """
    options = _validated_options(n_train, n_val, imgsz, seed)
    root = Path(root).expanduser().resolve()
    if root.exists() and not _is_replaceable(root):
        raise FileExistsError(f"{root} exists and is not a synthetic data set made by {_GENERATOR}: not replacing it")

    start = time.perf_counter()
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.with_name(f".{root.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
    staging.mkdir()
    try:
        n_images = options["n_train"] + options["n_val"]
        with TQDM(total=n_images, desc=f"Synthetic {root.name}", unit="img", disable=not progress) as bar:
            n_objects = sum(_write_split(staging, split, options, bar) for split in SPLITS)
        _write_data_yaml(staging / _YAML_FILE, root)
        (staging / _META_FILE).write_text(json.dumps(_meta(options), indent=2) + "\n")  # last: marks it complete
        if root.exists():
            shutil.rmtree(root)
        try:
            staging.rename(root)
        except OSError:
            # Another process put the same data set in place between the removal and the rename: keep theirs.
            if not _is_complete(root, options):
                raise
            shutil.rmtree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    LOGGER.info(
        f"Synthetic data set: {options['n_train']} train + {options['n_val']} val images, {n_objects} objects, "
        f"{options['imgsz']} px, seed {options['seed']}, written to {root} in {time.perf_counter() - start:.1f}s"
    )
    return root / _YAML_FILE


def synthetic_dataset(
    n_train: int = 800,
    n_val: int = 200,
    imgsz: int = 320,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """The data YAML of the synthetic data set with these options, generated on first use and reused afterwards.

    The data set lives in ``<root>/synthetic-s{seed}-n{n_train}-v{n_val}-i{imgsz}``, ``root`` defaulting to
    ``$YOLO_GFL_DATASETS`` or else ``./datasets`` (in the current working directory). A folder whose meta.json does
    not match these options and the current ``FORMAT_VERSION`` is generated again; one that was moved keeps its
    images and gets its YAML's ``path:`` rewritten.
    """
    options = _validated_options(n_train, n_val, imgsz, seed)
    parent = Path(root if root is not None else os.environ.get("YOLO_GFL_DATASETS") or "datasets")
    folder = parent.expanduser().resolve() / "synthetic-s{seed}-n{n_train}-v{n_val}-i{imgsz}".format(**options)
    if not _is_complete(folder, options):
        return generate_synthetic_dataset(folder, **options, progress=progress)
    yaml_file = folder / _YAML_FILE
    if yaml.safe_load(yaml_file.read_text()).get("path") != str(folder):
        _write_data_yaml(yaml_file, folder)
    return yaml_file


_NAME_PATTERN = re.compile(r"^synthetic((?:-[snvi]\d+)*)(?:\.ya?ml)?$")
_NAME_KEYS = {"s": "seed", "n": "n_train", "v": "n_val", "i": "imgsz"}


def resolve_data(data):
    """Return ``data`` unchanged unless it names the synthetic set: ``synthetic`` or e.g. ``synthetic-n500-v100-i256``.

    The name takes the folder's own option letters (s = seed, n = train images, v = val images, i = image size) in any
    order, each defaulting as in :func:`synthetic_dataset`; the set is generated on first use. An existing file or
    folder of that name wins, so a user's own ``synthetic.yaml`` keeps working.
    """
    if not isinstance(data, (str, os.PathLike)) or Path(data).exists():
        return data
    match = _NAME_PATTERN.match(str(data))
    if not match:
        return data
    options = {_NAME_KEYS[part[0]]: int(part[1:]) for part in match.group(1).split("-") if part}
    return str(synthetic_dataset(**options))
