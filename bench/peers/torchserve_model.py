"""The model class TorchServe's eager-mode loader instantiates: ResNet18 with two classes."""

from torchvision.models.resnet import BasicBlock, ResNet


class BraNetResNet18(ResNet):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=2)
