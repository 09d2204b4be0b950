"""The ResNet18 classifier: loading shipped model files and classifying images."""

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from PIL import Image

from branet_classifier.app import classifier_tasks
from branet_classifier.batching import MicroBatcher
from branet_classifier.classify import ResNet18Classifier
from branet_classifier.settings import ClassifierSettings
from branet_shared.errors import ModelFileError
from branet_shared.schemas import BoundingBox, Label, Modality
from tests.images import lesion_array
from tests.models import loaded_runtime, write_classifier


@pytest.fixture
def inference() -> Iterator[Executor]:
    with ThreadPoolExecutor(1) as executor:
        yield executor


def test_a_shipped_model_classifies_gray_and_colour_images(model_dir: Path) -> None:
    model = ResNet18Classifier.load(model_dir / "ultrasound.json")

    for image in (Image.fromarray(lesion_array()), Image.fromarray(lesion_array()).convert("RGB")):
        result = model.classify(image)
        probs = result.probabilities
        assert probs.benign + probs.malignant == pytest.approx(1.0, abs=1e-9)
        assert result.label == (Label.MALIGNANT if probs.malignant > probs.benign else Label.BENIGN)
        assert result.confidence == max(probs.benign, probs.malignant)
        assert result.decision_threshold == 0.5
        assert result.model.name == "test-resnet18-ultrasound"


@pytest.mark.parametrize(
    ("metrics", "caveats"),
    [
        ({"cv_roc_auc_ci95_low": 0.44, "cv_roc_auc_ci95_high": 0.66}, ["model_at_chance"]),
        ({"cv_roc_auc_ci95_low": 0.91, "cv_roc_auc_ci95_high": 0.95}, []),
        ({}, []),
    ],
)
def test_a_model_no_better_than_chance_says_so_with_every_answer(
    tmp_path: Path, metrics: dict[str, float], caveats: list[str]
) -> None:
    model = ResNet18Classifier.load(write_classifier(tmp_path, "mammography", metrics=metrics))

    result = model.classify(Image.fromarray(lesion_array()))

    assert [caveat.code for caveat in result.caveats] == caveats
    assert all("[0.44, 0.66]" in caveat.detail for caveat in result.caveats)


def test_a_card_with_a_prevalence_gives_odds_at_it_and_the_even_odds_label(tmp_path: Path) -> None:
    """Trained with equal class weights, a network answers at even odds; with the training
    data's prevalence of 20 % malignant, its odds are a quarter of those, the label the same."""
    for folder in ("even", "rare"):
        (tmp_path / folder).mkdir()
    even = ResNet18Classifier.load(write_classifier(tmp_path / "even", "ultrasound"))
    rare = ResNet18Classifier.load(
        write_classifier(tmp_path / "rare", "ultrasound", malignant_prevalence=0.2)
    )

    for seed in range(4):
        image = Image.fromarray(lesion_array(seed=seed))
        at_even, at_prevalence = even.classify(image), rare.classify(image)
        odds_even = at_even.probabilities.malignant / at_even.probabilities.benign
        odds = at_prevalence.probabilities.malignant / at_prevalence.probabilities.benign
        assert odds == pytest.approx(odds_even / 4, rel=1e-4)
        assert at_prevalence.label == at_even.label
        assert at_prevalence.decision_threshold == 0.2
        assert at_prevalence.confidence == (
            at_prevalence.probabilities.malignant
            if at_prevalence.label is Label.MALIGNANT
            else at_prevalence.probabilities.benign
        )


def test_the_same_image_gets_the_same_answer(model_dir: Path) -> None:
    model = ResNet18Classifier.load(model_dir / "ultrasound.json")
    image = Image.fromarray(lesion_array())

    assert model.classify(image).probabilities == model.classify(image).probabilities


def test_preprocess_gives_the_card_input_size(model_dir: Path) -> None:
    model = ResNet18Classifier.load(model_dir / "mammography.json")

    batch = model.preprocess(Image.fromarray(lesion_array(300, 120)))

    assert tuple(batch.shape) == (1, 3, 64, 64)


def test_a_card_that_keeps_the_aspect_pads_a_tall_lesion_instead_of_widening_it(
    tmp_path: Path,
) -> None:
    tall = Image.new("L", (30, 90), 255)
    squashing = ResNet18Classifier.load(write_classifier(tmp_path, "ultrasound"))
    keeping = ResNet18Classifier.load(write_classifier(tmp_path, "mammography", keep_aspect=True))

    def bright_columns(model: ResNet18Classifier) -> int:
        row = model.preprocess(tall)[0, 0, 32]  # the middle row, first channel
        return int((row > 0).sum())

    assert bright_columns(squashing) == 64
    # 30 of 90 px wide: a third of the 64 columns, black padding either side.
    assert bright_columns(keeping) in (21, 22)


