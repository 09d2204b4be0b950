"""`branet-quantize`: a shipped classifier's int8 artefact, calibrated on its training images.

    branet-quantize --model models/ultrasound.json \\
        --data ../shared/data/busi ../shared/data/breast_lesions_usg ../shared/data/bus_uclm

Exports the fp32 network to ONNX (any batch size), calibrates the activation ranges on a seeded
sample of the training images as the model sees them (the serving preprocessing, lesion crops
where the data has boxes), quantises weights per channel and activations per tensor (QDQ, which
ONNX Runtime runs on VNNI), then compares int8 with fp32 on every image not used for
calibration. Writes `<modality>.int8.onnx` beside the card and records it, with that agreement,
in the card; refuses an artefact that changes more than 0.5 % of the labels.
"""

import argparse
import json
import random
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from branet_classifier.classify import (
    AGREEMENT_FLOOR as AGREEMENT_FLOOR,  # the bar this command holds an artefact to
)
from branet_classifier.classify import ResNet18Classifier, agreement
from branet_classifier.int8 import Int8Network
from branet_classifier.model import Calibration, ClassifierCard, Int8Card
from branet_runtime.files import sha256_of_file
from branet_training.classifier.cards import card_markdown
from branet_training.classifier.data import load_samples
from branet_training.classifier.engine import ImageCache, model_input

MAX_BATCH = 64
HEAD_OPS = ("Gemm", "MatMul")  # the final fully connected layer


class _Batches(CalibrationDataReader):  # type: ignore[misc]
    """Calibration inputs for ONNX Runtime, one image at a time."""

    def __init__(self, inputs: torch.Tensor, name: str) -> None:
        self._items: Iterator[torch.Tensor] = iter(inputs)
        self._name = name

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._items, None)
        return None if item is None else {self._name: item.unsqueeze(0).numpy()}


def export_onnx(network: torch.nn.Module, size: int, path: Path) -> None:
    """The fp32 network as ONNX with a dynamic batch dimension (1 to MAX_BATCH)."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    torch.onnx.export(
        network.eval(),
        (torch.zeros(2, 3, size, size),),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_shapes={"x": {0: batch}},
        dynamo=True,
        verbose=False,
    )


def quantize_int8(
    network: torch.nn.Module, size: int, calibration: torch.Tensor, out: Path
) -> None:
    """Every convolution in int8; the two-class head stays fp32: it costs nothing and, on the
    shipped ultrasound model, keeps 2 of the 3 labels that int8 would otherwise flip."""
    with tempfile.TemporaryDirectory() as scratch:
        fp32, prepared = Path(scratch) / "fp32.onnx", Path(scratch) / "prepared.onnx"
        export_onnx(network, size, fp32)
        quant_pre_process(str(fp32), str(prepared))  # folds batch norm, infers shapes
        head = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type in HEAD_OPS]
        quantize_static(
            str(prepared),
            str(out),
            _Batches(calibration, "image"),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=head,
        )


def predict_in_batches(model: ResNet18Classifier, inputs: torch.Tensor) -> torch.Tensor:
    chunks = [inputs[start : start + MAX_BATCH] for start in range(0, len(inputs), MAX_BATCH)]
    return torch.cat([model.predict(chunk) for chunk in chunks])


def quantize_model(
    card_path: Path,
    inputs: torch.Tensor,
    *,
    calibration_images: int,
    seed: int,
    sources: Sequence[str],
) -> Int8Card:
    """Quantise the card's model on a seeded sample of `inputs` (preprocessed N×3×S×S), at most
    half of them, check it on the rest, and record it in the card. Raises ValueError if it
    changes labels."""
    if len(inputs) < 2:
        raise ValueError("quantising needs at least two images: to calibrate and to check")
    fp32 = ResNet18Classifier.load(card_path, "fp32")
    order = list(range(len(inputs)))
    random.Random(seed).shuffle(order)  # noqa: S311 (a reproducible sample, not a secret)
    count = min(calibration_images, len(inputs) // 2)
    chosen, held_out = sorted(order[:count]), sorted(order[count:])
    out = card_path.with_name(f"{fp32.card.modality.value}.int8.onnx")
    quantize_int8(fp32.network, fp32.card.input_size, inputs[chosen], out)

    checked = inputs[held_out]
    int8 = ResNet18Classifier(
        fp32.card, fp32.network, "int8", int8=Int8Network(out, torch.get_num_threads())
    )
    measured = agreement(
        predict_in_batches(fp32, checked),
        predict_in_batches(int8, checked),
        fp32.card.decision_threshold,
    )
    if measured["label_agreement"] < AGREEMENT_FLOOR:
        out.unlink()
        raise ValueError(f"int8 changes labels: agreement {measured['label_agreement']:.4f}")
    record = Int8Card(
        file=out.name,
        sha256=sha256_of_file(out),
        calibration=Calibration(images=len(chosen), seed=seed, datasets=list(sources)),
        agreement=measured,
    )
    card = json.loads(card_path.read_text())  # as written, other fields untouched
    card["int8"] = record.model_dump(mode="json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    markdown = card_path.with_suffix(".md")
    if markdown.exists():
        updated = ClassifierCard.model_validate(card)
        markdown.write_text(card_markdown(updated))
    return record


def load_inputs(model: ResNet18Classifier, data: Sequence[Path]) -> torch.Tensor:
    """Every image of the class folders as the model sees it."""
    samples, _ = load_samples(list(data))
    images = ImageCache()
    crops = [model_input(s, images(s.item.path), model.card.roi_margin) for s in samples]
    return torch.cat([model.preprocess(crop.image, crop.lesion) for crop in crops])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="branet-quantize",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True, help="the model card (.json)")
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="class folders")
    parser.add_argument("--calibration-images", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = ResNet18Classifier.load(args.model, "fp32")
    inputs = load_inputs(model, args.data)
    record = quantize_model(
        args.model,
        inputs,
        calibration_images=args.calibration_images,
        seed=args.seed,
        sources=[path.name for path in args.data],
    )
    measured, card = record.agreement, model.card
    print(
        f"{card.name} {card.version}: {record.file} ({record.sha256[:12]}), calibrated on "
        f"{record.calibration.images} images; on {measured['images']:.0f} others, label "
        f"agreement with fp32 {measured['label_agreement']:.4f}, max |dP(malignant)| "
        f"{measured['max_abs_dp_malignant']:.4f}, mean {measured['mean_abs_dp_malignant']:.4f}"
    )


if __name__ == "__main__":
    main()
