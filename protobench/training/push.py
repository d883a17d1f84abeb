"""Push: project every prototype onto its nearest latent training patch.

ProtoPNet (Chen et al. 2019, section 2.2, "projection of prototypes"):
prototype p_j of class c becomes the latent patch z of a class-c training
image that is closest to it. The original loops over prototypes in Python;
here one pass over the push set serves all prototypes at once: for each batch
the (B, P, h, w) distances are masked to the images of each prototype's class,
reduced to one candidate per prototype, and kept where better than the best
so far.

Push also records, per prototype, the source image, feature cell, receptive
field box, and the high-activation box (95th percentile of the bicubically
upsampled similarity map of the prototype on its source image). As in the
original, that map is the one the search saw, i.e. of the prototype just
before it was projected; its peak is the chosen patch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from protobench.model.protopnet import ProtoPNet
from protobench.model.receptive_field import high_activation_box, rf_box


@dataclass
class PushRecord:
    """Where prototype ``prototype`` came from."""

    prototype: int
    prototype_class: int
    image: int               # index in the push set
    image_label: int
    cell: tuple[int, int]    # (y, x) of the patch's top-left cell
    distance: float          # before projection
    rf_box: tuple[int, int, int, int]               # (y0, y1, x0, x1)
    high_activation_box: tuple[int, int, int, int]  # (y0, y1, x0, x1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cell"], d["rf_box"] = list(self.cell), list(self.rf_box)
        d["high_activation_box"] = list(self.high_activation_box)
        return d


@torch.no_grad()
def push_prototypes(model: ProtoPNet, push_set: Dataset, batch_size: int = 100,
                    class_specific: bool = True) -> list[PushRecord]:
    """Replace every prototype by its nearest latent patch; return the records.

    ``push_set`` yields (image in [0, 1], label) without augmentation.
    """
    ppnet = model.ppnet
    was_training = ppnet.training
    ppnet.eval()
    device = model.device
    num_p = ppnet.num_prototypes
    _, d, ph, pw = ppnet.prototype_shape
    proto_class = ppnet.prototype_class.to(device)

    best = torch.full((num_p,), float("inf"), device=device)
    best_patch = torch.zeros(num_p, d, ph, pw, device=device)
    best_where = torch.zeros(num_p, 3, dtype=torch.long, device=device)  # image, y, x
    best_map: torch.Tensor | None = None  # (P, h, w) distances on the source image
    labels_all: list[torch.Tensor] = []
    offset = 0
    for images, labels in DataLoader(push_set, batch_size=batch_size, shuffle=False):
        images, labels = images.to(device), labels.to(device)
        labels_all.append(labels)
        z, distances = ppnet.push_forward(model.normalize(images))
        b, _, h, w = distances.shape
        if class_specific:  # only images of the prototype's own class are candidates
            other = labels.view(b, 1) != proto_class.view(1, num_p)
            distances = distances.masked_fill(other.view(b, num_p, 1, 1), float("inf"))
        flat = distances.permute(1, 0, 2, 3).reshape(num_p, -1)  # (P, B*h*w)
        batch_best, arg = flat.min(dim=1)
        better = batch_best < best
        if better.any():
            img, rest = arg // (h * w), arg % (h * w)
            ys, xs = rest // w, rest % w
            # gather the (D, ph, pw) patch at (img, ys, xs) for every prototype
            patches = z.unfold(2, ph, 1).unfold(3, pw, 1)  # (B, D, h, w, ph, pw)
            chosen = patches[img, :, ys, xs]  # (P, D, ph, pw)
            maps = distances[img, torch.arange(num_p, device=device)]  # (P, h, w)
            best_map = maps.clone() if best_map is None else torch.where(
                better.view(-1, 1, 1), maps, best_map)
            best = torch.where(better, batch_best, best)
            best_patch[better] = chosen[better]
            best_where[better] = torch.stack([img + offset, ys, xs], dim=1)[better]
        offset += b

    found = torch.isfinite(best)
    ppnet.prototype_vectors.data[found] = best_patch[found]
    labels_all_t = torch.cat(labels_all)
    records = _records(model, best, best_where, best_map, found, labels_all_t)
    ppnet.train(was_training)
    return records


def _records(model: ProtoPNet, best: torch.Tensor, where: torch.Tensor, maps: torch.Tensor | None,
             found: torch.Tensor, labels: torch.Tensor) -> list[PushRecord]:
    """Push records; the high-activation boxes of all prototypes in one batched call."""
    ppnet = model.ppnet
    img_size = model.img_size
    sources = where[:, 0].tolist()
    proto_ids = found.nonzero().flatten().tolist()
    if not proto_ids:
        return []
    boxes = high_activation_box(ppnet.distance_2_similarity(maps[proto_ids]), img_size).tolist()
    records = []
    for j, box in zip(proto_ids, boxes):
        _, y, x = where[j].tolist()
        records.append(PushRecord(
            prototype=j, prototype_class=int(ppnet.prototype_class[j]), image=sources[j],
            image_label=int(labels[sources[j]]), cell=(y, x), distance=float(best[j]),
            rf_box=rf_box(y, x, img_size, ppnet.proto_layer_rf_info),
            high_activation_box=tuple(box)))
    return records


@torch.no_grad()
def push_prototypes_loop(model: ProtoPNet, push_set: Dataset, batch_size: int = 100
                         ) -> tuple[torch.Tensor, list[tuple[int, int, int, int]]]:
    """Reference: the original's per-prototype Python loop (class-specific).

    For every batch and every prototype it looks among the images of the
    prototype's class for the nearest patch and, when that is the best so far,
    takes the patch and computes its high-activation box with OpenCV and
    NumPy, as ``push.py`` of the original does. Returns the pushed prototype
    vectors (P, D, ph, pw) and their boxes without changing the model. Kept
    for tests and ``benchmarks/push_speed.py`` only.
    """
    import cv2
    import numpy as np

    ppnet = model.ppnet.eval()
    num_p = ppnet.num_prototypes
    _, d, ph, pw = ppnet.prototype_shape
    size = model.img_size
    best = [float("inf")] * num_p
    boxes: list[tuple[int, int, int, int]] = [(0, size, 0, size)] * num_p
    pushed = ppnet.prototype_vectors.detach().clone()
    for images, labels in DataLoader(push_set, batch_size=batch_size, shuffle=False):
        z, distances = ppnet.push_forward(model.normalize(images.to(model.device)))
        dist_np = distances.cpu().numpy()
        for j in range(num_p):
            own = np.nonzero(labels.numpy() == int(ppnet.prototype_class[j]))[0]
            if own.size == 0:
                continue
            dist_j = dist_np[own, j]
            batch_min = float(dist_j.min())
            if batch_min < best[j]:
                best[j] = batch_min
                k, y, x = np.unravel_index(np.argmin(dist_j), dist_j.shape)
                pushed[j] = z[own[k], :, y:y + ph, x:x + pw]
                act = np.log((dist_j[k] + 1) / (dist_j[k] + ppnet.epsilon))
                up = cv2.resize(act, dsize=(size, size), interpolation=cv2.INTER_CUBIC)
                mask = up >= np.percentile(up, 95)
                rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
                boxes[j] = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    return pushed, boxes
