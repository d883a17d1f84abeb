"""Planning a run: everything that can fail on the user's input, before any file is written.

``plan(spec)`` reads the suite and the presets, loads every model and its
images, selects each attack's (image, prototype) pairs on the clean images and
cuts the sweep into work units (one pair batch of one configuration each), in
one order that every rank computes alike. A bad model name, preset value,
prototype list or target rule fails here, before the results folder is touched.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from protobench import storage
from protobench.attacks import AttackPreset, Pairs, load_attack, pair_batches
from protobench.bench import provenance, reuse
from protobench.bench.batching import auto_batch_size, stored_batch_size
from protobench.bench.configuration import Configuration, configurations
from protobench.bench.ranks import Ranks, current_ranks
from protobench.bench.spec import RunSpec
from protobench.bench.streaming import check_workers, select_streamed
from protobench.bench.suite import Suite, load_suite, replace
from protobench.bench.tables import eps_label
from protobench.devices import ThreadChoice, choose_threads, resolve_device
from protobench.errors import ProtobenchError
from protobench.factories import from_factory, is_factory
from protobench.model.checkpoint import load_model
from protobench.model.classifier import PrototypeClassifier
from protobench.paths import RESULTS_DIR, file_digest, model_checkpoint
from protobench.source import code_identity
from protobench.training import DataSource, model_split


# ------------------------------------------------------------ inputs
@dataclass(eq=False)
class ModelData:
    """A model and the images of the run: ``indices`` of its split ``data``, read in
    batches when needed (``protobench.bench.streaming``), never held whole."""

    model: nn.Module              # a ProtoPNet, or any PrototypeModel (protobench.PrototypeAdapter)
    data: Dataset                 # the split
    indices: range                # the run's images, split indices from first_image on
    source: DataSource | None     # where they come from (and the push set); None: the caller's data
    undecodable: list[str] = field(default_factory=list)  # files of the split that were skipped

    @property
    def first_image(self) -> int:
        """Index in the split of the run's first image (pairs' image_index counts from it)."""
        return self.indices.start


def load_model_data(name: str, model: nn.Module, suite: Suite, dataset: str | None,
                    data_root: str | None, data: Dataset | None = None) -> ModelData:
    """The model's split (or the caller's ``data``) and the ``suite.images`` images of it from
    ``suite.first_image`` on."""
    if data is None:
        source, data = model_split(model, suite.split, dataset, data_root, name)
        where = f"the {suite.split} split of {name}"
    else:
        source, where = None, "the data given"
    if suite.first_image >= len(data):
        raise ProtobenchError(f"first_image {suite.first_image} is past the end of "
                              f"{where} ({len(data)} images)")
    indices = range(suite.first_image, min(suite.first_image + suite.images, len(data)))
    undecodable = [str(p) for p in getattr(data, "skipped", [])]
    return ModelData(model, data, indices, source, undecodable)


# ------------------------------------------------------------ work units
@dataclass(frozen=True)
class WorkUnit:
    """One pair batch of one configuration: what a rank computes, and what a resumed run skips.

    A configuration's pairs are cut into batches of at most the suite's
    batch_size (``pair_batches``: an image's pairs stay together), the same
    cut whatever the number of ranks; each batch draws its own random stream
    (``_seed_for``), so the numbers do not depend on which rank computes it.
    """

    cfg: Configuration
    preset: AttackPreset
    md: ModelData
    pairs: Pairs        # the batch
    batch: int          # its index among the configuration's batches
    first_pair: int     # its offset among the configuration's pairs

    def describe(self) -> str:
        """What the progress bar says the unit is: attack, model, eps, steps and pairs."""
        cfg = self.cfg
        setting = [f"eps {eps_label(cfg.eps)}"] if cfg.eps is not None else []
        if cfg.steps and not cfg.control:
            setting.append(f"{cfg.steps} steps")
        if cfg.quality is not None:
            setting.append(f"quality {cfg.quality}")
        what = f"{cfg.attack} noise control" if cfg.control else cfg.attack
        pairs = f"pairs {self.first_pair + 1}-{self.first_pair + len(self.pairs)}"
        return f"{what} on {cfg.model}, {', '.join(setting + [pairs])}"

    def step_budget(self) -> int:
        """The gradient steps the unit takes at most (each restart of each ensemble member;
        early exit takes fewer); 0 for a noise control, which takes none."""
        if self.cfg.control:
            return 0
        preset = self.preset
        return preset.steps * max(preset.restarts, 1) * max(len(preset.members), 1)

    def csv(self, parts: Path) -> Path:
        """The unit's pair rows; written last, it marks the unit done."""
        return parts / self.cfg.id / f"batch{self.batch:05d}.csv"

    def panel(self, parts: Path) -> Path:
        """The unit's share of the configuration's attack panel (its first pairs)."""
        return parts / self.cfg.id / f"batch{self.batch:05d}.npz"

    @property
    def images(self) -> range:
        """The split indices of the unit's images (consecutive: a batch never splits an image)."""
        first = self.md.first_image
        return range(first + int(self.pairs.image_index[0]), first + int(self.pairs.image_index[-1]) + 1)


@dataclass(eq=False)
class PlannedModel:
    """A model of the run: its name, backbone, images and the pairs of each attack."""

    name: str
    backbone: str
    md: ModelData
    pairs: list[Pairs]  # one per preset, in the run's order


def plan_units(models: Sequence[PlannedModel], presets: Sequence[AttackPreset],
               suite: Suite) -> list[WorkUnit]:
    """Every work unit of the sweep, in one order that every rank computes alike."""
    units = []
    for planned in models:
        for preset, pairs in zip(presets, planned.pairs):
            batches = list(pair_batches(pairs, suite.batch_size))
            for cfg, cfg_preset in configurations(preset, planned.name, planned.backbone, suite):
                first = 0
                for b, batch in enumerate(batches):
                    units.append(WorkUnit(cfg, cfg_preset, planned.md, batch, b, first))
                    first += len(batch)
    return units


@dataclass(eq=False)
class Plan:
    """A run, planned: what ``execute`` computes and ``write`` records.

    settings   what makes two runs the same run (run.json; a folder holding another
               run's results is refused unless ``fresh``)
    """

    spec: RunSpec
    suite: Suite
    presets: list[AttackPreset]
    out: Path
    settings: dict[str, Any]
    models: list[PlannedModel]
    units: list[WorkUnit]
    device: torch.device
    threading: ThreadChoice
    ranks: Ranks
    start: float


def plan(spec: RunSpec, start: float) -> Plan:
    """The run ``spec`` asks for, planned (the module docstring); sets torch's threads."""
    if is_factory(spec.data):  # --data my_module:factory
        data = from_factory(spec.data, "--data")
        if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
            raise ProtobenchError(f"--data {spec.data} gave a {type(data).__name__}, not a data set "
                                  "of (image, label)")
        spec = dataclasses.replace(spec, data=data)
    in_memory, models = _models_in_memory(spec.models, spec.data is not None)
    auto_batch = spec.batch_size == "auto"
    suite = load_suite(spec.suite, models=models, eps=spec.eps, steps=spec.steps, images=spec.limit,
                       seed=spec.seed, batch_size=None if auto_batch else spec.batch_size,
                       first_image=spec.first_image, split=spec.split)
    attacks = list(dict.fromkeys(spec.attacks or suite.attacks or ("pgd-local",)))
    overrides = {key: v for key, v in (("prototypes", spec.prototypes), ("k", spec.k)) if v is not None}
    options = {**suite.attack_options, **(spec.attack_options or {})}
    axes = [key for key in ("eps", "steps") if key in options]
    if axes:
        raise ProtobenchError(f"{axes[0]} is an axis of the sweep, not a preset option here; "
                              f"give it with --{axes[0]} (or the suite's {axes[0]} list)")
    presets = [load_attack(a, **{**options, **overrides}) for a in attacks]
    dev = resolve_device(spec.device)
    threads = choose_threads(spec.threads) if isinstance(spec.threads, int) else spec.threads
    if threads is not None:
        torch.set_num_threads(threads.threads)
    threading = threads or ThreadChoice(torch.get_num_threads(), "the caller's torch setting")
    check_workers(spec.workers)
    ranks = current_ranks()  # under torchrun: this rank's place; every rank validates alike
    out = spec.out
    if out is None:
        name = "+".join(p.name for p in presets) + ("" if suite.name == "default" else f"-{suite.name}")
        out = RESULTS_DIR / name
    out = Path(out)
    # an unknown model fails here, before any file; a retrained model is a different run
    checkpoints = {m: provenance.state_digest(in_memory[m]) if m in in_memory
                   else file_digest(model_checkpoint(m)) for m in suite.models}
    on_device: dict[str, nn.Module] = {}

    def model_on_device(name: str) -> nn.Module:
        """Each model loaded (or moved) once, for the batch-size probe and the sweep alike."""
        if name not in on_device:
            on_device[name] = (in_memory[name].to(dev).eval() if name in in_memory
                               else load_model(name, device=str(dev)))
        return on_device[name]

    if auto_batch:
        suite = _resolve_auto_batch(suite, out, spec.fresh, presets, dev, model_on_device)
    _check_backbones(spec.backbones)
    storage.check_creatable(out)
    settings = {"suite": suite.to_dict(), "attacks": [p.to_dict() for p in presets],
                "checkpoints_sha256": checkpoints,
                "backbones": list(spec.backbones) if spec.backbones else None,
                "dataset": spec.dataset, "data_root": spec.data_root, "code": code_identity(dev)}
    if spec.data is not None:  # the caller's images: a run on other images is another run
        settings["data_sha256"] = provenance.data_digest(spec.data, suite.first_image, suite.images)
    reuse.check_same_run(out, settings, spec.fresh)

    # everything that can fail on the user's input is loaded before the folder is touched
    # (the pairs too: a bad k, prototype list or target rule fails in select_pairs)
    planned: list[PlannedModel] = []
    for model_name in suite.models:
        model = model_on_device(model_name)
        backbone = (model.meta.architecture.backbone if isinstance(model, PrototypeClassifier)
                    else getattr(model, "backbone", "custom"))
        if spec.backbones and backbone not in spec.backbones:
            continue
        md = load_model_data(model_name, model, suite, spec.dataset, spec.data_root, spec.data)
        if len(md.indices) < suite.images:
            print(f"note: {model_name}: {suite.images} images asked for, the {suite.split} "
                  f"split has {len(md.indices)} from image {suite.first_image} on; using those",
                  file=sys.stderr)
        planned.append(PlannedModel(model_name, backbone, md, select_streamed(
            md.model, md.data, md.indices, presets, suite.batch_size, dev, spec.workers)))
    if not planned:
        raise ProtobenchError("nothing to run: no model matches --backbone "
                              f"{', '.join(spec.backbones or [])}")
    return Plan(spec, suite, presets, out, settings, planned, plan_units(planned, presets, suite),
                dev, threading, ranks, start)


def _resolve_auto_batch(suite: Suite, out: Path, fresh: bool, presets, dev: torch.device,
                        load: Callable[[str], nn.Module]) -> Suite:
    """The suite with ``--batch-size auto`` resolved: the folder's own size when resuming,
    else from the GPU's free memory (the suite's on the CPU); said once on stderr."""
    stored = None if fresh else stored_batch_size(out)
    if stored is not None:
        size, how = stored, f"{stored}, the size {out} was started with"
    else:
        size, how = auto_batch_size(suite.models, presets, dev, suite.batch_size, load)
    print(f"note: --batch-size auto: {how}", file=sys.stderr)
    return replace(suite, batch_size=size)


def _models_in_memory(models: Sequence[str | Path | nn.Module] | None, with_data: bool = False
                      ) -> tuple[dict[str, nn.Module], list[str] | None]:
    """The modules among ``models`` by name, and every model's name. A module that is not a
    ProtoPNet must be a prototype model (protobench.PrototypeModel) and needs ``data``."""
    from protobench.model.protocol import check_prototype_model

    if models is None:
        return {}, None
    modules: dict[str, nn.Module] = {}
    names = []
    for i, model in enumerate(models):
        given_name = ""
        if is_factory(model):  # --model my_module:factory
            given_name = str(model).rpartition(":")[2]
            model = from_factory(str(model), "--model")
            if not isinstance(model, nn.Module):
                raise ProtobenchError(f"--model {models[i]} gave a {type(model).__name__}, not a "
                                      "model (a torch.nn.Module)")
        if not isinstance(model, nn.Module):
            names.append(str(model))
            continue
        if isinstance(model, PrototypeClassifier):
            name = model.meta.name or given_name or f"model{i}"
        else:
            check_prototype_model(model)
            if not with_data:
                raise ProtobenchError(
                    f"models[{i}] is a {type(model).__name__}, which records no data set: give "
                    "its images with data= (a data set of (image, label), with relevance_mask(i) "
                    "where the object masks are known)")
            name = str(getattr(model, "name", "") or given_name or f"model{i}")
        if name in modules or name in names:
            raise ProtobenchError(f"two models are named {name!r}; set their names apart "
                                  "(model.meta.name, or a name attribute)")
        modules[name] = model
        names.append(name)
    return modules, names


def _check_backbones(backbones: Sequence[str] | None) -> None:
    """--backbone names must be known backbones (the models are filtered once loaded)."""
    from protobench.model.backbones import BACKBONES
    for name in backbones or []:
        BACKBONES.get(name)
