"""`branet-warm-sam-cache`: compile the image encoder once, so that Inductor's cache is warm.

Inductor keeps the C++ kernels it builds in TORCHINDUCTOR_CACHE_DIR, and they do not depend
on the weights: compiling the encoder with random weights when the container image is built
spares each fresh container about a third of its start-up compilation (ViT-B on 2 vCPU: 46 s
cold, 30 s with the cache, with other weights than the cache was built with). It helps where
the build machine's CPU has the vector and bf16 units the serving one has; elsewhere the cache
misses and start-up is as before.
"""

import argparse
import logging
import time

import torch

from branet_runtime.precision import resolve_precision
from branet_segmenter.acceleration import accelerate
from branet_segmenter.segment import BUILDERS
from branet_segmenter.settings import SegmenterSettings
from branet_shared.web import environment_help

log = logging.getLogger(__name__)


def warm_compile_cache(settings: SegmenterSettings) -> float:
    """Compile the encoder the service would compile, with random weights; seconds it took."""
    sam = BUILDERS[settings.model_type]().eval()
    sam = accelerate(sam, resolve_precision(settings.precision), compiled=True)
    size = sam.image_encoder.img_size
    started = time.perf_counter()
    with torch.inference_mode():
        sam.image_encoder(torch.zeros(1, 3, size, size))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="branet-warm-sam-cache",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
        epilog=environment_help(SegmenterSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    settings = SegmenterSettings()
    seconds = warm_compile_cache(settings)
    log.info("compiled the %s image encoder in %.1f s", settings.model_type, seconds)
