from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from branet_runtime.precision import Precision
from branet_runtime.service import ModelServiceSettings
from branet_segmenter.segment import AutomaticSettings


class SegmenterSettings(ModelServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTER_")

    port: int = Field(8081, validation_alias=AliasChoices("SEGMENTER_PORT", "PORT"))
    model_type: Literal["vit_b", "vit_l", "vit_h", "toy"] = Field(
        "vit_b", description="toy: the random-init test architecture, never for real use"
    )
    checkpoint: str | Path | None = Field(
        None,
        description="an official or toy SAM checkpoint (.pth) for model_type: a path or a gs://"
        " URI; unset: BraNet's own lesion segmenter, SEGMENTER_MODEL_CARD",
    )
    model_card: str | Path = Field(
        "models/segmenter.json",
        description="BraNet's own lesion segmenter (branet-train-segmenter): its card, beside"
        " its safetensors weights; a path or a gs:// URI; used when no checkpoint is set",
    )
    checkpoint_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="expected SHA-256; defaults to the official checkpoint's for vit_*",
    )
    precision: Precision = Field(
        "auto",
        description="the image encoder's: bf16 (3.2x the package's fp32 when compiled); int8: "
        "int8 linear layers on bf16 (12 % faster, 8 s more compilation; needs VNNI); auto: "
        "bf16 where the CPU has bf16 units, else fp32. bench/suite.py measures mask IoU "
        "against fp32",
    )
    compile: bool = Field(
        True, description="compile the image encoder at start (about 30 s; 1.3x faster)"
    )
    embedding_cache_entries: int = Field(8, ge=0, le=256, description="4 MiB each for ViT")
    auto_points_per_side: int = Field(16, ge=4, le=64, description="automatic mode's point grid")
    auto_crop_n_layers: int = Field(0, ge=0, le=2, description="automatic mode's crop layers")
    auto_max_side: int = Field(512, ge=128, le=1024, description="automatic mode's image size")
    auto_grid: Literal["uniform", "lesion"] = Field(
        "uniform",
        description="automatic mode's prompts: a uniform grid, or `lesion`: the darkest "
        "(ultrasound) or brightest (mammography) cells, ~10x fewer masks to decode",
    )
    auto_lesion_points: int = Field(24, ge=1, le=196, description="prompts of the lesion grid")
    roi_margin: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="context around the ROI crop; the classifiers trained with 0.25",
    )
    keep_freed_memory: bool = Field(
        True,
        description="keep the encoder's large freed buffers for the next image instead of "
        "returning them to the kernel (glibc malloc): bf16 compiled embeddings 4.5 -> 3.8 s on "
        "2 vCPUs; the process keeps its peak memory",
    )

    @property
    def automatic(self) -> AutomaticSettings:
        return AutomaticSettings(
            points_per_side=self.auto_points_per_side,
            crop_n_layers=self.auto_crop_n_layers,
            max_side=self.auto_max_side,
            grid=self.auto_grid,
            lesion_points=self.auto_lesion_points,
        )

    @field_validator("checkpoint", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """SEGMENTER_CHECKPOINT="" (as a deploy that leaves it blank sets it) means unset."""
        return None if value == "" else value
