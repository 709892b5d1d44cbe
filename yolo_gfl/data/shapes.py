"""What one image of the synthetic data set shows, drawn deterministically: coloured shapes, clutter, exact boxes.

:func:`render_sample` draws image ``index`` of a split; ``yolo_gfl.data.synthetic`` writes the images into a data set.

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

A change to what is drawn for given options must bump ``FORMAT_VERSION``, which makes stored data sets regenerate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral

import cv2
import numpy as np

__all__ = ["SYNTHETIC_NAMES", "FORMAT_VERSION", "SyntheticObject", "render_sample"]

FORMAT_VERSION = 1
MAX_OBJECTS = 12
LARGEST_SIZE_FRACTION = 0.6  # the largest object's long side, as a fraction of the image side
MIN_VISIBLE_FRACTION = 0.4  # an object less visible than this is not drawn (it would be an unfair target)
MIN_BOX_SIDE = 2  # px: nor is one whose visible box is thinner than this
MIN_IMGSZ, MAX_IMGSZ, IMGSZ_STRIDE = 32, 4096, 32  # YOLOv8's largest stride is 32
SPLITS = ("train", "val")

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


def require_int(name: str, value: object, low: int, high: int | None = None, multiple_of: int = 1) -> int:
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
    index = require_int("index", index, low=0)
    imgsz = require_int("imgsz", imgsz, low=MIN_IMGSZ, high=MAX_IMGSZ, multiple_of=IMGSZ_STRIDE)
    seed = require_int("seed", seed, low=0)
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
