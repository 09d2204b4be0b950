"""A MobileNetV2 written as a quantised TensorFlow Lite file, as Google's are laid out: each
convolution with batch norm folded in, int8 weights with per-channel scales (NHWC kernels,
depthwise ones 1×H×W×C), int32 biases; what `branet-convert-mobilenet` reads. Tests build one
from a torchvision network of known weights, so the conversion can be checked against it."""

from pathlib import Path

import flatbuffers
import numpy as np
import numpy.typing as npt
import tflite
import torch
import torchvision

from branet_training.pretrained import IMAGENET_CLASSES, torchvision_layers


def random_mobilenet_v2(seed: int) -> torchvision.models.MobileNetV2:
    """Random weights and random batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    network = torchvision.models.mobilenet_v2(weights=None, num_classes=IMAGENET_CLASSES)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                assert module.running_mean is not None
                assert module.running_var is not None
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return network.eval()


def folded_layers(
    network: torch.nn.Module,
) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], int, bool]]:
    """(NHWC kernel, bias, stride, depthwise) per convolution, batch norm folded in; the
    classifier's linear layer last as a 1×1 convolution."""
    layers = []
    for layer, norm in torchvision_layers(network):
        if isinstance(layer, torch.nn.Linear):
            kernel = layer.weight.detach().numpy()[:, None, None, :]
            layers.append((kernel, layer.bias.detach().numpy(), 1, False))
            continue
        assert norm is not None
        assert norm.running_mean is not None
        assert norm.running_var is not None
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        weight = layer.weight * scale[:, None, None, None]
        bias = norm.bias - norm.running_mean * scale
        depthwise = layer.groups > 1
        order = (1, 2, 3, 0) if depthwise else (0, 2, 3, 1)
        kernel = weight.detach().permute(order).numpy()
        layers.append((kernel, bias.detach().numpy(), layer.stride[0], depthwise))
    return layers


class _Writer:
    def __init__(self) -> None:
        self.builder = flatbuffers.Builder(1 << 20)
        self.buffers: list[int] = []
        self.tensors: list[int] = []

    def vector(self, values: npt.NDArray[np.generic]) -> int:
        return int(self.builder.CreateNumpyVector(values))

    def tensor(
        self, values: npt.NDArray[np.generic], kind: int, scale: npt.NDArray[np.float32], axis: int
    ) -> int:
        b = self.builder
        data = self.vector(np.frombuffer(values.tobytes(), dtype=np.uint8))
        tflite.BufferStart(b)
        tflite.BufferAddData(b, data)
        self.buffers.append(tflite.BufferEnd(b))
        scales = self.vector(scale.astype(np.float32))
        zeros = self.vector(np.zeros(scale.size, dtype=np.int64))
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, scales)
        tflite.QuantizationParametersAddZeroPoint(b, zeros)
        tflite.QuantizationParametersAddQuantizedDimension(b, axis)
        quantization = tflite.QuantizationParametersEnd(b)
        shape = self.vector(np.array(values.shape, dtype=np.int32))
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, kind)
        tflite.TensorAddBuffer(b, len(self.buffers))  # buffer 0 is the empty one
        tflite.TensorAddQuantization(b, quantization)
        self.tensors.append(tflite.TensorEnd(b))
        return len(self.tensors) - 1

    def table_vector(self, start: object, items: list[int]) -> int:
        start(self.builder, len(items))  # type: ignore[operator]
        for item in reversed(items):
            self.builder.PrependUOffsetTRelative(item)
        return int(self.builder.EndVector())


def write_mobilenet_tflite(network: torch.nn.Module, path: Path) -> Path:
    """`network`'s weights as a TFLite MobileNetV2 graph of its 53 convolutions."""
    w = _Writer()
    b = w.builder
    operators = []
    for kernel, bias, stride, depthwise in folded_layers(network):
        axis = 3 if depthwise else 0
        reduce = tuple(d for d in range(4) if d != axis)
        scale = np.maximum(np.abs(kernel).max(axis=reduce), 1e-8) / 127
        shape = [1, 1, 1, 1]
        shape[axis] = scale.size
        quantised = np.round(kernel / scale.reshape(shape)).clip(-127, 127).astype(np.int8)
        bias_scale = scale * 1e-3
        weight_index = w.tensor(quantised, tflite.TensorType.INT8, scale, axis)
        bias_q = np.round(bias / bias_scale).astype(np.int32)
        bias_index = w.tensor(bias_q, tflite.TensorType.INT32, bias_scale, 0)
        if depthwise:
            tflite.DepthwiseConv2DOptionsStart(b)
            tflite.DepthwiseConv2DOptionsAddStrideH(b, stride)
            tflite.DepthwiseConv2DOptionsAddStrideW(b, stride)
            options = tflite.DepthwiseConv2DOptionsEnd(b)
        else:
            tflite.Conv2DOptionsStart(b)
            tflite.Conv2DOptionsAddStrideH(b, stride)
            tflite.Conv2DOptionsAddStrideW(b, stride)
            options = tflite.Conv2DOptionsEnd(b)
        inputs = w.vector(np.array([-1, weight_index, bias_index], dtype=np.int32))
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, 1 if depthwise else 0)
        tflite.OperatorAddInputs(b, inputs)
        tflite.OperatorAddBuiltinOptionsType(
            b,
            tflite.BuiltinOptions.DepthwiseConv2DOptions
            if depthwise
            else tflite.BuiltinOptions.Conv2DOptions,
        )
        tflite.OperatorAddBuiltinOptions(b, options)
        operators.append(tflite.OperatorEnd(b))
    tensors = w.table_vector(tflite.SubGraphStartTensorsVector, w.tensors)
    operator_vector = w.table_vector(tflite.SubGraphStartOperatorsVector, operators)
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors)
    tflite.SubGraphAddOperators(b, operator_vector)
    subgraph = tflite.SubGraphEnd(b)
    codes = []
    for code in (tflite.BuiltinOperator.CONV_2D, tflite.BuiltinOperator.DEPTHWISE_CONV_2D):
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, code)
        codes.append(tflite.OperatorCodeEnd(b))
    tflite.BufferStart(b)
    empty = tflite.BufferEnd(b)
    buffers = w.table_vector(tflite.ModelStartBuffersVector, [empty, *w.buffers])
    subgraphs = w.table_vector(tflite.ModelStartSubgraphsVector, [subgraph])
    code_vector = w.table_vector(tflite.ModelStartOperatorCodesVector, codes)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, code_vector)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddBuffers(b, buffers)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path
