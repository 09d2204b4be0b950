"""What training and serving must agree on for BraNet's own lesion segmenter: its card, and the
network built from it: segment-anything's `Sam`, `PromptEncoder`, `MaskDecoder` and
`TwoWayTransformer`, with a compact convolutional image encoder sized for a CPU.

The encoder is torchvision's MobileNetV2 trunk (the ImageNet network the project can have),
its stride-16 and stride-32 features joined and brought to SAM's image embedding (the card's
`embed_dim` channels at 1/16 of the input) by SAM's own neck. With the card's `fine_detail`, its
stride-4 features reach the mask decoder too, added to the decoder's upscaled mask features
(HQ-SAM's idea, arXiv:2306.01567): the 1/16 embedding alone leaves edges coarse. They travel
inside the embedding, beyond its `embed_dim` channels, stored space-to-depth at 1/16, so the
embedding stays one tensor to cache and batch. A model on disk is a card (`<name>.json`) and
the safetensors weights it names, whose SHA-256 it pins. With the card's `automatic_detector`,
a small detection head on the embedding places the lesion's box for automatic mode.
"""

from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import torch
import torchvision
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator
from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segment_anything.modeling.common import LayerNorm2d
from torch.nn import functional as F  # noqa: N812 - the usual name
from torchvision.transforms.v2 import functional as tvf

from branet_shared.images import fitted_size  # SAM's ResizeLongestSide

# MobileNetV2's features: blocks 0-3 end at stride 4 (24 channels), 0-13 at stride 16 (96),
# 14-17 at 32 (320).
STRIDE_4_BLOCKS, STRIDE_4_CHANNELS = 4, 24
STRIDE_16_BLOCKS = 14
STRIDE_32_BLOCKS = 18
ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)
# The ImageNet MobileNetV2 saw pixels mapped to [-1, 1] (../shared/data/pretrained/README.md).
PIXEL_MEAN = PIXEL_STD = (127.5, 127.5, 127.5)


def _pad_bottom_right(_: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
    return (F.pad(inputs[0], (0, 1, 0, 1)),)


def pad_as_tensorflow(network: ModuleT) -> ModuleT:
    """Make every stride-2 3×3 convolution pad as TensorFlow's "SAME" does, one pixel at the
    bottom and right only: the ImageNet weights were trained so, and PyTorch's even padding
    shifts each stride-2 layer by half a pixel (ImageNet top-1 agreement with the original 0.41
    padded evenly, 0.97 padded as TensorFlow: reports/mobilenet-conversion.json)."""
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d) and module.stride == (2, 2):
            module.padding = (0, 0)
            module.register_forward_pre_hook(_pad_bottom_right)
    return network


