"""Model files from a local path or a `gs://` URI, used only when they are the pinned ones.

A `gs://bucket/path` is downloaded once into a local cache folder at start-up, with
Application Default Credentials; the loaders verify each file's SHA-256 afterwards, as they do
for local files. Nothing is fetched over the network at inference time.
"""

import hashlib
import logging
from pathlib import Path
from typing import TypeVar

import torch
from pydantic import BaseModel
from safetensors.torch import load_file

from branet_shared.errors import ModelFileError

log = logging.getLogger(__name__)
CardT = TypeVar("CardT", bound=BaseModel)


def read_card(path: Path, card_type: type[CardT]) -> CardT:
    """A model card, or the `ModelFileError` that says why it cannot be read."""
    try:
        return card_type.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ModelFileError(f"no model card at {path}") from None
    except ValueError as exc:
        raise ModelFileError(f"model card {path} is invalid: {exc}") from None


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, sha256: str | None, what: str, pinned_by: str = "the card's") -> str:
    """`path`'s SHA-256, refusing the file unless it exists and has the one `pinned_by` (its
    card, a setting, the official release) pins; None pins nothing (a test checkpoint)."""
    if not path.is_file():
        raise ModelFileError(f"{what} {path} does not exist")
    actual = sha256_of_file(path)
    if sha256 is not None and actual != sha256:
        raise ModelFileError(
            f"{what} {path} does not match {pinned_by} SHA-256 (it has {actual[:16]}…)"
        )
    return actual


def load_weights(network: torch.nn.Module, path: Path, architecture: str) -> None:
    """A verified safetensors file's weights into `network`, in fp32 (they are shipped in
    fp16); `ModelFileError` where they are not that architecture's."""
    state = {name: tensor.float() for name, tensor in load_file(path).items()}
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"weights in {path} are not a {architecture}: {exc}") from None


def fetched(location: str | Path, cache_dir: Path) -> Path:
    """`local_copy`, with any failure to fetch as the `ModelFileError` that keeps a service
    alive but not ready."""
    try:
        return local_copy(location, cache_dir)
    except Exception as exc:  # network, credentials, a missing bucket: all mean "not ready"
        raise ModelFileError(f"cannot fetch {location}: {exc}") from None


def is_gcs(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith("gs://")


def _split(uri: str) -> tuple[str, str]:
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    if not bucket:
        raise ValueError(f"{uri} names no bucket")
    return bucket, path.strip("/")


def local_copy(location: str | Path, cache_dir: Path) -> Path:
    """`location` itself when local; else the object or folder (prefix) downloaded.

    A URI ending in `/` is a folder: every object under it is fetched, keeping names.
    """
    if not isinstance(location, str) or not is_gcs(location):
        return Path(location)
    from google.cloud import storage  # type: ignore[attr-defined]  # only needed for gs://

    bucket_name, path = _split(location)
    bucket = storage.Client().bucket(bucket_name)
    target = cache_dir / bucket_name / path
    if location.endswith("/"):
        target.mkdir(parents=True, exist_ok=True)
        for blob in bucket.list_blobs(prefix=f"{path}/" if path else ""):
            _download(blob, target / Path(blob.name).relative_to(path or "."))
        return target
    _download(bucket.blob(path), target)
    return target


def _download(blob: object, target: Path) -> None:
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    log.info("fetching gs://%s/%s", blob.bucket.name, blob.name)  # type: ignore[attr-defined]
    blob.download_to_filename(str(partial))  # type: ignore[attr-defined]
    partial.replace(target)
