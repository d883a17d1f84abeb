"""Drawing one ``synth`` image: a bird-like object on a cluttered background.

The object is drawn in its own frame, in units of its length L: ``u`` runs
along the body (the head at negative u), ``v`` downwards. It has a body
(the same for every class, neutral with a small tint) and three class-
deciding parts, each localised:

- head: a shape (circle, triangle, ...) at the front of the body;
- wing: an ellipse on the back, filled with a colour;
- tail: a fan at the rear, filled with a texture ("pattern").

Distractors are loose copies of those parts (a head shape, a coloured wing,
a textured tail) drawn on the background, never attached to a body and drawn
from the same distribution for every class: they are real candidates for a
wrong prototype match but carry no class information.

Like photographs of birds, no two images of a class are alike (``Look``):
every part's size, position, outline, colour and texture varies within its
class; the background holds clutter (branches, leaves, textured patches)
whose colours and textures overlap those of the parts; leaves and twigs may
partly hide the object (occluders are not object in the masks); the
photograph has its own lighting (brightness, contrast, colour cast), blur
and noise. The variation never crosses a class boundary: a head keeps its
shape, a wing its hue family, a tail its pattern.

Every image draws its random numbers from separate streams (scene, pose,
distractors, object, occluders, photograph), so that the scene around the
object does not depend on the object's class.

Everything is drawn ``supersample`` times larger than the output and area-
averaged down; a pixel's segment label is the one covering most of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Segment labels of the (H, W) uint8 segmentation map.
BACKGROUND, BODY, HEAD, WING, PATTERN = range(5)
PART_LABELS = {"head": HEAD, "wing": WING, "pattern": PATTERN}

SHAPES = ("circle", "triangle", "square", "diamond", "cross", "star")
COLOURS = {  # saturated, so that a wing reads as a colour on any background
    "red": (215, 35, 35),
    "blue": (40, 80, 225),
    "yellow": (235, 205, 30),
    "green": (35, 165, 60),
    "magenta": (200, 50, 200),
    "cyan": (30, 200, 215),
}
PATTERNS = ("stripes", "spots", "checks", "bars")

# Object geometry in the object frame (units of L); the object spans u in
# [-0.45, 0.55], so L is its length.
BODY_CENTRE, BODY_AXES = (0.02, 0.04), (0.30, 0.20)
HEAD_CENTRE, HEAD_RADIUS = (-0.29, -0.10), 0.16
WING_CENTRE, WING_AXES, WING_ANGLE = (0.05, -0.03), (0.19, 0.10), -8.0
TAIL = np.array([(0.25, -0.12), (0.55, -0.28), (0.55, 0.32), (0.25, 0.18)])
TAIL_U, TAIL_V = (0.25, 0.55), (-0.28, 0.32)  # the tail's box: texture coordinates

BODY_COLOUR, OUTLINE_COLOUR, HEAD_COLOUR = (185, 170, 145), (55, 45, 40), (70, 60, 55)
TEXTURE_DARK, TEXTURE_LIGHT = (35, 30, 30), (235, 230, 220)
SUBPIXEL = 4  # fractional bits of cv2.fillPoly coordinates


@dataclass(frozen=True)
class ClassParts:
    """What decides a class: head shape, wing colour, tail pattern."""

    head: str
    wing: str
    pattern: str

    @property
    def name(self) -> str:
        return f"{self.head}-{self.wing}-{self.pattern}"


@dataclass(frozen=True)
class Look:
    """How much images of one class differ (see ``SynthConfig`` for the ranges).

    part_jitter     relative jitter of each part's size and position, and of its
                    outline's vertices; head and wing turn by up to 40 x it degrees
    colour_jitter   per-channel jitter of the part and body colours, grey levels
    texture_jitter  relative jitter of a tail pattern's frequency and its
                    orientation (up to 30 x it degrees), random phase and contrast
    lighting        brightness and contrast in 1 +- lighting, colour cast in
                    1 +- lighting / 2 per channel, and a soft shadow
    blur            Gaussian blur, sigma uniform in [0, blur] output pixels
    occluders       up to this many leaves or twigs over the object
    clutter         branches, leaves and textured patches on the background
    """

    part_jitter: float = 0.0
    colour_jitter: float = 15.0
    texture_jitter: float = 0.0
    lighting: float = 0.0
    blur: float = 0.0
    occluders: int = 0
    clutter: int = 0


# Colours of natural clutter (leaves, bark, dry grass); clutter also takes the
# part colours, as flowers and berries do.
NATURE = ((70, 110, 45), (110, 150, 60), (60, 85, 40), (120, 90, 60), (90, 70, 50),
          (160, 140, 90), (140, 120, 100), (200, 180, 120))
MIN_VISIBLE = 0.6  # an occluder never hides more than 40% of any part


# --- shapes in the object frame -------------------------------------------

def ellipse(centre, axes, angle_deg: float = 0.0, n: int = 48) -> np.ndarray:
    """(n, 2) polygon of an ellipse."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    a = np.deg2rad(angle_deg)
    x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
    return np.stack([centre[0] + x * np.cos(a) - y * np.sin(a),
                     centre[1] + x * np.sin(a) + y * np.cos(a)], axis=1)