class SegmenterCard(BaseModel):
    """What a shipped lesion segmenter is, how to build and feed it, and how it measured."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    version: str
    architecture: Literal["sam-mobilenet_v2"] = "sam-mobilenet_v2"
    weights_file: str
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    input_size: int = Field(256, ge=64, le=1024, multiple_of=32)
    embed_dim: int = Field(256, ge=16, le=512, description="SAM's image embedding channels")
    decoder_depth: int = Field(2, ge=1, le=4, description="two-way transformer blocks")
    decoder_mlp_dim: int = Field(2048, ge=16)
    decoder_heads: int = Field(8, ge=1)
    box_mask_prompt: bool = Field(
        False,
        description="a box comes with the ellipse inscribed in it as SAM's mask prompt, so the"
        " decoder refines that ellipse (a strong start: Dice 0.84 alone with a drawn box)",
    )
    automatic_multimask: bool = Field(
        False,
        description="no prompt: three candidate regions, the one of highest predicted IoU kept"
        " (trained so: the best of three taught, every one's IoU), else a single region",
    )
    fine_detail: bool = Field(
        False,
        description="the encoder's stride-4 features added to the decoder's mask features,"
        " for finer edges than the 1/16 embedding gives",
    )
    automatic_detector: bool = Field(
        False,
        description="no prompt: a detection head places the lesion's box, which prompts the"
        " decoder as a drawn box does; the score is the head's confidence times the mask's"
        " predicted IoU (else the decoder's own no-prompt region and its predicted IoU)",
    )
    detector_context_layers: int = Field(
        0,
        ge=0,
        le=4,
        description="transformer layers across the whole embedding before the detection"
        " head's convolutions, so each cell's lesion score can weigh every other region",
    )
    automatic_zoom: float = Field(
        0.0,
        ge=0,
        le=8,
        description="no prompt, with the detector: 0 for one pass; else the region found is"
        " looked at again, the image cropped to this many times its longer side around it and"
        " prompted with its box, so a small lesion is outlined at the scale the network saw"
        " lesions in training; the score stays the first look's",
    )
    lesion_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="automatic mode: a lesion is found where the predicted IoU reaches this;"
        " fitted on training folds only",
    )
    metrics: dict[str, float] = Field(default_factory=dict)
    description: str = ""
    training: dict[str, Any] = Field(default_factory=dict, description="config, data, commit")

    @field_validator("automatic_zoom")
    @classmethod
    def _zoom_holds_the_region(cls, zoom: float) -> float:
        if 0 < zoom < 1:  # a window smaller than the region would cut it
            raise ValueError("automatic_zoom is 0 (one pass) or at least 1")
        return zoom


class MobileNetImageEncoder(torch.nn.Module):
    """MobileNetV2's trunk as SAM's image encoder: N×3×S×S to N×embed_dim×S/16×S/16, and with
    `fine_detail` 16 × embed_dim/8 more channels: the stride-4 detail, space-to-depth."""

    def __init__(self, img_size: int, embed_dim: int, fine_detail: bool = False) -> None:
        super().__init__()
        self.img_size = img_size  # SamPredictor and Sam.preprocess read it
        features = pad_as_tensorflow(torchvision.models.mobilenet_v2(weights=None).features)
        self.stride16 = features[:STRIDE_16_BLOCKS]
        self.stride32 = features[STRIDE_16_BLOCKS:STRIDE_32_BLOCKS]
        joined = 96 + 320
        # SAM's neck (image_encoder.py): 1×1 conv, LayerNorm2d, 3×3 conv, LayerNorm2d.
        self.neck = torch.nn.Sequential(
            torch.nn.Conv2d(joined, embed_dim, kernel_size=1, bias=False),
            LayerNorm2d(embed_dim),
            torch.nn.Conv2d(embed_dim, embed_dim, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(embed_dim),
        )
        # To the decoder's mask-feature channels; its last layer starts at zero, so training
        # starts from the network without it.
        mask_channels = embed_dim // 8
        self.detail = None
        if fine_detail:
            to_masks = torch.nn.Conv2d(mask_channels, mask_channels, kernel_size=1, bias=False)
            torch.nn.init.zeros_(to_masks.weight)
            self.detail = torch.nn.Sequential(
                torch.nn.Conv2d(STRIDE_4_CHANNELS, mask_channels, kernel_size=3, padding=1),
                LayerNorm2d(mask_channels),
                torch.nn.GELU(),
                to_masks,
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        early = self.stride16[:STRIDE_4_BLOCKS](images)
        fine = self.stride16[STRIDE_4_BLOCKS:](early)
        coarse = F.interpolate(self.stride32(fine), size=fine.shape[-2:], mode="nearest")
        embedding: torch.Tensor = self.neck(torch.cat([fine, coarse], dim=1))
        if self.detail is None:
            return embedding
        return torch.cat([embedding, F.pixel_unshuffle(self.detail(early), 4)], dim=1)


# The embedding's cell, in input pixels: the detector's unit of position and size.
CELL = 16


class GridContext(torch.nn.Module):
    """Pre-norm transformer layers across every cell of the G×G embedding, a learned position
    per cell: the detector's convolutions see a few cells, but whether a dark region is the
    lesion or a shadow is a comparison with the rest of the image."""

    def __init__(self, embed_dim: int, grid: int, layers: int) -> None:
        super().__init__()
        self.position = torch.nn.Parameter(torch.zeros(1, grid * grid, embed_dim))
        torch.nn.init.trunc_normal_(self.position, std=0.02)
        layer = torch.nn.TransformerEncoderLayer(
            embed_dim,
            nhead=8,
            dim_feedforward=2 * embed_dim,
            batch_first=True,
            norm_first=True,
            activation="gelu",
        )
        self.layers = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, channels, rows, columns = features.shape
        tokens: torch.Tensor = self.layers(features.flatten(2).transpose(1, 2) + self.position)
        return tokens.transpose(1, 2).reshape(batch, channels, rows, columns)


class LesionDetector(torch.nn.Module):
    """Where the lesion is, from SAM's image embedding (CenterNet's idea, arXiv:1904.07850):
    per cell of the 1/16 grid, the logit that the lesion's box is centred there, and that box:
    its centre's offset from the cell's centre and the log of its width and height, in cells.
    A box found so prompts the decoder in its strong mode (Dice 0.86 with a drawn box, against
    0.73 with one point), where its own no-prompt region must find the extent unaided."""

    def __init__(self, embed_dim: int, grid: int, context_layers: int = 0) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        hidden = embed_dim // 2
        self.context = GridContext(embed_dim, grid, context_layers) if context_layers else None
        self.trunk = torch.nn.Sequential(
            torch.nn.Conv2d(embed_dim, hidden, kernel_size=3, padding=1),
            LayerNorm2d(hidden),
            torch.nn.GELU(),
            torch.nn.Conv2d(hidden, hidden, kernel_size=3, padding=1),
            torch.nn.GELU(),
        )
        self.centre = torch.nn.Conv2d(hidden, 1, kernel_size=1)
        assert self.centre.bias is not None
        torch.nn.init.constant_(self.centre.bias, -4.6)  # a centre is rare: start at p = 0.01
        self.box = torch.nn.Conv2d(hidden, 4, kernel_size=1)

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """N×1×G×G centre logits and N×4×G×G boxes (dx, dy, log w, log h) from the N×C×G×G
        embedding: its first `embed_dim` channels, SAM's, not the fine detail beyond them."""
        features = embedding[:, : self.embed_dim]
        if self.context is not None:
            features = self.context(features)
        features = self.trunk(features)
        return self.centre(features), self.box(features)


