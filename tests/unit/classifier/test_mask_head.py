"""The lesion outline as a second training target: it must follow the image through
augmentation, count only where an outline exists, and leave a plain ResNet18 to ship."""

import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from branet_classifier.classify import ResNet18Classifier, build_resnet18
from branet_classifier.data import load_samples
from branet_classifier.mask_head import UNKNOWN, mask_loss
from branet_classifier.pipeline import main as train_main
from branet_classifier.training import (
    ImageCache,
    LesionDataset,
    TrainConfig,
    augment,
    augment_with_mask,
)
from tests.images import write_class_folders


@pytest.fixture
def off_centre_square() -> torch.Tensor:
    """A bright square in the top-left quarter: any flip or turn moves it far."""
    square = torch.zeros(1, 64, 64)
    square[:, 6:26, 10:30] = 1.0
    return square


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


def test_the_outline_moves_with_the_image(off_centre_square: torch.Tensor) -> None:
    for seed in range(20):
        pixels, outline = augment_with_mask(
            off_centre_square, off_centre_square.clone(), random.Random(seed)
        )

        assert correlation(pixels, outline) > 0.7, seed


def test_learning_outlines_does_not_change_the_images_the_classifier_sees(
    off_centre_square: torch.Tensor,
) -> None:
    for seed in range(5):
        with_outline, _ = augment_with_mask(
            off_centre_square, off_centre_square.clone(), random.Random(seed)
        )

        assert torch.equal(with_outline, augment(off_centre_square, random.Random(seed)))


def test_images_without_an_outline_add_no_outline_loss() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 8, 8)
    outlined = (torch.rand(1, 1, 32, 32) > 0.5).float()
    unknown = torch.full((1, 1, 32, 32), UNKNOWN)

    mixed = mask_loss(logits, torch.cat([outlined, unknown]))

    assert mixed == pytest.approx(float(mask_loss(logits[:1], outlined)))
    assert float(mask_loss(logits, torch.cat([unknown, unknown]))) == 0.0


def test_a_right_outline_costs_less_than_a_wrong_one() -> None:
    target = torch.zeros(1, 1, 32, 32)
    target[..., 8:24, 8:24] = 1.0
    right = (torch.nn.functional.avg_pool2d(target, 4) * 2 - 1) * 8  # logits: ±8

    assert mask_loss(right, target) < 0.05
    assert mask_loss(-right, target) > 1.0


def test_training_samples_carry_their_outline_and_test_samples_none(tmp_path: Path) -> None:
    samples, _ = load_samples([write_class_folders(tmp_path / "site_a", per_class=2)])
    config = TrainConfig(input_size=32, mask_weight=1.0, augment=False, whole_image_rate=0.0)
    images = ImageCache()

    _, _, outline = LesionDataset(samples, images, config, train=True)[0]
    _, _, none = LesionDataset(samples, images, config, train=False)[0]

    assert outline.shape == (1, 32, 32)
    assert 0.2 < float(outline.mean()) < 0.9  # a lesion crop with some context around
    assert bool((none == UNKNOWN).all())


def test_a_model_trained_with_outlines_ships_as_a_plain_resnet18(tmp_path: Path) -> None:
    dataset = write_class_folders(tmp_path / "site_a")

    train_main(
        [
            "--modality", "ultrasound", "--data", str(dataset), "--out", str(tmp_path / "report"),
            "--work-dir", str(tmp_path / "work"), "--cv", "2", "--epochs", "1", "--size", "32",
            "--batch-size", "4", "--mask-weight", "1", "--ship", str(tmp_path / "models"),
        ]
    )  # fmt: skip

    shipped = load_file(tmp_path / "models" / "ultrasound.safetensors")
    assert set(shipped) == {k for k in build_resnet18().state_dict() if "num_batches" not in k}
    model = ResNet18Classifier.load(tmp_path / "models" / "ultrasound.json")
    assert model.card.training["mask_weight"] == 1.0
