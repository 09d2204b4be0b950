"""Training a ResNet18 benign/malignant classifier: augmentation, the loop, calibration.

The input is the lesion's region of interest — the crop the segmenter (or a user's box) gives
the service — with a random amount of context, and now and then the whole image, so the model
serves both. Augmentation varies what differs between scanners and hospitals (gain, contrast,
speckle, blur, scale) and blots out small patches, where calipers and text would be.
"""

import itertools
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from torchvision.transforms.v2 import functional as tvf
from tqdm import tqdm

from branet_classifier.model import (
    LesionCrop,
    build_resnet18,
    calibrated_logits,
    crop_around,
    crop_to_lesion,
    image_to_tensor,
    lesion_marker,
    model_tensor,
)
from branet_shared.schemas import BoundingBox, Label
from branet_training.augmentation import augment
from branet_training.classifier.data import Sample, read_image
from branet_training.classifier.distil import FrozenTeacher, distil, unlabelled_images
from branet_training.pretrained import ImageNetTeacher, calibrate_batch_norm
from branet_training.runs import (
    bf16_autocast,
    pick_device,
    save_atomically,
    seed_everything,
    warmup_cosine,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    input_size: int = 128
    epochs: int = 25
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.05
    augment: bool = True
    whole_image_rate: float = 0.15  # how often training sees the whole image, not the ROI
    roi_margin: float = 0.25  # the context the service's ROI crop and evaluation use
    keep_aspect: bool = False  # pad to a square before resizing instead of squashing
    lesion_channel: bool = False  # mark the lesion's box in the third input channel
    lesion_unknown_rate: float = 0.2  # how often a crop's marker is withheld in training
    seed: int = 0  # initial weights, augmentation and batch order
    # Which images go to which fold and to the temperature's part; None: `seed`. Fixed while
    # `seed` varies, runs differ only by chance in training, so that they can be compared
    # fold by fold or averaged.
    split_seed: int | None = None
    device: str = "auto"
    bf16: bool = True  # autocast where it is faster (`bf16_autocast`)
    pretrained: str | None = None
    # The ImageNet teacher (`ImageNetTeacher`) fine-tuned in the ResNet18's place, from this
    # TFLite file: a reference for what ImageNet features are worth here, never served.
    imagenet_teacher: str | None = None
    # The ImageNet teacher's TFLite file: the ResNet18 first learns its features for
    # `distil_epochs` on the training split (`distil.py`), then trains as usual.
    distil_from: str | None = None
    distil_epochs: int = 10
    distil_unlabelled: tuple[str, ...] = ()  # "SITE=DIR": that site's unlabelled images too

    def __post_init__(self) -> None:
        if self.imagenet_teacher and (self.lesion_channel or self.pretrained):
            raise ValueError("the ImageNet teacher takes RGB crops and its own weights only")
        if self.distil_from and (self.imagenet_teacher or self.pretrained):
            raise ValueError("distillation starts the ResNet18 from scratch, not other weights")


class ImageCache:
    """Decoded, normalised images by path: each file is read once per process."""

    def __init__(self) -> None:
        self._images: dict[Path, Image.Image] = {}

    def __call__(self, path: Path) -> Image.Image:
        if path not in self._images:
            self._images[path] = read_image(path)
        return self._images[path]


def model_input(sample: Sample, image: Image.Image, margin: float) -> LesionCrop:
    """What the service classifies: the lesion crop when a box is known, else the image."""
    return crop_to_lesion(image, sample.lesion, margin, sample.outline)


def perturb_marker(marker: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Grow, shrink or round off the marker now and then: a user's or the segmenter's box is
    rarely the annotator's."""
    if rng.random() < 0.5:
        radius = rng.choice([-4, -3, -2, -1, 1, 2, 3, 4])
        size = 2 * abs(radius) + 1
        pooled = torch.nn.functional.max_pool2d
        marker = (
            pooled(marker[None], size, 1, abs(radius))[0]
            if radius > 0
            else -pooled(-marker[None], size, 1, abs(radius))[0]
        )
    if rng.random() < 0.3:
        sigma = rng.uniform(1.0, 3.0)
        marker = (tvf.gaussian_blur(marker, kernel_size=[11, 11], sigma=[sigma] * 2) > 0.5).float()
    return marker


def crop_tensor(crop: LesionCrop, config: TrainConfig, rng: random.Random | None) -> torch.Tensor:
    """The 3×S×S input for `crop`, augmented as in training when `rng` is given."""
    pixels = image_to_tensor(crop.image, config.input_size, config.keep_aspect)
    marker = (
        lesion_marker(crop, config.input_size, config.keep_aspect)
        if config.lesion_channel
        else None
    )
    if rng is not None and config.augment:
        pixels, marker = augment(pixels, rng, marker)
        if marker is not None:
            marker = perturb_marker(marker, rng)
    return model_tensor(pixels, marker, config.lesion_channel)


class LesionDataset(Dataset[tuple[torch.Tensor, int]]):
    def __init__(
        self,
        samples: Sequence[Sample],
        images: ImageCache,
        config: TrainConfig,
        train: bool,
    ) -> None:
        self.samples = list(samples)
        self.images = images
        self.config = config
        self.train = train
        self.rng = random.Random(config.seed)  # noqa: S311 - augmentation, not secrets

    def __len__(self) -> int:
        return len(self.samples)

    def crop(self, index: int) -> LesionCrop:
        sample = self.samples[index]
        image = self.images(sample.item.path)
        if not self.train:
            return model_input(sample, image, self.config.roi_margin)
        if sample.lesion is None or self.rng.random() < self.config.whole_image_rate:
            return LesionCrop(image)  # whole: the service never gets a whole image with a box
        crop = _random_context(image, sample.lesion, self.rng)
        if self.config.lesion_channel and self.rng.random() < self.config.lesion_unknown_rate:
            return LesionCrop(crop.image)  # as when a user uploads a crop without a box
        return crop

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = 1 if self.samples[index].label is Label.MALIGNANT else 0
        return crop_tensor(self.crop(index), self.config, self.rng if self.train else None), label


class UnlabelledViews(Dataset[tuple[torch.Tensor, int]]):
    """Images without a label or a lesion box, seen whole, as `LesionDataset` shows its
    whole-image draws in training; the label slot is -1."""

    def __init__(self, paths: Sequence[Path], images: ImageCache, config: TrainConfig) -> None:
        self.paths, self.images, self.config = list(paths), images, config
        self.rng = random.Random(config.seed + 1)  # noqa: S311 - augmentation, not secrets

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return crop_tensor(LesionCrop(self.images(self.paths[index])), self.config, self.rng), -1


def _random_context(image: Image.Image, box: BoundingBox, rng: random.Random) -> LesionCrop:
    """The lesion box with 5 %–70 % context per side, unevenly, clipped to the image."""
    w, h = box.x1 - box.x0, box.y1 - box.y0
    left, right, top, bottom = (rng.uniform(0.05, 0.7) for _ in range(4))
    rect = (
        max(0, round(box.x0 - left * w)),
        max(0, round(box.y0 - top * h)),
        min(image.width, round(box.x1 + right * w)),
        min(image.height, round(box.y1 + bottom * h)),
    )
    return crop_around(image, box, rect)


def build_network(config: TrainConfig) -> torch.nn.Module:
    if config.imagenet_teacher:
        return ImageNetTeacher(Path(config.imagenet_teacher))
    network = build_resnet18()
    if config.pretrained:
        state = torch.load(config.pretrained, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, _ = network.load_state_dict(state, strict=False)
        if set(missing) - {"fc.weight", "fc.bias"}:
            raise ValueError(f"{config.pretrained} is not a ResNet18 state dict")
    return network


@dataclass(frozen=True)
class TrainedModel:
    network: torch.nn.Module
    temperature: float
    history: list[dict[str, float]]
    malignant_prevalence: float  # in the training data: the class weights' and the prior's


def _loader(
    dataset: LesionDataset | ConcatDataset[tuple[torch.Tensor, int]],
    config: TrainConfig,
    shuffle: bool,
) -> DataLoader[Any]:
    generator = torch.Generator().manual_seed(config.seed)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=0,
        # A last training batch of one image would break batch norm.
        drop_last=shuffle and len(dataset) > config.batch_size,
    )


def train(
    train_samples: Sequence[Sample],
    calibration_samples: Sequence[Sample],
    config: TrainConfig,
    images: ImageCache,
    checkpoint: Path | None = None,
    progress_label: str = "",
) -> TrainedModel:
    """Train for `config.epochs` (no early stopping: nothing is chosen on held-out data), then
    fit the softmax temperature on `calibration_samples`, which are part of the training split.

    With `checkpoint`, the state is saved after every epoch and a run resumes from it.
    """
    seed_everything(config.seed)
    device = pick_device(config.device)
    network = build_network(config).to(device)
    if config.distil_from and not (checkpoint is not None and checkpoint.exists()):
        split = [*train_samples, *calibration_samples]  # no label is read: all of it
        distil_trunk(network, split, config, images, checkpoint, progress_label)
        seed_everything(config.seed)  # the same draws next, distilled here or read from disk
    dataset = LesionDataset(train_samples, images, config, train=True)
    loader = _loader(dataset, config, shuffle=True)
    if config.imagenet_teacher:
        # Batch statistics of these crops, so that train mode starts from ImageNet's function.
        calibrate_batch_norm(network, (x.to(device) for x, _ in itertools.islice(loader, 8)))
    labels = np.array([s.label is Label.MALIGNANT for s in train_samples], dtype=int)
    counts = np.bincount(labels, minlength=2).clip(min=1)
    prevalence = float(counts[1] / counts.sum())
    weights = torch.tensor(len(labels) / (2 * counts), dtype=torch.float32, device=device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps = config.epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps, len(loader)))
    history: list[dict[str, float]] = []
    start = 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        network.load_state_dict(state["network"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        dataset.rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        history, start = state["history"], state["epoch"]
        log.info("resumed %s at epoch %d", checkpoint, start)

    for epoch in range(start, config.epochs):
        network.train()
        total, correct, loss_sum = 0, 0, 0.0
        # A bar on a terminal; in logs (no TTY), just the per-epoch line below.
        label = f"{progress_label} epoch {epoch + 1}/{config.epochs}"
        bar = tqdm(loader, desc=label, leave=False, disable=None)
        for inputs, targets in bar:
            inputs, targets = inputs.to(device), targets.to(device)
            with bf16_autocast(device, config.bf16):
                logits = network(inputs)
            loss = loss_fn(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += len(targets)
            correct += int((logits.argmax(1) == targets).sum())
            loss_sum += loss.item() * len(targets)
            bar.set_postfix(loss=f"{loss_sum / total:.3f}")
        history.append({"epoch": epoch + 1, "loss": loss_sum / total, "accuracy": correct / total})
        tqdm.write(
            f"{progress_label} epoch {epoch + 1}/{config.epochs}: "
            f"loss {loss_sum / total:.4f}, train accuracy {correct / total:.3f}"
        )
        if checkpoint is not None:
            _save_checkpoint(checkpoint, network, optimizer, scheduler, dataset, history, epoch + 1)

    temperature = fit_temperature(network, calibration_samples, config, images, prevalence)
    return TrainedModel(network.eval(), temperature, history, prevalence)


def distil_trunk(
    network: torch.nn.Module,
    samples: Sequence[Sample],
    config: TrainConfig,
    images: ImageCache,
    checkpoint: Path | None,
    progress_label: str,
) -> None:
    """`network` distilled from the ImageNet teacher on `samples`' training views; the result
    is saved beside `checkpoint`, and read from there when a run resumes."""
    assert config.distil_from is not None
    distilled = None if checkpoint is None else checkpoint.with_name("distilled.pt")
    if distilled is not None and distilled.exists():
        network.load_state_dict(torch.load(distilled, map_location="cpu", weights_only=True))
        log.info("distilled trunk read from %s", distilled)
        return
    sites = {s.site for s in samples}
    unlabelled = unlabelled_images(config.distil_unlabelled, sites)
    log.info("distilling on %d images of %s, %d unlabelled", len(samples), sites, len(unlabelled))
    views: ConcatDataset[tuple[torch.Tensor, int]] = ConcatDataset(
        [
            LesionDataset(samples, images, config, train=True),
            UnlabelledViews(unlabelled, images, config),
        ]
    )
    loader = _loader(views, config, shuffle=True)
    distil(
        network,
        FrozenTeacher(Path(config.distil_from)),
        loader,
        config.distil_epochs,
        config.learning_rate,
        config.weight_decay,
        config.bf16,
        progress_label,
    )
    if distilled is not None:
        save_atomically(network.state_dict(), distilled)


def _save_checkpoint(
    path: Path,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    dataset: LesionDataset,
    history: list[dict[str, float]],
    epoch: int,
) -> None:
    save_atomically(
        {
            "network": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": dataset.rng.getstate(),
            "torch_rng": torch.get_rng_state(),
            "history": history,
            "epoch": epoch,
        },
        path,
    )


def logits_of(
    network: torch.nn.Module, samples: Sequence[Sample], config: TrainConfig, images: ImageCache
) -> torch.Tensor:
    """Logits for each sample's model input (the ROI crop with the service's margin)."""
    device = next(network.parameters()).device
    loader = _loader(LesionDataset(samples, images, config, train=False), config, shuffle=False)
    network.eval()
    outputs = []
    with torch.inference_mode():
        for inputs, _ in loader:
            outputs.append(network(inputs.to(device)).float().cpu())
    return torch.cat(outputs) if outputs else torch.empty(0, 2)


def fit_temperature(
    network: torch.nn.Module,
    samples: Sequence[Sample],
    config: TrainConfig,
    images: ImageCache,
    malignant_prevalence: float,
) -> float:
    """The softmax temperature for `network`, from its logits on `samples` (`temperature_for`)."""
    if not samples:
        return 1.0
    logits = logits_of(network, samples, config, images)
    targets = torch.tensor([int(s.label is Label.MALIGNANT) for s in samples])
    return temperature_for(logits, targets, malignant_prevalence)


# χ² with one degree of freedom, 95th percentile: the likelihood-ratio test's bar at 5 %.
CHI2_1DF_95 = 3.841


def temperature_for(logits: torch.Tensor, targets: torch.Tensor, prevalence: float) -> float:
    """The temperature minimising NLL (Guo et al., 2017), the odds moved to `prevalence` as
    served (`calibrated_logits`) — kept only where it fits significantly better than 1.

    The few dozen images a training fold can hold back rarely show the temperature differs
    from 1, and an estimate that is mostly noise made test probabilities worse (models/README,
    "The temperature"); a likelihood-ratio test at 5 % keeps 1 unless the data say otherwise.
    """
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)

    def nll(log_temperature: torch.Tensor) -> torch.Tensor:
        calibrated = calibrated_logits(logits, log_temperature.exp(), prevalence)
        return torch.nn.functional.cross_entropy(calibrated, targets)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nll(log_t)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    fitted = float(log_t.detach().exp().clamp(0.05, 20.0))
    with torch.no_grad():
        gain = float(nll(torch.zeros(1)) - nll(torch.tensor([math.log(fitted)])))
    likelihood_ratio = 2 * len(targets) * gain
    keep = likelihood_ratio >= CHI2_1DF_95
    log.info(
        "temperature %.3f on %d images: likelihood ratio %.2f against 1, %s",
        fitted,
        len(targets),
        likelihood_ratio,
        "kept" if keep else "not significant, 1 kept",
    )
    return fitted if keep else 1.0


def config_dict(config: TrainConfig) -> dict[str, Any]:
    return asdict(config)
