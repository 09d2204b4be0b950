"""The ResNet18 classifier: loading shipped model files and classifying images."""

import asyncio
import json
from pathlib import Path

import anyio
import pytest
from PIL import Image

from branet_classifier.batching import MicroBatcher
from branet_classifier.classify import (
    ClassifierRegistry,
    ModelFileError,
    ResNet18Classifier,
)
from branet_shared.schemas import Label, Modality
from tests.images import lesion_array
from tests.models import write_classifier


def test_a_shipped_model_classifies_gray_and_colour_images(model_dir: Path) -> None:
    model = ResNet18Classifier.load(model_dir / "ultrasound.json")

    for image in (Image.fromarray(lesion_array()), Image.fromarray(lesion_array()).convert("RGB")):
        result = model.classify(image)
        probs = result.probabilities
        assert probs.benign + probs.malignant == pytest.approx(1.0, abs=1e-9)
        assert result.label == (Label.MALIGNANT if probs.malignant > probs.benign else Label.BENIGN)
        assert result.confidence == max(probs.benign, probs.malignant)
        assert result.model.name == "test-resnet18-ultrasound"


def test_the_same_image_gets_the_same_answer(model_dir: Path) -> None:
    model = ResNet18Classifier.load(model_dir / "ultrasound.json")
    image = Image.fromarray(lesion_array())

    assert model.classify(image).probabilities == model.classify(image).probabilities


def test_preprocess_gives_the_card_input_size(model_dir: Path) -> None:
    model = ResNet18Classifier.load(model_dir / "mammography.json")

    batch = model.preprocess(Image.fromarray(lesion_array(300, 120)))

    assert tuple(batch.shape) == (1, 3, 64, 64)


def test_weights_that_do_not_match_the_card_are_refused(tmp_path: Path) -> None:
    card = write_classifier(tmp_path, "ultrasound")
    weights = tmp_path / "ultrasound.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")

    with pytest.raises(ModelFileError, match="SHA-256"):
        ResNet18Classifier.load(card)


def test_invalid_card_is_refused_with_reason(tmp_path: Path) -> None:
    (tmp_path / "ultrasound.json").write_text(json.dumps({"name": "x"}))

    with pytest.raises(ModelFileError, match="invalid"):
        ResNet18Classifier.load(tmp_path / "ultrasound.json")


def test_registry_says_why_a_modality_is_missing(tmp_path: Path) -> None:
    write_classifier(tmp_path, "ultrasound")

    registry = ClassifierRegistry.load(tmp_path)

    assert set(registry.models) == {Modality.ULTRASOUND}
    assert "mammography.json" in registry.missing[Modality.MAMMOGRAPHY]


def test_heatmap_has_the_size_of_the_classified_image(model_dir: Path) -> None:
    model = ResNet18Classifier.load(model_dir / "ultrasound.json")
    image = Image.fromarray(lesion_array(120, 70))

    result, heatmap = model.explain(image)

    assert heatmap.size == (120, 70)
    assert heatmap.mode == "RGB"
    assert result.probabilities.benign + result.probabilities.malignant == pytest.approx(1.0)
    assert result.probabilities == model.classify(image).probabilities


async def test_concurrent_requests_share_forward_passes_with_the_same_answers(
    model_dir: Path,
) -> None:
    model = ResNet18Classifier.load(model_dir / "ultrasound.json")
    batcher = MicroBatcher(model, max_batch=8, limiter=anyio.CapacityLimiter(1))
    images = [Image.fromarray(lesion_array(seed=seed)) for seed in range(12)]

    together = await asyncio.gather(*(batcher.classify(image) for image in images))

    assert batcher.batches_run < len(images)
    for image, result in zip(images, together, strict=True):
        alone = model.classify(image)
        assert result.label == alone.label
        assert result.probabilities.malignant == pytest.approx(
            alone.probabilities.malignant, abs=1e-5
        )


async def test_a_lone_request_is_not_held_back(model_dir: Path) -> None:
    model = ResNet18Classifier.load(model_dir / "ultrasound.json")
    batcher = MicroBatcher(model, max_batch=8, limiter=anyio.CapacityLimiter(1))

    result = await batcher.classify(Image.fromarray(lesion_array()))

    assert batcher.batches_run == 1
    assert result.model.name == "test-resnet18-ultrasound"
