"""BraNet's own segmenter network: built from its card, fed as in training, decoded as
segment-anything decodes."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from branet_segmenter.model import (
    SegmenterCard,
    box_mask_prompt,
    build_lesion_sam,
    decode_batch,
    image_to_input,
    mask_logits_to_image,
    mask_to_input,
)
from branet_shared.images import inscribed_ellipse
from branet_shared.schemas import BoundingBox
from branet_training.segmenter.data import MaskedImage
from branet_training.segmenter.engine import MaskDataset
from tests.images import lesion_array


@pytest.fixture(scope="module")
def card() -> SegmenterCard:
    return SegmenterCard(
        name="test", version="0", weights_file="-", weights_sha256="0" * 64, input_size=64
    )


def test_the_embedding_is_sams_shape_at_a_sixteenth_of_the_input(card: SegmenterCard) -> None:
    sam = build_lesion_sam(card).eval()

    with torch.inference_mode():
        embedding = sam.image_encoder(torch.zeros(2, 3, 64, 64))

    assert embedding.shape == (2, card.embed_dim, 4, 4)
    assert sam.image_encoder.img_size == 64


def test_batched_decoding_is_the_packages_decoding_image_by_image(card: SegmenterCard) -> None:
    torch.manual_seed(0)
    sam = build_lesion_sam(card).eval()
    with torch.inference_mode():
        embeddings = sam.image_encoder(torch.rand(3, 3, 64, 64) * 255)
        boxes = torch.tensor([[4.0, 4, 40, 40], [10, 12, 30, 50], [0, 0, 63, 63]])
        sparse, dense = sam.prompt_encoder(points=None, boxes=boxes, masks=None)
        batched, batched_iou = decode_batch(sam, embeddings, sparse, dense, multimask=True)
        for index in range(3):
            masks, iou = sam.mask_decoder(
                embeddings[index : index + 1],
                sam.prompt_encoder.get_dense_pe(),
                sparse[index : index + 1],
                dense[index : index + 1],
                multimask_output=True,
            )
            torch.testing.assert_close(batched[index : index + 1], masks, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(batched_iou[index : index + 1], iou, atol=1e-5, rtol=1e-4)


def test_fine_detail_starts_as_the_network_without_it_and_then_moves_the_masks(
    card: SegmenterCard,
) -> None:
    detailed = card.model_copy(update={"fine_detail": True})
    torch.manual_seed(0)
    sam = build_lesion_sam(detailed).eval()
    boxes = torch.tensor([[4.0, 4, 40, 40], [10, 12, 30, 50]])
    images = torch.rand(2, 3, 64, 64) * 255
    with torch.inference_mode():
        embeddings = sam.image_encoder(images)
        sparse, dense = sam.prompt_encoder(points=None, boxes=boxes, masks=None)
        without, _ = decode_batch(sam, embeddings[:, : card.embed_dim], sparse, dense, False)
        untrained, _ = decode_batch(sam, embeddings, sparse, dense, False)
        sam.image_encoder.detail[-1].weight.fill_(0.1)  # as training moves it
        moved, _ = decode_batch(sam, sam.image_encoder(images), sparse, dense, False)

    # SAM's embedding, then the 1/4 detail's embed_dim/8 channels stored space-to-depth at 1/16.
    assert embeddings.shape == (2, card.embed_dim + 16 * card.embed_dim // 8, 4, 4)
    assert torch.equal(untrained, without)
    assert not torch.allclose(moved, without)


def test_training_sees_the_image_and_mask_as_serving_does(tmp_path: Path) -> None:
    folder = tmp_path
    pixels = lesion_array(120, 70)
    Image.fromarray(pixels).save(folder / "case.png")
    mask = pixels < 80
    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "case_mask.png")
    image = MaskedImage(folder / "case.png", (folder / "case_mask.png",), "site", "g", "benign")

    trained_pixels, trained_mask = MaskDataset([image], 64, train=False, seed=0)[0]

    served = image_to_input(Image.open(folder / "case.png"), 64)
    torch.testing.assert_close(trained_pixels, served, atol=1 / 255, rtol=0)
    assert torch.equal(trained_mask, mask_to_input(mask, 64))
    assert float(trained_mask[:, 38:, :].sum()) == 0  # the padding below a wide image


def test_mask_logits_map_back_onto_the_whole_image() -> None:
    logits = torch.full((1, 1, 16, 16), -5.0)
    logits[..., :4, :8] = 5.0  # the top-left quarter of the fitted 64×32 region

    mask = mask_logits_to_image(logits, 64, width=120, height=60)[0, 0] > 0

    assert mask.shape == (60, 120)
    assert bool(mask[:20, :50].all())
    assert not bool(mask[40:, 70:].any())


def test_a_boxs_mask_prompt_is_the_ellipse_inscribed_in_it() -> None:
    box = BoundingBox(x0=40, y0=60, x1=200, y1=140)
    drawn = np.asarray(inscribed_ellipse(box, (256, 256))) > 0
    expected = drawn.reshape(64, 4, 64, 4).mean(axis=(1, 3)) > 0.5  # at SAM's mask-prompt size

    logits = box_mask_prompt(torch.tensor([[40.0, 60.0, 200.0, 140.0]]), 256)

    assert logits.shape == (1, 1, 64, 64)
    prompt = (logits[0, 0] > 0).numpy()
    assert (prompt & expected).sum() / (prompt | expected).sum() > 0.95
    assert not prompt[:, :8].any()  # nothing left of the box