def head_shape(shape: str, centre, r: float) -> np.ndarray:
    """(n, 2) polygon of a head of radius about ``r``; pointed shapes point forward (-u)."""
    if shape == "circle":
        return ellipse(centre, (r, r))
    if shape == "triangle":
        angles = np.deg2rad([180, 60, -60])
        pts = 1.25 * r * np.stack([np.cos(angles), np.sin(angles)], 1)
    elif shape == "square":
        pts = 0.88 * r * np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)])
    elif shape == "diamond":
        pts = 1.2 * r * np.array([(-1, 0), (0, -1), (1, 0), (0, 1)])
    elif shape == "cross":
        a, b = 1.05 * r, 0.38 * r
        pts = np.array([(-a, -b), (-b, -b), (-b, -a), (b, -a), (b, -b), (a, -b),
                        (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b)])
    elif shape == "star":
        angles = np.deg2rad(180 + 36 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, 1.3 * r, 0.55 * r)
        pts = radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)
    else:
        raise ValueError(f"unknown head shape {shape!r}")
    return pts + np.asarray(centre)


@dataclass(frozen=True)
class TextureWarp:
    """A pattern's own frequency, orientation and phase (identity by default)."""

    scale: float = 1.0
    angle_deg: float = 0.0
    phase: tuple[float, float] = (0.0, 0.0)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Rotate in physical units (the tail box is 0.3 L by 0.6 L), about the box centre.
        t = np.deg2rad(self.angle_deg)
        x, y = (a - 0.5) * 0.3, (b - 0.5) * 0.6
        x, y = x * np.cos(t) - y * np.sin(t), x * np.sin(t) + y * np.cos(t)
        return (x / 0.3 * self.scale + 0.5 + self.phase[0],
                y / 0.6 * self.scale + 0.5 + self.phase[1])


