"""BraNet's own lesion segmenter's costs on this machine: encoder, decoder, automatic mode.

    python -m bench.lesion_segmenter [--card models/segmenter.json] [--image scan.png]

With no card (or a missing one) the card's architecture runs with random weights: latency does
not depend on weight values. Stages, each p50/p95 over --runs: the image embedding, a box's
decode with the embedding cached, automatic mode uncached in one pass (one encoder and one
decoder pass) and zoomed (`--automatic-zoom`: a second look at the region found, in a window
around it, where one magnifies it), and the whole segmenter answer as the card serves it
(validation, segmentation, mask and crop encoded: what an analysis with extract_roi=true costs
in the segmenter). Prints the CPU's flags with the numbers.
"""

import argparse
import io
import json
import resource
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.timing import flags_line, summary, timed_ms
from branet_runtime.precision import cpu_flags
from branet_segmenter.branet_sam import BraNetSegmenter, zoom_window
from branet_segmenter.embeddings import EmbeddingCache
from branet_segmenter.model import SegmenterCard, build_lesion_sam
from branet_shared.images import bounding_box, validate_image
from branet_shared.schemas import BoundingBox, Modality, Prompt


def segmenter_of(card_path: Path | None) -> BraNetSegmenter:
    if card_path is not None and card_path.is_file():
        return BraNetSegmenter.load(card_path, EmbeddingCache(8))
    card = SegmenterCard(name="random", version="0", weights_file="-", weights_sha256="0" * 64)
    return BraNetSegmenter(card, build_lesion_sam(card), EmbeddingCache(8))


def synthetic_png(width: int = 560, height: int = 460) -> bytes:
    pixels = np.random.default_rng(0).normal(140, 25, size=(height, width)).clip(0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def zoom_line(segmenter: BraNetSegmenter, image: Image.Image) -> str:
    """Whether the zoomed stage looks twice at this image: the window, if any, around the
    region one pass finds."""
    first = segmenter.first_look(image, "z")
    if not first.mask.any():
        return "nothing found: one pass"
    window = zoom_window(bounding_box(first.mask), image.width, image.height, segmenter.card)
    return "no window magnifies the region: one pass" if window is None else f"window {window}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--card", type=Path, default=Path("models/segmenter.json"))
    parser.add_argument("--image", type=Path, default=None, help="default: a 560×460 speckle")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--automatic-zoom", type=float, default=2.0, help="the zoomed stage's automatic_zoom"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    segmenter = segmenter_of(args.card)
    zoomed = segmenter.with_zoom(args.automatic_zoom, EmbeddingCache(0))
    upload = validate_image(args.image.read_bytes() if args.image else synthetic_png())
    image = upload.image
    width, height = image.width, image.height
    box = BoundingBox(x0=width // 4, y0=height // 4, x1=width // 2, y1=height // 2)
    stages = {
        "embedding": lambda: segmenter.embedding(image, "bench"),
        "box decode (embedding cached)": lambda: segmenter.predict(image, "cached", box, ()),
        "automatic, one pass": lambda: zoomed.first_look(image, "bench"),
        f"automatic, zoomed ×{args.automatic_zoom:g}": lambda: zoomed.most_lesion_like(
            image, "bench"
        ),
        "segmenter answer, automatic": lambda: segmenter.segment(
            validate_image(upload.data), Modality.ULTRASOUND, Prompt(), 0.25
        ),
    }
    rows = []
    print(flags_line())
    card = segmenter.card
    print(f"model: {card.name} {card.version}, {card.input_size} px, zoom {card.automatic_zoom:g}")
    print(f"zoomed: {zoom_line(zoomed, image)}")
    print(f"{'stage':<34} {'p50 ms':>8} {'p95 ms':>8} {'peak MiB':>9}")
    for stage, run in stages.items():
        segmenter.cache = EmbeddingCache(8)
        segmenter.predict(image, "cached", None, ())  # the cached stage's embedding
        if stage != "box decode (embedding cached)":
            segmenter.cache = EmbeddingCache(0)  # every call embeds anew
        times = timed_ms(run, args.runs)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows.append({"stage": stage, **summary(times), "peak_rss_mib": peak})
        print(f"{stage:<34} {rows[-1]['p50_ms']:8.1f} {rows[-1]['p95_ms']:8.1f} {peak:9.0f}")
    if args.out is not None:
        args.out.write_text(json.dumps({"flags": sorted(cpu_flags()), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
