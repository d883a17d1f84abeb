"""The arrays a run stores beside its tables, each with one owner that writes and reads it.

- :class:`AttackPanel` (parts/<config_id>.npz): the first pairs of a
  configuration, clean and attacked, for the attack panel figure;
- :class:`LocalAnalysisRecord` (parts/local-<model>.npz): one "this looks
  like that" analysis with its prototypes' source crops, so that figures
  never need the model.

The runner builds and saves them; the figures load them. Both go through
the methods here, so the stored schema is written down once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from protobench import storage
from protobench.attacks.pairs import Pairs
from protobench.explanations import LocalAnalysis, PrototypeEvidence
from protobench.model.receptive_field import high_activation_box


def _save(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return storage.atomic_write(path, write)


def _load(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    with np.load(path) as stored:
        missing = [n for n in names if n not in stored]
        if missing:
            from protobench.errors import ProtobenchError
            raise ProtobenchError(f"{path}: not a stored record of this kind (no {', '.join(missing)})")
        return {n: stored[n] for n in names}


@dataclass
class AttackPanel:
    """The first k pairs of one configuration: images, maps and boxes before and after.

    image (k,) index in the split; prototype, label, pred_before, pred_after
    (k,); x, x_adv (k, 3, H, W); mask (k, H, W); sim_before, sim_after
    (k, h, w); box_before, box_after (k, 4) high-activation boxes (y0, y1, x0, x1);
    target (k, h, w) the attack's target cells T; object_cells (k, h, w) the cells that
    hold object pixels (none where the data set has no masks); peak_in_target (k,) whether
    the peak after the attack lies in T. The last three are None in panels stored before
    they were recorded (the figure then draws without them).
    """

    image: np.ndarray
    prototype: np.ndarray
    label: np.ndarray
    x: np.ndarray
    x_adv: np.ndarray
    mask: np.ndarray
    sim_before: np.ndarray
    sim_after: np.ndarray
    box_before: np.ndarray
    box_after: np.ndarray
    pred_before: np.ndarray
    pred_after: np.ndarray
    target: np.ndarray | None = None
    object_cells: np.ndarray | None = None
    peak_in_target: np.ndarray | None = None

    OPTIONAL = ("target", "object_cells", "peak_in_target")

    @classmethod
    def of_pairs(cls, pairs: Pairs, images: torch.Tensor, x_adv: torch.Tensor,
                 sim_after: torch.Tensor, pred_after: torch.Tensor, img_size: int, k: int,
                 first_image: int = 0, peak_in_target: torch.Tensor | None = None) -> "AttackPanel":
        """The first ``k`` of the attacked pairs; ``images`` is the batch they were selected from."""
        k = min(k, len(pairs))

        def cpu(t: torch.Tensor) -> np.ndarray:
            return t[:k].cpu().numpy()

        return cls(image=cpu(pairs.image_index) + first_image, prototype=cpu(pairs.prototype),
                   label=cpu(pairs.label), x=images[pairs.image_index[:k]].cpu().numpy(),
                   x_adv=cpu(x_adv), mask=pairs.mask[:k, 0].cpu().numpy(),
                   sim_before=cpu(pairs.sim_before), sim_after=cpu(sim_after),
                   box_before=cpu(pairs.box),
                   box_after=high_activation_box(sim_after[:k], img_size).cpu().numpy(),
                   pred_before=pairs.logits_before[:k].argmax(1).cpu().numpy(),
                   pred_after=cpu(pred_after), target=cpu(pairs.target),
                   object_cells=cpu(~pairs.irrelevant & pairs.has_relevance.view(-1, 1, 1)),
                   peak_in_target=None if peak_in_target is None else cpu(peak_in_target))

    @classmethod
    def concat(cls, panels: list["AttackPanel"]) -> "AttackPanel":
        """One panel of the pairs of ``panels`` in order (a configuration's work units' shares)."""
        def joined(name: str):
            parts = [getattr(p, name) for p in panels]
            return None if any(part is None for part in parts) else np.concatenate(parts)
        return cls(**{f.name: joined(f.name) for f in fields(cls)})

    def __len__(self) -> int:
        return len(self.prototype)

    def save(self, path: Path) -> Path:
        return _save(path, {k: v for k, v in asdict(self).items() if v is not None})

    @classmethod
    def load(cls, path: Path) -> "AttackPanel":
        names = [f.name for f in fields(cls) if f.name not in cls.OPTIONAL]
        with np.load(path) as stored:
            optional = {n: stored[n] for n in cls.OPTIONAL if n in stored}
        return cls(**_load(path, names), **optional)


@dataclass
class LocalAnalysisRecord:
    """A :class:`~protobench.explanations.LocalAnalysis` as arrays, with the source
    crop of each prototype (its push image; zeros when the model was not pushed)."""

    image: np.ndarray
    label: np.ndarray
    predicted: np.ndarray
    classes: np.ndarray
    prototype: np.ndarray
    prototype_class: np.ndarray
    similarity: np.ndarray
    weight: np.ndarray
    contribution: np.ndarray
    box: np.ndarray
    similarity_map: np.ndarray
    source: np.ndarray
    source_box: np.ndarray

    @classmethod
    def of_analysis(cls, analysis: LocalAnalysis, push_set=None) -> "LocalAnalysisRecord":
        ev = analysis.evidence
        size = analysis.image.shape[-2:]
        source = np.zeros((len(ev), 3, *size), dtype=np.float32)
        source_box = np.zeros((len(ev), 4), dtype=np.int64)
        for i, e in enumerate(ev):
            if push_set is not None and e.source_image is not None:
                source[i] = push_set[e.source_image][0].numpy()
                source_box[i] = e.source_box
        return cls(
            image=analysis.image.numpy(), label=np.array(-1 if analysis.label is None else analysis.label),
            predicted=np.array(analysis.predicted), classes=np.array(analysis.class_names),
            prototype=np.array([e.prototype for e in ev]),
            prototype_class=np.array([e.prototype_class for e in ev]),
            similarity=np.array([e.similarity for e in ev]), weight=np.array([e.weight for e in ev]),
            contribution=np.array([e.contribution for e in ev]), box=np.array([e.box for e in ev]),
            similarity_map=np.stack([e.similarity_map.numpy() for e in ev]),
            source=source, source_box=source_box)

    def to_analysis(self) -> tuple[LocalAnalysis, "_Sources"]:
        """The analysis, and its source crops indexed like a data set (``sources[i][0]``)."""
        evidence = [PrototypeEvidence(
            prototype=int(self.prototype[i]), prototype_class=int(self.prototype_class[i]),
            similarity=float(self.similarity[i]), weight=float(self.weight[i]),
            contribution=float(self.contribution[i]), box=tuple(int(v) for v in self.box[i]),
            similarity_map=torch.from_numpy(self.similarity_map[i]),
            source_image=i if self.source[i].any() else None,
            source_box=tuple(int(v) for v in self.source_box[i]))
            for i in range(len(self.prototype))]
        label = int(self.label)
        analysis = LocalAnalysis(torch.from_numpy(self.image), None if label < 0 else label,
                                 int(self.predicted), [str(c) for c in self.classes], evidence)
        return analysis, _Sources(self.source)

    def save(self, path: Path) -> Path:
        return _save(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> "LocalAnalysisRecord":
        return cls(**_load(path, [f.name for f in fields(cls)]))


class _Sources:
    """The stored source crops, indexed like a data set: ``sources[i] -> (image, None)``."""

    def __init__(self, crops: np.ndarray) -> None:
        self.crops = crops

    def __getitem__(self, i: int) -> tuple[torch.Tensor, None]:
        return torch.from_numpy(self.crops[i]), None
