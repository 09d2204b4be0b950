"""Class-folder datasets as they lie in `../shared/data/`: `<class>/<name>.png`, with the
lesion mask beside each image as `<class>/<name>_mask.png` where the set has masks."""

from dataclasses import dataclass
from pathlib import Path

from branet_shared.schemas import Label

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Files beside the images that are not images of their own (BrEaST: `caseNNN_other1.png`).
ANNOTATION_MARKERS = ("_mask", "_other")


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: Label
    mask: Path | None
    site: str  # the dataset folder's name: one hospital per folder

    @property
    def name(self) -> str:
        return self.path.stem


def _is_annotation(path: Path) -> bool:
    return any(marker in path.stem for marker in ANNOTATION_MARKERS)


def list_class_folders(root: Path) -> list[LabelledImage]:
    """Every image under `root/benign` and `root/malignant`, sorted, with its mask if any."""
    items = []
    for label in Label:
        folder = root / label.value
        if not folder.is_dir():
            raise FileNotFoundError(f"{root} has no {label.value}/ folder")
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or _is_annotation(path):
                continue
            mask = path.with_name(f"{path.stem}_mask{path.suffix}")
            items.append(LabelledImage(path, label, mask if mask.exists() else None, root.name))
    return items


def list_images(root: Path) -> list[Path]:
    """Every image under `root`, at any depth, labelled or not, without masks; sorted."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not _is_annotation(path)
    )
