"""TorchServe's image-classifier handler with the card's preprocessing and temperature.

TorchServe's own `ImageClassifier` does everything (decoding, batching, the forward pass,
softmax, the top-k answer); only its ImageNet transform is replaced by the one the model was
trained with, so its answers can be compared with the classifier service's.
"""

import json
from pathlib import Path
from typing import Any

import torch
from torchvision import transforms
from ts.torch_handler.image_classifier import ImageClassifier


class BraNetImageClassifier(ImageClassifier):  # type: ignore[misc]
    topk = 2

    def initialize(self, context: Any) -> None:
        super().initialize(context)
        folder = Path(context.system_properties["model_dir"])
        card = json.loads((folder / "card.json").read_text())
        self.temperature = float(card["temperature"])
        size = card["input_size"]
        self.image_processing = transforms.Compose(
            [
                transforms.Grayscale(),
                transforms.Resize((size, size)),
                transforms.ToTensor(),
                transforms.Lambda(lambda gray: gray.expand(3, -1, -1)),
                transforms.Normalize(card["mean"], card["std"]),
            ]
        )

    def inference(self, data: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        logits: torch.Tensor = super().inference(data, *args, **kwargs)
        return logits / self.temperature
