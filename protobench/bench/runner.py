"""The benchmark runner: attacks x models x eps x steps, with resumable results.

``run(...)`` is what ``python -m protobench.run`` calls. For every attack
and model it selects the (image, prototype) pairs once on the clean images,
then for every configuration (eps, steps; or JPEG quality) attacks them,
measures every metric of docs/metrics.md and attacks the same pairs with the
uniform-noise control of the same mask and eps. A configuration's pairs
are cut into batches, its work units; each finished unit is written at once
(``parts/<configuration>/batch<i>.csv`` and ``.npz``, atomically), and a run
started again with the same arguments skips what is there, so an
interrupted sweep loses nothing and recomputes nothing. Under torchrun the
units are shared among the ranks (``protobench.bench.ranks``) and rank 0
merges them. At the end the units become pairs.csv, summary.csv/.md/.tex,
run.json, parts/<configuration>.npz (the attack panels) and figures/.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import re
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch
import torch.nn as nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from protobench.attacks import (
    AttackPreset, Pairs, attack_in_batches, load_attack, measure, pair_batches,
)
from protobench.attacks.progress import reporting_steps
from protobench import storage
from protobench.bench import provenance, resume
from protobench.source import code_identity
from protobench.bench.batching import auto_batch_size, stored_batch_size
from protobench.bench.configuration import Configuration, configurations
from protobench.bench.ranks import Ranks, current_ranks
from protobench.bench.records import AttackPanel, LocalAnalysisRecord
from protobench.bench.streaming import ImageBatch, check_workers, image_batches, select_streamed
from protobench.bench.suite import Suite, load_suite, replace
from protobench.bench.tables import (
    COMPACT_CAPTION, CONFIG_COLUMNS, compact_table, eps_label, headline_table, to_latex, to_latex_table,
    to_markdown,
)
from protobench.devices import ThreadChoice, choose_threads, resolve_device, restores_threads, retune_threads
from protobench.errors import ProtobenchError
from protobench.explanations import local_analysis
from protobench.metrics import summarize
from protobench.model.checkpoint import load_model
from protobench.model.classifier import PrototypeClassifier
from protobench.paths import RESULTS_DIR, file_digest, model_checkpoint
from protobench.training import DataSource, model_split


@dataclass
class RunResult:
    """What a run wrote; on a rank other than 0 of a sharded run, no summary (rank 0 merges)."""

    out: Path
    summary: pd.DataFrame | None
    computed: list[str] = field(default_factory=list)   # configurations computed in this run
    skipped: list[str] = field(default_factory=list)    # configurations resumed from an earlier one
    seconds: float = 0.0
    rank: int = 0


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


def plan_units(loaded, presets: Sequence[AttackPreset], suite: Suite) -> list[WorkUnit]:
    """Every work unit of the sweep, in one order that every rank computes alike."""
    units = []
    for model_name, backbone, md, model_pairs in loaded:
        for preset, pairs in zip(presets, model_pairs):
            batches = list(pair_batches(pairs, suite.batch_size))
            for cfg, cfg_preset in configurations(preset, model_name, backbone, suite):
                first = 0
                for b, batch in enumerate(batches):
                    units.append(WorkUnit(cfg, cfg_preset, md, batch, b, first))
                    first += len(batch)
    return units


def _seed_for(seed: int, cfg: Configuration, batch: int = 0) -> torch.Generator:
    """A generator per work unit, so that a resumed or sharded sweep draws the same numbers
    (a configuration's first batch keeps the stream the whole configuration had when it
    was one unit)."""
    key = cfg.id if batch == 0 else f"{cfg.id}/batch{batch}"
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))


def _generator_on(device: torch.device, seed_gen: torch.Generator) -> torch.Generator:
    seed = int(torch.randint(0, 2**62, (1,), generator=seed_gen))
    return torch.Generator(device=device).manual_seed(seed)


def run_unit(unit: WorkUnit, batch: ImageBatch, seed: int, panels: int
             ) -> tuple[pd.DataFrame, AttackPanel | None]:
    """Attack (or control) one work unit on its images ``batch``: its pair rows, and its panel
    arrays when it holds some of the configuration's first ``panels`` pairs."""
    md, cfg = unit.md, unit.cfg
    pairs = unit.pairs.to(batch.images.device)
    # the pairs as indices into the batch (image_index counts from the run's first image)
    local = dataclasses.replace(pairs, image_index=pairs.image_index - (batch.first - md.first_image))
    generator = _generator_on(batch.images.device, _seed_for(seed, cfg, unit.batch))
    start = time.perf_counter()
    x_adv = attack_in_batches(md.model, batch.images, local, unit.preset, generator, len(local),
                              cfg.control)
    seconds = time.perf_counter() - start
    metrics, sim_after = measure(md.model, batch.images, local, x_adv, len(local))
    rows = pd.DataFrame(metrics.to_dict())
    rows.insert(0, "prototype", pairs.prototype.cpu().numpy())
    rows.insert(0, "image", pairs.image_index.cpu().numpy() + md.first_image)  # index in the split
    for k, v in reversed(list(cfg.columns().items())):
        rows.insert(0, k, v)
    rows.insert(0, "config_id", cfg.id)
    rows["has_relevance"] = pairs.has_relevance.cpu().numpy()
    rows["seconds"] = seconds / max(len(pairs), 1)
    panel = None
    if unit.first_pair < panels:
        panel = AttackPanel.of_pairs(local, batch.images, x_adv, sim_after, metrics.pred_after,
                                     md.model.img_size, panels - unit.first_pair, batch.first,
                                     peak_in_target=metrics.peak_in_target)
    return rows, panel


