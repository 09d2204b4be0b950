"""The series a model service adds to every service's: whether each model is loaded, and how
long loading it took (the bulk of a cold start)."""

from prometheus_client import Gauge

from branet_shared.metrics import ServiceMetrics


class ModelServiceMetrics(ServiceMetrics):
    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.model_ready = Gauge(
            "branet_model_ready",
            "1 when the model is loaded and serving, 0 when it is unavailable",
            ["model"],
            registry=self.registry,
        )
        self.model_load_seconds = Gauge(
            "branet_model_load_seconds",
            "Seconds the model took to fetch, verify, build and warm up at start",
            ["model"],
            registry=self.registry,
        )

    def loaded(self, model: str, ready: bool, seconds: float) -> None:
        self.model_ready.labels(model).set(1 if ready else 0)
        self.model_load_seconds.labels(model).set(seconds)
