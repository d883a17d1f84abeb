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
        if best_map is None:
            best_map = torch.zeros(num_p, h, w, device=device)
        # nearest cell of every (image, prototype), then nearest image per prototype
        cell_min, cell_arg = distances.flatten(2).min(dim=2)  # (B, P)
        if class_specific:  # only images of the prototype's own class are candidates
            cell_min = cell_min.masked_fill(labels.view(b, 1) != proto_class.view(1, num_p), float("inf"))
        batch_best, img = cell_min.min(dim=0)  # (P,)
        ids = (batch_best < best).nonzero().flatten()
        if ids.numel():
            img = img[ids]
            cell = cell_arg[img, ids]
            ys, xs = cell // w, cell % w
            patches = z.unfold(2, ph, 1).unfold(3, pw, 1)  # (B, D, h, w, ph, pw), a view
            best_patch[ids] = patches[img, :, ys, xs]
            best_map[ids] = distances[img, ids]
            best[ids] = batch_best[ids]
            best_where[ids] = torch.stack([img + offset, ys, xs], dim=1)
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

    A transcription of ``update_prototypes_on_batch`` in the original
    ``push.py``, without saving images: per batch, the latent maps and
    distances are copied to NumPy and the images indexed by class; then for
    every prototype, its class's distances are taken
    (``proto_dist_[class_images][:, j]``, as written there), and when their
    minimum beats the best so far, the patch is copied and the receptive
    field and high-activation box (OpenCV ``INTER_CUBIC`` upsampling, 95th
    percentile, ``find_high_activation_crop``) are computed. Returns the
    pushed prototype vectors (P, D, ph, pw) and their boxes without changing
    the model. Kept for tests and ``benchmarks/push_speed.py`` only.
    """
    import cv2
    import numpy as np

    ppnet = model.ppnet.eval()
    num_p = ppnet.num_prototypes
    _, d, ph, pw = ppnet.prototype_shape
    size = model.img_size
    global_min = np.full(num_p, np.inf)
    # (the original starts from zeros; a prototype without images of its class keeps its vector here)
    global_patches = ppnet.prototype_vectors.detach().cpu().numpy().astype(np.float64)
    rf_boxes = np.full((num_p, 6), -1)
    boxes: list[tuple[int, int, int, int]] = [(0, size, 0, size)] * num_p
    for images, labels in DataLoader(push_set, batch_size=batch_size, shuffle=False):
        z_t, dist_t = ppnet.push_forward(model.normalize(images.to(model.device)))
        z = np.copy(z_t.cpu().numpy())
        dist = np.copy(dist_t.cpu().numpy())
        class_images: dict[int, list[int]] = {c: [] for c in range(ppnet.num_classes)}
        for i, y in enumerate(labels):
            class_images[y.item()].append(i)
        for j in range(num_p):
            target = torch.argmax(ppnet.prototype_class_identity[j]).item()
            if not class_images[target]:
                continue
            dist_j = dist[class_images[target]][:, j, :, :]
            batch_min = np.amin(dist_j)
            if batch_min < global_min[j]:
                k, y, x = np.unravel_index(np.argmin(dist_j, axis=None), dist_j.shape)
                k = class_images[target][k]
                global_min[j] = batch_min
                global_patches[j] = z[k, :, y:y + ph, x:x + pw]
                rf_boxes[j, :5] = (k, *rf_box(int(y), int(x), size, ppnet.proto_layer_rf_info))
                rf_boxes[j, 5] = labels[k].item()
                act = np.log((dist[k, j] + 1) / (dist[k, j] + ppnet.epsilon))
                up = cv2.resize(act, dsize=(size, size), interpolation=cv2.INTER_CUBIC)
                boxes[j] = _find_high_activation_crop(up)
    pushed = torch.tensor(global_patches, dtype=torch.float32, device=model.device)
    return pushed, boxes


def _find_high_activation_crop(activation_map, percentile: float = 95) -> tuple[int, int, int, int]:
    """``helpers.find_high_activation_crop`` of the original, as written there."""
    import numpy as np

    threshold = np.percentile(activation_map, percentile)
    mask = np.ones(activation_map.shape)
    mask[activation_map < threshold] = 0
    lower_y = upper_y = lower_x = upper_x = 0
    for i in range(mask.shape[0]):
        if np.amax(mask[i]) > 0.5:
            lower_y = i
            break
    for i in reversed(range(mask.shape[0])):
        if np.amax(mask[i]) > 0.5:
            upper_y = i
            break
    for j in range(mask.shape[1]):
        if np.amax(mask[:, j]) > 0.5:
            lower_x = j
            break
    for j in reversed(range(mask.shape[1])):
        if np.amax(mask[:, j]) > 0.5:
            upper_x = j
            break
    return lower_y, upper_y + 1, lower_x, upper_x + 1
