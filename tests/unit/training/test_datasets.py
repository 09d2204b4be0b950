"""Class-folder datasets in the layouts hospitals hand over: every image found, every mask read."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from branet_shared.schemas import Label
from branet_training.datasets import lesion_mask, list_class_folders


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    save(root / "BENIGN" / "a.png", np.full((40, 50), 120, np.uint8))
    save(root / "Malignant" / "b.jpeg", np.full((40, 50), 90, np.uint8))
    return root


def blob(y0: int, y1: int, x0: int, x1: int, on: int = 255) -> np.ndarray:
    pixels = np.zeros((40, 50), np.uint8)
    pixels[y0:y1, x0:x1] = on
    return pixels


def test_class_folders_are_found_in_any_case(site: Path) -> None:
    items = list_class_folders(site)

    assert [(i.name, i.label) for i in items] == [("a", Label.BENIGN), ("b", Label.MALIGNANT)]
    assert all(i.masks == () for i in items)


def test_a_missing_class_folder_names_what_is_there(site: Path) -> None:
    (site / "Malignant").rename(site / "cancer")

    with pytest.raises(FileNotFoundError, match=r"no malignant/ folder \(it has: BENIGN, cancer\)"):
        list_class_folders(site)


def test_several_masks_of_any_scale_are_one_lesion(site: Path) -> None:
    save(site / "BENIGN" / "a_mask.png", blob(5, 10, 5, 10))  # 0/255
    save(site / "BENIGN" / "a_mask_1.png", blob(20, 30, 30, 40, on=1))  # 0/1
    save(site / "BENIGN" / "ab_mask.png", blob(0, 40, 0, 50))  # another image's

    item = list_class_folders(site)[0]
    mask = lesion_mask(item, (50, 40))

    assert [p.name for p in item.masks] == ["a_mask.png", "a_mask_1.png"]
    assert mask is not None
    assert np.array_equal(mask, (blob(5, 10, 5, 10) > 0) | (blob(20, 30, 30, 40) > 0))


def test_a_mask_of_another_size_is_ignored(site: Path) -> None:
    save(site / "BENIGN" / "a_mask.png", np.full((20, 25), 255, np.uint8))

    assert lesion_mask(list_class_folders(site)[0], (50, 40)) is None


def test_files_other_than_png_and_jpeg_are_skipped(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Image.new("L", (8, 8)).save(site / "BENIGN" / "c.bmp")
    (site / "BENIGN" / "notes.txt").write_text("x")

    items = list_class_folders(site)

    assert [i.name for i in items] == ["a", "b"]
    assert "2 files are not PNG or JPEG, skipped: c.bmp, notes.txt" in caplog.text
