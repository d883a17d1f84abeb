"""``synth``: the embedded default data set, generated from a seed.

Each image holds one bird-like object at a random position, scale, rotation
and mirror, on a cluttered background (branches, leaves, textured patches)
with loose distractor parts. No two images of a class look alike: part size,
outline, colour and texture vary, the lighting, blur and noise change, and a
leaf or twig may hide some of the object (``SynthConfig``'s variation options). The class
is decided by three localised parts (see :mod:`protobench.data.synth_render`):
the head's shape, the wing's colour and the tail's pattern. Every class is a
distinct combination and any two classes differ in at least two parts while
that is possible (up to 24 classes), and each part value is shared by
several classes, so no single part and no global cue (mean colour,
background) decides the class. Every image comes with its segmentation:
object (body + parts) and each part, which makes "irrelevant region" a
measured fact.

Splits: "train" and "push" are the same images (ProtoPNet pushes onto the
un-augmented training images); "test" is drawn from a different seed stream.
Generation is deterministic and cached in memory (uint8).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, fields

import numpy as np
import torch

from protobench.data.base import ImageDataset, check_img_size, check_split
from protobench.data.synth_render import (
    COLOURS, PART_LABELS, PATTERNS, SHAPES, ClassParts, Look, render_image,
)
from protobench.errors import ProtobenchError

# Independent seed streams per split; "push" reads the train stream.
SPLIT_STREAMS = {"train": 0, "push": 0, "test": 1}


# The within-class variation of the default models' recipes (models/*.toml).
REALISTIC = dict(part_jitter=0.15, colour_jitter=30.0, texture_jitter=0.3, lighting=0.25,
                 blur=0.8, occluders=1, clutter=6)


@dataclass(frozen=True)
class SynthConfig:
    """What ``synth`` generates; the same config always gives the same images.

    num_classes       classes (distinct head/wing/pattern combinations), 2..144
    classes           the classes by name, "<head>-<wing>-<pattern>" (e.g. "star-cyan-bars"),
                      from the full palettes; empty (default): the design of ``class_parts``
                      for ``num_classes``. When given, ``num_classes`` is their number.
    img_size          side of the square images, pixels
    train_per_class   images per class in "train" (= "push")
    test_per_class    images per class in "test"
    seed              seed of the whole data set
    distractors       loose parts drawn on each background
    object_scale      object length as a fraction of the image side, (min, max)
    max_rotation      object rotation in degrees, uniform in +-max_rotation
    noise_std         pixel noise (std, in uint8 grey levels)
    supersample       drawing resolution factor (anti-aliasing, mask accuracy)

    Variation within a class, as in photographs (see
    :class:`protobench.data.synth_render.Look`). The defaults keep the plain
    synth that checkpoints trained before these options were added expect;
    ``REALISTIC`` holds the values of the default models' recipes:

    part_jitter       relative jitter of each part's size, position and outline, [0, 0.5]
    colour_jitter     per-channel jitter of part and body colours, grey levels, [0, 60]
    texture_jitter    relative jitter of a tail pattern's frequency, orientation
                      (up to 30 x it degrees), phase and contrast, [0, 1]
    lighting          brightness and contrast in 1 +- lighting, colour cast, soft shadow, [0, 0.5]
    blur              Gaussian blur, sigma uniform in [0, blur] pixels, [0, 3]
    occluders         up to this many leaves or twigs over the object (not object in the
                      masks; none hides more than 40% of a part), integer >= 0
    clutter           branches, leaves and textured patches on the background, in the
                      parts' colours and patterns as often as not, integer >= 0
    """

    num_classes: int = 10
    classes: tuple[str, ...] = ()
    img_size: int = 64
    train_per_class: int = 100
    test_per_class: int = 50
    seed: int = 0
    distractors: int = 3
    object_scale: tuple[float, float] = (0.45, 0.65)
    max_rotation: float = 20.0
    noise_std: float = 3.0
    supersample: int = 4
    # flat, as recipes name them; their defaults are the renderer's plain Look
    part_jitter: float = Look.part_jitter
    colour_jitter: float = Look.colour_jitter
    texture_jitter: float = Look.texture_jitter
    lighting: float = Look.lighting
    blur: float = Look.blur
    occluders: int = Look.occluders
    clutter: int = Look.clutter

    def __post_init__(self) -> None:
        raw_scale = self.object_scale
        try:
            scale = tuple(float(s) for s in raw_scale)
        except (TypeError, ValueError):
            scale = ()
        object.__setattr__(self, "object_scale", scale)  # hashable, for the cache
        classes = (self.classes,) if isinstance(self.classes, str) else tuple(self.classes)
        object.__setattr__(self, "classes", classes)  # hashable, for the cache
        if self.classes:
            parts = parse_classes(self.classes)  # raises on a bad name
            if self.num_classes not in (SynthConfig.num_classes, len(parts)):
                raise ProtobenchError(f"synth options classes ({len(parts)} names) and num_classes="
                                      f"{self.num_classes} disagree; give only classes")
            object.__setattr__(self, "classes", tuple(p.name for p in parts))
            object.__setattr__(self, "num_classes", len(parts))
        check_img_size(self.img_size)
        max_classes = len(SHAPES) * len(COLOURS) * len(PATTERNS)
        integers = {  # name: (lowest, highest)
            "num_classes": (2, max_classes), "train_per_class": (1, None),
            "test_per_class": (1, None), "seed": (0, None), "distractors": (0, None),
            "supersample": (1, 8), "occluders": (0, 10), "clutter": (0, 100),
        }
        for name, (lo, hi) in integers.items():
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                    or value < lo or (hi is not None and value > hi)):
                allowed = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
                raise ProtobenchError(f"synth option {name}={value!r} is invalid; allowed: {allowed}")
        numbers = {
            "object_scale": (len(scale) == 2 and 0.1 <= scale[0] <= scale[1] <= 0.95,
                             "(min, max) with 0.1 <= min <= max <= 0.95"),
            "max_rotation": (_number_in(self.max_rotation, 0, 180), "degrees in [0, 180]"),
            "noise_std": (_number_in(self.noise_std, 0, 255), "a number in [0, 255]"),
            "part_jitter": (_number_in(self.part_jitter, 0, 0.5), "a number in [0, 0.5]"),
            "colour_jitter": (_number_in(self.colour_jitter, 0, 60), "grey levels in [0, 60]"),
            "texture_jitter": (_number_in(self.texture_jitter, 0, 1), "a number in [0, 1]"),
            "lighting": (_number_in(self.lighting, 0, 0.5), "a number in [0, 0.5]"),
            "blur": (_number_in(self.blur, 0, 3), "pixels in [0, 3]"),
        }
        for name, (ok, allowed) in numbers.items():
            if not ok:
                value = raw_scale if name == "object_scale" else getattr(self, name)
                raise ProtobenchError(f"synth option {name}={value!r} is invalid; "
                                      f"allowed: {allowed}")

    def class_parts(self) -> tuple[ClassParts, ...]:
        """The parts of each class, in label order."""
        return parse_classes(self.classes) if self.classes else class_parts(self.num_classes)

    def palettes(self) -> dict[str, list[str]]:
        """The part values that distractors and clutter draw from: the classes' palettes."""
        if self.classes:
            return dict(shapes=list(SHAPES), colours=list(COLOURS), patterns=list(PATTERNS))
        ns, nc, npat = palette_sizes(self.num_classes)
        return dict(shapes=list(SHAPES[:ns]), colours=list(COLOURS)[:nc], patterns=list(PATTERNS[:npat]))

    def look(self) -> Look:
        """The within-class variation, as the renderer takes it."""
        return Look(**{f.name: getattr(self, f.name) for f in fields(Look)})

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def _number_in(value: object, lo: float, hi: float) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
            and lo <= value <= hi)


