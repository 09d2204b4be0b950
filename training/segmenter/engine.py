"""Training the lesion segmenter, and running it on held-out images.

One model serves three modes, so every training step samples all three prompts on the same
image embeddings: a box as a person draws it (the mask's box, each edge moved by up to
`box_jitter` of its side), a point on the lesion (and at times one off it), and no prompt at
all, where the model marks the most lesion-like region and its predicted IoU says whether it
is one (an image without a lesion is taught IoU 0). The loss is SAM's: 20 × focal + dice on the
masks, the squared error of the predicted IoU against the mask's real one; with points, only the
best of the three masks is taught, as SAM does for an ambiguous prompt. With
`automatic_multimask`, no prompt is ambiguous too (which region?): three candidates, the best
taught, and every candidate's IoU, since automatic mode keeps the one it scores highest.
With `automatic_detector`, the detection head learns each lesion's box as CenterNet does
(a focal loss on a Gaussian around the box's centre cell, an L1 loss on the box near it),
from the same embeddings, and an image without a lesion teaches it no centre anywhere.
"""

import itertools
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from segment_anything.modeling import Sam
from torch.nn import functional as F  # noqa: N812 - the usual name
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, Dataset
from torchvision.ops import masks_to_boxes
from tqdm import tqdm

from branet_segmenter.model import (
    CELL,
    LesionDetector,
    LesionSam,
    SegmenterCard,
    box_mask_prompt,
    build_lesion_sam,
    decode_batch,
    image_to_input,
    mask_to_input,
    network_input,
)
from branet_training.augmentation import ZOOM, augment, pasted_lesion
from branet_training.pretrained import calibrate_batch_norm, load_imagenet_trunk
from branet_training.runs import pick_device, seed_everything, warmup_cosine
from branet_training.segmenter.data import MaskedImage

log = logging.getLogger(__name__)
PROMPT_MODES = ("box", "point", "none")


@dataclass(frozen=True)
class SegmenterTrainConfig:
    input_size: int = 256
    embed_dim: int = 256
    decoder_depth: int = 2
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    augment: bool = True
    box_jitter: float = 0.1  # how far a drawn box's edge strays, a share of the box's side
    # Augmentation's geometry: the zoom factor's range, and how far the image moves each way
    # (a share of its side), so the lesion is taught anywhere at any size.
    augment_scale: tuple[float, float] = ZOOM
    augment_shift: float = 0.0
    augment_random_filter: float = 0.0  # the share of training images given another texture
    augment_copy_paste: float = 0.0  # the share of images without a lesion given another's
    # ImageNet MobileNetV2 (a ../shared/data/pretrained .tflite) to start the encoder from,
    # trained at `encoder_lr_scale` of the learning rate; None trains it from scratch.
    encoder_init: str | None = None
    encoder_lr_scale: float = 0.1
    # With `encoder_init`: MobileNetV2's first blocks kept as ImageNet made them (4: the
    # stride-4 edges and textures). Their backward pass is a quarter of a CPU step.
    encoder_frozen_blocks: int = 0
    box_mask_prompt: bool = True  # a box comes with its inscribed ellipse as the mask prompt
    automatic_multimask: bool = False  # no prompt: three candidate regions, not one
    fine_detail: bool = False  # the encoder's stride-4 features reach the decoder's masks
    automatic_detector: bool = False  # no prompt: a detection head's box prompts the decoder
    detector_context_layers: int = 0  # transformer layers over the grid before the head
    # No prompt: the region found outlined again in a window this many times its size (0: one
    # pass). Serving's choice, not the weights': kept models are scored with it as asked.
    automatic_zoom: float = 0.0
    # The model shipped is the mean of the weights (and batch-norm statistics) at the end of
    # each of the last N epochs (SWA, arXiv:1803.05407; flatter minima travel better to new
    # domains, SWAD, arXiv:2102.08604); 0 ships the last epoch's.
    weight_averaging_epochs: int = 0
    # Automatic mode's threshold, fitted on the model's own training images, or on held-out
    # sites' scores (train.py's `SiteModels.threshold`): the first found more lesions.
    threshold_fit: Literal["training_images", "held_out_sites"] = "training_images"
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        # Out of range, either would train quietly on what was not asked for: no image
        # filtered, or no epoch averaged and the untrained weights kept.
        if not 0 <= self.augment_random_filter <= 1:
            raise ValueError("augment_random_filter is a share of the images: 0 to 1")
        if not 0 <= self.augment_copy_paste <= 1:
            raise ValueError("augment_copy_paste is a share of the images: 0 to 1")
        if not 0 <= self.weight_averaging_epochs <= self.epochs:
            raise ValueError("weight_averaging_epochs counts the last epochs: 0 to epochs")
        if 0 < self.automatic_zoom < 1:  # a window smaller than the region would cut it
            raise ValueError("automatic_zoom is 0 (one pass) or at least 1")

    def card(self, **fields: Any) -> SegmenterCard:
        """A card with this configuration's network (weights fields given by the caller)."""
        return SegmenterCard(
            input_size=self.input_size,
            embed_dim=self.embed_dim,
            decoder_depth=self.decoder_depth,
            box_mask_prompt=self.box_mask_prompt,
            automatic_multimask=self.automatic_multimask,
            fine_detail=self.fine_detail,
            automatic_detector=self.automatic_detector,
            detector_context_layers=self.detector_context_layers,
            automatic_zoom=self.automatic_zoom,
            **fields,
        )


class MaskDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """(1×S×S image in [0, 1], 1×S×S mask) per image, decoded once, augmented in training;
    there, with probability `copy_paste`, an image without a lesion is given another image's
    lesion (`pasted_lesion`) first."""

    def __init__(
        self,
        images: Sequence[MaskedImage],
        size: int,
        train: bool,
        seed: int,
        scale: tuple[float, float] = ZOOM,
        shift: float = 0.0,
        random_filter: float = 0.0,
        copy_paste: float = 0.0,
    ) -> None:
        self.train = train
        self.scale, self.shift, self.random_filter = scale, shift, random_filter
        self.copy_paste = copy_paste
        self.rng = random.Random(seed)  # noqa: S311 - augmentation, not secrets
        self.items: list[tuple[torch.Tensor, torch.Tensor]] = []
        for image in images:
            picture, mask = image.image_and_mask()
            pixels = (image_to_input(picture, size) * 255).round().to(torch.uint8)
            self.items.append((pixels, mask_to_input(mask, size).to(torch.uint8)))
        self.donors = [i for i, (_, mask) in enumerate(self.items) if mask.any()]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pixels, mask = (layer.float() for layer in self.items[index])
        pixels = pixels / 255
        # Drawn only when asked for, on an image without a lesion: other runs draw as before.
        pasting = self.train and self.copy_paste and self.donors and not mask.any()
        if pasting and self.rng.random() < self.copy_paste:
            donor, donor_mask = self.items[self.rng.choice(self.donors)]
            pixels, mask = pasted_lesion(pixels, donor.float() / 255, donor_mask.float(), self.rng)
        if self.train:
            augmented, moved = augment(
                pixels, self.rng, mask, self.scale, self.shift, random_filter=self.random_filter
            )
            assert moved is not None
            return augmented, moved
        return pixels, mask


def jittered_box(mask: torch.Tensor, rng: random.Random, jitter: float) -> list[float]:
    """x0, y0, x1, y1 of a 1×S×S mask's box, each edge moved by up to `jitter` of its side."""
    rows = torch.nonzero(mask[0].any(dim=1)).flatten()
    cols = torch.nonzero(mask[0].any(dim=0)).flatten()
    x0, x1 = float(cols[0]), float(cols[-1]) + 1
    y0, y1 = float(rows[0]), float(rows[-1]) + 1
    width, height = x1 - x0, y1 - y0
    size = mask.shape[-1]

    def move(value: float, side: float) -> float:
        return min(max(value + rng.uniform(-jitter, jitter) * side, 0.0), float(size))

    box = [move(x0, width), move(y0, height), move(x1, width), move(y1, height)]
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:  # jitter crossed the edges: keep the truth
        return [x0, y0, x1, y1]
    return box


