"""`branet-convert-mobilenet`'s conversion, on TFLite files written from networks of known
weights (the real ImageNet files are in ../shared/data, which tests never read)."""

import json
from pathlib import Path

import pytest
import torch
import torchvision
from torch.nn import functional as F  # noqa: N812 - the usual name

from branet_classifier.model import IMAGENET_MEAN, IMAGENET_STD
from branet_runtime.files import sha256_of_file
from branet_segmenter.model import SegmenterCard, build_lesion_sam, pad_as_tensorflow
from branet_shared.errors import ModelFileError
from branet_training import pretrained
from branet_training.classifier.engine import TrainConfig
from branet_training.classifier.train import main as train_main
from branet_training.pretrained import (
    ImageNetTeacher,
    calibrate_batch_norm,
    load_imagenet_trunk,
    mobilenet_v2_from_tflite,
    require_agreement,
    verified_tflite,
)
from tests.tflite_files import random_mobilenet_v2, write_mobilenet_tflite

# The real file's check as measured: right, and with only the padding wrong.
RIGHT = {"top1_agreement": 0.8125, "mean_cosine": 0.9718, "top5_overlap": 0.85}
WRONG = {"top1_agreement": 0.2812, "mean_cosine": 0.5053, "top5_overlap": 0.2938}


@pytest.fixture(scope="module")
def original() -> torchvision.models.MobileNetV2:
    return random_mobilenet_v2(seed=3)


