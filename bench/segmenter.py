"""SAM's costs on this machine, with random weights of the real architecture.

    python -m bench.segmenter [--model-type vit_b] [--size 1024] [--repeats 3] [--out bench.json]

Latency does not depend on weight values, so random weights measure what a real checkpoint
costs. Stages: model load (hash + build + weights), image embedding at --size, a box prompt's
decode with the embedding cached and uncached, automatic mode at the service's defaults, and
the process's peak resident memory after each stage.
"""

import argparse
import json
import resource
import statistics
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch

from bench.timing import timed_ms
from branet_runtime.allocator import keep_freed_memory
from branet_runtime.files import sha256_of_file
from branet_segmenter.embeddings import EmbeddingCache
from branet_segmenter.segment import BUILDERS, AutomaticSettings, LesionSegmenter
from branet_shared.schemas import BoundingBox, Modality


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model-type", default="vit_b", choices=sorted(BUILDERS))
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--auto-points", type=int, nargs="+", default=[16], help="automatic grids to measure"
    )
    parser.add_argument("--auto-max-side", type=int, default=512)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    keep_freed_memory()  # the segmenter's allocator setting
    if args.threads:
        torch.set_num_threads(args.threads)

    rows: list[dict[str, object]] = []

    def record(stage: str, times_ms: list[float]) -> None:
        rows.append(
            {
                "stage": stage,
                "n": len(times_ms),
                "median_ms": statistics.median(times_ms),
                "min_ms": min(times_ms),
                "peak_rss_mib": peak_rss_mib(),
            }
        )
        print(f"  {stage}: {statistics.median(times_ms):.0f} ms", file=sys.stderr, flush=True)

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "random.pth"
        torch.save(BUILDERS[args.model_type]().state_dict(), checkpoint)
        sha = sha256_of_file(checkpoint)
        holder: list[LesionSegmenter] = []
        record(
            "load (hash + build + weights)",
            timed_ms(
                lambda: holder.append(LesionSegmenter.load(args.model_type, checkpoint, sha)),
                1,
                warmup=0,
            ),
        )
    segmenter = holder[0]
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, size=(args.size, args.size, 3), dtype=np.uint8)
    box = BoundingBox(x0=args.size // 4, y0=args.size // 4, x1=args.size // 2, y1=args.size // 2)

    def uncached() -> None:
        segmenter.cache = EmbeddingCache(max_entries=0)
        segmenter.prompted(rgb, "bench", box)

    record(
        f"box prompt, uncached (embedding + decode), {args.size}px",
        timed_ms(uncached, args.repeats, warmup=0),
    )
    segmenter.cache = EmbeddingCache(max_entries=1)
    segmenter.prompted(rgb, "bench", box)
    record(
        "box prompt, embedding cached (decode only)",
        timed_ms(lambda: segmenter.prompted(rgb, "bench", box), 10, warmup=0),
    )
    for points in args.auto_points:
        automatic = AutomaticSettings(points_per_side=points, max_side=args.auto_max_side)
        record(
            f"automatic, {automatic.points_per_side} points/side, {automatic.max_side}px, "
            f"{automatic.crop_n_layers} crop layers",
            timed_ms(
                partial(segmenter.automatic, rgb, Modality.ULTRASOUND, automatic), 1, warmup=0
            ),
        )

    print(
        f"\nSAM {args.model_type}, random weights, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'stage':<62} {'n':>3} {'median ms':>10} {'min ms':>9} {'peak RSS MiB':>13}")
    for r in rows:
        print(
            f"{r['stage']!s:<62} {r['n']:>3} {r['median_ms']:>10.1f} {r['min_ms']:>9.1f} "
            f"{r['peak_rss_mib']:>13.0f}"
        )
    medians = [float(str(r["median_ms"])) for r in rows]
    embedding = medians[1] - medians[2]
    print(f"image embedding alone ≈ {embedding:.0f} ms (uncached minus cached)")
    if args.out is not None:
        args.out.write_text(
            json.dumps({"model_type": args.model_type, "size": args.size, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
