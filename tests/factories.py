"""Valid domain objects for tests."""

from datetime import UTC, datetime, timedelta

from branet_shared.schemas import Analysis

EPOCH = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_analysis(index: int, owner: str = "alice", *, same_time: bool = False) -> Analysis:
    """A complete, valid Analysis; later indexes are newer unless `same_time`."""
    return Analysis.model_validate(
        {
            "id": f"{index + 1:032x}",
            "owner": owner,
            "modality": "ultrasound",
            "label": "benign",
            "probabilities": {"benign": 0.8, "malignant": 0.2},
            "confidence": 0.8,
            "roi": None,
            "models": {"classifier": {"name": "resnet18-ultrasound", "version": "1"}},
            "image": {
                "url": f"/v1/analyses/{index + 1:032x}/image",
                "content_type": "image/png",
                "size": 10,
                "sha256": "0" * 64,
                "width": 4,
                "height": 4,
                "format": "png",
            },
            "timings": {"validate_ms": 1, "classify_ms": 2, "store_ms": 3, "total_ms": 6},
            "created_at": EPOCH + (timedelta() if same_time else timedelta(seconds=index)),
        }
    )
