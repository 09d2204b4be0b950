"""The classifier service: a ResNet18 per modality behind the model-service factory."""

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from branet_classifier import routes
from branet_classifier.classify import ClassifierTask
from branet_classifier.settings import ClassifierSettings
from branet_runtime.service import create_model_service
from branet_shared.schemas import Modality
from branet_shared.web import service_main

DESCRIPTION = "Private service: benign/malignant ResNet18 per modality."


def classifier_tasks(settings: ClassifierSettings) -> list[ClassifierTask]:
    """Both modalities' classifiers, from the model folder the settings name."""
    return [
        ClassifierTask(
            modality, settings.model_dir, settings.cache_dir, settings.precision, settings.compile
        )
        for modality in Modality
    ]


def create_app(
    settings: ClassifierSettings | None = None, *, traces: TracerProvider | None = None
) -> FastAPI:
    settings = settings or ClassifierSettings()
    max_batch = settings.max_batch
    return create_model_service(
        settings,
        classifier_tasks(settings),
        [routes.router],
        service="classifier",
        title="BraNet classifier",
        description=DESCRIPTION,
        extra_state=lambda runtime: {"batchers": routes.micro_batchers(runtime, max_batch)},
        traces=traces,
    )


def main(argv: list[str] | None = None) -> None:
    service_main(
        create_app, ClassifierSettings, service="classifier", description=DESCRIPTION, argv=argv
    )
