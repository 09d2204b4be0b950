"""Training data, made honest: one sample per distinct image, grouped so that no image has a
twin or a same-patient sibling across a train/test split, with the lesion's box where the data
gives it.

- Near-duplicates are found with a perceptual hash (pHash, 64 bits). Images within
  `NEAR_DUPLICATE_BITS` of each other are one group, which never straddles a split. Copies
  (within `COPY_BITS`) are kept once; a copy filed under the other class too (BUSI has such) is
  label noise, and both are dropped.
- Patients: BUS-UCLM names them in the file name (`<PATIENT>_<NNN>`); mini-MIAS numbers the
  two breasts of a woman consecutively (mdb001/mdb002). A patient's images are one group.
- Lesion boxes: from the `<name>_mask*` files (ultrasound sets; several are one box), or from
  the circle in mini-MIAS's `labels.csv` (whose y axis starts at the bottom).
- Every image is decoded as the service decodes an upload (`read_image`); one the service would
  refuse (corrupt, too large, not PNG or JPEG inside) is left out and listed, not fatal.
"""

import csv
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from branet_shared.errors import BraNetError
from branet_shared.images import bounding_box, validate_image
from branet_shared.schemas import BoundingBox, Label
from branet_training.datasets import LabelledImage, lesion_mask, list_class_folders

log = logging.getLogger(__name__)
NEAR_DUPLICATE_BITS = 8
COPY_BITS = 2


@dataclass(frozen=True)
class Sample:
    item: LabelledImage
    group: str  # split unit: twins and a patient's images share one
    lesion: BoundingBox | None
    # The segmenter's mask of the lesion (`L`, the image's size), where it gave one.
    outline: Image.Image | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> Label:
        return self.item.label

    @property
    def site(self) -> str:
        return self.item.site


@dataclass
class DatasetSummary:
    """What deduplication did, for the report."""

    images: int = 0
    exact_copies_dropped: list[str] = field(default_factory=list)
    conflicting_dropped: list[str] = field(default_factory=list)
    groups: int = 0
    without_lesion_box: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # image: why it was left out


def read_image(path: Path) -> Image.Image:
    """A dataset image decoded and normalised as the service does an upload, in grayscale."""
    return validate_image(path.read_bytes()).image.convert("L")


def mask_box(item: LabelledImage, size: tuple[int, int]) -> BoundingBox | None:
    mask = lesion_mask(item, size)
    return None if mask is None else bounding_box(mask)


def mias_boxes(root: Path) -> dict[str, BoundingBox]:
    """mini-MIAS circles as boxes in top-left image coordinates, one per image.

    An image with several findings keeps the one of its filed class (mdb144: the malignant).
    """
    labels = root / "labels.csv"
    if not labels.exists():
        return {}
    boxes: dict[str, BoundingBox] = {}
    with labels.open() as handle:
        for row in csv.DictReader(handle):
            if not row.get("x") or not row.get("radius"):
                continue
            severity = "malignant" if row["severity"].strip() == "M" else "benign"
            if not (root / severity / f"{row['refnum']}.png").exists():
                continue
            x, y, r = int(row["x"]), 1024 - int(row["y"]), int(row["radius"])
            boxes[row["refnum"]] = BoundingBox(
                x0=max(0, x - r), y0=max(0, y - r), x1=min(1024, x + r), y1=min(1024, y + r)
            )
    return boxes


def patient_of(item: LabelledImage) -> str | None:
    """The patient, where the file name says it; the other sets have one image per case."""
    if item.site == "bus_uclm" and "_" in item.name:
        return item.name.rsplit("_", 1)[0]
    if item.site == "mini_mias" and item.name[3:].isdigit():
        return str((int(item.name[3:]) + 1) // 2)
    return None


class _Groups:
    """Union-find over image indices."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, index: int) -> int:
        while self.parent[index] != index:
            self.parent[index] = self.parent[self.parent[index]]
            index = self.parent[index]
        return index

    def join(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def load_samples(roots: list[Path]) -> tuple[list[Sample], DatasetSummary]:
    items, sizes, hashes = [], [], []
    summary = DatasetSummary()
    for item in (item for root in roots for item in list_class_folders(root)):
        try:
            image = read_image(item.path)
        except BraNetError as exc:
            log.warning("%s/%s left out: %s", item.site, item.name, exc.detail)
            summary.unreadable[f"{item.site}/{item.name}"] = exc.detail
            continue
        items.append(item)
        sizes.append(image.size)
        hashes.append(imagehash.phash(image))
    summary.images = len(items)
    bits = np.array([h.hash.flatten() for h in hashes], dtype=bool)
    distances = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)

    groups = _Groups(len(items))
    dropped: set[int] = set()
    conflicting: set[int] = set()
    for a, b in zip(*np.nonzero(np.triu(distances <= NEAR_DUPLICATE_BITS, k=1)), strict=True):
        groups.join(int(a), int(b))
        if distances[a, b] > COPY_BITS:
            continue
        if items[a].label != items[b].label:
            conflicting |= {int(a), int(b)}
        elif int(a) not in dropped:
            dropped.add(int(b))
    by_patient: dict[str, int] = {}
    for index, item in enumerate(items):
        patient = patient_of(item)
        if patient is not None:
            groups.join(index, by_patient.setdefault(f"{item.site}/{patient}", index))

    members: dict[int, list[int]] = defaultdict(list)
    for index in range(len(items)):
        members[groups.find(index)].append(index)
    mias = {root.name: mias_boxes(root) for root in roots}
    samples = []
    summary.conflicting_dropped = [f"{items[i].site}/{items[i].name}" for i in sorted(conflicting)]
    dropped -= conflicting
    summary.exact_copies_dropped = [f"{items[i].site}/{items[i].name}" for i in sorted(dropped)]
    for root_index, indices in members.items():
        for index in indices:
            if index in dropped or index in conflicting:
                continue
            item = items[index]
            lesion = mask_box(item, sizes[index]) or mias[item.site].get(item.name)
            if lesion is None:
                summary.without_lesion_box.append(f"{item.site}/{item.name}")
            # Named after the group's root image: twins at two sites share the name.
            samples.append(Sample(item, f"{items[root_index].site}:{root_index}", lesion))
    summary.groups = len({s.group for s in samples})
    samples.sort(key=lambda s: (s.site, s.label.value, s.item.name))
    log.info(
        "%d images: %d exact copies and %d conflicting dropped, %d samples in %d groups",
        summary.images,
        len(summary.exact_copies_dropped),
        len(summary.conflicting_dropped),
        len(samples),
        summary.groups,
    )
    return samples, summary