def detected_boxes(centres: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The detector's most confident box per image: N×4 (x0, y0, x1, y1 in input pixels,
    unclipped) and its centre's probability, N."""
    batch, _, _, width = centres.shape
    logits, cell = centres.flatten(1).max(dim=1)
    row, column = cell // width, cell % width
    dx, dy, log_w, log_h = boxes.flatten(2)[torch.arange(batch), :, cell].unbind(dim=1)
    x, y = (column + 0.5 + dx) * CELL, (row + 0.5 + dy) * CELL
    half_w, half_h = log_w.exp() * CELL / 2, log_h.exp() * CELL / 2
    return torch.stack([x - half_w, y - half_h, x + half_w, y + half_h], dim=1), logits.sigmoid()


class LesionSam(Sam):  # type: ignore[misc] # segment-anything has no type hints
    """SAM with, where the card asks, the lesion detector for automatic mode."""

    def __init__(self, detector: LesionDetector | None, **parts: Any) -> None:
        super().__init__(**parts)
        self.lesion_detector = detector


def build_lesion_sam(card: SegmenterCard) -> LesionSam:
    """The card's network with fresh weights: SAM's prompt encoder and mask decoder around the
    MobileNetV2 encoder. Training and serving both build it here."""
    size, dim = card.input_size, card.embed_dim
    grid = size // CELL
    return LesionSam(
        detector=(
            LesionDetector(dim, grid, card.detector_context_layers)
            if card.automatic_detector
            else None
        ),
        pixel_mean=list(PIXEL_MEAN),
        pixel_std=list(PIXEL_STD),
        image_encoder=MobileNetImageEncoder(size, dim, card.fine_detail),
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(grid, grid),
            input_image_size=(size, size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            transformer_dim=dim,
            transformer=TwoWayTransformer(
                depth=card.decoder_depth,
                embedding_dim=dim,
                mlp_dim=card.decoder_mlp_dim,
                num_heads=card.decoder_heads,
            ),
            num_multimask_outputs=3,
            iou_head_depth=3,
            iou_head_hidden_dim=dim,
        ),
    )


