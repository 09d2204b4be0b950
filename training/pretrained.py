"""`branet-convert-mobilenet`: ImageNet's MobileNetV2 from a quantised TensorFlow Lite file to
torchvision's `mobilenet_v2`, checked against the LiteRT interpreter on the same inputs.

    branet-convert-mobilenet ../shared/data/pretrained/tf2_mobilenet_v2_1.0_224_ptq.tflite \\
        --check ../shared/data/busi --out reports/mobilenet-conversion.json

The file's 53 convolutions (batch norm folded in, 8-bit weights) are read in graph order with
the `tflite` schema package, dequantised as `(q - zero_point) * scale`, transposed from NHWC
and written into torchvision's convolutions in module order, each followed by a batch norm set
to add the folded bias and nothing else. `calibrate_batch_norm` then gives those batch norms the
statistics of real images without changing what the network computes, so that training in
batch-norm's train mode starts from the ImageNet function rather than a renormalised one.
"""

import argparse
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tflite
import torch
import torchvision
from PIL import Image

from branet_classifier.model import IMAGENET_MEAN, IMAGENET_STD
from branet_runtime.files import verify_file
from branet_segmenter.model import (
    STRIDE_16_BLOCKS,
    STRIDE_32_BLOCKS,
    MobileNetImageEncoder,
    pad_as_tensorflow,
)

log = logging.getLogger(__name__)

# ../shared/data/pretrained/README.md: the only ImageNet weights to be had here.
KNOWN_FILES = {
    "mobilenet_v2_1.0_224_quant.tflite": (
        "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"
    ),
    "tf2_mobilenet_v2_1.0_224_ptq.tflite": (
        "5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c"
    ),
}
IMAGENET_CLASSES = 1001  # background first
INPUT_SIZE = 224
_DTYPES = {
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.INT32: np.int32,
}
_CONVOLUTIONS = {tflite.BuiltinOperator.CONV_2D, tflite.BuiltinOperator.DEPTHWISE_CONV_2D}


@dataclass(frozen=True)
class FoldedConvolution:
    """One TFLite convolution in PyTorch's layout: weight O×I/groups×H×W and its bias."""

    weight: torch.Tensor
    bias: torch.Tensor
    stride: int
    depthwise: bool


def dequantized(
    values: npt.NDArray[Any], scales: npt.NDArray[Any], zero_points: npt.NDArray[Any], axis: int
) -> npt.NDArray[np.float32]:
    """`(q - zero_point) * scale`, per tensor or per channel along `axis`."""
    shape = [1] * values.ndim
    if scales.size > 1:
        shape[axis] = scales.size
    zero = zero_points.reshape(shape) if zero_points.size > 1 else zero_points.reshape(-1)[:1]
    real = (values.astype(np.float32) - zero.astype(np.float32)) * scales.reshape(shape)
    return np.asarray(real, dtype=np.float32)


def torch_kernel(nhwc: npt.NDArray[np.float32], depthwise: bool) -> torch.Tensor:
    """TFLite kernels are O×H×W×I, depthwise ones 1×H×W×C; PyTorch wants O×I×H×W (C×1×H×W)."""
    order = (3, 0, 1, 2) if depthwise else (0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(nhwc.transpose(order)))


def _tensor_values(model: Any, graph: Any, index: int) -> npt.NDArray[np.float32]:
    tensor = graph.Tensors(index)
    raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
    values = np.frombuffer(raw.tobytes(), dtype=_DTYPES[tensor.Type()])
    values = values.reshape(tensor.ShapeAsNumpy())
    quantization = tensor.Quantization()
    return dequantized(
        values,
        quantization.ScaleAsNumpy(),
        quantization.ZeroPointAsNumpy(),
        quantization.QuantizedDimension(),
    )


def read_convolutions(path: Path) -> list[FoldedConvolution]:
    """Every convolution of the file's graph, in the order the graph runs them."""
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    convolutions = []
    for i in range(graph.OperatorsLength()):
        operator = graph.Operators(i)
        code = model.OperatorCodes(operator.OpcodeIndex())
        kind = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if kind not in _CONVOLUTIONS:
            continue
        depthwise = kind == tflite.BuiltinOperator.DEPTHWISE_CONV_2D
        options_type = tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions
        options = options_type()
        table = operator.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        kernel = _tensor_values(model, graph, operator.Inputs(1))
        convolutions.append(
            FoldedConvolution(
                weight=torch_kernel(kernel, depthwise),
                bias=torch.from_numpy(_tensor_values(model, graph, operator.Inputs(2))),
                stride=options.StrideH(),
                depthwise=depthwise,
            )
        )
    return convolutions


Layer = tuple[torch.nn.Conv2d | torch.nn.Linear, torch.nn.BatchNorm2d | None]