def compute_units(units: Sequence[WorkUnit], parts: Path, seed: int, panels: int,
                  progress: bool, device: torch.device, workers: int,
                  threading: ThreadChoice) -> list[int]:
    """Compute and store the units not yet done (panel first, then the csv that marks it done),
    each on its images, read ahead by ``workers`` DataLoader processes per model. An adaptive
    ``threading`` is chosen anew before each unit; returns the threads each unit used."""
    todo = [u for u in units if not u.csv(parts).exists()]
    used = []
    with tqdm(total=len(todo), desc="work units", disable=not progress, unit="unit") as bar:
        for _, group in itertools.groupby(todo, key=lambda u: id(u.md)):
            group = list(group)
            batches = image_batches(group[0].md.data, [u.images for u in group], device, workers)
            for unit, batch in zip(group, batches):
                used.append(retune_threads(threading))
                bar.set_description_str(unit.describe())
                budget = unit.step_budget()
                with tqdm(total=budget, desc="  gradient steps", unit="step", position=1, leave=False,
                          disable=not progress or budget == 0) as steps, reporting_steps(steps.update):
                    rows, panel = run_unit(unit, batch, seed, panels)
                if panel is not None:
                    panel.save(unit.panel(parts))
                storage.write_csv(unit.csv(parts), rows)
                bar.update()
    return used


def merge_units(units: Sequence[WorkUnit], parts: Path, panels: int) -> list[tuple[Configuration, pd.DataFrame]]:
    """Each configuration's pair rows, from its units' files in order; its attack panel
    (parts/<id>.npz, what the figures read) is assembled once from the units' shares."""
    by_config: dict[str, list[WorkUnit]] = {}
    for unit in units:
        by_config.setdefault(unit.cfg.id, []).append(unit)
    merged = []
    for cfg_id, cfg_units in by_config.items():
        missing = [u.csv(parts) for u in cfg_units if not u.csv(parts).exists()]
        if missing:
            raise ProtobenchError(f"{missing[0]}: a work unit is missing after every rank finished; "
                                  "rerun the same command to compute it")
        rows = pd.concat([pd.read_csv(u.csv(parts)) for u in cfg_units], ignore_index=True)
        panel_path = parts / f"{cfg_id}.npz"
        shares = [u.panel(parts) for u in cfg_units if u.first_pair < panels]
        if shares and not panel_path.exists():  # panels = 0 stores none
            AttackPanel.concat([AttackPanel.load(p) for p in shares]).save(panel_path)
        merged.append((cfg_units[0].cfg, rows))
    return merged