def sampled_points(mask: torch.Tensor, rng: random.Random) -> tuple[list[list[float]], list[int]]:
    """One point on the lesion and, half the time, one off it (else a padding point, label -1,
    which SAM's prompt encoder ignores): coordinates in the S×S input, and labels."""
    inside = torch.nonzero(mask[0] > 0.5)
    y, x = inside[rng.randrange(len(inside))].tolist()
    points, labels = [[x + 0.5, y + 0.5]], [1]
    outside = torch.nonzero(mask[0] < 0.5)
    if rng.random() < 0.5 and len(outside):
        y, x = outside[rng.randrange(len(outside))].tolist()
        points.append([x + 0.5, y + 0.5])
        labels.append(0)
    else:
        points.append([0.0, 0.0])
        labels.append(-1)
    return points, labels


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per mask (N×K) mean sigmoid focal loss (alpha 0.25, gamma 2), as SAM trains."""
    probability = torch.sigmoid(logits)
    cross = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = probability * target + (1 - probability) * (1 - target)
    alpha = 0.25 * target + 0.75 * (1 - target)
    return (alpha * cross * (1 - p_t) ** 2).flatten(2).mean(dim=2)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per mask (N×K) 1 - soft Dice; an empty target asks for an empty mask."""
    probability = torch.sigmoid(logits).flatten(2)
    truth = target.flatten(2)
    overlap = (probability * truth).sum(dim=2)
    return 1 - (2 * overlap + 1) / (probability.sum(dim=2) + truth.sum(dim=2) + 1)


def hard_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per mask (N×K) IoU of the thresholded mask with the target; 0 where both are empty."""
    predicted = (logits > 0).flatten(2)
    truth = target.flatten(2) > 0.5
    union = (predicted | truth).sum(dim=2).float()
    return torch.where(union > 0, (predicted & truth).sum(dim=2) / union.clamp(min=1), 0.0)


def detection_targets(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For N×1×S×S masks, what the detector is taught on its G×G grid (G = S/16): N×1×G×G
    centre targets (1 at the cell holding the box's centre, a Gaussian of a sixth of the box's
    side around it, 0 everywhere without a lesion) and N×4×G×G boxes (each cell's offset to
    the centre, and the log of the box's size, in cells)."""
    batch, size = len(masks), masks.shape[-1]
    grid = size // CELL
    lesion = masks.flatten(1).amax(dim=1) > 0
    pixel_boxes = torch.zeros(batch, 4, device=masks.device)  # no lesion: no box, never taught
    if lesion.any():  # torchvision's boxes end on the last pixel, ours after it
        pixel_boxes[lesion] = masks_to_boxes(masks[lesion, 0] > 0) + torch.tensor(
            [0.0, 0.0, 1.0, 1.0], device=masks.device
        )
    x0, y0, x1, y1 = pixel_boxes.unbind(dim=1)
    width, height = ((x1 - x0) / CELL).clamp(min=0.1), ((y1 - y0) / CELL).clamp(min=0.1)
    cx, cy = (x0 + x1) / 2 / CELL, (y0 + y1) / 2 / CELL  # in cells
    cells = torch.arange(grid, device=masks.device).float() + 0.5
    dx = cx[:, None] - cells[None]  # N×G: each column's offset to the centre
    dy = cy[:, None] - cells[None]
    sx, sy = (width / 6).clamp(min=0.5), (height / 6).clamp(min=0.5)
    gauss = torch.exp(-(dy[:, :, None] ** 2) / (2 * sy[:, None, None] ** 2)) * torch.exp(
        -(dx[:, None, :] ** 2) / (2 * sx[:, None, None] ** 2)
    )
    peak = gauss.flatten(1).argmax(dim=1)
    gauss.view(batch, -1)[torch.arange(batch), peak] = 1.0
    centres = torch.where(lesion[:, None, None], gauss, 0.0)[:, None]
    boxes = torch.stack(
        [
            dx[:, None, :].expand(-1, grid, -1),
            dy[:, :, None].expand(-1, -1, grid),
            width.log()[:, None, None].expand(-1, grid, grid),
            height.log()[:, None, None].expand(-1, grid, grid),
        ],
        dim=1,
    )
    return centres, boxes


