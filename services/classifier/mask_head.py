"""The lesion's outline as a second training target.

BUSI, BrEaST and BUS-UCLM outline each lesion. A small head on the ResNet18 trunk learns to
draw that outline while the classifier learns benign against malignant, so the trunk's features
must describe the lesion's shape and margin — what radiologists read — rather than whatever
else tells the classes apart in a few hundred images. Only the classifier is shipped; the head
is dropped after training.
"""

import torch
from torch import nn
from torch.nn import functional
from torchvision.models import ResNet

UNKNOWN = -1.0  # mask value of an image without an outline: no loss there


class MaskHead(nn.Module):
    """Mask logits at 1/8 of the input from the trunk's last three stages (a small FPN)."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in (128, 256, 512))
        self.out = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 1, 1),
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        merged = sum(
            functional.interpolate(lateral(f), size=size, mode="bilinear", align_corners=False)
            for lateral, f in zip(self.lateral, features, strict=True)
        )
        mask: torch.Tensor = self.out(merged)
        return mask


class ClassifierWithMaskHead(nn.Module):
    """A torchvision ResNet18 (`classifier`, the part shipped) and a `MaskHead` on its trunk."""

    def __init__(self, classifier: ResNet) -> None:
        super().__init__()
        self.classifier = classifier
        self.mask_head = MaskHead()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.classifier
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        stage2 = r.layer2(r.layer1(x))
        stage3 = r.layer3(stage2)
        stage4 = r.layer4(stage3)
        logits = r.fc(torch.flatten(r.avgpool(stage4), 1))
        return logits, self.mask_head([stage2, stage3, stage4])


def mask_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice over the images that have an outline.

    `masks` (B×1×S×S, 0..1, or `UNKNOWN` throughout) are averaged down to the logits' size.
    """
    known = masks.flatten(1)[:, 0] != UNKNOWN
    if not known.any():
        return logits.sum() * 0.0  # keeps the graph whole when a batch has no outline
    height, width = logits.shape[-2:]
    target = functional.adaptive_avg_pool2d(masks[known], (height, width))
    logits = logits[known]
    bce = functional.binary_cross_entropy_with_logits(logits, target)
    probabilities = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    overlap = (probabilities * target).sum(1)
    dice = 1 - (2 * overlap + 1) / (probabilities.sum(1) + target.sum(1) + 1)
    return bce + dice.mean()