def _model_report(md: ModelData, path: Path) -> dict[str, Any]:
    """Accuracy on the model's whole split and the JPEG experiment's accuracies (stored; resumed)."""
    if path.exists():
        return json.loads(path.read_text())
    from protobench.evaluation.quality import accuracy_report

    scores = accuracy_report(md.model, md.source)   # what evaluate reports, on the test split
    report = {"accuracy": round(scores["accuracy"], 4), "images": scores["images"], "jpeg": scores["jpeg"],
              "recipe_train": {k: md.model.meta.recipe.get("train", {}).get(k)
                               for k in ("adversarial", "adversarial_eps", "adversarial_steps",
                                         "jpeg_augment")}}
    storage.write_json(path, report)
    return report


def store_local_analysis(md: ModelData, k: int) -> LocalAnalysisRecord:
    """One "this looks like that" analysis of the first image, so figures never need the model."""
    x, y = md.data[md.first_image]
    analysis = local_analysis(md.model, x.to(md.model.device), int(y), k)
    push_set = md.source.load("push") if md.model.meta.push_records else None
    return LocalAnalysisRecord.of_analysis(analysis, push_set)


# ------------------------------------------------------------ the run
@restores_threads
def run(attacks: Sequence[str] | None = None, suite: str | Path = "default",
        models: Sequence[str | Path | nn.Module] | None = None, backbones: Sequence[str] | None = None,
        eps: Sequence[float] | str | None = None, steps: Sequence[int] | str | None = None,
        prototypes: str | None = None, k: int | None = None,
        attack_options: dict[str, Any] | None = None, limit: int | None = None,
        seed: int | None = None, batch_size: int | str | None = None, first_image: int | None = None,
        split: str | None = None, device: str = "auto", workers: int = 0,
        out: str | Path | None = None, fresh: bool = False,
        dataset: str | None = None, data_root: str | None = None, figures: bool = True,
        progress: bool = True, command: Sequence[str] | None = None,
        threads: int | ThreadChoice | None = None, data: Dataset | None = None) -> RunResult:
    """Run a benchmark sweep and write its results; see the module docstring.

    Every argument left as None takes the suite's (or the preset's) value;
    ``attacks`` the suite's ``attacks``, else pgd-local.
    ``workers`` DataLoader processes read each rank's images ahead (0: in
    the main process); the numbers do not depend on it.
    ``attack_options`` sets any other preset value for every attack (the
    command line's ``--set KEY=VALUE``).
    ``models`` are names, checkpoint paths or modules in memory: a ProtoPNet (named by its
    ``meta.name``; it records its data set and classes), or any other prototype model
    (``protobench.PrototypeAdapter``; named by its ``name`` attribute, else model<i>), which
    reads its images from ``data``.
    ``data``: a data set of (image (3, H, W) in [0, 1], label), with ``relevance_mask(i)``
    (H, W) bool where the objects' masks are known; every model of the run then reads its
    images from it (the suite's split and ``dataset`` do not apply). run.json records a
    digest of the images the run used.
    ``out`` defaults to results/<attacks joined by '+'>[-<suite>]. A folder
    that holds finished configurations of another run (other settings,
    checkpoints or code) is refused unless ``fresh``, which recomputes
    everything there. Nothing is written before the models and images load.
    ``threads``: torch's CPU threads for the run (a number, or the command line's
    ``devices.choose_threads``); None leaves the caller's setting. run.json records it.
    """
    start = time.perf_counter()
    in_memory, models = _models_in_memory(models, data is not None)
    auto_batch = batch_size == "auto"
    suite_obj = load_suite(suite, models=models, eps=eps, steps=steps, images=limit, seed=seed,
                           batch_size=None if auto_batch else batch_size, first_image=first_image,
                           split=split)
    attacks = list(dict.fromkeys(attacks or suite_obj.attacks or ("pgd-local",)))
    overrides = {key: v for key, v in (("prototypes", prototypes), ("k", k)) if v is not None}
    options = {**suite_obj.attack_options, **(attack_options or {})}
    axes = [key for key in ("eps", "steps") if key in options]
    if axes:
        raise ProtobenchError(f"{axes[0]} is an axis of the sweep, not a preset option here; "
                              f"give it with --{axes[0]} (or the suite's {axes[0]} list)")
    presets = [load_attack(a, **{**options, **overrides}) for a in attacks]
    dev = resolve_device(device)
    if isinstance(threads, int):
        threads = choose_threads(threads)
    if threads is not None:
        torch.set_num_threads(threads.threads)
    threading = threads or ThreadChoice(torch.get_num_threads(), "the caller's torch setting")
    check_workers(workers)
    ranks = current_ranks()  # under torchrun: this rank's place; every rank validates alike
    if out is None:
        name = "+".join(p.name for p in presets) + ("" if suite_obj.name == "default" else f"-{suite_obj.name}")
        out = RESULTS_DIR / name
    out = Path(out)
    # an unknown model fails here, before any file; a retrained model is a different run
    checkpoints = {m: provenance.state_digest(in_memory[m]) if m in in_memory
                   else file_digest(model_checkpoint(m)) for m in suite_obj.models}
    on_device: dict[str, nn.Module] = {}

    def model_on_device(name: str) -> nn.Module:
        """Each model loaded (or moved) once, for the batch-size probe and the sweep alike."""
        if name not in on_device:
            on_device[name] = (in_memory[name].to(dev).eval() if name in in_memory
                               else load_model(name, device=str(dev)))
        return on_device[name]

    if auto_batch:
        suite_obj = _resolve_auto_batch(suite_obj, out, fresh, presets, dev, model_on_device)
    _check_backbones(backbones)
    storage.check_creatable(out)
    settings = {"suite": suite_obj.to_dict(), "attacks": [p.to_dict() for p in presets],
                "checkpoints_sha256": checkpoints,
                "backbones": list(backbones) if backbones else None, "dataset": dataset,
                "data_root": data_root, "code": code_identity(dev)}
    if data is not None:  # the caller's images: a run on other images is another run
        settings["data_sha256"] = provenance.data_digest(data, suite_obj.first_image, suite_obj.images)
    resume.check_same_run(out, settings, fresh)

    # everything that can fail on the user's input is loaded before the folder is touched
    # (the pairs too: a bad k, prototype list or target rule fails in select_pairs)
    loaded: list[tuple[str, str, ModelData, list[Pairs]]] = []
    for model_name in suite_obj.models:
        model = model_on_device(model_name)
        backbone = (model.meta.architecture.backbone if isinstance(model, PrototypeClassifier)
                    else getattr(model, "backbone", "custom"))
        if backbones and backbone not in backbones:
            continue
        md = load_model_data(model_name, model, suite_obj, dataset, data_root, data)
        if len(md.indices) < suite_obj.images:
            print(f"note: {model_name}: {suite_obj.images} images asked for, the {suite_obj.split} "
                  f"split has {len(md.indices)} from image {suite_obj.first_image} on; using those",
                  file=sys.stderr)
        loaded.append((model_name, backbone, md,
                       select_streamed(md.model, md.data, md.indices, presets,
                                       suite_obj.batch_size, dev, workers)))
    if not loaded:
        raise ProtobenchError("nothing to run: no model matches --backbone "
                              f"{', '.join(backbones or [])}")
    units = plan_units(loaded, presets, suite_obj)
    return _run_units(out, settings, fresh, loaded, units, suite_obj, dev, workers, figures,
                      progress, command, start, ranks, threading)


