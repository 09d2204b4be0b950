"""BraNet's own lesion segmenter, served: the card's network (`model.py`), prompted by a box or
points, or with no prompt at all, where one encoder pass and one decoder pass mark the most
lesion-like region (with the card's `automatic_detector`, inside the box its detection head
places; with its `automatic_zoom`, outlined again in a window cropped around it) and its score,
against the card's `lesion_threshold`, says whether there is a lesion.
Trained on breast ultrasound only: other modalities are refused with why.
"""

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from branet_runtime.files import load_weights, read_card, verify_file
from branet_segmenter.embeddings import Embedding, EmbeddingCache
from branet_segmenter.model import (
    LesionSam,
    SegmenterCard,
    box_mask_prompt,
    build_lesion_sam,
    decode_batch,
    detected_boxes,
    image_to_input,
    mask_logits_to_image,
    network_input,
)
from branet_segmenter.responses import BoolMask, Segmentation, segment_response
from branet_shared.errors import ModelUnavailable
from branet_shared.images import ValidatedImage, bounding_box
from branet_shared.schemas import BoundingBox, Modality, ModelRef, Point, Prompt, SegmentResponse

MODALITIES = (Modality.ULTRASOUND,)


class BraNetSegmenter:
    def __init__(self, card: SegmenterCard, sam: LesionSam, cache: EmbeddingCache) -> None:
        self.card = card
        self.sam = sam.eval()
        self.cache = cache

    @classmethod
    def load(cls, card_path: Path, cache: EmbeddingCache) -> "BraNetSegmenter":
        card = read_card(card_path, SegmenterCard)
        weights = card_path.parent / card.weights_file
        verify_file(weights, card.weights_sha256, "weights file")
        sam = build_lesion_sam(card)
        load_weights(sam, weights, card.architecture)
        return cls(card, sam, cache)

    def with_zoom(self, zoom: float, cache: EmbeddingCache) -> "BraNetSegmenter":
        """The same network with another `automatic_zoom` (0: one look)."""
        return BraNetSegmenter(
            self.card.model_copy(update={"automatic_zoom": zoom}), self.sam, cache
        )

    @property
    def ref(self) -> ModelRef:
        card = self.card
        return ModelRef(name=card.name, version=card.version, sha256=card.weights_sha256)

    @property
    def checkpoint_sha256(self) -> str:
        return self.card.weights_sha256

    @property
    def runtime(self) -> str:
        return "fp32, eager"

    def warm_up(self) -> None:
        blank = Image.new("L", (self.card.input_size, self.card.input_size))
        self.predict(blank, "warm-up", None, ())

    def embedding(self, image: Image.Image, key: str) -> torch.Tensor:
        """The image's embedding, from the cache when it is there (a second prompt on the
        same image, the user adjusting a box, reuses it)."""
        cached = self.cache.get(key)
        if cached is not None:
            return cached.features
        features = self.encoded(image)
        size = self.card.input_size
        self.cache.put(key, Embedding(features, (image.height, image.width), (size, size)))
        return features

    def encoded(self, image: Image.Image) -> torch.Tensor:
        pixels = image_to_input(image, self.card.input_size)[None]
        with torch.inference_mode():
            features: torch.Tensor = self.sam.image_encoder(
                self.sam.preprocess(network_input(pixels))
            )
        return features

    def predict(
        self,
        image: Image.Image,
        key: str,
        box: BoundingBox | None,
        points: Sequence[Point],
    ) -> Segmentation:
        """The mask and predicted IoU for the prompt: the box's single mask, the best of three
        for points (a point is ambiguous); for none, `most_lesion_like`."""
        if box is None and not points:
            return self.most_lesion_like(image, key)
        scale = self.card.input_size / max(image.width, image.height)  # as SAM scales prompts
        boxes = None
        if box is not None:
            boxes = torch.tensor([[box.x0, box.y0, box.x1, box.y1]], dtype=torch.float32) * scale
        coords = None
        if points:
            xy = torch.tensor([[[p.x + 0.5, p.y + 0.5] for p in points]]) * scale
            coords = (xy, torch.tensor([[p.label for p in points]]))
        mask, iou = self.decoded(self.embedding(image, key), image, boxes, coords)
        return Segmentation(mask=mask, score=iou)

    def most_lesion_like(self, image: Image.Image, key: str) -> Segmentation:
        """No prompt: the most lesion-like region, whatever its score (`first_look`), outlined
        again where the card says `automatic_zoom` (`looked_again`)."""
        return self.looked_again(image, self.first_look(image, key))

    def first_look(self, image: Image.Image, key: str) -> Segmentation:
        """One encoder and one decoder pass with no prompt: the best of three candidates where
        the card says `automatic_multimask`; where it says `automatic_detector`, the decoder's
        mask in the detected box, its predicted IoU times the detector's confidence."""
        embeddings = self.embedding(image, key)
        if self.sam.lesion_detector is None:
            mask, iou = self.decoded(embeddings, image, None, None)
            return Segmentation(mask=mask, score=iou)
        boxes, confidence = self.detected_box(embeddings, image.width, image.height)
        mask, iou = self.decoded(embeddings, image, boxes, None)
        return Segmentation(mask=mask, score=iou * confidence)

    def looked_again(self, image: Image.Image, first: Segmentation) -> Segmentation:
        """With the card's `automatic_zoom` and the detector, the first look's region outlined
        again in a window around it (`zoom_window`), where one magnifies it. The score stays
        the first look's: a second look, prompted by a box, predicts a high IoU on whatever it
        is shown, and only some images get one."""
        if not self.card.automatic_zoom or self.sam.lesion_detector is None:
            return first
        if not first.mask.any():
            return first
        box = bounding_box(first.mask)
        window = zoom_window(box, image.width, image.height, self.card)
        if window is None:
            return first
        return Segmentation(mask=self.outlined_in(image, window, box), score=first.score)

    def outlined_in(
        self, image: Image.Image, window: tuple[int, int, int, int], box: BoundingBox
    ) -> BoolMask:
        """The region in `box` outlined again in `window` around it, the image cropped there and
        prompted with the box: a second encoder and decoder pass, not cached (used once)."""
        x0, y0, x1, y1 = window
        crop = image.crop(window)
        scale = self.card.input_size / max(crop.width, crop.height)
        inside = [box.x0 - x0, box.y0 - y0, box.x1 - x0, box.y1 - y0]
        boxes = torch.tensor([inside], dtype=torch.float32) * scale
        crop_mask, _ = self.decoded(self.encoded(crop), crop, boxes, None)
        mask = np.zeros((image.height, image.width), dtype=bool)
        mask[y0:y1, x0:x1] = crop_mask
        return mask

    def decoded(
        self,
        embeddings: torch.Tensor,
        image: Image.Image,
        boxes: torch.Tensor | None,
        coords: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[BoolMask, float]:
        """The decoder's mask over `image` and its predicted IoU, for a box and points in the
        input's coordinates (none: the no-prompt region)."""
        size = self.card.input_size
        with torch.inference_mode():
            masks = None
            if boxes is not None and self.card.box_mask_prompt:
                masks = box_mask_prompt(boxes, size)
            sparse, dense = self.sam.prompt_encoder(points=coords, boxes=boxes, masks=masks)
            multimask = coords is not None or (boxes is None and self.card.automatic_multimask)
            logits, iou = decode_batch(self.sam, embeddings, sparse, dense, multimask)
        best = int(iou[0].argmax())
        mask = mask_logits_to_image(logits[:, best : best + 1], size, image.width, image.height)
        return (mask[0, 0] > 0).numpy(), float(iou[0, best])

    def detected_box(
        self, embeddings: torch.Tensor, width: int, height: int
    ) -> tuple[torch.Tensor, float]:
        """The detector's box (1×4 in the input, clipped to the image) and its confidence."""
        assert self.sam.lesion_detector is not None
        with torch.inference_mode():
            box, confidence = detected_boxes(*self.sam.lesion_detector(embeddings))
        fitted = torch.tensor([width, height, width, height]) * self.card.input_size
        box = torch.minimum(box.clamp(min=0), fitted / max(width, height))
        return box, float(confidence[0])

    def segment(
        self,
        upload: ValidatedImage,
        modality: Modality,
        prompt: Prompt,
        margin: float,
    ) -> SegmentResponse:
        if modality not in MODALITIES:
            raise ModelUnavailable(
                f"{self.card.name} {self.card.version} was trained on breast ultrasound only; "
                f"it does not segment {modality.value} images (draw a box to classify it as drawn)"
            )
        started = time.perf_counter()
        if not prompt.given:
            lesion = self.automatic(upload.image, upload.sha256)
            return segment_response(lesion, upload.image, self.ref, margin, started)
        found = self.predict(upload.image, upload.sha256, prompt.box, prompt.points)
        return segment_response(found, upload.image, self.ref, margin, started, prompt.box)

    def automatic(self, image: Image.Image, key: str) -> Segmentation | None:
        """No prompt: the most lesion-like region, or None where its score is under the card's
        threshold (not lesion-like enough) or the region is empty. What the service and the
        classifier's evaluation of automatic crops both use. Only a region that passes gets a
        second look: what it decides is the first look's."""
        first = self.first_look(image, key)
        if first.score < self.card.lesion_threshold or not first.mask.any():
            return None
        found = self.looked_again(image, first)
        return found if found.mask.any() else None


# A second look pays where its window shows the region this much larger than the whole image did.
MIN_ZOOM_GAIN = 1.25


def zoom_window(
    box: BoundingBox, width: int, height: int, card: SegmenterCard
) -> tuple[int, int, int, int] | None:
    """The square window (x0, y0, x1, y1; cut to the image) centred on `box`, the card's
    `automatic_zoom` times its longer side and never under the network's input size (no
    pixels the scan does not have), moved inside the image; None where it would magnify the
    region by less than `MIN_ZOOM_GAIN`. It holds the whole box."""
    side = max(round(card.automatic_zoom * max(box.x1 - box.x0, box.y1 - box.y0)), card.input_size)
    window_w, window_h = min(side, width), min(side, height)
    if max(width, height) < MIN_ZOOM_GAIN * max(window_w, window_h):
        return None
    x0 = min(max(round((box.x0 + box.x1 - window_w) / 2), 0), width - window_w)
    y0 = min(max(round((box.y0 + box.y1 - window_h) / 2), 0), height - window_h)
    return x0, y0, x0 + window_w, y0 + window_h
