from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from branet_classifier.classify import ClassifierPrecision


class ClassifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLASSIFIER_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8082, validation_alias=AliasChoices("CLASSIFIER_PORT", "PORT"))
    model_dir: str | Path = Field(
        "models",
        description="folder with <modality>.json cards and their safetensors: a path or gs://…/",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "branet-models",
        description="where gs:// files land",
    )
    torch_threads: int = Field(0, ge=0, description="intra-op threads; 0 = torch's default")
    max_concurrency: int = Field(1, ge=1, description="inferences run at once per process")
    max_batch: int = Field(8, ge=1, le=64, description="images per forward pass under load")
    precision: ClassifierPrecision = Field(
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
    max_body_bytes: int = 10 * 1024 * 1024 + 64 * 1024
    log_level: str = "INFO"