def _run_units(out: Path, settings: dict[str, Any], fresh: bool, loaded, units: list[WorkUnit],
               suite_obj: Suite, dev: torch.device, workers: int, figures: bool, progress: bool,
               command, start: float, ranks: Ranks, threading: ThreadChoice) -> RunResult:
    """The sweep itself: rank 0 claims the folder, every rank computes its units, rank 0 merges."""
    parts = out / "parts"
    with contextlib.ExitStack() as claim:
        error, done_before = None, set()
        if ranks.main:
            try:
                claim.enter_context(storage.FolderLock(storage.check_writable(out)))
                resume.check_same_run(out, settings, fresh)  # again: a run may have finished meanwhile
                storage.check_writable(parts)
                if fresh or resume.holds_another_run(out, settings):
                    resume.remove_results(out)
                storage.write_json(out / "settings.json", settings)
                done_before = {i for i, u in enumerate(units) if u.csv(parts).exists()}
            except ProtobenchError as err:
                error = err
        ranks.check(error)  # every rank stops alike when rank 0 could not claim the folder

        reports = {}
        if ranks.main:
            for model_name, _, md, _ in loaded:
                own = isinstance(md.model, PrototypeClassifier) and md.source is not None
                if suite_obj.model_report and own:  # a foreign model's data set is not known
                    reports[model_name] = _model_report(md, parts / f"model-{storage.safe_name(model_name)}.json")
                local_path = parts / f"local-{storage.safe_name(model_name)}.npz"
                if figures and own and not local_path.exists():  # ProtoPNet's push sources
                    store_local_analysis(md, suite_obj.local_analysis_k).save(local_path)
        mine = [u for i, u in enumerate(units) if ranks.owns(i)]
        try:
            used = compute_units(mine, parts, suite_obj.seed, suite_obj.panels,
                                 progress and ranks.main, dev, workers, threading)
        except BaseException:
            if ranks.main and not resume.finished_parts(out):  # nothing of this run to resume:
                resume.remove_results(out)                      # leave no half-written folder
            raise
        ranks.barrier()  # every unit is on disk
        if not ranks.main:
            return RunResult(out, None, rank=ranks.rank, seconds=time.perf_counter() - start)

        merged = merge_units(units, parts, suite_obj.panels)
        # a configuration is resumed when every one of its units was done before this run
        partly_new = {u.cfg.id for i, u in enumerate(units) if i not in done_before}
        computed = [cfg.id for cfg, _ in merged if cfg.id in partly_new]
        resumed = [cfg.id for cfg, _ in merged if cfg.id not in partly_new]
        pairs_frame = pd.concat([rows for _, rows in merged], ignore_index=True)
        summary = summarize_pairs(pairs_frame)
        write_outputs(out, pairs_frame, summary, reports or None, {
            "command": list(command) if command is not None else sys.argv,
            **settings, "seed": suite_obj.seed, "device": str(dev),
            "device_name": provenance.device_name(dev), "ranks": ranks.world,
            "threads": threading.threads, "threads_chosen_by": threading.chosen_by,
            # how many of this run's work units ran on each number of threads
            "threads_units": {str(n): used.count(n) for n in sorted(set(used))},
            "versions": provenance.versions(), "git_commit": provenance.git_commit(),
            "images_per_model": {name: len(md.indices) for name, _, md, _ in loaded},
            "data_workers": workers,
            # image files of each model's split that could not be decoded and were left out
            "undecodable_images": {name: {"count": len(md.undecodable), "files": md.undecodable[:20]}
                                   for name, _, md, _ in loaded},
            "configurations_computed": computed, "configurations_resumed": resumed,
            "work_units": len(units), "work_units_resumed": len(done_before),
            # the attack's own time (not measuring), summed over each configuration's pairs,
            # whichever rank or earlier attempt computed them
            "attack_seconds_per_configuration": {
                cfg.id: round(float(rows["seconds"].sum()), 3) for cfg, rows in merged},
            "seconds_total": round(time.perf_counter() - start, 2),
        })
        if figures:
            from protobench.figures import make_figures
            make_figures(out)
        return RunResult(out, summary, computed, resumed, time.perf_counter() - start)


