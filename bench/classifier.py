"""The classifier's inference costs on this machine: preprocessing, single-image and batched
latency (p50/p95), and peak memory.

    python -m bench.classifier [--model models/ultrasound.json] [--size 128] [--runs 50]
        [--precision auto|fp32|bf16|int8] [--compile]

Without --model it measures a ResNet18 with random weights at --size (latency does not depend
on weight values). `--precision auto` is what the service serves (int8 where the card has an
int8 file); the service also compiles bf16/fp32 models (`--compile`).
"""

import argparse
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.timing import summary, timed_ms
from branet_classifier.classify import ResNet18Classifier
from branet_classifier.model import ClassifierCard, build_resnet18
from branet_runtime.precision import Precision
from branet_shared.schemas import Modality


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(run: Callable[[], object], runs: int) -> tuple[float, float]:
    times = summary(timed_ms(run, runs))
    return times["p50_ms"], times["p95_ms"]


def load(model: Path | None, size: int, precision: Precision, compiled: bool) -> ResNet18Classifier:
    if model is not None:
        loaded = ResNet18Classifier.load(model, precision, compiled)
        loaded.warm_up()
        return loaded
    card = ClassifierCard(
        name="random-resnet18",
        version="bench",
        modality=Modality.ULTRASOUND,
        weights_file="-",
        weights_sha256="0" * 64,
        input_size=size,
    )
    return ResNet18Classifier(card, build_resnet18(), precision, compiled)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", type=Path, default=None, help="a model card (.json)")
    parser.add_argument("--size", type=int, default=128, help="input size without --model")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "int8"])
    parser.add_argument("--compile", action="store_true", help="torch.compile bf16/fp32")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = load(args.model, args.size, args.precision, args.compile)
    load_ms = (time.perf_counter() - started) * 1000
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (500, 600), dtype=np.uint8))
    single = model.preprocess(image)
    rows = [("load model", load_ms, load_ms)]
    rows.append(
        ("preprocess (500×600 gray)", *percentiles(lambda: model.preprocess(image), args.runs))
    )
    rows.append(("inference, batch 1", *percentiles(lambda: model.predict(single), args.runs)))
    batch = single.repeat(8, 1, 1, 1)
    rows.append(
        ("inference, batch 8", *percentiles(lambda: model.predict(batch), max(5, args.runs // 4)))
    )
    rows.append(
        (
            "classify (preprocess + inference)",
            *percentiles(lambda: model.classify(image), args.runs),
        )
    )
    rows.append(
        (
            "explain (with Grad-CAM)",
            *percentiles(lambda: model.explain(image), max(5, args.runs // 4)),
        )
    )

    size = model.card.input_size
    print(
        f"\n{model.card.name} {model.card.version}, {size}×{size} input, {model.precision}"
        f"{' compiled' if model.compiled else ''}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'stage':<36} {'p50 ms':>9} {'p95 ms':>9}")
    for name, p50, p95 in rows:
        print(f"{name:<36} {p50:>9.2f} {p95:>9.2f}")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    if args.out is not None:
        args.out.write_text(json.dumps({"rows": rows, "peak_rss_mib": peak_rss_mib()}, indent=2))


if __name__ == "__main__":
    main()
