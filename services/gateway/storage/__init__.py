"""Where analyses live: a `BlobStore` for image bytes and a `ResultStore` for the records."""

from branet_gateway.storage.base import (
    BlobNotFound,
    BlobStore,
    PageCursor,
    ResultPage,
    ResultStore,
    analysis_prefix,
    blob_key,
)

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "PageCursor",
    "ResultPage",
    "ResultStore",
    "analysis_prefix",
    "blob_key",
]