def texture(pattern: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bool, True where ``pattern`` is dark at tail coordinates (a, b) in [0, 1]^2.

    ``a`` runs along the body, ``b`` across it; the tail box is 0.3 L by 0.6 L,
    so a cell of 1/2 in a and 1/4 in b is square.
    """
    if pattern == "stripes":  # bands across the body axis
        return np.floor(b * 6) % 2 == 1
    if pattern == "bars":  # bands along the body axis
        return np.floor(a * 4) % 2 == 1
    if pattern == "checks":
        return (np.floor(a * 2) + np.floor(b * 4)) % 2 == 1
    if pattern == "spots":
        da = (a * 2) % 1 - 0.5
        db = (b * 4) % 1 - 0.5
        return da ** 2 + db ** 2 < 0.32 ** 2
    raise ValueError(f"unknown pattern {pattern!r}")


# --- poses and drawing -------------------------------------------------------

def pose(centre_xy, length: float, angle_deg: float, mirror: bool) -> np.ndarray:
    """2x3 affine map from the object frame (u, v, 1) to canvas pixels (x, y)."""
    a = np.deg2rad(angle_deg)
    m = -1.0 if mirror else 1.0
    return np.array([[length * np.cos(a) * m, -length * np.sin(a), centre_xy[0]],
                     [length * np.sin(a) * m, length * np.cos(a), centre_xy[1]]])


def apply(P: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points (n, 2) of the object frame -> canvas pixels (n, 2)."""
    return pts @ P[:, :2].T + P[:, 2]


def fill(canvas: np.ndarray, pts: np.ndarray, value) -> None:
    """Fill the polygon ``pts`` (canvas pixels, float) with ``value``."""
    fixed = np.round((pts - 0.5) * (1 << SUBPIXEL)).astype(np.int32)  # pixel centres at +0.5
    cv2.fillPoly(canvas, [fixed], value, lineType=cv2.LINE_8, shift=SUBPIXEL)


def outline(canvas: np.ndarray, pts: np.ndarray, value, thickness: int) -> None:
    """Draw the closed outline of polygon ``pts`` (canvas pixels), ``thickness`` wide."""
    fixed = np.round((pts - 0.5) * (1 << SUBPIXEL)).astype(np.int32)
    cv2.polylines(canvas, [fixed], True, value, thickness=thickness, lineType=cv2.LINE_8,
                  shift=SUBPIXEL)


def fill_texture(rgb: np.ndarray, pts: np.ndarray, to_box: np.ndarray, pattern: str,
                 warp: TextureWarp, light, dark) -> tuple[np.ndarray, tuple[int, int]] | None:
    """Fill polygon ``pts`` (canvas pixels) with ``pattern`` in colours ``light``/``dark``.

    ``to_box`` (2x3) maps canvas pixels (x, y, 1) to the pattern's box
    coordinates (a, b), which ``warp`` then turns, scales and shifts. Returns
    the filled pixels (bool, in the polygon's bounding box) and the box's
    corner (x0, y0), or None when the polygon lies outside the canvas.
    """
    h, w = rgb.shape[:2]
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + 1, (w, h))
    if x1 <= x0 or y1 <= y0:
        return None
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fill(inside, pts - (x0, y0), 1)
    inside = inside.astype(bool)
    ys, xs = np.mgrid[y0:y1, x0:x1] + 0.5  # pixel centres
    a = to_box[0, 0] * xs + to_box[0, 1] * ys + to_box[0, 2]
    b = to_box[1, 0] * xs + to_box[1, 1] * ys + to_box[1, 2]
    dark_px = texture(pattern, *warp(a, b))
    box = rgb[y0:y1, x0:x1]
    box[inside & ~dark_px] = light
    box[inside & dark_px] = dark
    return inside, (x0, y0)


def tail_to_box(P: np.ndarray) -> np.ndarray:
    """2x3 map from canvas pixels to the tail box's texture coordinates (a, b) in [0, 1]^2."""
    A_inv = np.linalg.inv(P[:, :2])
    to_uv = np.hstack([A_inv, -A_inv @ P[:, 2:]])
    span = np.array([[TAIL_U[1] - TAIL_U[0]], [TAIL_V[1] - TAIL_V[0]]])
    return (to_uv - np.array([[0, 0, TAIL_U[0]], [0, 0, TAIL_V[0]]])) / span


def jitter(rng: np.random.Generator, colour, amount: float) -> np.ndarray:
    """``colour`` plus a uniform per-channel tint of +-``amount``, as uint8."""
    return np.clip(np.asarray(colour) + rng.uniform(-amount, amount, 3), 0, 255).astype(np.uint8)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """uint8 (size, size, 3): smooth colour noise plus finer texture, class-free."""
    base = rng.uniform(60, 200, 3)
    coarse = (base + rng.uniform(-50, 50, (4, 4, 3))).astype(np.float32)
    fine = rng.normal(0, 16, (16, 16, 3)).astype(np.float32)
    img = (cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
           + cv2.resize(fine, (size, size), interpolation=cv2.INTER_LINEAR))
    return np.clip(img, 0, 255).astype(np.uint8)


# --- one object's look -----------------------------------------------------

