from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from branet_runtime.precision import Precision
from branet_runtime.service import ModelServiceSettings


class ClassifierSettings(ModelServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLASSIFIER_")

    port: int = Field(8082, validation_alias=AliasChoices("CLASSIFIER_PORT", "PORT"))
    model_dir: str | Path = Field(
        "models",
        description="folder with <modality>.json cards and their safetensors: a path or gs://…/",
    )
    max_batch: int = Field(8, ge=1, le=64, description="images per forward pass under load")
    precision: Precision = Field(
        "auto",
        description="int8: the card's int8 artefact on ONNX Runtime (branet-quantize; about 2x "
        "bf16 on VNNI CPUs, no compilation); bf16: bf16 weights (about 1.5-2x fp32 on AVX-512 "
        "BF16 CPUs); auto: int8 where the card has it, else bf16 if the CPU has bf16 units, "
        "else fp32. bench/precision.py measures each one's agreement with fp32.",
    )
    compile: bool = Field(
        True,
        description="bf16/fp32 only: compile each model with torch.compile at start (batch "
        "sizes 1, 2, 4, 8), about 2x faster than eager; costs 15-30 s of start-up, less with a "
        "warm TORCHINDUCTOR_CACHE_DIR",
    )