def torchvision_layers(network: torch.nn.Module) -> list[Layer]:
    """torchvision's convolutions in module order, each with the batch norm that follows it,
    and the classifier's linear layer last (a 1×1 convolution in TFLite)."""
    modules = list(network.modules())
    layers: list[Layer] = []
    for i, module in enumerate(modules):
        if isinstance(module, torch.nn.Conv2d):
            norm = modules[i + 1]
            assert isinstance(norm, torch.nn.BatchNorm2d), f"no batch norm after {module}"
            layers.append((module, norm))
        elif isinstance(module, torch.nn.Linear):
            layers.append((module, None))
    return layers


def mobilenet_v2_from_tflite(path: Path) -> torchvision.models.MobileNetV2:
    """torchvision's MobileNetV2 (1001 classes) computing what the file's float network would,
    once its stride-2 layers pad as TensorFlow does (`pad_as_tensorflow`)."""
    network = torchvision.models.mobilenet_v2(weights=None, num_classes=IMAGENET_CLASSES)
    convolutions = read_convolutions(path)
    layers = torchvision_layers(network)
    if len(convolutions) != len(layers):
        raise ValueError(f"{path.name}: {len(convolutions)} convolutions, expected {len(layers)}")
    with torch.no_grad():
        for (layer, norm), folded in zip(layers, convolutions, strict=True):
            weight = folded.weight if norm is not None else folded.weight.flatten(1)
            if layer.weight.shape != weight.shape:
                raise ValueError(f"{path.name}: {tuple(weight.shape)} for {layer}")
            layer.weight.copy_(weight)
            if norm is None:
                assert layer.bias is not None
                layer.bias.copy_(folded.bias)
                continue
            assert norm.running_mean is not None
            assert norm.running_var is not None
            # Identity batch norm that adds the folded bias: eval-mode output is W·x + b.
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
            norm.weight.fill_(1.0)
            norm.bias.copy_(folded.bias)
    return network.eval()


def calibrate_batch_norm(network: torch.nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Give each batch norm the mean and variance of its input over `batches` and fold them
    back out of gamma and beta: eval-mode output is unchanged, and a training batch's own
    statistics (close to these) now leave the pretrained function nearly as it was."""
    norms = [m for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    moments = {id(n): _Moments() for n in norms}

    def record(norm: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        moments[id(norm)].add(inputs[0].detach().double())

    hooks = [n.register_forward_pre_hook(record) for n in norms]
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                network(batch)
    finally:
        for hook in hooks:
            hook.remove()
    with torch.no_grad():
        for norm in norms:
            if moments[id(norm)].count:
                _refold(norm, *moments[id(norm)].mean_and_variance())
    network.train(was_training)


class _Moments:
    """Per-channel running sums of an N×C×H×W input and of its squares."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.squares: torch.Tensor | None = None
        self.count = 0

    def add(self, values: torch.Tensor) -> None:
        total, squares = values.sum(dim=(0, 2, 3)), (values**2).sum(dim=(0, 2, 3))
        self.total = total if self.total is None else self.total + total
        self.squares = squares if self.squares is None else self.squares + squares
        self.count += values.numel() // values.shape[1]

    def mean_and_variance(self) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.total is not None
        assert self.squares is not None
        mean = self.total / self.count
        return mean, (self.squares / self.count - mean**2).clamp_min(0.0)


def _refold(norm: torch.nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor) -> None:
    """Statistics `mean`, `var`; gamma and beta moved so that eval output stays a·x + c."""
    assert norm.running_mean is not None
    assert norm.running_var is not None
    scale = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)
    shift = norm.bias.double() - scale * norm.running_mean.double()
    std = torch.sqrt(var + norm.eps)
    norm.running_mean.copy_(mean.float())
    norm.running_var.copy_(var.float())
    norm.weight.copy_((scale * std).float())
    norm.bias.copy_((scale * mean + shift).float())


def image_batch(paths: Sequence[Path]) -> npt.NDArray[np.uint8]:
    """N×224×224×3 uint8 RGB: the interpreter's input."""
    images = [
        np.asarray(Image.open(p).convert("RGB").resize((INPUT_SIZE, INPUT_SIZE))) for p in paths
    ]
    return np.stack(images)


def torch_input(pixels: npt.NDArray[np.uint8]) -> torch.Tensor:
    """uint8 NHWC to the float NCHW the network was trained on: pixels mapped to [-1, 1]."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def interpreter_logits(path: Path, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """The reference: LiteRT's interpreter, one image at a time, output dequantised."""
    from ai_edge_litert.interpreter import Interpreter  # the check's only dependency

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = target["quantization"]
    rows = []
    for image in pixels:
        interpreter.set_tensor(source["index"], image[None])
        interpreter.invoke()
        rows.append((interpreter.get_tensor(target["index"])[0].astype(np.float32) - zero) * scale)
    return np.stack(rows)


def agreement(
    reference: npt.NDArray[np.float32], probabilities: npt.NDArray[np.float32]
) -> dict[str, float]:
    """How closely two networks' class probabilities agree over the same images."""
    top1 = float(np.mean(reference.argmax(1) == probabilities.argmax(1)))
    top5 = [
        len(set(np.argsort(-r)[:5]) & set(np.argsort(-p)[:5])) / 5
        for r, p in zip(reference, probabilities, strict=True)
    ]
    cosine = np.sum(reference * probabilities, 1) / (
        np.linalg.norm(reference, axis=1) * np.linalg.norm(probabilities, axis=1)
    )
    return {
        "top1_agreement": round(top1, 4),
        "mean_cosine": round(float(np.mean(cosine)), 4),
        "top5_overlap": round(float(np.mean(top5)), 4),
        "max_probability_difference": round(float(np.abs(reference - probabilities).max()), 4),
    }