@pytest.fixture(scope="module")
def tflite_file(original: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mobilenet_tflite(original, tmp_path_factory.mktemp("tflite") / "mnv2.tflite")


def test_the_converted_network_computes_what_the_file_holds(
    original: torch.nn.Module, tflite_file: Path
) -> None:
    converted = mobilenet_v2_from_tflite(tflite_file)
    images = torch.randn(2, 3, 64, 64)

    with torch.no_grad():
        expected, actual = original(images), converted(images)

    # Only the file's 8-bit weights stand between them.
    assert F.cosine_similarity(expected, actual).min() > 0.999
    assert (expected - actual).abs().max() < 0.02 * expected.abs().max()


def test_a_file_of_another_network_is_refused(tmp_path: Path) -> None:
    narrow = torchvision.models.mobilenet_v2(weights=None, width_mult=0.5, num_classes=1001)
    path = write_mobilenet_tflite(narrow.eval(), tmp_path / "narrow.tflite")

    with pytest.raises(ValueError, match=r"narrow\.tflite"):
        mobilenet_v2_from_tflite(path)


def test_calibrated_batch_norms_keep_the_function_and_learn_the_statistics(
    tflite_file: Path,
) -> None:
    network = mobilenet_v2_from_tflite(tflite_file).features  # the classifier's dropout aside
    images = torch.rand(8, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        before = network(images)

    calibrate_batch_norm(network, [images])

    with torch.no_grad():
        after_eval = network.eval()(images)
        norms = [m for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        momentum = [n.momentum for n in norms]
        for norm in norms:
            norm.momentum = 0.0  # a training-mode pass that leaves the statistics alone
        after_train = network.train()(images)
        for norm, value in zip(norms, momentum, strict=True):
            norm.momentum = value
    assert torch.allclose(before, after_eval, atol=1e-5 * before.abs().max())
    # A batch's own statistics now are the calibration's: training starts from the same place.
    assert torch.allclose(before, after_train, atol=1e-3 * before.abs().max())


def test_stride_two_layers_pad_as_tensorflow_does() -> None:
    convolution = torch.nn.Conv2d(3, 4, kernel_size=3, stride=2, padding=1)
    images = torch.randn(1, 3, 16, 16)
    expected = F.conv2d(F.pad(images, (0, 1, 0, 1)), convolution.weight, convolution.bias, 2)

    pad_as_tensorflow(convolution)

    assert torch.allclose(convolution(images), expected, atol=1e-6)
    assert convolution(images).shape[-2:] == (8, 8)


def test_only_the_pinned_imagenet_files_are_taken(tmp_path: Path, tflite_file: Path) -> None:
    with pytest.raises(ValueError, match="not one of the known files"):
        verified_tflite(tflite_file)
    impostor = tmp_path / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
    impostor.write_bytes(tflite_file.read_bytes())
    with pytest.raises(ModelFileError, match="SHA-256"):
        verified_tflite(impostor)


def test_the_segmenters_encoder_starts_from_the_file(
    tflite_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(pretrained.KNOWN_FILES, tflite_file.name, sha256_of_file(tflite_file))
    card = SegmenterCard(
        name="t", version="0", weights_file="-", weights_sha256="0" * 64, input_size=64
    )
    encoder = build_lesion_sam(card).image_encoder
    features = pad_as_tensorflow(mobilenet_v2_from_tflite(tflite_file).features)
    images = torch.randn(1, 3, 64, 64)

    load_imagenet_trunk(encoder, tflite_file)

    with torch.no_grad():
        expected = torch.nn.Sequential(*list(features)[:14])(images)
        assert torch.allclose(encoder.eval().stride16(images), expected, atol=1e-5)


def test_the_teacher_classifies_the_classifiers_inputs_with_imagenets_features(
    tflite_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(pretrained.KNOWN_FILES, tflite_file.name, sha256_of_file(tflite_file))
    teacher = ImageNetTeacher(tflite_file).eval()
    features = pad_as_tensorflow(mobilenet_v2_from_tflite(tflite_file).features).eval()
    pixels = torch.rand(2, 3, 64, 64)  # in [0, 1], as the classifier reads an image
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    with torch.no_grad():
        logits = teacher((pixels - mean) / std)  # what the classifier's preprocessing gives
        pooled = features(pixels * 2 - 1).mean(dim=(2, 3))  # the [-1, 1] it was trained on
        expected = teacher.network.classifier[-1](pooled)

    assert logits.shape == (2, 2)
    assert torch.allclose(logits, expected, atol=1e-4)


def test_the_teacher_is_a_reference_never_shipped() -> None:
    with pytest.raises(SystemExit):
        train_main(
            ["--modality", "ultrasound", "--data", "x", "--out", "y", "--ship", "models",
             "--imagenet-teacher", "t.tflite"]
        )  # fmt: skip
    with pytest.raises(ValueError, match="RGB crops"):
        TrainConfig(imagenet_teacher="t.tflite", lesion_channel=True)


def test_training_refuses_a_teacher_whose_conversion_misses_the_file() -> None:
    results = {"file": "tf2_mobilenet_v2_1.0_224_ptq.tflite", "images": 32}

    require_agreement(results | {"tensorflow_padding": RIGHT})
    with pytest.raises(ValueError, match=r"mean cosine of 0\.505 .* on 32 images"):
        require_agreement(results | {"tensorflow_padding": WRONG})


def test_the_converter_writes_its_check_and_refuses_one_under_the_bar(
    tflite_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(pretrained.KNOWN_FILES, tflite_file.name, sha256_of_file(tflite_file))
    results = {"file": tflite_file.name, "images": 32}
    out = tmp_path / "check.json"
    command = [str(tflite_file), "--check", str(tmp_path), "--out", str(out)]

    monkeypatch.setattr(pretrained, "check", lambda *_: results | {"tensorflow_padding": RIGHT})
    pretrained.main(command)
    assert json.loads(out.read_text())["tensorflow_padding"] == RIGHT

    monkeypatch.setattr(pretrained, "check", lambda *_: results | {"tensorflow_padding": WRONG})
    with pytest.raises(SystemExit) as exited:
        pretrained.main(command)
    assert exited.value.code == 1
    assert json.loads(out.read_text())["tensorflow_padding"] == WRONG  # written all the same
