"""Feature distillation: ImageNet's MobileNetV2 teaches the ResNet18 before its supervised
training, on the same fold's training images.

The ResNet18 has only the images here to learn from; the teacher has seen ImageNet, and
fine-tuned it generalises better to a hospital left out on whole images (reports/
imagenet-prior.md). On every view the classifier's own augmentation makes (crops with random
context, whole images, the lesion marker), the student's 512 pooled features, through a
linear map used only here, are pulled towards the teacher's 1,280 pooled features of the same
view, standardised per feature over the batch (cosine loss). No label is read, so unlabelled
images (BUSI's normals) are taught too; but only the fold's training sites are seen, so that a
left-out site stays unseen. The supervised recipe then trains from the distilled weights, its
head new.
"""

import argparse
import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F  # noqa: N812 - the usual name
from torch.utils.data import DataLoader
from torchvision.models.feature_extraction import create_feature_extractor
from tqdm import tqdm

from branet_segmenter.model import pad_as_tensorflow
from branet_training.datasets import list_images
from branet_training.pretrained import (
    mobilenet_v2_from_tflite,
    tensorflow_pixels,
    verified_tflite,
)
from branet_training.runs import bf16_autocast, warmup_cosine

log = logging.getLogger(__name__)
TEACHER_FEATURES = 1280  # MobileNetV2's pooled features
STUDENT_FEATURES = 512  # ResNet18's


class FrozenTeacher(torch.nn.Module):
    """The ImageNet MobileNetV2's pooled features of the classifier's inputs, never trained.

    It reads the grayscale image back from the input's first channel (the third may be the
    lesion marker), as the [-1, 1] RGB pixels it was trained on."""

    def __init__(self, tflite: Path) -> None:
        super().__init__()
        network = pad_as_tensorflow(mobilenet_v2_from_tflite(verified_tflite(tflite)))
        self.features = network.features.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "FrozenTeacher":
        return super().train(False)  # its batch norms hold ImageNet's folded statistics

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        gray = tensorflow_pixels(inputs)[:, :1].expand(-1, 3, -1, -1)
        pooled: torch.Tensor = self.features(gray).mean(dim=(2, 3))
        return pooled


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """1 − cosine between the student's mapped features and the teacher's, each teacher
    feature standardised over the batch: what varies between images, not the features' common
    offset, is what is taught."""
    target = F.batch_norm(teacher.float(), None, None, training=True)
    return (1 - F.cosine_similarity(student.float(), target, dim=1)).mean()


def distil(
    network: torch.nn.Module,
    teacher: torch.nn.Module,
    loader: DataLoader[Any],
    epochs: int,
    learning_rate: float,
    weight_decay: float,
    bf16: bool,
    progress_label: str = "",
) -> list[dict[str, float]]:
    """Train `network`'s trunk (a torchvision ResNet18) towards `teacher`'s features for
    `epochs` over `loader`'s batches; its `fc` is left as it was. The loss per epoch."""
    device = next(network.parameters()).device
    trunk = create_feature_extractor(network, {"flatten": "features"})  # shares the weights
    head = torch.nn.Linear(STUDENT_FEATURES, TEACHER_FEATURES).to(device)
    teacher = teacher.to(device)
    parameters = [p for n, p in network.named_parameters() if not n.startswith("fc.")]
    optimizer = torch.optim.AdamW(
        [*parameters, *head.parameters()], lr=learning_rate, weight_decay=weight_decay
    )
    steps = epochs * len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(steps, len(loader)))
    history = []
    network.train()
    for epoch in range(epochs):
        losses = []
        label = f"{progress_label} distillation epoch {epoch + 1}/{epochs}"
        for inputs, _ in tqdm(loader, desc=label, leave=False, disable=None):
            inputs = inputs.to(device)
            with bf16_autocast(device, bf16):
                with torch.no_grad():
                    target = teacher(inputs)
                mapped = head(trunk(inputs)["features"])
            loss = distillation_loss(mapped, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        history.append({"epoch": epoch + 1, "distillation_loss": sum(losses) / len(losses)})
        tqdm.write(f"{label}: loss {history[-1]['distillation_loss']:.4f}")
    return history


def unlabelled_images(folders: Sequence[str], sites: Collection[str]) -> list[Path]:
    """The images of `folders` ("SITE=DIR": unlabelled images of that hospital) whose site is
    one of `sites`, the training split's: a left-out hospital's normals are left out too."""
    paths = []
    for entry in folders:
        site, _, folder = entry.partition("=")
        if site in sites:
            paths += list_images(Path(folder))
    return paths


def site_folder(text: str) -> str:
    """An argparse type: "SITE=DIR", DIR an existing folder."""
    site, separator, folder = text.partition("=")
    if not separator or not site or not Path(folder).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not SITE=DIR with DIR a folder")
    return text
