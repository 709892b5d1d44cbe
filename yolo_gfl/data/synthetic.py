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

Content of an image:

* Background: a flat colour, a linear gradient or a smooth random colour field, with sensor-like grain, plus clutter
  that belongs to no class: thin anti-aliased polylines and soft-edged irregular blobs (no hard outline, so they do
  not pass for any of the shapes).
* 1 to ``MAX_OBJECTS`` objects of the ``SYNTHETIC_NAMES`` classes, each with a random colour that contrasts with what
  lies under it, a random fill (solid, stripes or noise), rotation and, where the class allows it, a stretch
  (``circle`` is never stretched, since a stretched circle is an ellipse; ``bar`` is always long and thin; the others
  stretch by at most 1.25 to 2). An object's size is its long side before rotation, log-uniform between the class
  minimum (7 to 18 px, the smallest size at which the class is still told apart) and 60% of the image side: at
  imgsz 320 the median labelled box is about 40 px (square root of its area), 15% are under 16 px and 5% over
  150 px. Objects lie wholly inside the image (none is cut by the border).
* The clutter is drawn under every object, so no clutter ever overlaps an object.
* Draw order is roughly largest first (the size times a random factor in [0.6, 1.6]), so later objects occlude
  earlier ones: mostly small over large, but not always.

Boxes are of the *visible* part of each object: the tight box of the pixels it covers minus the pixels of objects drawn
over it, exact to the pixel (a mask drawn with ``cv2.fillPoly`` is what paints the object, so mask and image agree;
the YOLO box of pixels x0..x1 spans x0 to x1 + 1). An object whose visible area would be under
``MIN_VISIBLE_FRACTION`` of its full area, or whose visible box would be under ``MIN_BOX_SIDE`` px on a side, is not
drawn at all (decided from the topmost object down, before any painting), so every shape in an image is labelled.

Determinism: each image is drawn from its own ``numpy.random.Generator`` seeded with (seed, split, index), so the
same options give byte-identical images and labels whatever the generation order, and another seed other images.

Storage: ``synthetic_dataset`` keeps each option set in its own folder,
``synthetic-s{seed}-n{n_train}-v{n_val}-i{imgsz}``, under ``$YOLO_GFL_DATASETS`` or else ``./datasets``. A data set
is written into a hidden ``.<name>.partial-*`` sibling and renamed into place only when complete, with ``meta.json``
written last, so an interrupted generation is never taken for a finished one (a killed process may leave its
``.partial-*`` folder behind; it is never read). ``FORMAT_VERSION`` changes whenever the images drawn for given
options change, which makes existing folders regenerate.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import cv2
import numpy as np
import yaml
from ultralytics.utils import LOGGER, TQDM

__all__ = [
    "SYNTHETIC_NAMES",
    "FORMAT_VERSION",
    "SyntheticObject",
    "render_sample",
    "generate_synthetic_dataset",
    "synthetic_dataset",
]

FORMAT_VERSION = 1
MAX_OBJECTS = 12
LARGEST_SIZE_FRACTION = 0.6  # the largest object's long side, as a fraction of the image side
MIN_VISIBLE_FRACTION = 0.4  # an object less visible than this is not drawn (it would be an unfair target)
MIN_BOX_SIDE = 2  # px: nor is one whose visible box is thinner than this
MIN_IMGSZ, MAX_IMGSZ, IMGSZ_STRIDE = 32, 4096, 32  # YOLOv8's largest stride is 32
SPLITS = ("train", "val")

_GENERATOR = "yolo_gfl.data.synthetic"
_META_FILE = "meta.json"
_YAML_FILE = "data.yaml"
_SUBPIXEL_BITS = 4  # fillPoly's fixed-point shift: vertices at 1/16 px keep small shapes symmetric
_ROUND_VERTICES = 96  # a 96-gon is within 0.7 px of a circle even at imgsz 4096
_MIN_CONTRAST = 120  # summed |BGR difference| an object's colour keeps from the mean colour under it
_COLOUR_TRIES = 8


