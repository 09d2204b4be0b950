"""The faster image encoder: fused attention is exact; bf16, int8 linear layers and
compilation keep the masks."""

import types
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam
from segment_anything.modeling.image_encoder import Attention

from branet_runtime.precision import Precision
from branet_segmenter import acceleration
from branet_segmenter.acceleration import FastImageEncoder, Int8DynamicLinear
from branet_segmenter.segment import BUILDERS, LesionSegmenter
from branet_shared.schemas import BoundingBox
from tests.images import lesion_array

RGB = np.stack([lesion_array(96, 80)] * 3, axis=-1)
BOX = BoundingBox(x0=20, y0=15, x1=70, y1=60)


def embedding(segmenter: LesionSegmenter) -> torch.Tensor:
    predictor = SamPredictor(segmenter.sam)
    with torch.inference_mode():
        predictor.set_image(RGB)
    features: torch.Tensor = predictor.features
    return features


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def package_embedding(sam: Sam) -> torch.Tensor:
    predictor = SamPredictor(sam)
    with torch.inference_mode():
        predictor.set_image(RGB)
    features: torch.Tensor = predictor.features
    return features


def test_fused_attention_gives_the_package_embedding(sam_checkpoint: Path) -> None:
    package = BUILDERS["toy"](checkpoint=str(sam_checkpoint)).eval()

    fused = embedding(LesionSegmenter.load("toy", sam_checkpoint, precision="fp32"))

    assert torch.allclose(fused, package_embedding(package), rtol=1e-4, atol=1e-5)


def test_attention_by_matmul_in_query_chunks_gives_the_package_embedding(
    sam_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sam = BUILDERS["toy"](checkpoint=str(sam_checkpoint)).eval()
    expected = package_embedding(sam)
    monkeypatch.setattr(acceleration, "QUERY_CHUNK", 1)  # one row of tokens per chunk
    for module in sam.image_encoder.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(acceleration.matmul_attention_forward, module)

    assert torch.allclose(package_embedding(sam), expected, rtol=1e-4, atol=1e-5)


def test_an_int8_linear_layer_answers_as_the_fp32_one() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 48)
    x = torch.randn(2, 40, 96)

    with torch.inference_mode():
        reference, int8 = linear(x), Int8DynamicLinear(linear)(x)

    assert int8.shape == reference.shape
    assert float((int8 - reference).norm() / reference.norm()) < 0.02


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_compiled_encoder_keeps_the_mask(
    sam_checkpoint: Path, precision: Precision
) -> None:
    exact = LesionSegmenter.load("toy", sam_checkpoint, precision="fp32")
    fast = LesionSegmenter.load("toy", sam_checkpoint, precision=precision, compiled=True)
    fast.warm_up()

    assert isinstance(fast.sam.image_encoder, FastImageEncoder)
    assert fast.runtime.endswith("torch.compile")
    assert ("int8" in fast.runtime) == (precision == "int8")
    assert embedding(fast).dtype == torch.float32
    reference = exact.prompted(RGB, "a", BOX).mask
    assert mask_iou(fast.prompted(RGB, "b", BOX).mask, reference) >= 0.98


@pytest.mark.usefixtures("failing_compile")
def test_an_encoder_whose_compilation_fails_runs_eager(sam_checkpoint: Path) -> None:
    segmenter = LesionSegmenter.load("toy", sam_checkpoint, precision="bf16", compiled=True)

    segmenter.warm_up()

    assert segmenter.runtime.endswith("eager")
    assert segmenter.prompted(RGB, "c", BOX).mask.any()
