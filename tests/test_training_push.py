import pytest
import torch
from torch.utils.data import Dataset

from protobench.model import Architecture, ProtoPNet
from protobench.training.push import push_prototypes, push_prototypes_loop


class Tiny(Dataset):
    """Random images of 3 classes, no augmentation."""

    def __init__(self, n=24, size=32, classes=3):
        g = torch.Generator().manual_seed(1)
        self.images = torch.rand(n, 3, size, size, generator=g)
        self.labels = torch.arange(n) % classes
        self.classes = [str(c) for c in range(classes)]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])

    def relevance_mask(self, i):
        return None


def _model(activation="log"):
    return ProtoPNet.build(Architecture(img_size=32, num_classes=3, prototypes_per_class=2,
                                        prototype_depth=16,
                                        prototype_activation_function=activation)).eval()


def test_push_makes_every_prototype_a_latent_patch_of_its_own_class():
    data, model = Tiny(), _model()
    records = push_prototypes(model, data, batch_size=5)  # several batches
    assert len(records) == model.num_prototypes
    z = model.net.conv_features(model.normalize(data.images))  # (N, D, h, w)
    protos = model.net.prototype_vectors[:, :, 0, 0]
    for r in records:
        j = r.prototype
        assert data.labels[r.image] == model.prototype_class[j] == r.image_label
        y, x = r.cell
        torch.testing.assert_close(protos[j], z[r.image, :, y, x])
        # and it is the nearest such patch of its class
        own = z[data.labels == model.prototype_class[j]]
        assert torch.isclose(((own - protos[j].view(1, -1, 1, 1)) ** 2).sum(1).min(), torch.tensor(0.0),
                             atol=1e-5)


@pytest.mark.parametrize("activation", ["log", "linear"])
def test_push_equals_the_per_prototype_loop_of_the_original(activation):
    data, model = Tiny(), _model(activation)
    model.train()
    reference, boxes = push_prototypes_loop(model, data, batch_size=7)
    assert model.training  # the reference changes nothing, not even the mode
    records = push_prototypes(model, data, batch_size=7)
    assert model.training
    torch.testing.assert_close(model.net.prototype_vectors, reference)
    assert [tuple(r.high_activation_box) for r in records] == boxes


def test_push_records_boxes_inside_image():
    data, model = Tiny(), _model()
    for r in push_prototypes(model, data):
        y0, y1, x0, x1 = r.high_activation_box
        assert 0 <= y0 < y1 <= 32 and 0 <= x0 < x1 <= 32
        assert r.to_dict()["cell"] == list(r.cell)
