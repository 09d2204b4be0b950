"""One model behind a model service: the interface the service factory runs it through.

In the spirit of MONAI Label's `InferTask`: adding a model is adding a class. The factory
(`branet_runtime.service`) calls `load` and `warm_up` once in the lifespan, off the event loop;
a `ModelFileError` from either leaves the service alive and the task unavailable, with the
error's message as the reason. Routes call `run` through the runtime, which bounds how many
run at once.
"""

from typing import Protocol, TypeVar

from branet_shared.schemas import ModelInfo

InputT = TypeVar("InputT", contravariant=True)
OutputT = TypeVar("OutputT", covariant=True)


class ModelTask(Protocol[InputT, OutputT]):
    """A model a service serves: loaded and verified once, warmed up, run, described."""

    @property
    def check(self) -> str:
        """Its name among the service's readiness checks, and the key routes find it by."""
        ...

    @property
    def title(self) -> str:
        """What `/v1/models` calls it while it is unavailable (e.g. `ultrasound classifier`)."""
        ...

    def load(self) -> None:
        """Fetch the model file, verify it against its pinned SHA-256, build the network;
        raise `ModelFileError` when the file cannot be used."""
        ...

    def warm_up(self) -> None:
        """Run once on a blank input, so that compilation happens now, not in a request."""
        ...

    def run(self, inputs: InputT) -> OutputT:
        """The model's blocking work on one input (or batch); called off the event loop."""
        ...

    @property
    def info(self) -> ModelInfo:
        """What `/v1/models` says of it once loaded: ref, card metrics, how it runs here."""
        ...
