"""``folder``: any ImageFolder tree, ``root/<class>/<image>``.

Classes are the sorted sub-folder names, images the sorted image files in
each (by extension; other files are ignored). Where the object is is not
known: ``relevance_mask`` returns None and the metrics fall back to the
complement of the high-activation box.

``resolve_split_tree`` maps a split to a tree when ``root`` holds one tree
per split, including ProtoPNet's layout (``train_cropped``,
``test_cropped``; push reads the un-augmented training tree).
"""

from __future__ import annotations

from pathlib import Path

import torch

from protobench.data.base import ImageDataset, check_img_size, to_image_tensor
from protobench.data.imread import is_image_file, read_rgb, resize_square, split_decodable
from protobench.errors import ProtobenchError

# Sub-folders tried, in order, for each split of a root that holds one tree per split.
SPLIT_FOLDERS = {
    "train": ("train", "train_cropped"),
    "push": ("push", "train", "train_cropped"),
    "test": ("test", "test_cropped", "val"),
}


def class_folders(tree: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``tree``."""
    return sorted(p.name for p in tree.iterdir() if p.is_dir() and not p.name.startswith("."))


def resolve_split_tree(root: Path, split: str) -> tuple[Path, list[str]]:
    """(the class tree of ``split`` under ``root``, the classes of all split trees).

    ``split`` "all" is ``root`` itself. Classes are the union over the split
    trees, so that a label means the same class in train and test.
    """
    root = Path(root)
    if not root.is_dir():
        raise ProtobenchError(f"image folder {root} does not exist")
    if split == "all":
        return root, class_folders(root)
    if split not in SPLIT_FOLDERS:
        raise ProtobenchError(f"unknown split {split!r}; choose one of: "
                              f"{', '.join([*SPLIT_FOLDERS, 'all'])}")
    found = [root / name for name in SPLIT_FOLDERS[split] if (root / name).is_dir()]
    if not found:
        tried = ", ".join(str(root / name) for name in SPLIT_FOLDERS[split])
        raise ProtobenchError(f"image folder {root} has no {split!r} tree (tried {tried}); "
                              f"use split 'all' (--split all) to read {root} itself as one class tree")
    trees = {root / n for names in SPLIT_FOLDERS.values() for n in names if (root / n).is_dir()}
    classes = sorted(set().union(*(class_folders(t) for t in trees)))
    return found[0], classes


class FolderDataset(ImageDataset):
    """An ImageFolder tree as (float (3, S, S) in [0, 1], label) pairs.

    Args:
        root: the tree, ``root/<class>/<image>``.
        img_size: output side S; images are resized without keeping the aspect (as ProtoPNet).
        classes: the class list to label with (default: the tree's sorted sub-folders);
            every sub-folder of the tree must be in it.

    ``skipped`` lists the image files that could not be decoded.
    """

    def __init__(self, root: str | Path, img_size: int = 224, *,
                 classes: list[str] | None = None) -> None:
        self.root = Path(root)
        self.img_size = check_img_size(img_size)
        if not self.root.is_dir():
            raise ProtobenchError(f"image folder {self.root} does not exist")
        present = class_folders(self.root)
        if not present:
            raise ProtobenchError(f"image folder {self.root} has no class sub-folders "
                                  f"(expected {self.root}/<class>/<image>)")
        self.classes = list(classes) if classes is not None else present
        unknown = sorted(set(present) - set(self.classes))
        if unknown:
            raise ProtobenchError(f"image folder {self.root} has classes {unknown} "
                                  f"not in the class list")
        files, labels = [], []
        for name in present:
            for path in sorted((self.root / name).iterdir()):
                if path.is_file() and is_image_file(path):
                    files.append(path)
                    labels.append(self.classes.index(name))
        if not files:
            raise ProtobenchError(f"image folder {self.root} holds no image files "
                                  f"(expected {self.root}/<class>/<image>)")
        ok, self.skipped = split_decodable(files, f"folder {self.root}")
        self.paths = [p for p, good in zip(files, ok) if good]
        if not self.paths:
            raise ProtobenchError(f"no image under {self.root} can be decoded")
        self.labels = torch.tensor([y for y, good in zip(labels, ok) if good], dtype=torch.long)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        i = self.index(i)
        rgb = read_rgb(self.paths[i])
        if rgb is None:  # it decoded at construction: the file changed since
            raise ProtobenchError(f"image {self.paths[i]} can no longer be decoded")
        return to_image_tensor(resize_square(rgb, self.img_size)), int(self.labels[i])