def test_a_lesion_channel_card_marks_the_lesion_box_in_the_third_channel(tmp_path: Path) -> None:
    image = Image.new("L", (80, 80), 128)
    model = ResNet18Classifier.load(write_classifier(tmp_path, "ultrasound", lesion_channel=True))

    marked = model.preprocess(image, BoundingBox(x0=20, y0=20, x1=60, y1=60))[0]
    unknown = model.preprocess(image)[0]

    assert torch.equal(marked[0], unknown[0])  # the image itself, as usual
    assert marked[2, 32, 32] == 1  # inside the ellipse in the box
    assert marked[2, 2, 2] == marked[2, 14, 14] == -1  # outside the box; in it, off the ellipse
    assert bool((unknown[2] == 0).all())  # no box: neither lesion nor context
    assert (
        model.classify(image).probabilities
        != model.classify(image, BoundingBox(x0=20, y0=20, x1=60, y1=60)).probabilities
    )


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


def test_the_runtime_says_why_a_modality_is_missing(tmp_path: Path) -> None:
    write_classifier(tmp_path, "ultrasound")

    settings = ClassifierSettings(model_dir=tmp_path, precision="fp32", compile=False)
    runtime = loaded_runtime("classifier", classifier_tasks(settings))

    assert set(runtime.missing) == {Modality.MAMMOGRAPHY}
    assert "mammography.json" in runtime.missing[Modality.MAMMOGRAPHY]


@pytest.mark.parametrize("keep_aspect", [False, True])
def test_heatmap_has_the_size_of_the_classified_image(tmp_path: Path, keep_aspect: bool) -> None:
    model = ResNet18Classifier.load(
        write_classifier(tmp_path, "ultrasound", keep_aspect=keep_aspect)
    )
    image = Image.fromarray(lesion_array(120, 70))

    result, heatmap = model.explain(image)

    assert heatmap.size == (120, 70)
    assert heatmap.mode == "RGB"
    assert result.probabilities.benign + result.probabilities.malignant == pytest.approx(1.0)
    assert result.probabilities == model.classify(image).probabilities


async def test_concurrent_requests_share_forward_passes_with_the_same_answers(
    model_dir: Path, inference: Executor
) -> None:
    model = ResNet18Classifier.load(model_dir / "ultrasound.json")
    batcher = MicroBatcher(model, max_batch=8, executor=inference)
    images = [Image.fromarray(lesion_array(seed=seed)) for seed in range(12)]

    together = await asyncio.gather(
        *(batcher.classify(model.preprocess(image)) for image in images)
    )

    assert batcher.batches_run < len(images)
    for image, result in zip(images, together, strict=True):
        alone = model.classify(image)
        assert result.label == alone.label
        assert result.probabilities.malignant == pytest.approx(
            alone.probabilities.malignant, abs=1e-5
        )


async def test_a_lone_request_is_not_held_back(model_dir: Path, inference: Executor) -> None:
    model = ResNet18Classifier.load(model_dir / "ultrasound.json")
    batcher = MicroBatcher(model, max_batch=8, executor=inference)

    result = await batcher.classify(model.preprocess(Image.fromarray(lesion_array())))

    assert batcher.batches_run == 1
    assert result.model.name == "test-resnet18-ultrasound"


@pytest.fixture(scope="module")
def compiled_bf16(model_dir: Path) -> ResNet18Classifier:
    model = ResNet18Classifier.load(model_dir / "ultrasound.json", "bf16", compiled=True)
    model.warm_up()
    return model


def test_the_compiled_bf16_model_answers_as_fp32_eager(
    model_dir: Path, compiled_bf16: ResNet18Classifier
) -> None:
    reference = ResNet18Classifier.load(model_dir / "ultrasound.json", "fp32")
    batch = torch.cat(
        [reference.preprocess(Image.fromarray(lesion_array(seed=seed))) for seed in range(8)]
    )

    fast, exact = compiled_bf16.predict(batch), reference.predict(batch)

    assert fast.dtype == torch.float32
    assert torch.allclose(fast.sum(dim=1), torch.ones(8))
    assert float((fast - exact).abs().max()) < 0.02


async def test_a_compiled_model_is_fed_only_the_batch_sizes_it_was_compiled_for(
    compiled_bf16: ResNet18Classifier, inference: Executor
) -> None:
    batcher = MicroBatcher(compiled_bf16, max_batch=8, executor=inference)
    images = [Image.fromarray(lesion_array(seed=seed)) for seed in range(7)]

    results = await asyncio.gather(
        *(batcher.classify(compiled_bf16.preprocess(image)) for image in images)
    )

    assert len(results) == 7
    assert [batcher.batch_size(n) for n in (1, 3, 7, 20)] == [1, 2, 4, 8]
    assert MicroBatcher(compiled_bf16, 6, inference).batch_size(7) == 4


@pytest.mark.usefixtures("failing_compile")
def test_a_model_whose_compilation_fails_serves_eager(model_dir: Path) -> None:
    model = ResNet18Classifier.load(model_dir / "ultrasound.json", "bf16", compiled=True)

    model.warm_up()

    assert not model.compiled
    assert model.batch_sizes is None
    result = model.classify(Image.fromarray(lesion_array()))
    assert result.probabilities.benign + result.probabilities.malignant == pytest.approx(1.0)
