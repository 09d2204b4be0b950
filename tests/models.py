"""Model files for tests: real architectures, seeded random weights, written like shipped ones."""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from opentelemetry import trace
from safetensors.torch import save_file

from branet_classifier.model import ClassifierCard, build_resnet18
from branet_runtime.files import sha256_of_file
from branet_runtime.metrics import ModelServiceMetrics
from branet_runtime.service import AnyTask, ModelRuntime
from branet_segmenter.segment import build_toy_sam
from branet_shared.metrics import Stages
from branet_shared.schemas import Modality


def write_classifier(
    folder: Path,
    modality: str,
    seed: int = 0,
    keep_aspect: bool = False,
    metrics: dict[str, float] | None = None,
    lesion_channel: bool = False,
    malignant_prevalence: float | None = None,
) -> Path:
    """A ResNet18 classifier card and its fp16 safetensors weights; returns the card's path."""
    torch.manual_seed(seed)
    network = build_resnet18()
    weights = folder / f"{modality}.safetensors"
    save_file({k: v.half().contiguous() for k, v in network.state_dict().items()}, weights)
    card = ClassifierCard(
        name=f"test-resnet18-{modality}",
        version=f"0.0.{seed}",
        modality=Modality(modality),
        weights_file=weights.name,
        weights_sha256=sha256_of_file(weights),
        input_size=64,
        keep_aspect=keep_aspect,
        lesion_channel=lesion_channel,
        malignant_prevalence=malignant_prevalence,
        metrics=metrics or {},
        description="random weights, for tests only",
    )
    path = folder / f"{modality}.json"
    path.write_text(card.model_dump_json(indent=2))
    return path


def write_toy_sam(folder: Path, seed: int = 0, blind: bool = False) -> Path:
    """A checkpoint of the toy SAM architecture (random weights), as SEGMENTER_CHECKPOINT.

    A `blind` one finds nothing, whatever the prompt: every mask logit is negative.
    """
    torch.manual_seed(seed)
    path = folder / ("blind_sam.pth" if blind else "toy_sam.pth")
    state = build_toy_sam().state_dict()
    for name, value in state.items():
        if "rel_pos" in name:  # initialised to zeros: trained ones are not, and must count
            value.normal_(std=0.5)
    if blind:  # mask = hypernetwork output · upscaled embedding = (−1) · GELU(1) per channel
        state["mask_decoder.output_upscaling.3.weight"].zero_()
        state["mask_decoder.output_upscaling.3.bias"].fill_(1.0)
        for name, value in state.items():
            if "output_hypernetworks_mlps" in name and ".layers.2." in name:
                value.zero_() if name.endswith("weight") else value.fill_(-1.0)
    torch.save(state, path)
    return path


def loaded_runtime(service: str, tasks: Sequence[AnyTask]) -> ModelRuntime:
    """The runtime a model service holds once its lifespan has loaded `tasks`."""
    metrics = ModelServiceMetrics(service)
    stages = Stages(metrics, trace.NoOpTracer())
    # Threads start on first use.
    runtime = ModelRuntime(service, tasks, ThreadPoolExecutor(1), metrics, stages)
    runtime.load()
    return runtime