def _polygon(n_vertices: int, radius: float = 1.0, phase: float = 0.0) -> np.ndarray:
    """Vertices (n, 2) of a regular polygon centred on the origin, the first at angle ``phase``."""
    angles = phase + np.arange(n_vertices) * (2 * np.pi / n_vertices)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


# The outline functions: unit-scale contours of one class (the outer one, then holes). Each takes the image's
# generator, which the classes with a free proportion (star notches, cross arms, ring hole) draw it from.


def _circle(rng: np.random.Generator) -> list[np.ndarray]:
    """A circle (a 96-gon)."""
    return [_polygon(_ROUND_VERTICES)]


def _rectangle(rng: np.random.Generator) -> list[np.ndarray]:
    """A square, which the stretch turns into a bar."""
    return [np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])]


def _triangle(rng: np.random.Generator) -> list[np.ndarray]:
    """An equilateral triangle."""
    return [_polygon(3, phase=np.pi / 2)]


def _star(rng: np.random.Generator) -> list[np.ndarray]:
    """A five-pointed star with notches at 38-50% of the tip radius."""
    radii = np.tile([1.0, rng.uniform(0.38, 0.5)], 5)  # alternate tips and notches
    return [_polygon(10, phase=np.pi / 2) * radii[:, None]]


def _cross(rng: np.random.Generator) -> list[np.ndarray]:
    """A plus sign with arms 28-40% as wide as it is long."""
    t = rng.uniform(0.28, 0.4)  # half-width of the arms
    return [
        np.array(
            [[-t, -1], [t, -1], [t, -t], [1, -t], [1, t], [t, t], [t, 1], [-t, 1], [-t, t], [-1, t], [-1, -t], [-t, -t]]
        )
    ]


def _ring(rng: np.random.Generator) -> list[np.ndarray]:
    """A disc with a concentric hole of 45-65% of its radius."""
    return [_polygon(_ROUND_VERTICES), _polygon(_ROUND_VERTICES, radius=rng.uniform(0.45, 0.65))]


def _hexagon(rng: np.random.Generator) -> list[np.ndarray]:
    """A regular hexagon."""
    return [_polygon(6)]


@dataclass(frozen=True)
class _ShapeSpec:
    """How one class is drawn: its outline and the sizes and stretches that keep it recognisable."""

    outlines: Callable[[np.random.Generator], list[np.ndarray]]  # unit-scale contours: the outer one, then holes
    min_size: int  # px: the smallest long side at which the class is still told apart from the others
    aspect: tuple[float, float]  # range of the long/short stretch


_SHAPES: dict[str, _ShapeSpec] = {
    "circle": _ShapeSpec(_circle, min_size=7, aspect=(1.0, 1.0)),
    "square": _ShapeSpec(_rectangle, min_size=7, aspect=(1.0, 1.25)),
    "triangle": _ShapeSpec(_triangle, min_size=9, aspect=(1.0, 2.0)),
    "star": _ShapeSpec(_star, min_size=14, aspect=(1.0, 1.3)),
    "bar": _ShapeSpec(_rectangle, min_size=18, aspect=(3.0, 5.5)),  # 18 px / 5.5 keeps bars over 3 px thick
    "cross": _ShapeSpec(_cross, min_size=11, aspect=(1.0, 1.5)),
    "ring": _ShapeSpec(_ring, min_size=12, aspect=(1.0, 1.5)),
    "hexagon": _ShapeSpec(_hexagon, min_size=10, aspect=(1.0, 1.3)),
}
SYNTHETIC_NAMES: tuple[str, ...] = tuple(_SHAPES)


@dataclass(frozen=True)
class SyntheticObject:
    """One labelled object of a rendered image."""

    cls: int
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, end-exclusive: the tight box of ``mask``
    mask: np.ndarray  # bool (height, width): the object's visible pixels

    def label_line(self) -> str:
        """The object's line in a YOLO label file: ``cls xc yc w h``, normalised to [0, 1], 6 decimals."""
        height, width = self.mask.shape
        x0, y0, x1, y1 = self.box
        return (
            f"{self.cls} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
            f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"
        )