@dataclass(frozen=True)
class ObjectShape:
    """One drawn instance of a class: polygons in the object frame and colours, by segment label."""

    polygons: dict[int, np.ndarray]
    colours: dict[int, np.ndarray]            # BODY, HEAD, WING; PATTERN's are light and dark
    texture_colours: tuple[np.ndarray, np.ndarray]
    warp: TextureWarp
    parts: ClassParts


def _turn_scale(pts: np.ndarray, centre, angle_deg: float, scale) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return ((pts - centre) * scale) @ R.T + centre


def object_shape(parts: ClassParts, rng: np.random.Generator, look: Look) -> ObjectShape:
    """Draw one instance of ``parts``: each part jittered within its class (see :class:`Look`).

    Always draws the same count of random numbers, whatever the class.
    """
    j, cj, tj = look.part_jitter, look.colour_jitter, look.texture_jitter
    u = lambda *shape: rng.uniform(-1.0, 1.0, shape)  # noqa: E731

    body_c = np.asarray(BODY_CENTRE) + 0.04 * j * u(2)
    body = ellipse(body_c, np.asarray(BODY_AXES) * (1 + j * u(2)))

    head_c = np.asarray(HEAD_CENTRE) + 0.05 * j * u(2)
    head = head_shape(parts.head, head_c, HEAD_RADIUS * (1 + j * u()))
    radial = 1 + 0.4 * j * u(16)  # outline vertices; a circle keeps a smooth outline
    if len(head) <= 16:
        head = head_c + (head - head_c) * radial[:len(head), None]
    head = _turn_scale(head, head_c, 40 * j * u(), 1 + 0.5 * j * u(2))

    wing_c = np.asarray(WING_CENTRE) + 0.05 * j * u(2)
    wing = ellipse(wing_c, np.asarray(WING_AXES) * (1 + j * u(2)), WING_ANGLE + 40 * j * u())

    tail = TAIL + 0.06 * j * u(4, 2)

    extra = max(0.0, cj - 15.0) / 2  # the plain synth: body 12, head 10, texture 12, wing 15
    colours = {BODY: jitter(rng, BODY_COLOUR, 12 + extra), HEAD: jitter(rng, HEAD_COLOUR, 10 + extra),
               WING: jitter(rng, COLOURS[parts.wing], cj)}
    light, dark = (np.asarray(TEXTURE_LIGHT, float) + rng.uniform(-1, 1, 3) * (12 + extra),
                   np.asarray(TEXTURE_DARK, float) + rng.uniform(-1, 1, 3) * (12 + extra))
    fade = 0.3 * tj * rng.uniform()  # lower contrast: both move towards their mean
    mid = (light + dark) / 2
    light, dark = light + fade * (mid - light), dark + fade * (mid - dark)
    warp = TextureWarp(scale=1 + 0.5 * tj * u(), angle_deg=30 * tj * u(),
                       phase=tuple(tj * u(2)))
    return ObjectShape({BODY: body, HEAD: head, WING: wing, PATTERN: tail}, colours,
                       (np.clip(light, 0, 255).astype(np.uint8), np.clip(dark, 0, 255).astype(np.uint8)),
                       warp, parts)


def part_polygon(kind: str, parts: ClassParts) -> np.ndarray:
    """The un-jittered polygon of one part ("head", "wing", "pattern") in the object frame."""
    if kind == "head":
        return head_shape(parts.head, HEAD_CENTRE, HEAD_RADIUS)
    if kind == "wing":
        return ellipse(WING_CENTRE, WING_AXES, WING_ANGLE)
    return TAIL


def object_polygons(parts: ClassParts) -> dict[int, np.ndarray]:
    """Un-jittered polygons of body and parts in the object frame, by segment label."""
    polygons = {BODY: ellipse(BODY_CENTRE, BODY_AXES)}
    polygons.update({label: part_polygon(kind, parts) for kind, label in PART_LABELS.items()})
    return polygons


