"""Sampling and rendering of one synthetic occlusion scene.

Things are stacked by a depth that follows their class (big ``table`` at the
bottom, small ``badge`` on top) plus a little Gaussian noise, and small
objects are mostly centred on a larger one, so most scenes hold overlapping
pairs whose top instance is the smaller, rarer one.

Rule for hidden things: a thing whose visible part (after all objects above
it are drawn) is smaller than ``min_visible_area`` pixels is removed from
the scene before anything is rendered, so it is absent from the image, the
PNG, the instances JSON and the overlaps alike. Removing it only uncovers
objects below it, so one pass suffices. Amodal masks are clipped to the
image, as COCO masks are.

Scene settings vary the data so that no conclusion rests on one generator:
``on_top_prob`` (how many things are stacked on a lower one, hence the
number of overlapping pairs), ``allow_overlap=False`` (things are placed
apart; :func:`~.coco_writer.generate_synthetic_occlusion` uses it for a
share of the images) and ``thing_scale`` (all thing sizes times a factor).

Category ids are deliberately not label + 1 (things 11-16, stuff 21-24) so
that code confusing ids with labels fails on this data too.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import cv2
import numpy as np


@dataclass(frozen=True)
class ThingSpec:
    """How one thing class looks and where it sits in the depth order.

    Sizes are fractions of the image size ``S``; ``depth_rank`` grows towards
    the viewer; ``frequency`` is the sampling weight (big classes are
    frequent, as persons are on COCO).
    """
    name: str
    category_id: int
    color: Tuple[int, int, int]
    shape: str
    size_range: Tuple[Tuple[float, float], Tuple[float, float]]
    max_angle: float
    depth_rank: int
    frequency: float


@dataclass(frozen=True)
class StuffSpec:
    """A background class: a base colour and a texture kind."""
    name: str
    category_id: int
    color: Tuple[int, int, int]
    texture: str


THING_SPECS = (
    ThingSpec('table', 11, (140, 85, 40), 'rectangle',
              ((0.40, 0.65), (0.28, 0.45)), 10, 0, 0.22),
    ThingSpec('person', 12, (135, 60, 175), 'ellipse',
              ((0.10, 0.16), (0.20, 0.30)), 15, 1, 0.26),
    ThingSpec('book', 13, (230, 230, 225), 'rectangle',
              ((0.16, 0.26), (0.11, 0.18)), 40, 2, 0.20),
    ThingSpec('cup', 14, (225, 35, 35), 'circle', ((0.05, 0.08), (0.05, 0.08)),
              0, 3, 0.12),
    ThingSpec('tie', 15, (250, 210, 0), 'kite', ((0.05, 0.08), (0.14, 0.20)),
              20, 4, 0.10),
    ThingSpec('badge', 16, (235, 50, 205), 'hexagon',
              ((0.045, 0.07), (0.045, 0.07)), 30, 5, 0.10),
)
STUFF_SPECS = (
    StuffSpec('sky', 21, (150, 200, 240), 'gradient'),
    StuffSpec('grass', 22, (60, 145, 55), 'stripes'),
    StuffSpec('water', 23, (30, 75, 150), 'ripples'),
    StuffSpec('sand', 24, (205, 185, 135), 'speckles'),
)

SYNTHETIC_OCCLUSION_METAINFO = dict(
    classes=tuple(s.name for s in THING_SPECS + STUFF_SPECS),
    thing_classes=tuple(s.name for s in THING_SPECS),
    stuff_classes=tuple(s.name for s in STUFF_SPECS),
    palette=[s.color for s in THING_SPECS + STUFF_SPECS])


@dataclass
class SceneObject:
    """One thing of a scene.

    ``amodal`` is the full shape (bool, (S, S)), ``visible`` the part not
    covered by objects above (bool, (S, S)).
    """
    spec: ThingSpec
    depth: float
    amodal: np.ndarray
    visible: Optional[np.ndarray] = None


@dataclass
class Scene:
    """A rendered scene: image, stuff map and things bottom to top.

    ``image`` is uint8 (S, S, 3) RGB; ``stuff_map`` int64 (S, S) indices
    into :data:`STUFF_SPECS`; ``objects`` sorted by increasing depth.
    """
    image: np.ndarray
    stuff_map: np.ndarray
    objects: List[SceneObject] = field(default_factory=list)


def _draw_shape(spec: ThingSpec, center: Tuple[float, float],
                half_size: Tuple[float, float], angle: float,
                size: int) -> np.ndarray:
    """Rasterise one amodal shape; returns bool (size, size)."""
    canvas = np.zeros((size, size), np.uint8)
    cx, cy = center
    hw, hh = half_size
    if spec.shape == 'ellipse':
        cv2.ellipse(canvas, (round(cx), round(cy)), (round(hw), round(hh)),
                    angle, 0, 360, 1, -1)
    elif spec.shape == 'circle':
        cv2.circle(canvas, (round(cx), round(cy)), round(hw), 1, -1)
    else:
        if spec.shape == 'rectangle':
            outline = [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
        elif spec.shape == 'kite':  # a tie: short top, long pointed bottom
            outline = [(0, -hh), (hw, -0.4 * hh), (0, hh), (-hw, -0.4 * hh)]
        else:  # hexagon
            outline = [(hw * np.cos(t), hw * np.sin(t))
                       for t in np.arange(6) * np.pi / 3]
        theta = np.deg2rad(angle)
        rotation = np.array([[np.cos(theta), -np.sin(theta)],
                             [np.sin(theta), np.cos(theta)]])
        points = np.array(outline) @ rotation.T + np.array([cx, cy])
        cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
    return canvas.astype(bool)


def _stuff_layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """Split the background into 2-3 wavy horizontal bands of stuff.

    Returns:
        np.ndarray: int64 (size, size), indices into :data:`STUFF_SPECS`.
    """
    num_bands = int(rng.integers(2, 4))
    classes = rng.choice(len(STUFF_SPECS), num_bands, replace=False)
    xs = np.arange(size)
    ys = np.arange(size)[:, None]
    band = np.zeros((size, size), np.int64)
    bases = np.sort(rng.uniform(0.2, 0.8, num_bands - 1)) * size
    for base in bases:
        wave = base + rng.uniform(0.02, 0.08) * size * np.sin(
            2 * np.pi * xs / rng.uniform(0.4, 1.2) / size +
            rng.uniform(0, 2 * np.pi))
        band += (ys >= wave[None, :]).astype(np.int64)
    return classes[band]


def _stuff_texture(rng: np.random.Generator, spec: StuffSpec,
                   size: int) -> np.ndarray:
    """Texture of one stuff class over the whole canvas; float (S, S, 3)."""
    color = np.array(spec.color, np.float32)
    grid = np.arange(size, dtype=np.float32) / size
    if spec.texture == 'gradient':
        shade = 25 * (0.5 - grid)[:, None].repeat(size, 1)
    elif spec.texture == 'stripes':
        shade = np.broadcast_to(rng.normal(0, 12, size), (size, size))
    elif spec.texture == 'ripples':
        shade = 18 * np.sin(2 * np.pi * 9 * grid[:, None] +
                            2 * np.sin(2 * np.pi * 2 * grid[None, :]))
    else:  # speckles
        shade = 30 * (rng.random((size, size)) < 0.06) - 10
    return color + np.asarray(shade, np.float32)[..., None]


def make_scene(rng: np.random.Generator,
               size: int,
               num_things: Tuple[int, int] = (3, 7),
               on_top_prob: float = 0.8,
               depth_noise: float = 0.5,
               min_visible_area: int = 20,
               noise_std: float = 4.0,
               thing_scale: float = 1.0,
               allow_overlap: bool = True,
               max_placement_tries: int = 20) -> Scene:
    """Sample and render one scene.

    Args:
        rng (np.random.Generator): Source of all randomness.
        size (int): Image side ``S`` in pixels.
        num_things (tuple[int, int]): Half-open range of things sampled
            before hidden ones are removed. Defaults to (3, 7).
        on_top_prob (float): Chance that a thing which is not a table is
            centred on a thing of a lower depth rank placed before it, which
            is what makes most images hold overlaps. Defaults to 0.8.
        depth_noise (float): Std of the Gaussian noise added to the class
            depth rank; 0.5 swaps neighbouring classes in about 8% of
            their overlaps, so class alone does not decide the order.
            Defaults to 0.5.
        min_visible_area (int): Things with fewer visible pixels are removed
            (see the module docstring). Defaults to 20.
        noise_std (float): Std of the pixel noise. Defaults to 4.0.
        thing_scale (float): Factor on every thing's size range, to move
            the whole set towards smaller or larger objects (0.6 gives
            cups and badges of 3-5% of the side). Defaults to 1.0.
        allow_overlap (bool): If False, ``on_top_prob`` is ignored and each
            thing is placed where its amodal mask touches no earlier one
            (up to ``max_placement_tries`` random centres; a thing that
            finds no free place is dropped), so the scene has no
            overlapping pair. Defaults to True.
        max_placement_tries (int): See ``allow_overlap``. Defaults to 20.

    Returns:
        Scene: The rendered scene.
    """
    frequencies = np.array([s.frequency for s in THING_SPECS])
    count = int(rng.integers(*num_things))
    picks = rng.choice(
        len(THING_SPECS), count, p=frequencies / frequencies.sum())
    picks = sorted(picks, key=lambda i: THING_SPECS[i].depth_rank)
    objects: List[SceneObject] = []
    centers: List[Tuple[float, float, float, float, int]] = []
    occupied = np.zeros((size, size), bool)
    for index in picks:
        spec = THING_SPECS[index]
        (w_lo, w_hi), (h_lo, h_hi) = spec.size_range
        half_w = rng.uniform(w_lo, w_hi) * thing_scale * size / 2
        if spec.shape in ('circle', 'hexagon'):  # regular: one size
            half_h = half_w
        else:
            half_h = rng.uniform(h_lo, h_hi) * thing_scale * size / 2
        if allow_overlap:
            anchors = [c for c in centers if c[4] < spec.depth_rank]
            if anchors and rng.random() < on_top_prob:
                ax, ay, aw, ah, _ = anchors[int(rng.integers(len(anchors)))]
                center = (ax + rng.uniform(-0.6, 0.6) * aw,
                          ay + rng.uniform(-0.6, 0.6) * ah)
            else:
                center = tuple(rng.uniform(0.1, 0.9, 2) * size)
            angle = rng.uniform(-spec.max_angle, spec.max_angle)
            amodal = _draw_shape(spec, center, (half_w, half_h), angle, size)
        else:
            amodal = None
            for _ in range(max_placement_tries):
                center = tuple(rng.uniform(0.1, 0.9, 2) * size)
                angle = rng.uniform(-spec.max_angle, spec.max_angle)
                candidate = _draw_shape(spec, center, (half_w, half_h), angle,
                                        size)
                if not (candidate & occupied).any():
                    amodal = candidate
                    break
            if amodal is None:
                continue
        if amodal.sum() < min_visible_area:
            continue
        occupied |= amodal
        centers.append((*center, half_w, half_h, spec.depth_rank))
        depth = spec.depth_rank + rng.normal(0, depth_noise)
        objects.append(SceneObject(spec, depth, amodal))
    objects.sort(key=lambda obj: obj.depth)

    covered = np.zeros((size, size), bool)
    for obj in reversed(objects):  # from the viewer down
        obj.visible = obj.amodal & ~covered
        if obj.visible.sum() >= min_visible_area:
            covered |= obj.amodal
    objects = [o for o in objects if o.visible.sum() >= min_visible_area]

    stuff_map = _stuff_layout(rng, size)
    image = np.zeros((size, size, 3), np.float32)
    for stuff_index in np.unique(stuff_map):
        texture = _stuff_texture(rng, STUFF_SPECS[stuff_index], size)
        image[stuff_map == stuff_index] = texture[stuff_map == stuff_index]
    for obj in objects:
        color = np.array(obj.spec.color, np.float32) + rng.normal(0, 8, 3)
        eroded = cv2.erode(obj.amodal.astype(np.uint8), np.ones((3, 3)))
        image[obj.amodal] = color
        image[obj.amodal & ~eroded.astype(bool)] = 0.55 * color  # outline
    image += rng.normal(0, noise_std, image.shape)
    scene = Scene(np.clip(image, 0, 255).astype(np.uint8), stuff_map)
    scene.objects = objects
    return scene


def coco_like_mask(amodal: np.ndarray, visible: np.ndarray,
                   band: int) -> np.ndarray:
    """The mask a COCO annotator would draw for a partly hidden thing.

    COCO instance masks are polygons traced by hand around what is seen.
    Two habits follow, and this function models both:

    - a polygon has no holes, so an occluder lying *inside* the outline (a
      tie on a shirt) is included: the holes of the visible region are
      filled;
    - where an occluder cuts the outline, the annotator follows the
      occluder's edge, and the clicked vertices overshoot it by a few
      pixels: the occluded part within ``band`` pixels of the visible
      region is included, the rest is not.

    So masks of overlapping things overlap only partly (fully where one
    lies inside the other, in a thin band elsewhere), unlike the amodal
    masks, which overlap completely, and the panoptic ones, which never do.
    We chose this over "a random share of the hidden part" because it is
    deterministic, follows the geometry as a human does and has one
    interpretable knob.

    Args:
        amodal (np.ndarray): bool, shape (S, S), the full shape.
        visible (np.ndarray): bool, shape (S, S), its unoccluded part,
            inside ``amodal``.
        band (int): Overshoot in pixels across an occluder's edge; 0 keeps
            only the visible part plus its filled holes.

    Returns:
        np.ndarray: bool, shape (S, S), with ``visible <= mask <= amodal``.
    """
    visible_u8 = visible.astype(np.uint8)
    contours, _ = cv2.findContours(visible_u8, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(visible_u8)
    cv2.drawContours(filled, contours, -1, 1, -1)
    mask = filled.astype(bool) | visible
    if band > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                           (2 * band + 1, 2 * band + 1))
        mask |= cv2.dilate(visible_u8, kernel).astype(bool)
    return mask & amodal
