"""Micro-batching: concurrent classifications share one forward pass.

Requests are preprocessed in parallel worker threads and queue for the model. When the model
is idle, the first request runs at once — no waiting at concurrency 1; while it runs, later
requests gather and go together as the next batch, up to `max_batch`. Under load the model
runs batched (several times the throughput of one image at a time on a CPU); unloaded,
latency is a single image's.
"""

import asyncio
import time
from dataclasses import dataclass

import anyio
import anyio.to_thread
import torch
from PIL import Image

from branet_classifier.classify import ResNet18Classifier
from branet_shared.schemas import ClassifyResponse


@dataclass
class _Waiting:
    inputs: torch.Tensor
    answer: "asyncio.Future[ClassifyResponse]"


class MicroBatcher:
    def __init__(
        self, model: ResNet18Classifier, max_batch: int, limiter: anyio.CapacityLimiter
    ) -> None:
        self.model = model
        self.max_batch = max_batch
        self.limiter = limiter
        self._queue: list[_Waiting] = []
        self._runner: asyncio.Task[None] | None = None
        self.batches_run = 0

    async def classify(self, image: Image.Image) -> ClassifyResponse:
        inputs = await anyio.to_thread.run_sync(self.model.preprocess, image)
        answer: asyncio.Future[ClassifyResponse] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(inputs, answer))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await answer

    async def _run(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            started = time.perf_counter()
            try:
                probabilities = await anyio.to_thread.run_sync(
                    self.model.predict, torch.cat([w.inputs for w in batch]), limiter=self.limiter
                )
            except Exception as exc:  # every waiting request learns of it
                for waiting in batch:
                    if not waiting.answer.done():
                        waiting.answer.set_exception(exc)
                continue
            self.batches_run += 1
            elapsed_ms = (time.perf_counter() - started) * 1000
            for index, waiting in enumerate(batch):
                if not waiting.answer.done():  # its caller may have gone
                    result = self.model.postprocess(probabilities[index : index + 1], elapsed_ms)
                    waiting.answer.set_result(result)