def check(path: Path, image_paths: Sequence[Path]) -> dict[str, Any]:
    """The converted network against the interpreter on the same images, with TensorFlow's
    padding (the conversion itself) and with PyTorch's (how it is used)."""
    pixels = image_batch(image_paths)
    reference = interpreter_logits(path, pixels)
    results: dict[str, Any] = {"file": path.name, "images": len(image_paths)}
    for padding, network in (
        ("tensorflow", pad_as_tensorflow(mobilenet_v2_from_tflite(path))),
        ("pytorch", mobilenet_v2_from_tflite(path)),
    ):
        with torch.no_grad():
            probabilities = torch.softmax(network(torch_input(pixels)), dim=1).numpy()
        results[f"{padding}_padding"] = agreement(reference, probabilities)
    return results


# The converted network's class probabilities must have at least this mean cosine with the
# quantised file's. On ultrasound images ImageNet's classes are near ties, so 8-bit rounding
# flips many a top-1 (0.81–0.97 agreement); the cosine was 0.97–0.98 where the conversion is
# right, and 0.51–0.61 with nothing wrong but PyTorch's padding.
CONVERSION_BAR = 0.95


def checked_conversion(path: Path, image_paths: Sequence[Path]) -> dict[str, Any]:
    """`check` on the verified file, refused (ValueError) below `CONVERSION_BAR`: what a
    training run that learns from the teacher records, and its guard against a bad conversion."""
    results = check(verified_tflite(path), image_paths)
    require_agreement(results)
    return results | {"bar": CONVERSION_BAR, "passed": True}


def require_agreement(results: dict[str, Any]) -> None:
    """ValueError unless `check`'s results reach `CONVERSION_BAR` with TensorFlow's padding."""
    cosine = float(results["tensorflow_padding"]["mean_cosine"])
    if cosine < CONVERSION_BAR:
        raise ValueError(
            f"{results['file']}: the conversion's class probabilities have a mean cosine of"
            f" {cosine:.3f} with LiteRT's on {results['images']} images, under the"
            f" {CONVERSION_BAR} bar"
        )


def tensorflow_pixels(standardised: torch.Tensor) -> torch.Tensor:
    """The classifier's ImageNet-standardised N×3×H×W input as the [-1, 1] pixels the TFLite
    MobileNetV2 was trained on."""
    mean = standardised.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = standardised.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (standardised * std + mean) * 2.0 - 1.0


class ImageNetTeacher(torch.nn.Module):
    """ImageNet's MobileNetV2 as a two-class classifier of the classifier's own inputs
    (ImageNet-standardised RGB), padded as TensorFlow pads, with a new head on its 1,280 pooled
    features."""

    def __init__(self, tflite: Path, classes: int = 2) -> None:
        super().__init__()
        network = pad_as_tensorflow(mobilenet_v2_from_tflite(verified_tflite(tflite)))
        network.classifier[-1] = torch.nn.Linear(network.last_channel, classes)
        self.network = network

    def forward(self, standardised: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.network(tensorflow_pixels(standardised))
        return logits


def load_imagenet_trunk(encoder: MobileNetImageEncoder, path: Path) -> None:
    """The segmenter's MobileNetV2 blocks from the (verified) ImageNet file; its neck stays new."""
    features = mobilenet_v2_from_tflite(verified_tflite(path)).features
    encoder.stride16.load_state_dict(features[:STRIDE_16_BLOCKS].state_dict())
    encoder.stride32.load_state_dict(features[STRIDE_16_BLOCKS:STRIDE_32_BLOCKS].state_dict())


def verified_tflite(path: Path) -> Path:
    """The file, refused unless its SHA-256 is the one the pretrained README gives."""
    expected = KNOWN_FILES.get(path.name)
    if expected is None:
        raise ValueError(f"{path.name} is not one of the known files: {sorted(KNOWN_FILES)}")
    verify_file(path, expected, "ImageNet MobileNetV2", "../shared/data/pretrained/README.md")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="branet-convert-mobilenet",
        description=__doc__.split("\n")[0].split(": ", 1)[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("tflite", type=Path, help="one of ../shared/data/pretrained/*.tflite")
    parser.add_argument("--check", type=Path, required=True, help="a folder of images to run")
    parser.add_argument("--images", type=int, default=32, help="how many of them")
    parser.add_argument("--out", type=Path, default=None, help="write the check's JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    path = verified_tflite(args.tflite)
    images = sorted(p for p in args.check.rglob("*.png") if "mask" not in p.name)[: args.images]
    results = check(path, images)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    try:
        require_agreement(results)
    except ValueError as exc:
        parser.exit(1, f"branet-convert-mobilenet: {exc}\n")
