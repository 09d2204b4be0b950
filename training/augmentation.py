"""Scanner-like variation for ultrasound images in training, the same for every model kind:
geometry (flip, rotation, scale), the scanner's curve and gain, speckle, blur, and blotted
patches where site marks (calipers, text, icons) would be."""

import random

import torch
from torchvision.transforms.v2 import functional as tvf

ZOOM = (0.9, 1.1)  # the scale factor's range unless a model's recipe says otherwise


def augment(
    pixels: torch.Tensor,
    rng: random.Random,
    marker: torch.Tensor | None = None,
    scale: tuple[float, float] = ZOOM,
    shift: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scanner-like variation on a 1×S×S image in [0, 1]; the lesion marker, if any, is
    flipped, turned, scaled (by a factor in `scale`) and moved (by up to `shift` of the side
    each way) with it."""
    layers = pixels if marker is None else torch.cat([pixels, marker])
    if rng.random() < 0.5:
        layers = tvf.horizontal_flip(layers)
    size = pixels.shape[-1]
    angle, factor = rng.uniform(-12, 12), rng.uniform(*scale)
    # Drawn only when asked for, so a run without a shift draws as before it existed.
    offset = [round(rng.uniform(-shift, shift) * size) for _ in range(2)] if shift else [0, 0]
    layers = tvf.affine(layers, angle=angle, translate=offset, scale=factor, shear=[0.0, 0.0])
    pixels = layers[:1]
    if marker is not None:
        marker = (layers[1:] > 0.5).float()
    pixels = pixels.clamp(0, 1) ** rng.uniform(0.7, 1.4)  # gamma: the scanner's curve
    pixels = pixels * rng.uniform(0.75, 1.25) + rng.uniform(-0.08, 0.08)  # gain and offset
    if rng.random() < 0.5:  # multiplicative speckle
        generator = torch.Generator().manual_seed(rng.randrange(2**31))
        noise = torch.randn(pixels.shape, generator=generator) * rng.uniform(0.02, 0.15)
        pixels = pixels * (1 + noise)
    if rng.random() < 0.2:
        pixels = tvf.gaussian_blur(pixels, kernel_size=[5, 5], sigma=[rng.uniform(0.3, 1.2)] * 2)
    if rng.random() < 0.3:  # a blotted patch, where calipers or text would be
        h, w = rng.randint(size // 16, size // 5), rng.randint(size // 16, size // 5)
        y, x = rng.randint(0, size - h), rng.randint(0, size - w)
        pixels = pixels.clone()
        pixels[:, y : y + h, x : x + w] = rng.random()
    return pixels.clamp(0, 1), marker