@dataclass(frozen=True)
class _Shape:
    """A placed and rasterised shape, before occlusion."""

    cls: int
    size: float  # px, long side before rotation
    origin: tuple[int, int]  # x, y of the top-left pixel of ``mask`` in the image
    mask: np.ndarray  # bool crop: every pixel the shape covers


def _require_int(name: str, value: object, low: int, high: int | None = None, multiple_of: int = 1) -> int:
    """Return ``value`` as an int, or raise a ValueError naming the option, its value and the allowed range."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if multiple_of > 1:
        allowed += f" and a multiple of {multiple_of}"
    valid = (
        isinstance(value, Integral)
        and not isinstance(value, bool)  # True is an Integral, but never a meant count or size
        and value >= low
        and (high is None or value <= high)
        and value % multiple_of == 0
    )
    if not valid:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def _validated_options(n_train: object, n_val: object, imgsz: object, seed: object) -> dict[str, int]:
    """The generation options, checked, as plain ints in a fixed order (they go into meta.json)."""
    return {
        "n_train": _require_int("n_train", n_train, low=1),
        "n_val": _require_int("n_val", n_val, low=1),
        "imgsz": _require_int("imgsz", imgsz, low=MIN_IMGSZ, high=MAX_IMGSZ, multiple_of=IMGSZ_STRIDE),
        "seed": _require_int("seed", seed, low=0),
    }


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A sample whose logarithm is uniform in [log low, log high]: as many small as large objects per octave."""
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _background(rng: np.random.Generator, imgsz: int) -> np.ndarray:
    """A flat, gradient or smooth random-field BGR background with grain, uint8 (imgsz, imgsz, 3)."""
    kind = rng.integers(3)
    if kind == 0:
        image = np.full((imgsz, imgsz, 3), rng.integers(0, 256, 3), np.float32)
    elif kind == 1:
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.arange(imgsz, dtype=np.float32)[:, None] * math.sin(angle) + np.arange(imgsz) * math.cos(angle)
        ramp = (ramp - ramp.min()) / np.ptp(ramp)
        start, end = rng.integers(0, 256, (2, 3)).astype(np.float32)
        image = start + ramp[..., None] * (end - start)
    else:
        cells = rng.integers(2, 9)
        field = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        image = cv2.resize(field, (imgsz, imgsz), interpolation=cv2.INTER_CUBIC)
    # Grain in brightness only: a third of the random numbers of colour noise, and it looks the same to a detector.
    image += rng.standard_normal((imgsz, imgsz, 1), dtype=np.float32) * rng.uniform(0, 12)
    return np.clip(image, 0, 255).astype(np.uint8)


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A BGR colour as cv2 drawing calls want it: a tuple of Python ints."""
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _draw_clutter(rng: np.random.Generator, image: np.ndarray) -> None:
    """Draw class-less distractors in place: thin polylines and soft irregular blobs, under every object."""
    imgsz = image.shape[0]
    for _ in range(rng.integers(0, 9)):
        # A 1 px anti-aliased random walk: too thin and soft to be a bar, too open to be any outline.
        n_points = rng.integers(2, 6)
        steps = rng.normal(0, 0.15 * imgsz, (n_points, 2))
        steps[0] = rng.uniform(0, imgsz, 2)
        points = np.round(np.cumsum(steps, axis=0) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
        cv2.polylines(image, [points], False, _random_colour(rng), 1, cv2.LINE_AA, _SUBPIXEL_BITS)
    for _ in range(rng.integers(0, 6)):
        # A thresholded, upsampled noise patch under a radial falloff: a lumpy blob whose soft edge no shape has.
        side = int(rng.integers(6, max(7, imgsz // 8) + 1))
        lumps = cv2.resize(rng.uniform(0, 1, (4, 4)).astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC)
        offsets = (np.arange(side, dtype=np.float32) - (side - 1) / 2) / (side / 2)
        falloff = 1 - (offsets[:, None] ** 2 + offsets[None, :] ** 2)
        alpha = np.clip((lumps * falloff - 0.25) * 4, 0, 1)[..., None] * rng.uniform(0.4, 0.9)
        x, y = rng.integers(0, imgsz - side + 1, 2)
        region = image[y : y + side, x : x + side]
        region[:] = region * (1 - alpha) + np.array(_random_colour(rng), np.float32) * alpha


def _sample_shape(rng: np.random.Generator, imgsz: int) -> _Shape:
    """Pick a class, size, stretch, rotation and place wholly inside the image; rasterise its mask."""
    cls = int(rng.integers(len(SYNTHETIC_NAMES)))
    spec = _SHAPES[SYNTHETIC_NAMES[cls]]
    size = _log_uniform(rng, spec.min_size, max(spec.min_size, LARGEST_SIZE_FRACTION * imgsz))
    aspect = _log_uniform(rng, *spec.aspect)
    angle = rng.uniform(0, 2 * np.pi)
    contours = spec.outlines(rng)

    # Centre the outer contour's box on the origin and scale its longer side to `size`, stretched across by `aspect`,
    # then rotate: `size` is the long side before rotation whatever the class's outline.
    low, high = contours[0].min(axis=0), contours[0].max(axis=0)
    centre, half_side = (low + high) / 2, (high - low).max() / 2
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    transform = rotation @ np.diag([size / 2, size / 2 / aspect]) / half_side
    contours = [(contour - centre) @ transform.T for contour in contours]

    # Every vertex on a pixel centre in [0, imgsz - 1]: no object is cut by the border. A rotated square of 60% of the
    # side spans 85% of it, so there is always room.
    low, high = contours[0].min(axis=0), contours[0].max(axis=0)
    contours = [contour + rng.uniform(-low, imgsz - 1 - high) for contour in contours]

    # Rasterise into a crop of the shape's own box; fillPoly rounds vertices to the nearest pixel, so floor..ceil holds
    # every pixel it fills. The image is later painted through this very mask, so mask and image always agree.
    origin = np.floor(contours[0].min(axis=0)).astype(int)
    width, height = np.ceil(contours[0].max(axis=0)).astype(int) - origin + 1
    fixed_point = [np.round((contour - origin) * (1 << _SUBPIXEL_BITS)).astype(np.int32) for contour in contours]
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, fixed_point[:1], 1, cv2.LINE_8, _SUBPIXEL_BITS)
    if len(fixed_point) > 1:
        cv2.fillPoly(mask, fixed_point[1:], 0, cv2.LINE_8, _SUBPIXEL_BITS)  # the ring's hole
    return _Shape(cls=cls, size=size, origin=(int(origin[0]), int(origin[1])), mask=mask.astype(bool))


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (end-exclusive) of the nonzero pixels of a non-empty mask."""
    columns, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def _visible_shapes(shapes: list[_Shape], imgsz: int) -> list[tuple[_Shape, np.ndarray, tuple[int, int, int, int]]]:
    """Keep the shapes visible enough, in draw order, each with its visible mask crop and its visible box in the image.

    Works from the topmost shape down, so a shape that is dropped never occludes the ones beneath it: it is not drawn.
    """
    covered = np.zeros((imgsz, imgsz), bool)
    kept = []
    for shape in reversed(shapes):
        x, y = shape.origin
        height, width = shape.mask.shape
        covered_below = covered[y : y + height, x : x + width]  # a view: updating it marks the image as covered
        visible = shape.mask & ~covered_below
        if visible.sum() < MIN_VISIBLE_FRACTION * shape.mask.sum():
            continue
        x0, y0, x1, y1 = _tight_box(visible)
        if min(x1 - x0, y1 - y0) < MIN_BOX_SIDE:
            continue
        covered_below |= shape.mask
        kept.append((shape, visible, (x + x0, y + y0, x + x1, y + y1)))
    return kept[::-1]


