"""`branet-pretrain`: self-supervised pretraining of the ResNet18 on unlabelled ultrasound.

    branet-pretrain --data ../shared/data/{busi,breast_lesions_usg,bus_uclm,busi_normal_256} \\
        --out .branet/pretrained.pt
    branet-train ... --pretrained .branet/pretrained.pt

No ImageNet weights can be downloaded here, and a few hundred labelled images are little to
learn features from. SimCLR (Chen et al., 2020) learns them from every image at hand, normals
included, without labels: two random views of one image (crop, scale, and the scanner-like
variation of `training.augment`) should map close together, views of other images apart. The
output is a plain ResNet18 state dict (no `fc`), the format `branet-train --pretrained` reads.

Each view's randomness is seeded by (seed, epoch, image), so a run is the same whatever the
number of loader workers.
"""

import argparse
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.nn import functional as F  # noqa: N812 - the usual name
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from branet_classifier.model import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_resnet18,
    image_to_tensor,
    standardise,
)
from branet_training.augmentation import augment
from branet_training.classifier.engine import ImageCache
from branet_training.datasets import list_images
from branet_training.runs import (
    bf16_autocast,
    pick_device,
    save_atomically,
    seed_everything,
    warmup_cosine,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    input_size: int = 128
    epochs: int = 200
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.2  # of the contrastive softmax
    min_crop: float = 0.2  # the smallest crop, as a share of the image's area
    seed: int = 0
    device: str = "auto"
    bf16: bool = True
    workers: int = 0


def random_crop(image: Image.Image, rng: random.Random, min_area: float) -> Image.Image:
    """A crop of `min_area`–100 % of the image's area, aspect 3:4–4:3, anywhere in it."""
    area = rng.uniform(min_area, 1.0) * image.width * image.height
    aspect = rng.uniform(3 / 4, 4 / 3)
    width = min(image.width, max(1, round((area * aspect) ** 0.5)))
    height = min(image.height, max(1, round((area / aspect) ** 0.5)))
    x, y = rng.randint(0, image.width - width), rng.randint(0, image.height - height)
    return image.crop((x, y, x + width, y + height))


class TwoViews(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Two independently augmented views of each image, preprocessed as the service does."""

    def __init__(self, paths: Sequence[Path], images: ImageCache, config: PretrainConfig) -> None:
        self.paths, self.images, self.config = list(paths), images, config
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.paths)

    def view(self, image: Image.Image, rng: random.Random) -> torch.Tensor:
        crop = random_crop(image, rng, self.config.min_crop)
        pixels, _ = augment(image_to_tensor(crop, self.config.input_size), rng)
        return standardise(pixels, IMAGENET_MEAN, IMAGENET_STD)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = random.Random(f"{self.config.seed}:{self.epoch}:{index}")  # noqa: S311
        image = self.images(self.paths[index])
        return self.view(image, rng), self.view(image, rng)


class SimCLR(torch.nn.Module):
    """The ResNet18 trunk (its `fc` an identity) and a projection head used only here."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = build_resnet18()
        self.backbone.fc = torch.nn.Identity()
        self.projector = torch.nn.Sequential(
            torch.nn.Linear(512, 512),
            torch.nn.BatchNorm1d(512),
            torch.nn.ReLU(inplace=True),
            torch.nn.Linear(512, 128),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        projected: torch.Tensor = self.projector(self.backbone(pixels))
        return projected


def contrastive_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent: each view must pick its partner among the batch's 2n − 1 other views."""
    n = first.shape[0]
    z = F.normalize(torch.cat([first, second]).float(), dim=1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    partners = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(similarity, partners)


def pretrain(
    paths: Sequence[Path], config: PretrainConfig, checkpoint: Path | None = None
) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    """SimCLR on `paths`; the backbone's state dict and the loss per epoch."""
    seed_everything(config.seed)
    device = pick_device(config.device)
    model = SimCLR().to(device)
    images = ImageCache()
    for path in paths:  # decoded once, before loader workers fork and share them
        images(path)
    dataset = TwoViews(paths, images, config)
    batches = len(dataset) // config.batch_size
    if batches == 0:
        raise ValueError(f"{len(dataset)} images are fewer than one batch of {config.batch_size}")
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(config.epochs * batches, min(10, config.epochs) * batches)
    )
    history: list[dict[str, float]] = []
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        log.info("resumed %s at epoch %d", checkpoint, len(history))
    for epoch in range(len(history), config.epochs):
        dataset.epoch = epoch
        history.append({"epoch": epoch + 1, "loss": _epoch(model, dataset, optimizer, scheduler)})
        tqdm.write(f"pretrain epoch {epoch + 1}/{config.epochs}: loss {history[-1]['loss']:.4f}")
        if checkpoint is not None:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "history": history,
            }
            save_atomically(state, checkpoint)
    backbone = {k: v.detach().cpu() for k, v in model.backbone.state_dict().items()}
    return backbone, history


def _epoch(
    model: SimCLR,
    dataset: TwoViews,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
) -> float:
    config = dataset.config
    device = next(model.parameters()).device
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed + dataset.epoch),
        num_workers=config.workers,
        drop_last=True,  # the loss compares within a batch: keep batches full
    )
    model.train()
    losses = []
    for first, second in tqdm(loader, desc=f"pretrain epoch {dataset.epoch + 1}", disable=None):
        with bf16_autocast(device, config.bf16):
            projected = model(torch.cat([first, second]).to(device))
        first_projected, second_projected = projected.chunk(2)
        loss = contrastive_loss(first_projected, second_projected, config.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="branet-pretrain",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="image folders")
    parser.add_argument("--out", type=Path, required=True, help="the state dict to write (.pt)")
    defaults = PretrainConfig()
    parser.add_argument("--size", type=int, default=defaults.input_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda")
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="loader processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = PretrainConfig(
        input_size=args.size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        device=args.device,
        bf16=not args.no_bf16,
        workers=args.workers,
    )
    paths = [path for root in args.data for path in list_images(root)]
    log.info("pretraining on %d images of %s", len(paths), ", ".join(str(d) for d in args.data))
    checkpoint = args.out.with_suffix(".checkpoint")
    backbone, history = pretrain(paths, config, checkpoint)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(backbone, args.out)
    record: dict[str, Any] = {"config": asdict(config), "images": len(paths), "history": history}
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2))
    checkpoint.unlink(missing_ok=True)
    print(f"wrote {args.out} ({len(paths)} images, final loss {history[-1]['loss']:.4f})")