def palette_sizes(num_classes: int) -> tuple[int, int, int]:
    """How many shapes, colours and patterns ``num_classes`` classes use.

    Start small, so that every part value is shared by several classes, and
    grow the smallest palette until two-part-distinct classes fit (their
    number is at most the product of the two smallest palettes).
    """
    sizes = [4, 4, 3]
    limits = [len(SHAPES), len(COLOURS), len(PATTERNS)]
    while sorted(sizes)[0] * sorted(sizes)[1] < num_classes and sizes != limits:
        growable = [k for k in range(3) if sizes[k] < limits[k]]
        sizes[min(growable, key=lambda k: (sizes[k], k))] += 1
    return tuple(sizes)


@functools.lru_cache(maxsize=None)
def class_parts(num_classes: int) -> tuple[ClassParts, ...]:
    """The part combination of each class, fixed for a given ``num_classes``.

    Classes are first taken from a Latin-square design, pattern = (shape +
    colour) mod max(#shapes, #colours), in which any two combinations differ
    in at least two parts; past its size, from the remaining combinations.
    Within each stage the least used part values come first, so that every
    value is shared by several classes.
    """
    ns, nc, npat = palette_sizes(num_classes)
    m = max(ns, nc)
    latin = [(s, c, (s + c) % m) for s in range(ns) for c in range(nc) if (s + c) % m < npat]
    rest = [t for t in itertools.product(range(ns), range(nc), range(npat)) if t not in latin]
    chosen: list[tuple[int, int, int]] = []
    usage = [np.zeros(ns, int), np.zeros(nc, int), np.zeros(npat, int)]
    for pool in (latin, rest):
        pool = list(pool)
        while pool and len(chosen) < num_classes:
            def score(t):
                distance = min((sum(a != b for a, b in zip(t, d)) for d in chosen), default=3)
                return (-distance, sum(usage[k][t[k]] for k in range(3)))
            best = min(pool, key=score)
            pool.remove(best)
            chosen.append(best)
            for k in range(3):
                usage[k][best[k]] += 1
    colour_names = list(COLOURS)
    return tuple(ClassParts(SHAPES[s], colour_names[c], PATTERNS[p]) for s, c, p in chosen)


