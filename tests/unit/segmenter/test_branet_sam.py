"""BraNet's own segmenter, served: what automatic mode calls a lesion."""

import numpy as np
import pytest
import torch
from PIL import Image

from branet_segmenter.branet_sam import BraNetSegmenter, zoom_window
from branet_segmenter.embeddings import EmbeddingCache
from branet_segmenter.model import SegmenterCard, build_lesion_sam, decode_batch
from branet_segmenter.responses import BoolMask
from branet_shared.schemas import BoundingBox


def tiny_card(**fields: bool | int) -> SegmenterCard:
    return SegmenterCard(
        name="test", version="0", weights_file="-", weights_sha256="0" * 64, input_size=64, **fields
    )


@pytest.fixture
def confident_but_empty() -> BraNetSegmenter:
    """A network whose masks are empty (all logits 0) and whose predicted IoU is always 1."""
    card = tiny_card()
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


@pytest.mark.parametrize(("multimask", "kept"), [(False, 0), (True, 1)])
def test_automatic_mode_keeps_the_candidate_it_scores_highest(multimask: bool, kept: int) -> None:
    """A card with `automatic_multimask` weighs three candidate regions, else the single one."""
    card = tiny_card(automatic_multimask=multimask)
    torch.manual_seed(0)
    sam = build_lesion_sam(card).eval()
    with torch.no_grad():  # predicted IoUs: single 0.1; candidates 0.2, 0.9, 0.3
        iou_out = sam.mask_decoder.iou_prediction_head.layers[-1]
        iou_out.weight.zero_()
        iou_out.bias.copy_(torch.tensor([0.1, 0.2, 0.9, 0.3]))
    segmenter = BraNetSegmenter(card, sam, EmbeddingCache(1))
    image = Image.new("L", (64, 64), 120)

    found = segmenter.predict(image, "k", None, ())

    sparse, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
    with torch.inference_mode():
        logits, _ = decode_batch(sam, segmenter.embedding(image, "k"), sparse, dense, multimask)
    candidates = torch.nn.functional.interpolate(logits, size=(64, 64), mode="bilinear")[0] > 0
    assert found.score == pytest.approx(0.9 if multimask else 0.1)
    assert np.array_equal(found.mask, candidates[kept].numpy())
    assert len({mask.numpy().tobytes() for mask in candidates}) == len(candidates)  # all differ


class FixedDetector(torch.nn.Module):
    """A detector that, whatever the image, is `confidence` sure of one box: cell (1, 2)'s
    (row 1, column 2 of the 4×4 grid), `cells` wide and high (2 × 1: 32 by 16 pixels) around
    the cell's centre."""

    def __init__(self, confidence: float, cells: tuple[float, float] = (2.0, 1.0)) -> None:
        super().__init__()
        self.logit = float(torch.logit(torch.tensor(confidence)))
        self.cells = cells

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        centres = torch.full((len(embedding), 1, 4, 4), -9.0)
        centres[:, 0, 1, 2] = self.logit
        box = torch.tensor([0.0, 0.0, *np.log(self.cells)])
        return centres, box[None, :, None, None].expand(len(embedding), -1, 4, 4)


def test_the_detected_box_prompts_the_decoder_as_a_drawn_box_does() -> None:
    card = tiny_card(automatic_detector=True, box_mask_prompt=True)
    torch.manual_seed(0)
    sam = build_lesion_sam(card).eval()
    sam.lesion_detector = FixedDetector(confidence=0.8)
    segmenter = BraNetSegmenter(card, sam, EmbeddingCache(1))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))

    automatic = segmenter.predict(image, "k", None, ())
    # Cell (row 1, column 2) is centred at (40, 24) in the 64-pixel input.
    drawn = segmenter.predict(image, "k", BoundingBox(x0=24, y0=16, x1=56, y1=32), ())

    assert np.array_equal(automatic.mask, drawn.mask)
    assert automatic.score == pytest.approx(drawn.score * 0.8, rel=1e-5)


def test_an_unsure_detector_finds_no_lesion() -> None:
    card = tiny_card(automatic_detector=True).model_copy(update={"lesion_threshold": 0.05})
    sam = build_lesion_sam(card).eval()
    sam.lesion_detector = FixedDetector(confidence=1e-3)
    segmenter = BraNetSegmenter(card, sam, EmbeddingCache(1))

    assert segmenter.automatic(Image.new("L", (64, 64), 120), "k") is None


@pytest.mark.parametrize("context_layers", [0, 1])
def test_a_detector_with_context_layers_finds_a_box_as_the_card_builds_it(
    context_layers: int,
) -> None:
    """The card's `detector_context_layers` are in the network it builds (so in the weights it
    pins), none where it asks for none (0.4.0's weights load as they were saved)."""
    card = tiny_card(automatic_detector=True, detector_context_layers=context_layers)
    torch.manual_seed(0)
    sam = build_lesion_sam(card).eval()
    segmenter = BraNetSegmenter(card, sam, EmbeddingCache(1))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64), dtype=np.uint8))

    candidate = segmenter.predict(image, "k", None, ())

    names = sam.state_dict().keys()
    assert any(name.startswith("lesion_detector.context.") for name in names) == bool(
        context_layers
    )
    assert candidate.mask.shape == (48, 64)
    assert np.isfinite(candidate.score)  # an untrained network's predicted IoU, unbounded


