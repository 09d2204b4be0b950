"""BraNet's own segmenter, served: what automatic mode calls a lesion."""

import pytest
import torch
from PIL import Image

from branet_segmenter.branet_sam import BraNetSegmenter
from branet_segmenter.embeddings import EmbeddingCache
from branet_segmenter.model import SegmenterCard, build_lesion_sam


@pytest.fixture
def confident_but_empty() -> BraNetSegmenter:
    """A network whose masks are empty (all logits 0) and whose predicted IoU is always 1."""
    card = SegmenterCard(
        name="test", version="0", weights_file="-", weights_sha256="0" * 64, input_size=64
    )
    sam = build_lesion_sam(card)
    with torch.no_grad():
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.zero_()
            mlp.layers[-1].bias.zero_()
        iou_out = sam.mask_decoder.iou_prediction_head.layers[-1]
        iou_out.weight.zero_()
        iou_out.bias.fill_(1.0)
    return BraNetSegmenter(card, sam, EmbeddingCache(1))


def test_an_empty_region_is_no_lesion_whatever_its_score(
    confident_but_empty: BraNetSegmenter,
) -> None:
    image = Image.new("L", (80, 64), 120)

    candidate = confident_but_empty.predict(image, "k", None, ())

    assert candidate.score == pytest.approx(1.0)
    assert not candidate.mask.any()
    assert confident_but_empty.automatic(image, "k") is None
