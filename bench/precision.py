"""Do the reduced-precision paths keep the classifier's answers? Label agreement and
probability difference against fp32 eager on real images, for bf16 eager, bf16 compiled and
int8 on ONNX Runtime (the serving default where the card has an int8 artefact), and the speed
of each.

    python -m bench.precision --model models/ultrasound.json --data ../shared/data/busi

A reduced-precision path is acceptable only with label agreement >= 99.5 %.
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

from branet_classifier.batching import largest_batch
from branet_classifier.classify import (
    AGREEMENT_FLOOR,
    COMPILED_BATCH_SIZES,
    ResNet18Classifier,
    agreement,
)
from branet_training.classifier.data import load_samples
from branet_training.classifier.engine import ImageCache, model_input


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
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    args = parser.parse_args()
    fp32 = ResNet18Classifier.load(args.model, "fp32")
    variants = {
        "bf16 eager": ResNet18Classifier.load(args.model, "bf16"),
        "bf16 compiled": ResNet18Classifier.load(args.model, "bf16", compiled=True),
    }
    served = ResNet18Classifier.load(args.model, "auto")
    if served.precision == "int8":
        variants["int8 ONNX RT"] = served
    samples, _ = load_samples(args.data)
    images = ImageCache()
    crops = [model_input(s, images(s.item.path), fp32.card.roi_margin) for s in samples]
    inputs = torch.cat([fp32.preprocess(crop.image, crop.lesion) for crop in crops])
    reference = predict_all(fp32, inputs)
    print(
        f"{fp32.card.name} {fp32.card.version} on {len(samples)} images of "
        f"{', '.join(d.name for d in args.data)}"
    )
    print(f"{'variant':<14} {'agreement':>9} {'max |dP|':>9} {'mean |dP|':>9}")
    for name, model in variants.items():
        measured = agreement(reference, predict_all(model, inputs), model.card.decision_threshold)
        labels = measured["label_agreement"]
        verdict = "keeps labels" if labels >= AGREEMENT_FLOOR else "CHANGES labels"
        print(
            f"{name:<14} {labels:>9.4f} {measured['max_abs_dp_malignant']:>9.4f} "
            f"{measured['mean_abs_dp_malignant']:>9.4f}  {verdict}"
        )
    print(f"\n{'batch':>5} {'fp32 ms':>9}" + "".join(f" {name:>14}" for name in variants))
    for size in COMPILED_BATCH_SIZES:
        batch = inputs[:size]
        slow = median_ms(fp32, batch)
        cells = []
        for model in variants.values():
            fast = median_ms(model, batch)
            cells.append(f"{fast:6.2f} ({slow / fast:.2f}x)")
        print(f"{size:>5} {slow:>9.2f}" + "".join(f" {cell:>14}" for cell in cells))


def predict_all(model: ResNet18Classifier, inputs: torch.Tensor) -> torch.Tensor:
    """In batches of at most 8, of the sizes the model serves (as the micro-batcher forms)."""
    outputs = []
    while len(inputs):
        size = largest_batch(len(inputs), 8, model.batch_sizes)
        outputs.append(model.predict(inputs[:size]))
        inputs = inputs[size:]
    return torch.cat(outputs)


if __name__ == "__main__":
    main()