def all_classes() -> tuple[ClassParts, ...]:
    """Every head/wing/pattern combination of the full palettes (144)."""
    return tuple(ClassParts(s, c, p) for s, c, p in itertools.product(SHAPES, COLOURS, PATTERNS))


def parse_classes(names: tuple[str, ...] | list[str]) -> tuple[ClassParts, ...]:
    """ClassParts from names "<head>-<wing>-<pattern>"; distinct, from the full palettes."""
    known = {p.name: p for p in all_classes()}
    if isinstance(names, str):
        names = (names,)
    bad = [n for n in names if n not in known]
    if bad:
        raise ProtobenchError(f"synth option classes: unknown class(es) {', '.join(map(repr, bad))}; "
                              f"a class is '<head>-<wing>-<pattern>' with head in {', '.join(SHAPES)}, "
                              f"wing in {', '.join(COLOURS)}, pattern in {', '.join(PATTERNS)}")
    if len(set(names)) != len(names) or len(names) < 2:
        raise ProtobenchError(f"synth option classes must name at least 2 distinct classes, got {list(names)}")
    return tuple(known[n] for n in names)


def other_classes(exclude: tuple[ClassParts, ...], count: int, seed: int) -> tuple[str, ...]:
    """``count`` class names drawn (seeded) from the full palettes, none of them in ``exclude``.

    A stand-in for ImageNet's other classes: objects of the same kind (head,
    wing, tail) whose part combinations the task never uses.
    """
    pool = [p.name for p in all_classes() if p not in set(exclude)]
    if not 2 <= count <= len(pool):
        raise ProtobenchError(f"cannot draw {count} other classes: {len(pool)} combinations are "
                              f"left outside the task's {len(exclude)} classes; allowed: 2..{len(pool)}")
    rng = np.random.default_rng(seed)
    return tuple(pool[i] for i in sorted(rng.choice(len(pool), count, replace=False)))


