"""Does bf16 keep the classifier's answers? Label agreement and probability difference against
fp32 on real images, and the speed of each.

    python bench/precision.py --model models/ultrasound.json --data ../shared/data/busi

A reduced-precision path is acceptable only with label agreement >= 99.5 %.
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

from branet_classifier.classify import ResNet18Classifier
from branet_classifier.data import load_samples
from branet_classifier.training import ImageCache, model_input

AGREEMENT_FLOOR = 0.995


def median_ms(model: ResNet18Classifier, batch: torch.Tensor, runs: int = 30) -> float:
    for _ in range(3):
        model.predict(batch)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        model.predict(batch)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    args = parser.parse_args()
    fp32 = ResNet18Classifier.load(args.model, "fp32")
    bf16 = ResNet18Classifier.load(args.model, "bf16")
    samples, _ = load_samples(args.data)
    images = ImageCache()
    inputs = torch.cat(
        [
            fp32.preprocess(model_input(s, images(s.item.path), fp32.card.roi_margin))
            for s in samples
        ]
    )
    chunks = [inputs[start : start + 32] for start in range(0, len(inputs), 32)]
    reference = torch.cat([fp32.predict(chunk) for chunk in chunks])
    reduced = torch.cat([bf16.predict(chunk) for chunk in chunks])
    agreement = float((reference.argmax(1) == reduced.argmax(1)).float().mean())
    difference = (reference[:, 1] - reduced[:, 1]).abs()

    print(
        f"{fp32.card.name} {fp32.card.version} on {len(samples)} images of "
        f"{', '.join(d.name for d in args.data)}"
    )
    print(f"label agreement bf16 vs fp32: {agreement:.4f} (floor {AGREEMENT_FLOOR})")
    print(
        f"|P(malignant) difference|: max {float(difference.max()):.4f}, "
        f"mean {float(difference.mean()):.4f}"
    )
    print(f"{'batch':>5} {'fp32 ms':>9} {'bf16 ms':>9} {'speed-up':>9}")
    for size in (1, 8, 32):
        batch = inputs[:size]
        slow, fast = median_ms(fp32, batch), median_ms(bf16, batch)
        print(f"{size:>5} {slow:>9.2f} {fast:>9.2f} {slow / fast:>8.2f}x")
    print("bf16 keeps the predictions" if agreement >= AGREEMENT_FLOOR else "bf16 CHANGES labels")


if __name__ == "__main__":
    main()
