"""Push: project every prototype onto its nearest latent training patch.

ProtoPNet (Chen et al. 2019, section 2.2, "projection of prototypes"):
prototype p_j of class c becomes the latent patch z of a class-c training
image that is closest to it. A ProtoPool prototype shared by several
classes searches the images of all of them, as ProtoPool's push does. The
original loops over prototypes in Python for every batch; here (:class:`NearestPatches`) each batch's (B, P, h, w)
distances are reduced to the nearest cell of every (image, prototype), masked
to the images of each prototype's class, reduced to one candidate per
prototype, and kept where better than the best so far, all prototypes at
once. :class:`OriginalLoop` transcribes the original's loop as the reference.

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

from protobench.model.modes import frozen
from protobench.model.classifier import PrototypeClassifier
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


class NearestPatches:
    """The search of push, all prototypes at once: feed it every batch's
    ``push_forward`` output with :meth:`update`, then read :meth:`records`."""

    def __init__(self, model: PrototypeClassifier, class_specific: bool = True) -> None:
        net = self.net = model.net
        self.model, self.class_specific = model, class_specific
        device = model.device
        num_p = net.num_prototypes
        _, d, ph, pw = net.prototype_shape
        # (P, C): the classes each prototype serves (one in ProtoPNet, any number in ProtoPool)
        self.relation = net.prototype_class_identity.bool().to(device)
        self.best = torch.full((num_p,), float("inf"), device=device)
        self.patch = torch.zeros(num_p, d, ph, pw, device=device)
        self.where = torch.zeros(num_p, 3, dtype=torch.long, device=device)  # image, y, x
        self.map: torch.Tensor | None = None  # (P, h, w) distances on the source image
        self.labels: list[torch.Tensor] = []
        self.offset = 0

    def update(self, z: torch.Tensor | None, distances: torch.Tensor, labels: torch.Tensor) -> None:
        """One batch: latents z (B, D, h', w'), distances (B, P, h, w), labels (B,).
        Without z, the search only records where each prototype's nearest patch is."""
        b, num_p, h, w = distances.shape
        _, _, ph, pw = self.net.prototype_shape
        self.labels.append(labels)
        if self.map is None:
            self.map = torch.zeros(num_p, h, w, device=distances.device)
        # nearest cell of every (image, prototype), then nearest image per prototype
        cell_min = distances.flatten(2).amin(dim=2)  # (B, P); amin: no indices, much faster
        if self.class_specific:  # only images of a class the prototype serves are candidates
            cell_min = cell_min.masked_fill(~self.relation[:, labels].t(), float("inf"))
        batch_best, img = cell_min.min(dim=0)  # (P,)
        ids = (batch_best < self.best).nonzero().flatten()
        if ids.numel():
            img = img[ids]
            cell = distances[img, ids].flatten(1).argmin(dim=1)  # the cells, for these only
            ys, xs = cell // w, cell % w
            if z is not None:
                patches = z.unfold(2, ph, 1).unfold(3, pw, 1)  # (B, D, h, w, ph, pw), a view
                self.patch[ids] = patches[img, :, ys, xs]
            self.map[ids] = distances[img, ids]
            self.best[ids] = batch_best[ids]
            self.where[ids] = torch.stack([img + self.offset, ys, xs], dim=1)
        self.offset += b

    @property
    def found(self) -> torch.Tensor:
        """(P,) bool: prototypes that met an image of their class."""
        return torch.isfinite(self.best)

    def records(self) -> list[PushRecord]:
        """Push records of the prototypes found; the high-activation boxes in one batched call."""
        proto_ids = self.found.nonzero().flatten().tolist()
        if not proto_ids:
            return []
        net, img_size = self.net, self.model.img_size
        similarity = net.distance_2_similarity(self.map[proto_ids])
        boxes = high_activation_box(similarity, img_size).tolist()
        labels = torch.cat(self.labels).tolist()
        where, best = self.where.tolist(), self.best.tolist()
        classes = net.prototype_class.tolist()
        records = []
        for j, box in zip(proto_ids, boxes):
            image, y, x = where[j]
            records.append(PushRecord(
                prototype=j, prototype_class=classes[j], image=image, image_label=labels[image],
                cell=(y, x), distance=best[j], rf_box=rf_box(y, x, img_size, net.proto_layer_rf_info),
                high_activation_box=tuple(box)))
        return records


@torch.no_grad()
def latent_batches(model: PrototypeClassifier, push_set: Dataset, batch_size: int = 100):
    """(z, distances, labels) of every batch of ``push_set``: one ``push_forward`` each."""
    for images, labels in DataLoader(push_set, batch_size=batch_size, shuffle=False):
        images, labels = images.to(model.device), labels.to(model.device)
        z, distances = model.net.push_forward(model.normalize(images))
        yield z, distances, labels


