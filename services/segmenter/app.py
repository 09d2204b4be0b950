"""The segmenter service: Segment Anything behind the model-service factory."""

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from branet_runtime.service import create_model_service
from branet_segmenter import routes
from branet_segmenter.segment import SegmenterTask
from branet_segmenter.settings import SegmenterSettings
from branet_shared.web import service_main

DESCRIPTION = "Private service: Segment Anything lesion masks and ROI crops."


def create_app(
    settings: SegmenterSettings | None = None, *, traces: TracerProvider | None = None
) -> FastAPI:
    settings = settings or SegmenterSettings()
    return create_model_service(
        settings,
        [SegmenterTask(settings)],
        [routes.router],
        service="segmenter",
        title="BraNet segmenter",
        description=DESCRIPTION,
        traces=traces,
    )


def main(argv: list[str] | None = None) -> None:
    service_main(
        create_app, SegmenterSettings, service="segmenter", description=DESCRIPTION, argv=argv
    )