def decode_batch(
    sam: Sam,
    embeddings: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor,
    multimask: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask logits (N×K×S/4×S/4) and predicted IoUs (N×K) for N images with one prompt each.

    segment-anything 1.0's `MaskDecoder.predict_masks`, but for N embeddings against N prompts:
    the package's repeats one image's embedding for every prompt, which batches prompts on one
    image, not images (training and the one-pass automatic mode batch images). K is 3 with
    `multimask`, else 1, as `MaskDecoder.forward` selects. Channels of `embeddings` beyond the
    prompt encoder's are the encoder's fine detail, added to the upscaled mask features.
    """
    decoder = sam.mask_decoder
    embed_dim = sam.prompt_encoder.embed_dim
    embeddings, detail = embeddings[:, :embed_dim], embeddings[:, embed_dim:]
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat((output_tokens.unsqueeze(0).expand(len(sparse), -1, -1), sparse), dim=1)
    src = embeddings + dense
    positions = sam.prompt_encoder.get_dense_pe().expand(len(src), -1, -1, -1)
    batch, channels, height, width = src.shape
    hidden, src = decoder.transformer(src, positions, tokens)
    mask_tokens = hidden[:, 1 : 1 + decoder.num_mask_tokens, :]
    upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(batch, channels, height, width))
    if detail.shape[1]:
        upscaled = upscaled + F.pixel_shuffle(detail, 4)
    hyper_in = torch.stack(
        [mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)],
        dim=1,
    )
    batch, channels, height, width = upscaled.shape
    masks = (hyper_in @ upscaled.reshape(batch, channels, height * width)).reshape(
        batch, -1, height, width
    )
    iou = decoder.iou_prediction_head(hidden[:, 0, :])
    chosen = slice(1, None) if multimask else slice(0, 1)
    return masks[:, chosen], iou[:, chosen]


# The mask prompt's logit inside (and, negated, outside) the box's ellipse: confident but not
# saturated, as SAM's own low-resolution logits fed back for refinement are.
MASK_PROMPT_LOGIT = 4.0


def box_mask_prompt(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """N×4 boxes (x0, y0, x1, y1 in the S×S input) to SAM's mask prompt: N×1×S/4×S/4 logits,
    positive inside the ellipse inscribed in each box. Training and serving both call it."""
    grid = size // 4
    centres = (torch.arange(grid, dtype=torch.float32, device=boxes.device) + 0.5) * 4
    x0, y0, x1, y1 = (boxes[:, i, None, None] for i in range(4))
    rx, ry = ((x1 - x0) / 2).clamp(min=1.0), ((y1 - y0) / 2).clamp(min=1.0)
    dx = (centres[None, None, :] - (x0 + x1) / 2) / rx
    dy = (centres[None, :, None] - (y0 + y1) / 2) / ry
    inside = dx**2 + dy**2 <= 1
    return torch.where(inside, MASK_PROMPT_LOGIT, -MASK_PROMPT_LOGIT)[:, None]


def image_to_input(image: Image.Image, size: int) -> torch.Tensor:
    """1×S×S in [0, 1]: the image in grayscale, its longer side scaled to S, padded with black
    at the right and bottom as SAM pads. Colour is dropped, as for the classifier: in these
    images it is annotation. Training and serving both start here."""
    gray = image if image.mode == "L" else image.convert("L")
    width, height = fitted_size(gray.width, gray.height, size)
    pixels = tvf.to_dtype(tvf.pil_to_tensor(gray), torch.float32, scale=True)
    pixels = tvf.resize(pixels, [height, width], antialias=True)
    return F.pad(pixels, (0, size - width, 0, size - height))


def mask_to_input(mask: npt.NDArray[np.bool_], size: int) -> torch.Tensor:
    """A height×width mask resized and padded as `image_to_input` does the image: 1×S×S 0/1."""
    height, width = mask.shape
    fitted_w, fitted_h = fitted_size(width, height, size)
    values = torch.from_numpy(mask.astype(np.float32))[None]
    values = tvf.resize(values, [fitted_h, fitted_w], antialias=True)
    return (F.pad(values, (0, size - fitted_w, 0, size - fitted_h)) > 0.5).float()


def network_input(pixels: torch.Tensor) -> torch.Tensor:
    """N×1×S×S in [0, 1] to what `Sam.preprocess` takes: three channels of 0..255."""
    return pixels.expand(-1, 3, -1, -1) * 255.0


def mask_logits_to_image(logits: torch.Tensor, size: int, width: int, height: int) -> torch.Tensor:
    """N×K×S/4×S/4 mask logits to N×K×height×width over the original image (padding cut)."""
    full = F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)
    fitted_w, fitted_h = fitted_size(width, height, size)
    return F.interpolate(
        full[..., :fitted_h, :fitted_w], size=(height, width), mode="bilinear", align_corners=False
    )