def detection_loss(
    detector: LesionDetector, embeddings: torch.Tensor, masks: torch.Tensor
) -> torch.Tensor:
    """CenterNet's losses: the penalty-reduced focal loss on the centres, per lesion, and the
    L1 loss on the boxes of the cells near a centre, weighted by their centre target."""
    logits, boxes = detector(embeddings)
    centres, box_targets = detection_targets(masks)
    probability = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    positive = centres == 1
    focal = torch.where(
        positive,
        -((1 - probability) ** 2) * probability.log(),
        -((1 - centres) ** 4) * probability**2 * (1 - probability).log(),
    )
    lesions = positive.sum().clamp(min=1)
    near = torch.where(centres > 0.3, centres, 0.0)
    box_error = (boxes - box_targets).abs().sum(dim=1, keepdim=True) * near
    loss: torch.Tensor = focal.sum() / lesions + box_error.sum() / near.sum().clamp(min=1)
    return loss


@dataclass
class PromptBatch:
    """The prompts of one mode for a batch, in the S×S input's coordinates."""

    boxes: torch.Tensor | None = None
    points: tuple[torch.Tensor, torch.Tensor] | None = None
    masks: torch.Tensor | None = None  # SAM's mask prompt: the box's ellipse, when the card asks
    multimask: bool = False  # three masks, the best taught (a point: part of a lesion or all?)
    every_iou: bool = False  # with `multimask`: every mask's IoU taught, not the best one's


def decode(
    sam: Sam, embeddings: torch.Tensor, prompts: PromptBatch
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask logits at the input's size (N×K×S×S) and predicted IoUs (N×K) for `prompts`."""
    sparse, dense = sam.prompt_encoder(
        points=prompts.points, boxes=prompts.boxes, masks=prompts.masks
    )
    if sparse.shape[0] != len(embeddings):  # no prompt: one empty set, for every image
        sparse = sparse.expand(len(embeddings), -1, -1)
        dense = dense.expand(len(embeddings), -1, -1, -1)
    logits, iou = decode_batch(sam, embeddings, sparse, dense, prompts.multimask)
    size = sam.image_encoder.img_size
    upscaled = F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)
    return upscaled, iou


def mode_loss(
    sam: Sam, embeddings: torch.Tensor, prompts: PromptBatch, masks: torch.Tensor
) -> torch.Tensor:
    logits, predicted_iou = decode(sam, embeddings, prompts)
    target = masks.expand_as(logits)
    per_mask = 20 * focal_loss(logits, target) + dice_loss(logits, target)
    best = per_mask.argmin(dim=1, keepdim=True)
    iou_error = (predicted_iou - hard_iou(logits, target).detach()) ** 2
    taught_iou = iou_error.mean(dim=1) if prompts.every_iou else iou_error.gather(1, best)[:, 0]
    loss: torch.Tensor = (per_mask.gather(1, best)[:, 0] + taught_iou).mean()
    return loss


def batch_prompts(
    masks: torch.Tensor,
    rng: random.Random,
    jitter: float,
    device: torch.device,
    ellipse_prompt: bool = False,
) -> list[PromptBatch]:
    """A drawn box (with its ellipse as mask prompt if `ellipse_prompt`) and sampled points for
    each mask, on `device`."""
    masks = masks.cpu()
    boxes = torch.tensor([jittered_box(mask, rng, jitter) for mask in masks], device=device)
    box_masks = box_mask_prompt(boxes, masks.shape[-1]) if ellipse_prompt else None
    sampled = [sampled_points(mask, rng) for mask in masks]
    coords = torch.tensor([points for points, _ in sampled], device=device)
    labels = torch.tensor([point_labels for _, point_labels in sampled], device=device)
    return [
        PromptBatch(boxes=boxes, masks=box_masks),
        PromptBatch(points=(coords, labels), multimask=True),
    ]


def start_from_imagenet(
    sam: Sam, tflite: Path, loader: DataLoader[Any], device: torch.device, batches: int = 8
) -> None:
    """The encoder's trunk from ImageNet, its batch norms given these images' statistics."""
    load_imagenet_trunk(sam.image_encoder, tflite)
    inputs = (
        sam.preprocess(network_input(pixels.to(device)))
        for pixels, _ in itertools.islice(loader, batches)
    )
    calibrate_batch_norm(sam.image_encoder, inputs)
    log.info("encoder started from %s", tflite.name)


def freeze_early_blocks(sam: Sam, count: int) -> torch.nn.Module:
    """The encoder's first `count` blocks, made a fixed feature extractor: no gradients, and
    batch norms on the statistics they were calibrated with (the caller keeps them in eval)."""
    frozen: torch.nn.Module = sam.image_encoder.stride16[:count]
    frozen.requires_grad_(False)
    return frozen.eval()