def generate(config: SynthConfig, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 3, H, W), segmentation uint8 (N, H, W), labels int64 (N,)).

    Image ``i`` has class ``i % num_classes`` and its own random stream
    ``(seed, split stream, i)``, so it does not depend on the other images.
    Cached: the same (config, split) returns the same tensors.
    """
    return _split(config, SPLIT_STREAMS[check_split(split)]).everything()


class _Split:
    """One split's images, each drawn the first time it is asked for, then kept (uint8).

    A run that attacks 32 test images draws those 32, not the whole split;
    ``everything()`` draws the rest. Image ``i`` is the same either way.
    """

    def __init__(self, config: SynthConfig, stream: int) -> None:
        per_class = config.train_per_class if stream == 0 else config.test_per_class
        self.n, size = per_class * config.num_classes, config.img_size
        self.config, self.stream = config, stream
        self.parts, self.palettes, self.look = config.class_parts(), config.palettes(), config.look()
        self.images = torch.empty((self.n, 3, size, size), dtype=torch.uint8)
        self.segmentation = torch.empty((self.n, size, size), dtype=torch.uint8)
        self.labels = torch.arange(self.n) % config.num_classes
        self.drawn = np.zeros(self.n, bool)

    def draw(self, i: int) -> None:
        if self.drawn[i]:
            return
        c = self.config
        rng = np.random.default_rng([c.seed, self.stream, i])
        image, segmentation = render_image(
            rng, self.parts[int(self.labels[i])], img_size=c.img_size, supersample=c.supersample,
            object_scale=c.object_scale, max_rotation=c.max_rotation, distractors=c.distractors,
            noise_std=c.noise_std, look=self.look, **self.palettes)
        self.images[i] = torch.from_numpy(image).permute(2, 0, 1)
        self.segmentation[i] = torch.from_numpy(segmentation)
        self.drawn[i] = True

    def everything(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        for i in np.flatnonzero(~self.drawn):
            self.draw(int(i))
        return self.images, self.segmentation, self.labels


@functools.lru_cache(maxsize=8)
def _split(config: SynthConfig, stream: int) -> _Split:
    return _Split(config, stream)


class SynthDataset(ImageDataset):
    """The ``synth`` data set: (image float32 (3, H, W) in [0, 1], label) pairs.

    Attributes: ``images`` uint8 (N, 3, H, W), ``segmentation`` uint8
    (N, H, W) (0 background, 1 body, 2 head, 3 wing, 4 pattern), ``labels``
    int64 (N,), ``classes`` (names "<head>-<wing>-<pattern>"),
    ``class_parts`` (the parts of each class), ``config``. Images are drawn
    when first read (item, mask, or ``images`` / ``segmentation``: all).
    """

    def __init__(self, split: str = "train", config: SynthConfig | None = None) -> None:
        self.config = config or SynthConfig()
        self.split = check_split(split)
        self._split = _split(self.config, SPLIT_STREAMS[self.split])
        self.labels = self._split.labels
        self.class_parts = self.config.class_parts()
        self.classes = [p.name for p in self.class_parts]
        self.img_size = self.config.img_size

    @property
    def images(self) -> torch.Tensor:
        return self._split.everything()[0]

    @property
    def segmentation(self) -> torch.Tensor:
        return self._split.everything()[1]

    def _drawn(self, i: int) -> int:
        i = self.index(i)
        self._split.draw(i)
        return i

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        i = self._drawn(i)
        return self._split.images[i].float().div_(255.0), int(self.labels[i])

    def relevance_mask(self, i: int) -> torch.Tensor:
        """bool (H, W): the object, body and parts."""
        return self._split.segmentation[self._drawn(i)] > 0

    def part_masks(self, i: int) -> dict[str, torch.Tensor]:
        """``{"head", "wing", "pattern"}`` -> bool (H, W), the visible pixels of each part."""
        seg = self._split.segmentation[self._drawn(i)]
        return {name: seg == label for name, label in PART_LABELS.items()}