def _contrasting_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A random BGR colour at least _MIN_CONTRAST from the mean colour ``under``, so every object stands out."""
    for _ in range(_COLOUR_TRIES):
        colour = rng.integers(0, 256, 3)
        if np.abs(colour - under).sum() >= _MIN_CONTRAST:
            return colour
    return np.where(under < 128, 255, 0)  # the farthest corner of the colour cube


def _fill(rng: np.random.Generator, colour: np.ndarray, height: int, width: int) -> np.ndarray:
    """A (height, width, 3) uint8 fill around ``colour``: solid, stripes or noise."""
    kind = rng.choice(3, p=[0.4, 0.3, 0.3])
    if kind == 0:
        return np.broadcast_to(colour.astype(np.uint8), (height, width, 3))
    if kind == 1:
        # Alternate `colour` with a shade of it pulled towards black or white, whichever is farther.
        toward = 0.0 if colour.mean() > 127 else 255.0
        shade = colour + (toward - colour) * rng.uniform(0.45, 0.75)
        period, angle = rng.uniform(3, max(4, max(height, width) / 3)), rng.uniform(0, np.pi)
        phase = (np.arange(height)[:, None] * math.sin(angle) + np.arange(width) * math.cos(angle)) / period
        texture = np.where((phase % 1.0 < 0.5)[..., None], colour, shade)
    else:
        texture = colour + rng.normal(0, rng.uniform(15, 40), (height, width, 3))
    return np.clip(texture, 0, 255).astype(np.uint8)


def _paint(rng: np.random.Generator, image: np.ndarray, shape: _Shape) -> None:
    """Paint a shape in place through its full mask, in a colour that contrasts with what it covers."""
    x, y = shape.origin
    height, width = shape.mask.shape
    region = image[y : y + height, x : x + width]
    colour = _contrasting_colour(rng, region[shape.mask].mean(axis=0))
    region[shape.mask] = _fill(rng, colour, height, width)[shape.mask]


def render_sample(
    index: int, imgsz: int = 320, seed: int = 0, split: str = "train"
) -> tuple[np.ndarray, list[SyntheticObject]]:
    """Draw image ``index`` of ``split``: the same for the same arguments, whatever else was drawn before.

    Returns:
        image: uint8 BGR (imgsz, imgsz, 3), the pixels written to ``images/<split>/<index:06d>.png``.
        objects: its labelled objects in draw order (later ones on top), the lines of its label file.
    """
    index = _require_int("index", index, low=0)
    imgsz = _require_int("imgsz", imgsz, low=MIN_IMGSZ, high=MAX_IMGSZ, multiple_of=IMGSZ_STRIDE)
    seed = _require_int("seed", seed, low=0)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = np.random.default_rng([seed, SPLITS.index(split), index])

    image = _background(rng, imgsz)
    _draw_clutter(rng, image)
    shapes = [_sample_shape(rng, imgsz) for _ in range(rng.integers(1, MAX_OBJECTS + 1))]
    draw_keys = [-shape.size * jitter for shape, jitter in zip(shapes, rng.uniform(0.6, 1.6, len(shapes)))]
    shapes = [shapes[i] for i in np.argsort(draw_keys, kind="stable")]  # roughly largest first, i.e. at the back

    objects = []
    for shape, visible, box in _visible_shapes(shapes, imgsz):
        _paint(rng, image, shape)
        x, y = shape.origin
        height, width = visible.shape
        mask = np.zeros((imgsz, imgsz), bool)
        mask[y : y + height, x : x + width] = visible
        objects.append(SyntheticObject(cls=shape.cls, box=box, mask=mask))
    return image, objects


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
    partial = yaml_file.with_name(f".{yaml_file.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
    header = f"# Synthetic shapes made by {_GENERATOR}; see meta.json for the options.\n"
    partial.write_text(header + yaml.safe_dump(data, sort_keys=False))
    os.replace(partial, yaml_file)


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