def _resolve_auto_batch(suite_obj: Suite, out: Path, fresh: bool, presets, dev: torch.device,
                        load: Callable[[str], nn.Module]) -> Suite:
    """The suite with ``--batch-size auto`` resolved: the folder's own size when resuming,
    else from the GPU's free memory (the suite's on the CPU); said once on stderr."""
    stored = None if fresh else stored_batch_size(out)
    if stored is not None:
        size, how = stored, f"{stored}, the size {out} was started with"
    else:
        size, how = auto_batch_size(suite_obj.models, presets, dev, suite_obj.batch_size, load)
    print(f"note: --batch-size auto: {how}", file=sys.stderr)
    return replace(suite_obj, batch_size=size)


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
        if not isinstance(model, nn.Module):
            names.append(str(model))
            continue
        if isinstance(model, PrototypeClassifier):
            name = model.meta.name or f"model{i}"
        else:
            check_prototype_model(model)
            if not with_data:
                raise ProtobenchError(
                    f"models[{i}] is a {type(model).__name__}, which records no data set: give "
                    "its images with data= (a data set of (image, label), with relevance_mask(i) "
                    "where the object masks are known)")
            name = str(getattr(model, "name", "") or f"model{i}")
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


def summarize_pairs(pairs_frame: pd.DataFrame) -> pd.DataFrame:
    """One summary row per configuration, in the order configurations first appear."""
    keys = ["config_id", *CONFIG_COLUMNS] if "config_id" in pairs_frame else CONFIG_COLUMNS
    frame = pairs_frame.copy()
    frame[["eps", "steps", "quality"]] = frame[["eps", "steps", "quality"]].astype(float)
    out = []
    for key, group in frame.groupby(keys, dropna=False, sort=False):
        out.append({**dict(zip(keys, key)), **summarize(group)})
    return pd.DataFrame(out)