@dataclass
class TrainedSegmenter:
    sam: LesionSam
    card: SegmenterCard
    history: list[dict[str, float]] = field(default_factory=list)


def train_segmenter(
    images: Sequence[MaskedImage], config: SegmenterTrainConfig, progress_label: str = ""
) -> TrainedSegmenter:
    seed_everything(config.seed)
    device = pick_device(config.device)
    # Weights are named and pinned when shipped (train.py's `ship`).
    card = config.card(
        name="branet-lesion-sam", version="training", weights_file="-", weights_sha256="0" * 64
    )
    # Channels-last convolutions: the same numbers, a quarter faster on a CPU.
    sam = build_lesion_sam(card).to(device)
    sam.image_encoder.to(memory_format=torch.channels_last)
    dataset = MaskDataset(
        images,
        config.input_size,
        config.augment,
        config.seed,
        scale=config.augment_scale,
        shift=config.augment_shift,
        random_filter=config.augment_random_filter,
        copy_paste=config.augment_copy_paste,
    )
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=False)
    encoder_lr = config.learning_rate
    if config.encoder_init is not None:
        start_from_imagenet(sam, Path(config.encoder_init), loader, device)
        encoder_lr *= config.encoder_lr_scale
    frozen = freeze_early_blocks(sam, config.encoder_frozen_blocks if config.encoder_init else 0)
    encoder = sam.image_encoder
    trunk_ids = {id(p) for p in [*encoder.stride16.parameters(), *encoder.stride32.parameters()]}
    trainable = [p for p in sam.parameters() if p.requires_grad]  # the frozen blocks left out
    trunk = [p for p in trainable if id(p) in trunk_ids]
    rest = [p for p in trainable if id(p) not in trunk_ids]
    groups: list[dict[str, Any]] = [{"params": trunk, "lr": encoder_lr}, {"params": rest}]
    optimizer = torch.optim.AdamW(
        groups,
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    steps = config.epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(steps, max(1, steps // 20))
    )
    rng = random.Random(config.seed + 1)  # noqa: S311 - prompts, not secrets
    no_prompt = PromptBatch(multimask=config.automatic_multimask, every_iou=True)
    averaged = AveragedModel(sam, use_buffers=True) if config.weight_averaging_epochs else None
    history = []
    for epoch in range(config.epochs):
        sam.train()
        frozen.eval()
        total, loss_sum = 0, 0.0
        label = f"{progress_label} epoch {epoch + 1}/{config.epochs}"
        for pixels, masks in tqdm(loader, desc=label, leave=False, disable=None):
            pixels, masks = pixels.to(device), masks.to(device)
            inputs = sam.preprocess(network_input(pixels))
            embeddings = sam.image_encoder(inputs.contiguous(memory_format=torch.channels_last))
            loss = mode_loss(sam, embeddings, no_prompt, masks)
            if sam.lesion_detector is not None:
                loss = loss + detection_loss(sam.lesion_detector, embeddings, masks)
            lesion = masks.flatten(1).amax(dim=1) > 0
            if lesion.any():
                prompts = batch_prompts(
                    masks[lesion], rng, config.box_jitter, device, card.box_mask_prompt
                )
                for prompt in prompts:
                    loss = loss + mode_loss(sam, embeddings[lesion], prompt, masks[lesion])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            scheduler.step()
            total += len(pixels)
            loss_sum += float(loss.detach()) * len(pixels)
        history.append({"epoch": epoch + 1, "loss": loss_sum / max(1, total)})
        tqdm.write(f"{label}: loss {loss_sum / max(1, total):.4f}")
        if averaged is not None and epoch >= config.epochs - config.weight_averaging_epochs:
            averaged.update_parameters(sam)
    if averaged is not None:
        assert isinstance(averaged.module, LesionSam)
        sam = averaged.module
    sam.image_encoder.to(memory_format=torch.contiguous_format)  # safetensors saves these
    return TrainedSegmenter(sam.eval().cpu(), card, history)


@dataclass(frozen=True)
class Prediction:
    """One image's mask (at its own size) and predicted IoU in one mode."""

    mask: npt.NDArray[np.bool_]
    score: float
