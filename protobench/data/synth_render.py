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


def fill_tail(rgb: np.ndarray, seg: np.ndarray | None, P: np.ndarray, pattern: str,
              rng: np.random.Generator) -> None:
    """Draw a textured tail under pose ``P``; label it PATTERN in ``seg`` if given."""
    pts = apply(P, TAIL)
    h, w = rgb.shape[:2]
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + 1, (w, h))
    if x1 <= x0 or y1 <= y0:
        return
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fill(inside, pts - (x0, y0), 1)
    inside = inside.astype(bool)
    # Texture coordinates: invert the pose on the pixel centres of the box.
    ys, xs = np.mgrid[y0:y1, x0:x1] + 0.5
    A_inv = np.linalg.inv(P[:, :2])
    u, v = np.tensordot(A_inv, np.stack([xs - P[0, 2], ys - P[1, 2]]), axes=1)
    dark = texture(pattern, (u - TAIL_U[0]) / (TAIL_U[1] - TAIL_U[0]),
                   (v - TAIL_V[0]) / (TAIL_V[1] - TAIL_V[0]))
    light_c, dark_c = jitter(rng, TEXTURE_LIGHT, 12), jitter(rng, TEXTURE_DARK, 12)
    box = rgb[y0:y1, x0:x1]
    box[inside & ~dark] = light_c
    box[inside & dark] = dark_c
    if seg is not None:
        seg[y0:y1, x0:x1][inside] = PATTERN


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


def part_polygon(kind: str, parts: ClassParts) -> np.ndarray:
    """The polygon of one part ("head", "wing", "pattern") in the object frame."""
    if kind == "head":
        return head_shape(parts.head, HEAD_CENTRE, HEAD_RADIUS)
    if kind == "wing":
        return ellipse(WING_CENTRE, WING_AXES, WING_ANGLE)
    return TAIL


def object_polygons(parts: ClassParts) -> dict[int, np.ndarray]:
    """Polygons of body and parts in the object frame, by segment label."""
    polygons = {BODY: ellipse(BODY_CENTRE, BODY_AXES)}
    polygons.update({label: part_polygon(kind, parts) for kind, label in PART_LABELS.items()})
    return polygons


def draw_part(rgb: np.ndarray, seg: np.ndarray | None, P: np.ndarray, kind: str,
              parts: ClassParts, rng: np.random.Generator) -> None:
    """Draw one part of ``parts`` under pose ``P``; label it in ``seg`` unless None (a distractor)."""
    if kind == "pattern":
        fill_tail(rgb, seg, P, parts.pattern, rng)
        return
    pts = apply(P, part_polygon(kind, parts))
    colour = HEAD_COLOUR if kind == "head" else COLOURS[parts.wing]
    fill(rgb, pts, jitter(rng, colour, 10 if kind == "head" else 15).tolist())
    if seg is not None:
        fill(seg, pts, PART_LABELS[kind])


def draw_object(rgb: np.ndarray, seg: np.ndarray, P: np.ndarray, parts: ClassParts,
                rng: np.random.Generator, thickness: int) -> None:
    """Draw the object under pose ``P``, labelling ``seg`` with its segments."""
    body = apply(P, ellipse(BODY_CENTRE, BODY_AXES))
    fill(rgb, body, jitter(rng, BODY_COLOUR, 12).tolist())
    fill(seg, body, BODY)
    # A dark outline (one output pixel) keeps the body visible on any background:
    # it is the context that tells an attached part from a loose distractor.
    outline(rgb, body, OUTLINE_COLOUR, thickness)
    outline(seg, body, BODY, thickness)
    for kind in ("pattern", "head", "wing"):  # the wing lies on the body, so last
        draw_part(rgb, seg, P, kind, parts, rng)


def draw_distractors(rgb: np.ndarray, rng: np.random.Generator, count: int, taken: list,
                     margin: float, pose_of, shapes, colours, patterns) -> None:
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
        P = pose_of()
        box = bbox(apply(P, part_polygon(kind, loose)))
        for _try in range(20):
            shift = rng.uniform(-box[:2], np.maximum(S - box[2:], -box[:2]))
            candidate = box + np.tile(shift, 2)
            if not any(overlaps(candidate, other) for other in taken):
                P[:, 2] = shift
                draw_part(rgb, None, P, kind, loose, rng)
                taken.append(candidate + (-margin, -margin, margin, margin))
                break


def bbox(pts: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) of points (n, 2)."""
    return np.concatenate([pts.min(0), pts.max(0)])


def overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether boxes (x0, y0, x1, y1) ``a`` and ``b`` intersect."""
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


# --- one image ---------------------------------------------------------------

def render_image(rng: np.random.Generator, parts: ClassParts, *, img_size: int,
                 supersample: int, object_scale: tuple[float, float], max_rotation: float,
                 distractors: int, shapes, colours, patterns,
                 noise_std: float) -> tuple[np.ndarray, np.ndarray]:
    """One image of a class with parts ``parts``.

    Returns rgb uint8 (img_size, img_size, 3) and the segmentation uint8
    (img_size, img_size) with labels BACKGROUND, BODY, HEAD, WING, PATTERN.
    Distractor parts are drawn from ``shapes``/``colours``/``patterns`` with
    ``rng`` alone, never from ``parts``, so they say nothing of the class.
    """
    S = img_size * supersample
    # The background is smooth: make it at the output size; nearest upsampling then
    # area-downsampling gives it back unchanged.
    rgb = cv2.resize(background(rng, img_size), (S, S), interpolation=cv2.INTER_NEAREST)
    seg = np.zeros((S, S), np.uint8)

    def random_pose() -> np.ndarray:  # objects and distractors share it
        return pose((0.0, 0.0), rng.uniform(*object_scale) * S,
                    rng.uniform(-max_rotation, max_rotation), rng.random() < 0.5)

    # The object, wholly inside the image.
    P = random_pose()
    corners = bbox(apply(P, np.concatenate(list(object_polygons(parts).values()))))
    lo, hi = -corners[:2], S - corners[2:]
    P[:, 2] = centre = rng.uniform(lo, np.maximum(hi, lo))
    margin = supersample  # one output pixel of clearance around the object and each distractor
    taken = [corners + np.tile(centre, 2) + (-margin, -margin, margin, margin)]
    draw_distractors(rgb, rng, distractors, taken, margin, random_pose, shapes, colours, patterns)
    draw_object(rgb, seg, P, parts, rng, thickness=supersample)

    # Area-average down; each output pixel takes the segment covering most of it.
    out = cv2.resize(rgb, (img_size, img_size), interpolation=cv2.INTER_AREA)
    if noise_std > 0:
        out = np.clip(out + rng.normal(0, noise_std, out.shape), 0, 255).astype(np.uint8)
    coverage = np.stack([cv2.resize((seg == k).view(np.uint8) * np.uint8(255), (img_size, img_size),
                                    interpolation=cv2.INTER_AREA) for k in range(5)])
    return out, coverage.argmax(0).astype(np.uint8)