def write_outputs(out: Path, pairs_frame: pd.DataFrame, summary: pd.DataFrame,
                  models: dict[str, Any] | None = None, run_info: dict[str, Any] | None = None) -> None:
    """pairs.csv, summary.csv/.md/.tex, the compact table (compact.md/.tex: each attack beside
    its noise control, the table a paper prints, labelled tab:<folder name>), models.json
    (model reports) and run.json, all or none (a full disk changes none)."""
    table, compact = headline_table(summary), compact_table(summary)
    label = "tab:" + re.sub(r"[^A-Za-z0-9-]+", "-", out.resolve().name)
    writers = {
        out / "pairs.csv": lambda tmp: pairs_frame.to_csv(tmp, index=False),
        out / "summary.csv": lambda tmp: summary.to_csv(tmp, index=False),
        out / "summary.md": lambda tmp: tmp.write_text(to_markdown(table)),
        out / "summary.tex": lambda tmp: tmp.write_text(to_latex(table)),
        out / "compact.md": lambda tmp: tmp.write_text(to_markdown(compact)),
        out / "compact.tex": lambda tmp: tmp.write_text(to_latex_table(compact, COMPACT_CAPTION, label)),
    }
    if models is not None:
        writers[out / "models.json"] = lambda tmp: tmp.write_text(storage.json_text(models))
    if run_info is not None:
        writers[out / "run.json"] = lambda tmp: tmp.write_text(storage.json_text(run_info))
    storage.atomic_write_all(writers)
