"""Class-folder datasets as they lie in `../shared/data/`, and as other hospitals' sets tend to:
`<class>/<name>.png|jpg|jpeg`, the class folder named `benign` or `malignant` in any case,
with the lesion's mask(s) beside each image as `<name>_mask*.png|jpg|jpeg` where the set has
masks (BUSI as published files a second lesion as `<name>_mask_1.png`)."""

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from branet_shared.schemas import Label

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MASK_MARKER = "_mask"
# Files beside the images that are not images of their own (BrEaST: `caseNNN_other1.png`).
ANNOTATION_MARKERS = (MASK_MARKER, "_other")


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: Label
    masks: tuple[Path, ...]  # the lesion's outline(s); none: the set does not say where it is
    site: str  # the dataset folder's name: one hospital per folder

    @property
    def name(self) -> str:
        return self.path.stem


def _is_annotation(path: Path) -> bool:
    return any(marker in path.stem for marker in ANNOTATION_MARKERS)


def _class_folders(root: Path, label: Label) -> list[Path]:
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    matching = [p for p in folders if p.name.lower() == label.value]
    if not matching:
        found = ", ".join(p.name for p in folders) or "no folders"
        raise FileNotFoundError(f"{root} has no {label.value}/ folder (it has: {found})")
    return matching


def _masks_by_image(folder: Path) -> dict[str, list[Path]]:
    masks: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and MASK_MARKER in path.stem:
            masks[path.stem[: path.stem.index(MASK_MARKER)]].append(path)
    return masks


def list_class_folders(root: Path) -> list[LabelledImage]:
    """Every image under `root/benign` and `root/malignant`, sorted, with its masks if any."""
    items, skipped = [], []
    for label in Label:
        for folder in _class_folders(root, label):
            masks = _masks_by_image(folder)
            for path in sorted(folder.iterdir()):
                if path.name.startswith(".") or not path.is_file():
                    continue
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    skipped.append(path.name)
                elif not _is_annotation(path):
                    items.append(LabelledImage(path, label, tuple(masks[path.stem]), root.name))
    if skipped:
        # The service takes PNG and JPEG only; a model is measured on what it can be sent.
        examples = ", ".join(skipped[:3])
        log.warning("%s: %d files are not PNG or JPEG, skipped: %s", root, len(skipped), examples)
    return items


def lesion_mask(item: LabelledImage, size: tuple[int, int]) -> np.ndarray | None:
    """The union of the item's masks as a boolean height × width array; None when it has no
    mask, they are empty, or one is not the image's `size` (width, height).

    Each mask is cut at half its own maximum, so that 0/1, 0/255 and JPEG-noisy masks all read.
    """
    union = np.zeros((size[1], size[0]), dtype=bool)
    for path in item.masks:
        with Image.open(path) as mask:
            if mask.size != size:
                log.warning("%s is %s pixels, its image %s: mask ignored", path, mask.size, size)
                return None
            values = np.asarray(mask.convert("L"))
        if values.max() > 0:
            union |= values > values.max() / 2
    return union if union.any() else None


def list_images(root: Path) -> list[Path]:
    """Every image under `root`, at any depth, labelled or not, without masks; sorted."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not _is_annotation(path)
    )