def draw_part(rgb: np.ndarray, seg: np.ndarray | None, P: np.ndarray, kind: str,
              shape: ObjectShape) -> None:
    """Draw one part of ``shape`` under pose ``P``; label it in ``seg`` unless None (a distractor)."""
    label = PART_LABELS[kind]
    pts = apply(P, shape.polygons[label])
    if kind == "pattern":
        filled = fill_texture(rgb, pts, tail_to_box(P), shape.parts.pattern, shape.warp,
                              *shape.texture_colours)
        if seg is not None and filled is not None:
            inside, (x0, y0) = filled
            seg[y0:y0 + inside.shape[0], x0:x0 + inside.shape[1]][inside] = PATTERN
        return
    fill(rgb, pts, shape.colours[label].tolist())
    if seg is not None:
        fill(seg, pts, label)


def draw_object(rgb: np.ndarray, seg: np.ndarray, P: np.ndarray, shape: ObjectShape,
                thickness: int) -> None:
    """Draw the object under pose ``P``, labelling ``seg`` with its segments."""
    body = apply(P, shape.polygons[BODY])
    fill(rgb, body, shape.colours[BODY].tolist())
    fill(seg, body, BODY)
    # A dark outline (one output pixel) keeps the body visible on any background:
    # it is the context that tells an attached part from a loose distractor.
    outline(rgb, body, OUTLINE_COLOUR, thickness)
    outline(seg, body, BODY, thickness)
    for kind in ("pattern", "head", "wing"):  # the wing lies on the body, so last
        draw_part(rgb, seg, P, kind, shape)


def draw_distractors(rgb: np.ndarray, rng: np.random.Generator, count: int, taken: list,
                     margin: float, pose_of, shapes, colours, patterns, look: Look) -> None:
    """Draw ``count`` loose parts, each where its box meets none in ``taken``.

    Kind and look come from ``rng`` alone (never from the image's class); the
    pose from ``pose_of()``, as for objects. One that finds no free place in 20
    tries is left out.
    """
    S = rgb.shape[0]
    for _ in range(count):
        kind = ("head", "wing", "pattern")[rng.integers(3)]
        loose = ClassParts(head=shapes[rng.integers(len(shapes))],
                           wing=colours[rng.integers(len(colours))],
                           pattern=patterns[rng.integers(len(patterns))])
        shape = object_shape(loose, rng, look)
        P = pose_of()
        box = bbox(apply(P, shape.polygons[PART_LABELS[kind]]))
        for _try in range(20):
            shift = rng.uniform(-box[:2], np.maximum(S - box[2:], -box[:2]))
            candidate = box + np.tile(shift, 2)
            if not any(overlaps(candidate, other) for other in taken):
                P[:, 2] = shift
                draw_part(rgb, None, P, kind, shape)
                taken.append(candidate + (-margin, -margin, margin, margin))
                break


def bbox(pts: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) of points (n, 2)."""
    return np.concatenate([pts.min(0), pts.max(0)])


def overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether boxes (x0, y0, x1, y1) ``a`` and ``b`` intersect."""
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


# --- clutter, occluders, the photograph ------------------------------------

def clutter_colour(rng: np.random.Generator, colours) -> np.ndarray:
    """A natural colour, or (as often) one of the part colours in use, jittered."""
    palette = NATURE if rng.random() < 0.5 else [COLOURS[c] for c in colours]
    return jitter(rng, palette[rng.integers(len(palette))], 25)


def leaf_polygon(rng: np.random.Generator, centre, length: float) -> np.ndarray:
    """A pointed leaf of the given length, in a random direction (canvas pixels)."""
    t = np.linspace(0, np.pi, 12)
    half_width = 0.5 * length * rng.uniform(0.3, 0.55) * np.sin(t) ** 0.8
    along = -np.cos(t) * length / 2
    pts = np.concatenate([np.stack([along, half_width], 1), np.stack([along, -half_width], 1)[::-1]])
    return _turn_scale(pts, (0.0, 0.0), rng.uniform(0, 360), 1.0) + np.asarray(centre)


def twig_polygon(rng: np.random.Generator, centre, length: float, width: float) -> np.ndarray:
    """A straight twig (a thin rectangle) through ``centre``, in a random direction."""
    pts = np.array([(-length / 2, -width / 2), (length / 2, -width / 2),
                    (length / 2, width / 2), (-length / 2, width / 2)])
    return _turn_scale(pts, (0.0, 0.0), rng.uniform(0, 360), 1.0) + np.asarray(centre)


