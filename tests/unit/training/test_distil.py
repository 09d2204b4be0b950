"""Feature distillation from the ImageNet teacher into the ResNet18, with a TFLite file written
from a MobileNetV2 of known weights (tests never read ../shared/data)."""

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from branet_classifier.model import ClassifierCard, build_resnet18, model_tensor
from branet_runtime.files import sha256_of_file
from branet_segmenter.model import pad_as_tensorflow
from branet_training import pretrained
from branet_training.classifier.cards import card_markdown
from branet_training.classifier.data import load_samples
from branet_training.classifier.distil import (
    FrozenTeacher,
    distil,
    distillation_loss,
    unlabelled_images,
)
from branet_training.classifier.engine import ImageCache, TrainConfig, UnlabelledViews, train
from branet_training.classifier.train import main as train_main
from branet_training.pretrained import mobilenet_v2_from_tflite
from tests.images import write_class_folders
from tests.tflite_files import random_mobilenet_v2, write_mobilenet_tflite


@pytest.fixture(scope="module")
def tflite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tflite") / "mnv2.tflite"
    return write_mobilenet_tflite(random_mobilenet_v2(seed=5), path)


@pytest.fixture
def known_teacher(tflite_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The generated file, taken as if it were one of the pinned ImageNet files."""
    monkeypatch.setitem(pretrained.KNOWN_FILES, tflite_file.name, sha256_of_file(tflite_file))
    return tflite_file


def test_the_teacher_sees_the_image_not_the_lesion_marker(known_teacher: Path) -> None:
    teacher = FrozenTeacher(known_teacher)
    features = pad_as_tensorflow(mobilenet_v2_from_tflite(known_teacher)).features.eval()
    gray = torch.rand(2, 1, 48, 48).expand(-1, 3, -1, -1)  # in [0, 1], as the classifier reads
    marker = (torch.rand(2, 1, 48, 48) > 0.5).float()
    inputs = torch.stack(
        [model_tensor(g, m, lesion_channel=True) for g, m in zip(gray, marker, strict=True)]
    )

    with torch.no_grad():
        expected = features(gray * 2 - 1).mean(dim=(2, 3))
        assert torch.allclose(teacher(inputs), expected, atol=1e-4)
    teacher.train()
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())


def test_the_loss_teaches_what_varies_between_images_not_the_common_offset() -> None:
    teacher = torch.rand(16, 1280) + 5.0  # pooled ReLU6 features: all positive, much alike
    assert distillation_loss(teacher, teacher) > 0.5  # raw features are not the target
    standardised = (teacher - teacher.mean(0)) / teacher.std(0, unbiased=False)
    assert distillation_loss(standardised * 3, teacher) < 1e-3  # their variation is, at any scale


def test_distillation_moves_the_students_features_to_the_teachers(known_teacher: Path) -> None:
    torch.manual_seed(0)
    network = build_resnet18()
    head = {k: v.clone() for k, v in network.get_submodule("fc").state_dict().items()}
    images = torch.randn(16, 3, 32, 32)
    loader = DataLoader(TensorDataset(images, torch.zeros(16)), batch_size=8)

    history = distil(network, FrozenTeacher(known_teacher), loader, 6, 3e-3, 0.0, bf16=False)

    losses = [row["distillation_loss"] for row in history]
    assert losses[-1] < 0.8 * losses[0]
    assert all(torch.equal(v, network.get_submodule("fc").state_dict()[k]) for k, v in head.items())


def test_a_distilled_fold_saves_its_trunk_and_resumes_from_it(
    known_teacher: Path, tmp_path: Path
) -> None:
    samples, _ = load_samples([write_class_folders(tmp_path / "site_a", per_class=4)])
    normals = write_class_folders(tmp_path / "normals", per_class=2) / "benign"
    config = TrainConfig(
        input_size=32, epochs=1, batch_size=4, lesion_channel=True,
        distil_from=str(known_teacher), distil_epochs=1, distil_unlabelled=(f"site_a={normals}",),
    )  # fmt: skip
    checkpoint = tmp_path / "work" / "checkpoint.pt"

    first = train(samples[:6], samples[6:], config, ImageCache(), checkpoint)
    distilled = torch.load(checkpoint.with_name("distilled.pt"), weights_only=True)
    checkpoint.unlink()  # as if stopped between distillation and the first epoch
    again = train(samples[:6], samples[6:], config, ImageCache(), checkpoint)

    assert set(distilled) == set(first.network.state_dict())
    for name, value in again.network.state_dict().items():
        assert torch.equal(value, first.network.state_dict()[name]), name


def test_unlabelled_images_are_taught_only_in_folds_that_train_on_their_site(
    tmp_path: Path,
) -> None:
    normals = write_class_folders(tmp_path / "normals", per_class=2) / "benign"
    other = write_class_folders(tmp_path / "other", per_class=3) / "benign"
    folders = [f"site_a={normals}", f"site_b={other}"]

    assert unlabelled_images(folders, {"site_a"}) == sorted(normals.glob("*[0-9].png"))
    assert len(unlabelled_images(folders, {"site_a", "site_b"})) == 5
    assert unlabelled_images(folders, {"site_c"}) == []  # its fold holds both sites out


def test_unlabelled_images_are_seen_whole_with_no_lesion_marked(tmp_path: Path) -> None:
    normals = write_class_folders(tmp_path / "normals", per_class=2) / "benign"
    config = TrainConfig(input_size=32, lesion_channel=True)
    views = UnlabelledViews(sorted(normals.glob("*[0-9].png")), ImageCache(), config)

    inputs, label = views[0]

    assert inputs.shape == (3, 32, 32)
    assert torch.equal(inputs[2], torch.zeros(32, 32))  # the marker says "unknown"
    assert label == -1


def test_a_distilled_models_card_names_its_teacher_and_licence() -> None:
    models = Path(__file__).parents[3] / "models"
    card = ClassifierCard.model_validate_json((models / "ultrasound.json").read_text())
    training = card.training | {"distil_from": "x/tf2_mobilenet_v2_1.0_224_ptq.tflite"}
    training |= {"distil_epochs": 30}

    text = " ".join(card_markdown(card.model_copy(update={"training": training})).split())

    assert "taught ImageNet's features by the MobileNetV2 in `tf2_mobilenet_v2_1.0_224_ptq" in text
    assert "30 epochs of feature distillation; Google's, Apache-2.0" in text


def test_distillation_starts_from_scratch_only() -> None:
    with pytest.raises(ValueError, match="from scratch"):
        TrainConfig(distil_from="t.tflite", pretrained="trunk.pt")
    with pytest.raises(SystemExit):
        train_main(
            ["--modality", "ultrasound", "--data", "x", "--out", "y",
             "--distil-from", "t.tflite", "--imagenet-teacher", "t.tflite"]
        )  # fmt: skip
