"""The segmenter's training data: every ultrasound image with a lesion mask, deduplicated and
grouped as the classifier's are (no twin or patient across a split), and images without a
lesion (BUSI's normals), which teach automatic mode to say that there is none."""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from branet_shared.errors import BraNetError
from branet_shared.schemas import Label
from branet_training.classifier.data import load_samples, read_image
from branet_training.datasets import LabelledImage, lesion_mask, list_images

log = logging.getLogger(__name__)
NORMAL = "normal"


@dataclass(frozen=True)
class MaskedImage:
    """One training image: where it is, its lesion mask files (none: no lesion), its site (the
    hospital: a normals folder belongs to the site it names) and its split group."""

    path: Path
    masks: tuple[Path, ...]
    site: str
    group: str
    kind: str  # benign, malignant or normal

    @property
    def name(self) -> str:
        return f"{self.site}/{self.path.stem}"

    def image_and_mask(self) -> tuple[Image.Image, npt.NDArray[np.bool_]]:
        """The image decoded as the service decodes an upload, and its mask (all false for
        an image without a lesion)."""
        image = read_image(self.path)
        if not self.masks:
            return image, np.zeros((image.height, image.width), dtype=bool)
        item = LabelledImage(self.path, Label(self.kind), self.masks, self.site)
        mask = lesion_mask(item, image.size)
        if mask is None:
            raise ValueError(f"{self.name}: its mask is empty or not the image's size")
        return image, mask


def site_of_normals(folder: Path, sites: list[str]) -> str:
    """The site a folder of normals comes from: the one whose name begins its own
    (`busi_normal_256` is BUSI's), else the folder's name."""
    return next((site for site in sites if folder.name.startswith(site)), folder.name)


def load_masked_images(lesions: list[Path], normals: list[Path]) -> list[MaskedImage]:
    """Every masked image of the class-folder datasets `lesions`, and every image under the
    `normals` folders as one without a lesion."""
    samples, _ = load_samples(lesions)
    images = [
        MaskedImage(s.item.path, s.item.masks, s.site, s.group, s.label.value)
        for s in samples
        if s.item.masks and s.lesion is not None
    ]
    sites = sorted({image.site for image in images})
    for folder in normals:
        site = site_of_normals(folder, sites)
        for path in list_images(folder):
            try:
                read_image(path)
            except BraNetError as exc:
                log.warning("%s left out: %s", path, exc.detail)
                continue
            images.append(MaskedImage(path, (), site, f"{site}:normal:{path.stem}", NORMAL))
    log.info(
        "%d images: %d with a lesion, %d without",
        len(images),
        sum(1 for image in images if image.masks),
        sum(1 for image in images if not image.masks),
    )
    return images
