from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from branet_shared.images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS

MULTIPART_OVERHEAD_BYTES = 256 * 1024


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, validation_alias=AliasChoices("GATEWAY_PORT", "PORT"))
    data_dir: Path = Field(
        Path(".branet/data"), description="embedded mode: blobs/ and analyses.sqlite3 live here"
    )
    classifier_url: str = "http://127.0.0.1:8082"
    segmenter_url: str = "http://127.0.0.1:8081"
    connect_timeout_s: float = Field(2.0, gt=0)
    classify_timeout_s: float = Field(30.0, gt=0)
    segment_timeout_s: float = Field(180.0, gt=0, description="SAM's automatic mode is slow on CPU")
    model_retries: int = Field(2, ge=0, le=5, description="retries of a refused connection")
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    auth_mode: Literal["none"] = Field(
        "none", description="none: every request is `local_user` (embedded default)"
    )
    local_user: str = "local"
    log_level: str = "INFO"

    @property
    def max_body_bytes(self) -> int:
        return self.max_image_bytes + MULTIPART_OVERHEAD_BYTES

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "analyses.sqlite3"