def draw_clutter(rgb: np.ndarray, rng: np.random.Generator, count: int, length_range,
                 colours, patterns) -> None:
    """Branches, leaves and textured patches, drawn with ``rng`` alone (class-free).

    Their colours are natural or the parts' own, their textures the tails'
    patterns at any orientation and frequency: as in real photographs, a
    colour or a texture alone does not tell object from background.
    """
    S = rgb.shape[0]
    for _ in range(count):
        kind = rng.integers(3)
        centre = rng.uniform(0, S, 2)
        length = rng.uniform(*length_range)
        colour = clutter_colour(rng, colours)
        if kind == 0:  # a branch: a bent line with a side twig
            steps = rng.uniform(0.15, 0.35, 3) * length
            angle = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.uniform(-0.5, 0.5, 3))
            pts = centre + np.cumsum(np.stack([np.cos(angle), np.sin(angle)], 1) * steps[:, None], 0)
            pts = np.vstack([centre, pts])
            width = max(1, int(rng.uniform(0.02, 0.06) * length))
            fixed = np.round((pts - 0.5) * (1 << SUBPIXEL)).astype(np.int32)
            cv2.polylines(rgb, [fixed], False, colour.tolist(), thickness=width,
                          lineType=cv2.LINE_8, shift=SUBPIXEL)
        elif kind == 1:  # a leaf with a darker midrib
            pts = leaf_polygon(rng, centre, rng.uniform(0.2, 0.45) * length)
            fill(rgb, pts, colour.tolist())
            rib = np.round((pts[[0, len(pts) // 2 - 1]] - 0.5) * (1 << SUBPIXEL)).astype(np.int32)
            cv2.polylines(rgb, [rib], False, (colour * 0.6).astype(np.uint8).tolist(),
                          thickness=max(1, int(0.01 * length)), lineType=cv2.LINE_8, shift=SUBPIXEL)
        else:  # a textured patch: a tail's pattern, at any angle and scale, in any colours
            side = rng.uniform(0.1, 0.2) * length  # semi-axis
            pts = ellipse(centre, (side, side * rng.uniform(0.5, 1.0)), rng.uniform(0, 180), n=24)
            # box coordinates as if it were the tail of an object of this length
            to_box = np.array([[1 / (0.3 * length), 0, -centre[0] / (0.3 * length) + 0.5],
                               [0, 1 / (0.6 * length), -centre[1] / (0.6 * length) + 0.5]])
            warp = TextureWarp(scale=rng.uniform(0.6, 1.6), angle_deg=rng.uniform(0, 180),
                               phase=tuple(rng.uniform(0, 1, 2)))
            other = clutter_colour(rng, colours)
            fill_texture(rgb, pts, to_box, patterns[rng.integers(len(patterns))], warp,
                         np.maximum(colour, other), np.minimum(colour, other) // 2)


def draw_occluders(rgb: np.ndarray, seg: np.ndarray, rng: np.random.Generator, count: int,
                   length: float) -> None:
    """Up to ``count`` leaves or twigs over the object (an object of ``length`` pixels).

    They are not object: their pixels become BACKGROUND in ``seg``. One that
    would hide more than 1 - MIN_VISIBLE of a part is left out.
    """
    n = rng.integers(0, count + 1)
    object_pixels = np.argwhere(seg > 0)
    for _ in range(n):
        y, x = object_pixels[rng.integers(len(object_pixels))] + 0.5
        if rng.random() < 0.5:
            pts = leaf_polygon(rng, (x, y), rng.uniform(0.15, 0.3) * length)
        else:
            pts = twig_polygon(rng, (x, y), rng.uniform(0.4, 0.9) * length,
                               rng.uniform(0.025, 0.05) * length)
        colour = jitter(rng, NATURE[rng.integers(len(NATURE))], 25)
        cover = np.zeros(seg.shape, np.uint8)
        fill(cover, pts, 1)
        cover = cover.astype(bool)
        if all((seg[cover] == k).sum() <= (1 - MIN_VISIBLE) * (seg == k).sum()
               for k in PART_LABELS.values()):
            rgb[cover] = colour
            seg[cover] = BACKGROUND


def photograph(img: np.ndarray, rng: np.random.Generator, look: Look,
               noise_std: float) -> np.ndarray:
    """Lighting (brightness, contrast, colour cast, a soft shadow), blur and noise; uint8 -> uint8."""
    out = img.astype(np.float32)
    if look.lighting > 0:
        l = look.lighting
        mean = out.mean((0, 1))
        contrast, bright = 1 + l * rng.uniform(-1, 1, 2)
        cast = 1 + 0.5 * l * rng.uniform(-1, 1, 3)
        h, w = out.shape[:2]
        theta = rng.uniform(0, 2 * np.pi)
        ys, xs = np.mgrid[0:h, 0:w] / max(h, w)
        ramp = xs * np.cos(theta) + ys * np.sin(theta)
        ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
        shade = 1 - l * rng.uniform(0, 1) * ramp
        out = ((out - mean) * contrast + mean) * bright * cast * shade[..., None]
    if look.blur > 0:
        sigma = rng.uniform(0, look.blur)
        if sigma > 0.1:
            out = cv2.GaussianBlur(out, (0, 0), sigma)
    if noise_std > 0:
        out = out + rng.normal(0, noise_std, out.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# --- one image ---------------------------------------------------------------

def render_image(rng: np.random.Generator, parts: ClassParts, *, img_size: int,
                 supersample: int, object_scale: tuple[float, float], max_rotation: float,
                 distractors: int, shapes, colours, patterns,
                 noise_std: float, look: Look = Look()) -> tuple[np.ndarray, np.ndarray]:
    """One image of a class with parts ``parts``.

    Returns rgb uint8 (img_size, img_size, 3) and the segmentation uint8
    (img_size, img_size) with labels BACKGROUND, BODY, HEAD, WING, PATTERN.
    Background, clutter and distractor parts are drawn from
    ``shapes``/``colours``/``patterns`` with streams of their own, never from
    ``parts``, so they say nothing of the class.
    """
    scene, posing, loose, drawing, occluding, camera = (
        np.random.default_rng(s) for s in rng.integers(0, 2 ** 63, size=6))
    S = img_size * supersample
    # The background is smooth: make it at the output size; nearest upsampling then
    # area-downsampling gives it back unchanged.
    rgb = cv2.resize(background(scene, img_size), (S, S), interpolation=cv2.INTER_NEAREST)
    seg = np.zeros((S, S), np.uint8)
    length_range = (object_scale[0] * S, object_scale[1] * S)
    draw_clutter(rgb, scene, look.clutter, length_range, colours, patterns)

    def random_pose(r: np.random.Generator) -> np.ndarray:  # objects and distractors share it
        return pose((0.0, 0.0), r.uniform(*length_range),
                    r.uniform(-max_rotation, max_rotation), r.random() < 0.5)

    # The object, wholly inside the image.
    shape = object_shape(parts, drawing, look)
    P = random_pose(posing)
    corners = bbox(apply(P, np.concatenate(list(shape.polygons.values()))))
    lo, hi = -corners[:2], S - corners[2:]
    P[:, 2] = centre = posing.uniform(lo, np.maximum(hi, lo))
    margin = supersample  # one output pixel of clearance around the object and each distractor
    taken = [corners + np.tile(centre, 2) + (-margin, -margin, margin, margin)]
    draw_distractors(rgb, loose, distractors, taken, margin, lambda: random_pose(loose),
                     shapes, colours, patterns, look)
    draw_object(rgb, seg, P, shape, thickness=supersample)
    if look.occluders:
        draw_occluders(rgb, seg, occluding, look.occluders, float(np.hypot(*P[:, 0])))

    # Area-average down; each output pixel takes the segment covering most of it.
    out = photograph(cv2.resize(rgb, (img_size, img_size), interpolation=cv2.INTER_AREA),
                     camera, look, noise_std)
    coverage = np.stack([cv2.resize((seg == k).view(np.uint8) * np.uint8(255), (img_size, img_size),
                                    interpolation=cv2.INTER_AREA) for k in range(5)])
    return out, coverage.argmax(0).astype(np.uint8)
