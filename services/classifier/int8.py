"""The classifier's fastest CPU path: the shipped weights quantised to int8, run by ONNX Runtime.

Static post-training quantisation (`branet-quantize`, calibrated on training images) turns
every convolution into an int8 one that VNNI instructions execute: on a 2-core AVX-512 CPU at
112 px, batch 1 takes 1.6-2.0 ms against 3.5 ms for bf16 compiled and 5.6 ms for fp32 on ONNX
Runtime; batch 8, 11.7 against 20.1 ms; and nothing compiles at start-up. The artefact is an
ONNX file next to the weights, pinned by SHA-256 in the model card like them; the card also
records its label agreement with fp32.
"""

from pathlib import Path

import torch

try:
    import onnxruntime
except ImportError:  # a slim install without the runtime serves bf16/fp32
    onnxruntime = None


def int8_runtime_available() -> bool:
    return onnxruntime is not None


class Int8Network:
    """An int8 ONNX classifier as a function from an N×3×S×S float batch to N×2 logits."""

    def __init__(self, path: Path, threads: int) -> None:
        if onnxruntime is None:
            raise RuntimeError("onnxruntime is not installed")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle runtime threads would spin for the next batch, taking the cores that decode the
        # next uploads: spinning cost 9.3 against 6.9 ms of CPU per request and 199 against
        # 238 req/s at concurrency 16 (2 vCPUs), for 1 ms less at concurrency 1.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        inputs = batch.detach().float().contiguous().numpy()
        (logits,) = self.session.run(None, {self.input_name: inputs})
        return torch.from_numpy(logits)
