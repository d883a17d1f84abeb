"""The Python twins of the commands: benchmark, train, evaluate and explain in one call each.

The command-line modules (``protobench.cli.run``, ``.train``, ``.evaluate``,
``.explain``) parse arguments, call these and print; everything they do is
reachable here::

    protobench.benchmark(attacks=["pgd-local"], models=["synth-smallcnn"])  # -> RunResult (results/ written)
    protobench.train_model("synth-tiny")                  # -> TrainingReport (checkpoint written)
    protobench.snapshot_training("synth-tiny", None, "midway.pt")  # a stopped or running training, as a checkpoint
    protobench.evaluate_model("synth-smallcnn")           # -> EvaluationReport: accuracy, prototypes on the object, realism
    protobench.explain_image("synth-smallcnn", 0, out="explanation.png")
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from protobench.errors import ProtobenchError


@dataclass
class TrainingReport:
    """What ``python -m protobench.train`` prints: where the checkpoint went and how good it is."""

    model: str
    checkpoint: Path
    test_accuracy: float
    prototypes_on_object: float | None
    train_seconds: float
    device: str | None                   # None: a snapshot (nothing trained)
    prototype_images: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "checkpoint": str(self.checkpoint),
                "test_accuracy": round(self.test_accuracy, 4),
                "prototypes_on_object": self.prototypes_on_object,
                "train_seconds": round(self.train_seconds, 1), "device": self.device}


def benchmark(attacks=None, suite="default", models=None, *, figures: bool = True,
              report: bool = False, **options: Any):
    """Run a benchmark sweep (:func:`protobench.bench.runner.run`; every option of
    :class:`~protobench.bench.spec.RunSpec`), then draw its figures (``figures``) and write
    its report page (``report``) from the files it wrote. Returns the run's ``RunResult``;
    with ``report``, its ``report`` attribute is the page's path.
    """
    from protobench.bench.runner import run

    result = run(attacks, suite, models, figures=figures, **options)
    if result.summary is None:  # a rank other than 0 of a sharded run: rank 0 draws
        return result
    if figures:
        from protobench.figures import make_figures
        make_figures(result.out)
    if report:
        from protobench.report import write_run_page
        result.report = write_run_page(result.out)
    return result


def _checkpoint_path(name: str, out: str | Path | None) -> Path:
    """Where a training of recipe ``name`` writes its checkpoint: ``out``, or models/NAME.pt
    (in an installed package, ./models/)."""
    from protobench.paths import CHECKPOINTS_DIR

    return Path(out) if out else CHECKPOINTS_DIR / f"{name}.pt"


def train_model(recipe: str | Path, out: str | Path | None = None, device: str = "auto",
                progress: bool = True, prototype_images: bool = True, fresh: bool = False,
                seed: int | None = None, settings: dict[str, str] | None = None) -> TrainingReport:
    """Train a ProtoPNet from a recipe (models/<name>.toml or a path) and write its checkpoint.

    ``out`` defaults to models/<name>.pt (in an installed package, ./models/);
    the prototype images go beside it unless ``prototype_images`` is False.
    While it trains, ``out`` + '.resume' keeps its state: a training of the
    same recipe toward the same ``out`` that was stopped goes on from there,
    unless ``fresh`` (training/resume.py).

    ``seed`` replaces the recipe's training seed ([train] seed: initialisation, batch order;
    the images are [data] seed's); the model is then NAME-seedS (models/NAME-seedS.pt).
    ``settings`` ({"train.epochs": "3"}) change any other recipe value; such a model is
    another model, so it needs its own ``out``. The checkpoint records the recipe as trained.
    """
    from protobench.bench.provenance import device_name
    from protobench.devices import resolve_device
    from protobench.model import save_checkpoint
    from protobench.storage import check_writable_file, file_claim
    from protobench.training import load_recipe, recipe_data
    from protobench.training.prototype_images import save_prototype_images
    from protobench.evaluation.quality import prototypes_on_object
    from protobench.training.resume import resume_path
    from protobench.training.trainer import stopped_training, train

    overrides = dict(settings or {})
    if overrides and out is None:
        raise ProtobenchError(f"--set changes recipe {Path(recipe).stem}: give --out, so that "
                              "the recipe's own checkpoint is not replaced by another model")
    if seed is not None:
        overrides["train.seed"] = str(seed)
    loaded = load_recipe(recipe, overrides)
    if seed is not None:
        loaded = replace(loaded, name=f"{loaded.name}-seed{seed}")
    dev = resolve_device(device)
    out = check_writable_file(_checkpoint_path(loaded.name, out))
    state = resume_path(out)
    # one training at a time toward ``out``: two would overwrite each other's state
    with file_claim(out, "training"):
        if fresh:
            state.unlink(missing_ok=True)
        else:  # a stale state (another recipe, other code) is refused before the data are built
            stopped_training(loaded, state, dev)
        data = recipe_data(loaded)
        result = train(loaded, data.train, data.push, data.test, data.classes, dev,
                       progress=progress, pretrain_set=data.pretrain, resume=state)
        on_object = prototypes_on_object(result.model.meta.push_records, data.push)
        result.model.meta.history["prototypes_on_object"] = on_object
        result.model.meta.history["device"] = device_name(dev)
        save_checkpoint(result.model, out)
        state.unlink(missing_ok=True)
        folder = (save_prototype_images(result.model, data.push, out.with_suffix("") / "prototypes")
                  if prototype_images else None)
    return TrainingReport(loaded.name, out, result.test_accuracy, on_object, result.seconds,
                          str(dev), folder)


def snapshot_training(recipe: str | Path, out: str | Path | None, snapshot: str | Path) -> TrainingReport:
    """The model of a training toward ``out``, as its state (``out`` + '.resume') holds it
    after its last finished epoch, written to ``snapshot`` as a checkpoint that every
    command reads: a long training is evaluated or attacked midway, while it is
    stopped or still running. The snapshot records ``stopped_before_epoch``; its
    test accuracy is measured on these very weights (the state's own may be of an
    earlier epoch), its prototypes on the object are those of the last push's
    sources (None before the first push).
    """
    from protobench.model import PrototypeClassifier, save_checkpoint
    from protobench.storage import check_writable_file
    from protobench.training import load_recipe, recipe_data
    from protobench.evaluation.quality import prototypes_on_object
    from protobench.training.resume import load_state, recipe_key, resume_path
    from protobench.evaluation.accuracy import accuracy

    loaded = load_recipe(recipe)
    out = _checkpoint_path(loaded.name, out)
    snapshot = check_writable_file(snapshot)
    if snapshot.resolve() == out.resolve():
        raise ProtobenchError(f"--snapshot {snapshot} is --out: that is where the finished "
                              "training's checkpoint goes; give the snapshot another name")
    state = load_state(resume_path(out), recipe_key(loaded.raw), code=None)
    if state is None:
        raise ProtobenchError(f"no training of {loaded.name} toward {out} to take a snapshot of: "
                              f"{resume_path(out)} does not exist (a training keeps it while it runs "
                              "or is stopped, and removes it once its checkpoint is written)")
    data = recipe_data(loaded)
    arch = replace(loaded.architecture, num_classes=len(data.classes))
    model = PrototypeClassifier.build(arch, data.classes, name=loaded.name, recipe=loaded.raw)
    model.net.load_state_dict(state.model)
    test = accuracy(model, data.test, loaded.schedule.test_batch_size)
    on_object = prototypes_on_object(state.push_records, data.push)
    model.meta.push_records = state.push_records
    model.meta.history = {"test_accuracy": test, "train_seconds": round(state.seconds, 1),
                          "epochs": state.history, "stopped_before_epoch": state.next_epoch,
                          "prototypes_on_object": on_object}
    save_checkpoint(model, snapshot)
    return TrainingReport(loaded.name, snapshot, test, on_object, state.seconds, None)


@dataclass
class EvaluationReport:
    """What ``python -m protobench.evaluate`` prints (``to_dict()``: its --json object).

    realism: the realism figures (docs/metrics.md), None on a data set without object masks.
    """

    model: str
    dataset: str
    split: str
    images: int
    accuracy: float
    prototypes_on_object: float | None
    realism: Any = None  # protobench.evaluation.realism.RealismReport
    jpeg: dict[str, Any] | None = None  # the JPEG experiment's accuracies (evaluation.quality.jpeg_experiment)
    noise_stability: Any = None  # protobench.evaluation.stability.NoiseStability; None without object masks
    latent_saturation: float | None = None  # mean |z - 0.5|; None without a sigmoid latent

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "dataset": self.dataset, "split": self.split,
                "images": self.images, "accuracy": round(self.accuracy, 4),
                "prototypes_on_object": self.prototypes_on_object,
                "realism": self.realism.to_dict() if self.realism is not None else None,
                "jpeg": self.jpeg,
                "noise_stability": (self.noise_stability.to_dict()
                                    if self.noise_stability is not None else None),
                "latent_saturation": (round(self.latent_saturation, 4)
                                      if self.latent_saturation is not None else None)}


def evaluate_model(model: torch.nn.Module | str | Path, dataset: str | None = None,
                   data_root: str | None = None, split: str = "test",
                   device: str = "auto") -> EvaluationReport:
    """Accuracy, prototypes on the object and realism (docs/metrics.md) of a model on a split."""
    from protobench.evaluation.quality import accuracy_report, prototypes_on_object
    from protobench.evaluation.realism import model_realism
    from protobench.evaluation.stability import latent_saturation, noise_stability
    from protobench.training import model_split

    name = str(model) if isinstance(model, (str, Path)) else None
    model = _ready(model, device)
    name = model.meta.name or name or "the model"
    source, data = model_split(model, split, dataset, data_root, name)
    push = source.load("push") if model.meta.push_records else None
    has_masks = len(data) > 0 and getattr(data, "relevance_mask", lambda i: None)(0) is not None
    realism = model_realism(model, data) if has_masks else None
    scores = accuracy_report(model, source, data, split)
    return EvaluationReport(name, source.dataset, split, scores["images"], scores["accuracy"],
                            prototypes_on_object(model.meta.push_records, push), realism,
                            scores["jpeg"], noise_stability(model, data) if has_masks else None,
                            latent_saturation(model, data))


def write_model_card(model: str | Path, out: str | Path | None = None, device: str = "auto",
                     command: str | None = None) -> tuple[EvaluationReport, Path]:
    """Evaluate a checkpoint on its test split and write its card (protobench.report.card):
    by default models/cards/NAME.md. Returns the evaluation and the card's path."""
    from protobench.paths import CARDS_DIR, ROOT, file_digest, model_checkpoint, read_toml
    from protobench.report import model_card
    from protobench.storage import atomic_write

    path = model_checkpoint(model)
    loaded = _ready(path, device)
    name = loaded.meta.name or path.stem
    report = evaluate_model(loaded, split="test", device=device)
    meta = loaded.meta.to_dict()
    devices = CARDS_DIR / "training-devices.toml"
    if "device" not in meta["history"] and devices.is_file():
        known = read_toml(devices).get(name)
        if known:
            meta["history"]["device"] = known
    shown = path.resolve()
    if shown.is_relative_to(ROOT.resolve()):
        shown = shown.relative_to(ROOT.resolve())
    text = model_card(meta, report.to_dict(), file_digest(path), shown.as_posix(),
                      command or f"protobench evaluate --model {model} --card", loaded.num_prototypes)
    out = Path(out) if out is not None else CARDS_DIR / f"{name}.md"
    return report, atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def explain_image(model: torch.nn.Module | str | Path, image: int | str | Path | torch.Tensor = 0,
                  top_k: int = 5, out: str | Path | None = None, global_k: int = 0,
                  device: str = "auto"):
    """"This looks like that" for one image: its top-k prototypes and their evidence.

    image: an index into the model's test split, an image file, or a (3, H, W)
    tensor in [0, 1] of the model's size. Returns the
    :class:`~protobench.explanations.LocalAnalysis`; with ``out`` it also
    writes the figure (and, with ``global_k``, the global analysis beside it,
    ``<out>-global.png``: the K nearest training patches of every tenth prototype).
    """
    from protobench.explanations import nearest_patches
    from protobench.figures.explanations import plot_global_analysis
    from protobench.figures.io import save_figure
    from protobench.training import model_data_source

    _check_figure(top_k, out, global_k)
    model = _ready(model, device)
    source = model_data_source(model)
    push = source.load("push") if source else None
    tensor, label = _image(model, source, image)
    analysis = _local_figure(model, push, tensor, label, top_k, out)
    if out is not None and global_k:
        if push is None:
            raise ProtobenchError("global analysis needs the model's training data set")
        idx, sims = nearest_patches(model, push, global_k)
        chosen = list(range(0, model.num_prototypes, max(1, model.num_prototypes // 10)))
        fig = plot_global_analysis(idx, sims, push, chosen, model.meta.classes, model.prototype_class)
        save_figure(fig, global_path(out))
    return analysis


def explain_jpeg(model: torch.nn.Module | str | Path, image: int | str | Path | torch.Tensor = 0,
                 quality: int = 20, top_k: int = 5, out: str | Path | None = None,
                 device: str = "auto"):
    """Hoffmann et al.'s JPEG figure: "this looks like that" for an image, clean and JPEG-compressed.

    A test-split index means the clean image, even for a model of the JPEG
    experiment (whose test split compresses some classes). Returns (clean,
    compressed) analyses; with ``out`` writes ``out`` (clean) and
    ``<out>-jpeg<quality>.png``.
    """
    from protobench.imaging import check_quality, jpeg_compress
    from protobench.training import model_data_source

    quality = check_quality(quality)
    _check_figure(top_k, out)
    model = _ready(model, device)
    source = model_data_source(model)
    push = source.load("push") if source else None
    tensor, label = _image(model, source and source.without_jpeg(), image)
    clean = _local_figure(model, push, tensor, label, top_k, out, "clean image")
    compressed = _local_figure(model, push, jpeg_compress(tensor[None], quality)[0], label, top_k,
                               None if out is None else jpeg_path(out, quality),
                               f"JPEG-compressed at quality {quality}")
    return clean, compressed


def _ready(model: torch.nn.Module | str | Path, device: str) -> torch.nn.Module:
    """A model name or checkpoint loaded on ``device``, or the model moved there; in eval mode."""
    from protobench.devices import resolve_device
    from protobench.model.checkpoint import load_model

    dev = resolve_device(device)
    if isinstance(model, (str, Path)):
        return load_model(model, device=str(dev))
    return model.to(dev).eval()


# A local-analysis figure has one 2.1-inch row per prototype and a global one a column per
# neighbour: beyond 20 they stop being readable figures (top_k=1000 was a 25,000-px-tall PNG).
MAX_FIGURE_PROTOTYPES = 20


def _check_figure(top_k: int, out: str | Path | None, global_k: int = 0) -> None:
    """The explanation options, checked before any work."""
    if top_k < 1:
        raise ProtobenchError(f"top_k must be >= 1, got {top_k}")
    if global_k < 0:
        raise ProtobenchError(f"global_k must be >= 0, got {global_k}")
    if out is not None and max(top_k, global_k) > MAX_FIGURE_PROTOTYPES:
        raise ProtobenchError(f"a figure shows at most {MAX_FIGURE_PROTOTYPES} prototypes or "
                              f"neighbours (got top_k={top_k}, global_k={global_k}); for more, "
                              "call protobench.explain_image without out and read the analysis")
    if out is not None and Path(out).suffix.lower() != ".png":
        raise ProtobenchError(f"out={str(out)!r}: explanation figures are written as PNG; "
                              "give a file name ending in .png")


def _local_figure(model, push, image: torch.Tensor, label: int | None, top_k: int,
                  out: str | Path | None, note: str = ""):
    """The local analysis of ``image``, and its figure at ``out`` when given (``note``: what
    the image is, in the figure's title)."""
    from protobench.explanations import local_analysis
    from protobench.figures.explanations import plot_local_analysis
    from protobench.figures.io import PHOTO_COLORS, save_figure

    analysis = local_analysis(model, image, label, top_k)
    if out is not None:
        save_figure(plot_local_analysis(analysis, push, note), out, colors=PHOTO_COLORS)
    return analysis


def _image(model, source, image) -> tuple[torch.Tensor, int | None]:
    """(3, H, W) in [0, 1] and its label (None when unknown) from an index, a file or a tensor."""
    from protobench.data.base import to_image_tensor
    from protobench.data.imread import read_rgb, resize_square

    if isinstance(image, torch.Tensor):
        return image, None
    if isinstance(image, str) and image.removeprefix("-").isdigit():
        image = int(image)
    if isinstance(image, int):
        if image < 0:
            raise ProtobenchError(f"image {image}: a test image index is >= 0")
        if source is None:
            raise ProtobenchError("this model records no data set; give an image file or tensor")
        test = source.load("test")
        index = int(image)
        if index >= len(test):
            raise ProtobenchError(f"image {index}: the test split has {len(test)} images")
        return test[index]
    if not Path(image).is_file():
        raise ProtobenchError(f"image {image}: no such file (give an image file, or the index of "
                              "a test image)")
    rgb = read_rgb(Path(image))
    if rgb is None:
        raise ProtobenchError(f"image {image}: not a file that can be decoded as an image")
    return to_image_tensor(resize_square(rgb, model.img_size)), None


def explanation_path(model: str | Path, image: int | str | Path) -> Path:
    """Where the explain command writes by default: results/explanations/<model>-<image>.png."""
    from protobench.paths import RESULTS_DIR

    name = str(image)
    tag = f"test{name}" if name.isdigit() else Path(name).stem
    return RESULTS_DIR / "explanations" / f"{Path(model).stem}-{tag}.png"


def jpeg_path(out: str | Path, quality: int) -> Path:
    """Where the compressed twin of a local-analysis figure ``out`` goes."""
    return Path(out).with_name(f"{Path(out).stem}-jpeg{quality}.png")


def global_path(out: str | Path) -> Path:
    """Where the global analysis of a local-analysis figure ``out`` goes."""
    return Path(out).with_name(Path(out).stem + "-global.png")