@torch.no_grad()
def push_prototypes(model: PrototypeClassifier, push_set: Dataset, batch_size: int = 100,
                    class_specific: bool = True) -> list[PushRecord]:
    """Replace every prototype by its nearest latent patch; return the records.

    ``push_set`` yields (image in [0, 1], label) without augmentation.
    """
    net = model.net
    with frozen(net):
        search = NearestPatches(model, class_specific)
        for z, distances, labels in latent_batches(model, push_set, batch_size):
            search.update(z, distances, labels)
        net.prototype_vectors.data[search.found] = search.patch[search.found]
        return search.records()


class OriginalLoop:
    """Reference: the original's per-prototype Python loop (class-specific).

    :meth:`update` transcribes ``update_prototypes_on_batch`` of the original
    ``push.py``, without saving images: the batch's latents and distances are
    copied to NumPy and its images indexed by class; then for every
    prototype, its class's distances are taken (``proto_dist_[class_images][:, j]``,
    as written there), and when their minimum beats the best so far, the
    patch is copied and the receptive field and the high-activation box
    (OpenCV ``INTER_CUBIC`` upsampling, 95th percentile,
    ``find_high_activation_crop``) are computed. Kept for tests and
    ``research/push_speed.py`` only.
    """

    def __init__(self, model: PrototypeClassifier) -> None:
        import numpy as np

        self.model, self.net = model, model.net
        num_p = self.net.num_prototypes
        size = model.img_size
        self.global_min = np.full(num_p, np.inf)
        # (the original starts from zeros; a prototype without images of its class keeps its vector here)
        self.global_patches = self.net.prototype_vectors.detach().cpu().numpy().astype(np.float64)
        self.rf_boxes = np.full((num_p, 6), -1)
        self.boxes: list[tuple[int, int, int, int]] = [(0, size, 0, size)] * num_p
        self.offset = 0

    def update(self, z_t: torch.Tensor, dist_t: torch.Tensor, labels: torch.Tensor) -> None:
        import cv2
        import numpy as np

        net, size = self.net, self.model.img_size
        _, _, ph, pw = net.prototype_shape
        z = np.copy(z_t.cpu().numpy())
        dist = np.copy(dist_t.cpu().numpy())
        # the original's labels and prototype_class_identity are CPU tensors
        labels, identity = labels.cpu(), net.prototype_class_identity.cpu()
        max_dist = float(np.prod(net.prototype_shape[1:]))
        class_images: dict[int, list[int]] = {c: [] for c in range(net.num_classes)}
        for i, y in enumerate(labels):
            class_images[y.item()].append(i)
        for j in range(net.num_prototypes):
            target = torch.argmax(identity[j]).item()
            if not class_images[target]:
                continue
            dist_j = dist[class_images[target]][:, j, :, :]
            batch_min = np.amin(dist_j)
            if batch_min < self.global_min[j]:
                k, y, x = np.unravel_index(np.argmin(dist_j, axis=None), dist_j.shape)
                k = class_images[target][k]
                self.global_min[j] = batch_min
                self.global_patches[j] = z[k, :, y:y + ph, x:x + pw]
                self.rf_boxes[j, :5] = (k + self.offset, *rf_box(int(y), int(x), size, net.proto_layer_rf_info))
                self.rf_boxes[j, 5] = labels[k].item()
                if net.prototype_activation_function == "log":
                    act = np.log((dist[k, j] + 1) / (dist[k, j] + net.epsilon))
                else:  # "linear"
                    act = max_dist - dist[k, j]
                up = cv2.resize(act, dsize=(size, size), interpolation=cv2.INTER_CUBIC)
                self.boxes[j] = _find_high_activation_crop(up)
        self.offset += len(labels)

    def pushed(self) -> torch.Tensor:
        """The pushed prototype vectors (P, D, ph, pw)."""
        return torch.tensor(self.global_patches, dtype=torch.float32, device=self.model.device)


@torch.no_grad()
def push_prototypes_loop(model: PrototypeClassifier, push_set: Dataset, batch_size: int = 100
                         ) -> tuple[torch.Tensor, list[tuple[int, int, int, int]]]:
    """The original's push (:class:`OriginalLoop`): the pushed prototype vectors
    and their high-activation boxes, without changing the model."""
    with frozen(model.net):
        loop = OriginalLoop(model)
        for z, distances, labels in latent_batches(model, push_set, batch_size):
            loop.update(z, distances, labels)
        return loop.pushed(), loop.boxes


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
