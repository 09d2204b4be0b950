"""BraNet's own lesion segmenter, served: the card's network (`model.py`), prompted by a box or
points, or with no prompt at all, where one encoder pass and one decoder pass mark the most
lesion-like region (with the card's `automatic_detector`, inside the box its detection head
places) and its score, against the card's `lesion_threshold`, says whether there is a lesion.
Trained on breast ultrasound only: other modalities are refused with why.
"""

import time
from collections.abc import Sequence
from pathlib import Path

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
from branet_segmenter.responses import Segmentation, segment_response
from branet_shared.errors import ModelUnavailable
from branet_shared.images import ValidatedImage
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
        pixels = image_to_input(image, self.card.input_size)[None]
        with torch.inference_mode():
            features: torch.Tensor = self.sam.image_encoder(
                self.sam.preprocess(network_input(pixels))
            )
        size = self.card.input_size
        self.cache.put(key, Embedding(features, (image.height, image.width), (size, size)))
        return features

    def predict(
        self,
        image: Image.Image,
        key: str,
        box: BoundingBox | None,
        points: Sequence[Point],
    ) -> Segmentation:
        """The mask and predicted IoU for the prompt: the box's single mask, the best of three
        for points (a point is ambiguous), for none the most lesion-like region (the best of
        three candidates where the card says `automatic_multimask`; in the detected box, its
        score times the detector's confidence, where it says `automatic_detector`)."""
        size = self.card.input_size
        scale = size / max(image.width, image.height)  # as SAM scales prompts
        boxes = None
        if box is not None:
            boxes = torch.tensor([[box.x0, box.y0, box.x1, box.y1]], dtype=torch.float32) * scale
        coords = None
        if points:
            xy = torch.tensor([[[p.x + 0.5, p.y + 0.5] for p in points]]) * scale
            coords = (xy, torch.tensor([[p.label for p in points]]))
        embeddings = self.embedding(image, key)
        confidence = 1.0
        with torch.inference_mode():
            if boxes is None and not points and self.sam.lesion_detector is not None:
                boxes, confidence = self.detected_box(embeddings, image.width, image.height)
            masks = None
            if boxes is not None and self.card.box_mask_prompt:
                masks = box_mask_prompt(boxes, size)
            sparse, dense = self.sam.prompt_encoder(points=coords, boxes=boxes, masks=masks)
            multimask = bool(points) or (boxes is None and self.card.automatic_multimask)
            logits, iou = decode_batch(self.sam, embeddings, sparse, dense, multimask)
        best = int(iou[0].argmax())
        mask = mask_logits_to_image(logits[:, best : best + 1], size, image.width, image.height)
        return Segmentation(mask=(mask[0, 0] > 0).numpy(), score=float(iou[0, best]) * confidence)

    def detected_box(
        self, embeddings: torch.Tensor, width: int, height: int
    ) -> tuple[torch.Tensor, float]:
        """The detector's box (1×4 in the input, clipped to the image) and its confidence."""
        assert self.sam.lesion_detector is not None
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
        """No prompt: the most lesion-like region, or None where its predicted IoU is under
        the card's threshold (not lesion-like enough) or the region is empty. What the service
        and the classifier's evaluation of automatic crops both use."""
        found = self.predict(image, key, None, ())
        return found if found.score >= self.card.lesion_threshold and found.mask.any() else None