def zoom_card(zoom: float = 2.0) -> SegmenterCard:
    return tiny_card(automatic_detector=True).model_copy(update={"automatic_zoom": zoom})


@pytest.mark.parametrize(
    ("box", "window"),
    [
        # A 20-pixel region: a window of the input's 64 pixels (never fewer), centred on it.
        (BoundingBox(x0=100, y0=50, x1=120, y1=70), (78, 28, 142, 92)),
        # A 50 × 30 region: twice its longer side, moved inside the image at its corner.
        (BoundingBox(x0=0, y0=170, x1=50, y1=200), (0, 100, 100, 200)),
    ],
)
def test_the_zoom_window_holds_the_region_at_the_zoom_asked(
    box: BoundingBox, window: tuple[int, int, int, int]
) -> None:
    assert zoom_window(box, 300, 200, zoom_card()) == window


def test_a_region_the_window_would_barely_magnify_is_not_looked_at_again() -> None:
    """In a 300 × 200 image, 2 × a 130-pixel region is 260 pixels: 1.15 times larger."""
    assert zoom_window(BoundingBox(x0=10, y0=10, x1=140, y1=60), 300, 200, zoom_card()) is None


def test_a_zoom_under_one_would_cut_the_region_and_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SegmenterCard(**{**zoom_card().model_dump(), "automatic_zoom": 0.5})


class BoxOutliner:
    """A decoder that outlines exactly the box it is prompted with (predicted IoU 0.5 on the
    whole image, 0.9 zoomed in), recording the size of each image it decodes."""

    def __init__(self, input_size: int) -> None:
        self.input_size = input_size
        self.images: list[tuple[int, int]] = []

    def __call__(
        self, _: torch.Tensor, image: Image.Image, boxes: torch.Tensor | None, __: object
    ) -> tuple[BoolMask, float]:
        assert boxes is not None
        self.images.append(image.size)
        x0, y0, x1, y1 = (boxes[0] * max(image.size) / self.input_size).round().int().tolist()
        mask = np.zeros((image.height, image.width), dtype=bool)
        mask[y0:y1, x0:x1] = True
        return mask, 0.5 if len(self.images) == 1 else 0.9


def outlining_boxes(zoom: float) -> tuple[BraNetSegmenter, BoxOutliner]:
    """A segmenter whose detector is 0.8 sure of cell (1, 2)'s box, 8 input pixels around
    (40, 24), and whose decoder outlines exactly the box it is given."""
    card = zoom_card(zoom)
    sam = build_lesion_sam(card).eval()
    sam.lesion_detector = FixedDetector(confidence=0.8, cells=(0.5, 0.5))
    segmenter = BraNetSegmenter(card, sam, EmbeddingCache(1))
    outliner = BoxOutliner(card.input_size)
    segmenter.decoded = outliner  # type: ignore[method-assign,assignment]
    return segmenter, outliner


def test_a_small_region_is_outlined_again_in_its_window_and_scored_as_first_seen() -> None:
    """In a 640 × 320 image the detected box is 80 pixels around (400, 240): looked at again in
    a 160-pixel window, four times larger, and the mask found there lands back where it is.
    Whether there is a lesion is the first look's say (predicted IoU 0.5, not the box-prompted
    second look's 0.9), as on images that get no second look."""
    segmenter, outliner = outlining_boxes(zoom=2.0)

    found = segmenter.most_lesion_like(Image.new("L", (640, 320), 120), "k")

    assert outliner.images == [(640, 320), (160, 160)]
    expected = np.zeros((320, 640), dtype=bool)
    expected[200:280, 360:440] = True
    assert np.array_equal(found.mask, expected)
    assert found.score == pytest.approx(0.5 * 0.8)


def test_without_a_zoom_the_region_is_outlined_once() -> None:
    segmenter, outliner = outlining_boxes(zoom=0.0)

    found = segmenter.most_lesion_like(Image.new("L", (640, 320), 120), "k")

    assert outliner.images == [(640, 320)]
    assert found.score == pytest.approx(0.5 * 0.8)


def test_a_region_under_the_threshold_is_no_lesion_and_gets_no_second_look() -> None:
    segmenter, outliner = outlining_boxes(zoom=2.0)
    segmenter.card = segmenter.card.model_copy(update={"lesion_threshold": 0.5})  # 0.4 scored

    assert segmenter.automatic(Image.new("L", (640, 320), 120), "k") is None
    assert outliner.images == [(640, 320)]
