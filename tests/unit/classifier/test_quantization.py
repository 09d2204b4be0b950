"""The int8 artefact: made by branet-quantize, pinned by the card, served by default."""

import json
import shutil
from pathlib import Path

import httpx
import pytest
import torch
from PIL import Image

from branet_classifier.app import classifier_tasks, create_app
from branet_classifier.classify import ResNet18Classifier
from branet_classifier.model import ClassifierCard
from branet_classifier.settings import ClassifierSettings
from branet_shared.errors import ModelFileError
from branet_shared.schemas import Modality
from branet_training.classifier import quantize
from branet_training.classifier.cards import card_markdown
from tests.conftest import Serve
from tests.images import gray_png, lesion_array
from tests.models import loaded_runtime, write_classifier


def synthetic_inputs(model: ResNet18Classifier, count: int) -> torch.Tensor:
    """Generated lesion-like images, preprocessed as the service does."""
    return torch.cat(
        [
            model.preprocess(Image.fromarray(lesion_array(96 + 8 * seed, 80, seed=seed)))
            for seed in range(count)
        ]
    )


@pytest.fixture(scope="module")
def quantized_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both modalities' test models, the ultrasound one quantised on generated images."""
    folder = tmp_path_factory.mktemp("int8")
    card = write_classifier(folder, "ultrasound")
    card.with_suffix(".md").write_text(
        card_markdown(ClassifierCard.model_validate_json(card.read_text()))
    )
    write_classifier(folder, "mammography", seed=1)
    inputs = synthetic_inputs(ResNet18Classifier.load(card), 12)
    quantize.quantize_model(card, inputs, calibration_images=6, seed=0, sources=["generated"])
    return folder


def test_the_card_records_the_artefact_its_calibration_and_agreement(quantized_dir: Path) -> None:
    card = json.loads((quantized_dir / "ultrasound.json").read_text())

    assert card["int8"]["file"] == "ultrasound.int8.onnx"
    assert (quantized_dir / card["int8"]["file"]).is_file()
    assert card["int8"]["calibration"] == {"images": 6, "seed": 0, "datasets": ["generated"]}
    assert card["int8"]["agreement"]["images"] == 6  # checked on the images it was not fitted on
    assert card["int8"]["agreement"]["label_agreement"] >= quantize.AGREEMENT_FLOOR
    assert card["weights_sha256"]  # the rest of the card is untouched


def test_the_human_card_says_what_the_int8_file_is_and_how_faithful(quantized_dir: Path) -> None:
    card = json.loads((quantized_dir / "ultrasound.json").read_text())
    markdown = (quantized_dir / "ultrasound.md").read_text()

    assert "## Served in int8" in markdown
    assert card["int8"]["sha256"] in markdown
    assert "6 training images of generated" in markdown


def test_auto_serves_int8_where_the_card_has_it_with_answers_close_to_fp32(
    quantized_dir: Path,
) -> None:
    fp32 = ResNet18Classifier.load(quantized_dir / "ultrasound.json", "fp32")
    int8 = ResNet18Classifier.load(quantized_dir / "ultrasound.json", "auto")
    inputs = synthetic_inputs(fp32, 5)  # an odd batch: int8 takes any size

    reference, reduced = fp32.predict(inputs), int8.predict(inputs)

    assert int8.precision == "int8"
    assert int8.batch_sizes is None
    assert torch.allclose(reduced.sum(dim=1), torch.ones(5, dtype=reduced.dtype))
    assert (reference.argmax(1) == reduced.argmax(1)).all()
    assert float((reference - reduced).abs().max()) < 0.05


def test_without_an_artefact_auto_falls_back_and_int8_is_refused(quantized_dir: Path) -> None:
    card = quantized_dir / "mammography.json"

    assert ResNet18Classifier.load(card, "auto").precision in ("bf16", "fp32")
    with pytest.raises(ModelFileError, match="no int8 artefact"):
        ResNet18Classifier.load(card, "int8")


def test_a_tampered_int8_file_leaves_the_modality_unavailable(
    quantized_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    shutil.copytree(quantized_dir, folder)
    artefact = folder / "ultrasound.int8.onnx"
    artefact.write_bytes(artefact.read_bytes()[:-8] + b"\x00" * 8)

    settings = ClassifierSettings(model_dir=folder, precision="auto", compile=False)
    runtime = loaded_runtime("classifier", classifier_tasks(settings))

    assert Modality.ULTRASOUND in runtime.missing
    assert "int8 file" in runtime.missing[Modality.ULTRASOUND]
    assert "SHA-256" in runtime.missing[Modality.ULTRASOUND]


def test_quantising_refuses_an_artefact_that_changes_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = write_classifier(tmp_path, "ultrasound")
    before = card.read_text()
    monkeypatch.setattr(quantize, "AGREEMENT_FLOOR", 1.01)  # nothing can meet it

    with pytest.raises(ValueError, match="changes labels"):
        quantize.quantize_model(
            card,
            synthetic_inputs(ResNet18Classifier.load(card), 4),
            calibration_images=2,
            seed=0,
            sources=["generated"],
        )

    assert card.read_text() == before
    assert not (tmp_path / "ultrasound.int8.onnx").exists()


async def test_the_service_classifies_with_the_int8_model(
    serve: Serve, quantized_dir: Path
) -> None:
    transport = await serve(create_app(ClassifierSettings(model_dir=quantized_dir)))

    async with httpx.AsyncClient(transport=transport, base_url="http://classifier") as client:
        response = await client.post(
            "/v1/classify", files={"file": ("x", gray_png())}, data={"modality": "ultrasound"}
        )
        models = (await client.get("/v1/models")).json()["models"]

    assert response.status_code == 200
    probabilities = response.json()["probabilities"]
    assert probabilities["benign"] + probabilities["malignant"] == pytest.approx(1.0)
    runtimes = {model["modality"]: model["runtime"] for model in models}
    assert runtimes["ultrasound"] == "int8, ONNX Runtime"
    assert runtimes["mammography"].endswith("eager")  # tests run uncompiled
