"""Executing a planned run: claim the folder, compute the work units not yet done, merge.

Each work unit (one pair batch of one configuration) attacks its pairs,
measures every metric of docs/metrics.md and is written at once
(``parts/<configuration>/batch<i>.csv`` and ``.npz``, atomically), so a run
started again skips what is there. Under torchrun the units are shared among
the ranks (``protobench.bench.ranks``); every rank computes its own and rank 0
merges them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch
from tqdm.auto import tqdm

from protobench import storage
from protobench.attacks import attack_in_batches, measure
from protobench.attacks.progress import reporting_steps
from protobench.bench import reuse
from protobench.bench.configuration import Configuration
from protobench.bench.plan import ModelData, Plan, WorkUnit
from protobench.bench.records import AttackPanel, LocalAnalysisRecord
from protobench.bench.streaming import ImageBatch, image_batches
from protobench.devices import ThreadChoice, retune_threads
from protobench.errors import ProtobenchError
from protobench.explanations import local_analysis
from protobench.model.classifier import PrototypeClassifier


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


def model_report(md: ModelData, path: Path) -> dict[str, Any]:
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


@dataclass
class Executed:
    """What rank 0 has after every rank finished: each configuration's pair rows in order,
    the model reports, the units done before this run and the threads each unit used."""

    merged: list[tuple[Configuration, pd.DataFrame]]
    reports: dict[str, Any]
    done_before: set[int]
    threads_used: list[int] = field(default_factory=list)


def execute(plan: Plan) -> Executed | None:
    """Rank 0 claims the folder, every rank computes its units, rank 0 merges them (None on
    the other ranks). An interrupted first attempt leaves no half-written folder."""
    out, settings, fresh, units, ranks = plan.out, plan.settings, plan.spec.fresh, plan.units, plan.ranks
    suite = plan.suite
    parts = out / "parts"
    with contextlib.ExitStack() as claim:
        error, done_before = None, set()
        if ranks.main:
            try:
                claim.enter_context(storage.FolderLock(storage.check_writable(out)))
                reuse.check_same_run(out, settings, fresh)  # again: a run may have finished meanwhile
                storage.check_writable(parts)
                if fresh or reuse.holds_another_run(out, settings):
                    reuse.remove_results(out)
                storage.write_json(out / "settings.json", settings)
                done_before = {i for i, u in enumerate(units) if u.csv(parts).exists()}
            except ProtobenchError as err:
                error = err
        ranks.check(error)  # every rank stops alike when rank 0 could not claim the folder

        reports = {}
        if ranks.main:
            for planned in plan.models:
                md = planned.md
                own = isinstance(md.model, PrototypeClassifier) and md.source is not None
                if suite.model_report and own:  # a foreign model's data set is not known
                    reports[planned.name] = model_report(
                        md, parts / f"model-{storage.safe_name(planned.name)}.json")
                local_path = parts / f"local-{storage.safe_name(planned.name)}.npz"
                if plan.spec.figures and own and not local_path.exists():  # ProtoPNet's push sources
                    store_local_analysis(md, suite.local_analysis_k).save(local_path)
        mine = [u for i, u in enumerate(units) if ranks.owns(i)]
        try:
            used = compute_units(mine, parts, suite.seed, suite.panels,
                                 plan.spec.progress and ranks.main, plan.device, plan.spec.workers,
                                 plan.threading)
        except BaseException:
            if ranks.main and not reuse.finished_parts(out):  # nothing of this run to resume:
                reuse.remove_results(out)                      # leave no half-written folder
            raise
        ranks.barrier()  # every unit is on disk
        if not ranks.main:
            return None
        return Executed(merge_units(units, parts, suite.panels), reports, done_before, used)
