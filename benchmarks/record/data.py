"""The images a cell trains on: a data set's own YAML, or one whose splits are fixed-seed subsamples."""

from __future__ import annotations

import random
from pathlib import Path

from .settings import IMAGE_SUFFIXES, BenchmarkError


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _split_folder(data_yaml: Path, split: str) -> Path:
    from ultralytics.utils import YAML

    cfg = YAML.load(data_yaml)
    if split not in cfg:
        raise BenchmarkError(f"{data_yaml} has no '{split}:' entry")
    folder = (data_yaml.parent / cfg[split]).resolve()
    if not folder.is_dir():
        raise BenchmarkError(f"{data_yaml}: its {split} folder {folder} does not exist")
    return folder


def prepare_data(name: str, data_yaml: Path, out_dir: Path, train: int | None, val: int | None) -> Path:
    """The data YAML a cell trains on: the original, or one whose splits are fixed-seed subsamples (image lists).

    A subsample draws ``train`` (``val``) images of the split with ``random.Random(0)``, so every session and machine
    trains on the same images; Ultralytics reads the list file and finds each label beside ``images/`` as usual.
    """
    if train is None and val is None:
        return data_yaml.resolve()
    from ultralytics.utils import YAML

    cfg = YAML.load(data_yaml)
    out_dir.mkdir(parents=True, exist_ok=True)
    derived = {"names": cfg["names"]}
    for split, n in (("train", train), ("val", val)):
        folder = _split_folder(data_yaml, split)
        images = _images(folder)
        if n is not None and n < len(images):
            images = sorted(random.Random(0).sample(images, n))
            listing = out_dir / f"{name}-{split}-{n}.txt"
            listing.write_text("".join(f"{p}\n" for p in images))
            derived[split] = str(listing)
        else:
            derived[split] = str(folder)
    out = out_dir / f"{name}-t{train}-v{val}.yaml"
    YAML.save(out, derived)
    return out
