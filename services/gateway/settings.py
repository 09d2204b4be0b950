from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from branet_shared.connections import ConnectionSettings
from branet_shared.images import (
    MAX_DECODED_BYTES,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_JPEG_SCANS,
    DecodeLimits,
)
from branet_shared.tracing import TraceExporter

MULTIPART_OVERHEAD_BYTES = 256 * 1024


class GatewaySettings(ConnectionSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, validation_alias=AliasChoices("GATEWAY_PORT", "PORT"))
    data_dir: Path = Field(
        Path(".branet/data"), description="embedded mode: blobs/ and analyses.sqlite3 live here"
    )
    blob_backend: Literal["local", "gcs"] = "local"
    result_backend: Literal["sqlite", "firestore"] = "sqlite"
    gcp_project: str | None = Field(None, description="default: the environment's project")
    gcs_bucket: str = Field("", description="bucket for images, masks and crops (gcs)")
    gcs_endpoint: str | None = Field(
        None, description="emulator URL; default: STORAGE_EMULATOR_HOST if set, else GCS"
    )
    firestore_database: str = "(default)"
    firestore_collection: str = "analyses"
    classifier_url: str = "http://127.0.0.1:8082"
    segmenter_url: str = "http://127.0.0.1:8081"
    connect_timeout_s: float = Field(2.0, gt=0)
    classify_timeout_s: float = Field(30.0, gt=0)
    segment_timeout_s: float = Field(180.0, gt=0, description="SAM's automatic mode is slow on CPU")
    model_retries: int = Field(2, ge=0, le=5, description="retries of a refused connection")
    model_auth: Literal["none", "id_token"] = Field(
        "none", description="id_token: Google-signed ID tokens to the model services (Cloud Run)"
    )
    metadata_url: str = Field(
        "http://metadata.google.internal", description="where ID tokens come from (id_token)"
    )
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_decoded_bytes: int = Field(
        MAX_DECODED_BYTES, description="width × height × channels × bytes per sample, at most"
    )
    max_jpeg_scans: int = Field(MAX_JPEG_SCANS, ge=1, description="scans of a progressive JPEG")
    validate_workers: int = Field(2, ge=1, description="processes that decode uploads")
    validate_timeout_s: float = Field(
        10.0, gt=0, description="an upload must decode within this, else its worker is killed"
    )
    auth_mode: Literal["none", "firebase"] = Field(
        "none", description="none: every request is `local_user`; firebase: ID tokens"
    )
    local_user: str = "local"
    allow_insecure_no_auth: bool = Field(
        False, description="allow auth_mode=none on a non-loopback address (never in production)"
    )
    firebase_project_id: str = ""
    firebase_certificates_url: str = (
        "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
    )
    clock_skew_s: float = Field(60.0, ge=0, le=300)
    # The page's Firebase web config (firebase): public values, as the Firebase console shows.
    firebase_api_key: str = Field("", description="the web API key the page signs in with")
    firebase_auth_domain: str = Field("", description="default: <project>.firebaseapp.com")
    firebase_auth_emulator_url: str = Field(
        "", description="the page signs in here instead of at Google (local development, tests)"
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed by CORS; empty: CORS off"
    )
    rate_limit_per_user: str = Field("30/minute", description="analysis creations per user")
    rate_limit_per_ip: str = Field("60/minute", description="analysis creations per client IP")
    max_in_flight_analyses: int = Field(
        8, ge=1, description="analyses running at once per instance; more are shed with 503"
    )
    proxy_hops: int = Field(
        0,
        ge=0,
        le=5,
        description="trusted proxies in front that append to X-Forwarded-For: the client is"
        " the entry this far from the right (Cloud Run: 1); 0: the socket's peer",
    )
    rate_limit_storage: str = Field(
        "memory://",
        description="where rate-limit counters live: memory:// (this process) or a"
        " redis://host:port shared by every instance",
    )
    orphan_grace_s: float = Field(
        900.0,
        ge=0,
        description="blobs without a record are removed once this old: longer than any request",
    )
    sweep_interval_s: float = Field(3600.0, gt=0, description="how often to sweep for orphans")
    log_level: str = "INFO"
    trace_exporter: TraceExporter = Field(
        "none", description="where spans go: none, otlp (OTEL_EXPORTER_OTLP_*), cloud_trace"
    )

    @model_validator(mode="after")
    def _backends_are_configured(self) -> Self:
        if self.blob_backend == "gcs" and not self.gcs_bucket:
            raise ValueError("GATEWAY_GCS_BUCKET is required with blob_backend=gcs")
        return self

    @model_validator(mode="after")
    def _auth_is_safe(self) -> Self:
        if self.auth_mode == "firebase" and not self.firebase_project_id:
            raise ValueError("GATEWAY_FIREBASE_PROJECT_ID is required with auth_mode=firebase")
        if self.firebase_auth_emulator_url and not self.firebase_auth_emulator_url.startswith(
            ("http://127.0.0.1:", "http://localhost:")
        ):
            raise ValueError("GATEWAY_FIREBASE_AUTH_EMULATOR_URL must be a loopback http:// URL")
        if self.auth_mode == "none" and not self.on_loopback and not self.allow_insecure_no_auth:
            raise ValueError(
                f"auth_mode=none on {self.host} would serve every caller as one user: bind to "
                "127.0.0.1, use GATEWAY_AUTH_MODE=firebase, or set "
                "GATEWAY_ALLOW_INSECURE_NO_AUTH=true for a closed network"
            )
        return self

    @property
    def on_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "::1", "localhost")

    @property
    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(
            self.max_image_bytes, self.max_image_pixels, self.max_decoded_bytes, self.max_jpeg_scans
        )

    @property
    def max_body_bytes(self) -> int:
        return self.max_image_bytes + MULTIPART_OVERHEAD_BYTES

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "analyses.sqlite3"
