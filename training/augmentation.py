"""Scanner-like variation for ultrasound images in training, the same for every model kind:
geometry (flip, rotation, scale), the scanner's curve and gain, speckle, blur, and blotted
patches where site marks (calipers, text, icons) would be; where a recipe asks, another texture
altogether (a random filter)."""

import random

import torch
from torch.nn import functional as F  # noqa: N812 - the usual name
from torchvision.transforms.v2 import functional as tvf

ZOOM = (0.9, 1.1)  # the scale factor's range unless a model's recipe says otherwise


def augment(
    pixels: torch.Tensor,
    rng: random.Random,
    marker: torch.Tensor | None = None,
    scale: tuple[float, float] = ZOOM,
    shift: float = 0.0,
    *,
    random_filter: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scanner-like variation on a 1×S×S image in [0, 1]; the lesion marker, if any, is
    flipped, turned, scaled (by a factor in `scale`) and moved (by up to `shift` of the side
    each way) with it. With probability `random_filter`, the image's texture is replaced in
    part by a random filter's (`randomly_filtered`)."""
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
    # Drawn only when asked for, so a run without it draws as before it existed.
    if random_filter and rng.random() < random_filter:
        pixels = randomly_filtered(pixels, rng)
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


def randomly_filtered(pixels: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """The 1×S×S image blended with itself through a random 3×3 to 7×7 filter, rescaled to
    [0, 1] (RandConv, Xu et al. 2021, arXiv:2007.13003; its filter's sign kept positive): the
    same shapes in another texture, as another scanner's speckle and processing would give them."""
    side = rng.choice((3, 5, 7))
    generator = torch.Generator().manual_seed(rng.randrange(2**31))
    kernel = torch.randn(1, 1, side, side, generator=generator) / side  # unit gain on average
    kernel = kernel * kernel.sum().sign()  # a lesion stays darker than tissue, as on any scanner
    filtered = F.conv2d(pixels[None], kernel, padding=side // 2)[0]
    low, high = filtered.min(), filtered.max()
    filtered = (filtered - low) / (high - low).clamp(min=1e-6)
    kept = rng.random()
    return kept * pixels + (1 - kept) * filtered


def pasted_lesion(
    background: torch.Tensor, donor: torch.Tensor, donor_mask: torch.Tensor, rng: random.Random
) -> tuple[torch.Tensor, torch.Tensor]:
    """The donor's lesion, with a ring of its surrounding tissue fading out, pasted at a random
    place and scale on a 1×S×S image without one, and the new image's mask (Simple Copy-Paste,
    Ghiasi et al. 2021, arXiv:2012.07177): a lesion seen on another breast and at another
    place, so that where a lesion is found depends on how it looks, not on the site's framing.
    The donor's level is matched to the background's on the ring, which keeps its contrast."""
    size = background.shape[-1]
    rows = torch.nonzero(donor_mask[0].any(dim=1)).flatten()
    cols = torch.nonzero(donor_mask[0].any(dim=0)).flatten()
    ring = max(2, round(0.25 * max(int(rows[-1] - rows[0]), int(cols[-1] - cols[0])) + 1))
    y0, y1 = max(0, int(rows[0]) - ring), min(size, int(rows[-1]) + 1 + ring)
    x0, x1 = max(0, int(cols[0]) - ring), min(size, int(cols[-1]) + 1 + ring)
    patch, lesion = donor[:, y0:y1, x0:x1], donor_mask[:, y0:y1, x0:x1]
    factor = min(rng.uniform(0.7, 1.3), 0.9 * size / max(patch.shape[-2:]))
    height, width = (max(4, round(side * factor)) for side in patch.shape[-2:])
    patch = F.interpolate(patch[None], size=(height, width), mode="bilinear")[0]
    lesion = (F.interpolate(lesion[None], size=(height, width), mode="bilinear")[0] > 0.5).float()
    reach = max(1, round(ring * factor / 2))
    grown = F.max_pool2d(lesion[None], kernel_size=2 * reach + 1, stride=1, padding=reach)[0]
    alpha = torch.maximum(tvf.gaussian_blur(grown, kernel_size=[2 * reach + 1] * 2), lesion)
    top, left = rng.randint(0, size - height), rng.randint(0, size - width)
    under = background[:, top : top + height, left : left + width]
    surround = (alpha > 0.05) & (lesion < 0.5)
    if surround.any():
        patch = (patch + under[surround].mean() - patch[surround].mean()).clamp(0, 1)
    pixels, mask = background.clone(), torch.zeros_like(background)
    pixels[:, top : top + height, left : left + width] = alpha * patch + (1 - alpha) * under
    mask[:, top : top + height, left : left + width] = lesion
    return pixels, mask
