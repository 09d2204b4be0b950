"""Micro-batching: concurrent classifications share one forward pass.

Requests arrive preprocessed (in parallel worker threads) and queue for the model. When the model
is idle, the first request runs at once — no waiting at concurrency 1; while it runs, later
requests gather and go together as the next batch, up to `max_batch`. Under load the model
runs batched (several times the throughput of one image at a time on a CPU); unloaded,
latency is a single image's. A compiled model has one graph per batch size, so a batch takes
the largest of those sizes that the queue fills; the rest go next, never padded.
"""

import asyncio
import time
from concurrent.futures import Executor
from dataclasses import dataclass

import torch

from branet_classifier.classify import ResNet18Classifier
from branet_shared.schemas import ClassifyResponse


def largest_batch(waiting: int, max_batch: int, allowed: tuple[int, ...] | None) -> int:
    """How many of `waiting` inputs go next: at most `max_batch`, and one of `allowed` sizes
    (a compiled model's) when there are such."""
    fitting = min(waiting, max_batch)
    if allowed is None:
        return fitting
    return max((size for size in allowed if size <= fitting), default=1)


@dataclass
class _Waiting:
    inputs: torch.Tensor
    answer: "asyncio.Future[ClassifyResponse]"


class MicroBatcher:
    def __init__(self, model: ResNet18Classifier, max_batch: int, executor: Executor) -> None:
        """`executor` runs the forward passes: the service's inference thread(s)."""
        self.model = model
        self.max_batch = max_batch
        self.executor = executor
        self._queue: list[_Waiting] = []
        self._runner: asyncio.Task[None] | None = None
        self.batches_run = 0

    async def classify(self, inputs: torch.Tensor) -> ClassifyResponse:
        """The answer for one preprocessed image (1×3×S×S, from `model.preprocess`)."""
        answer: asyncio.Future[ClassifyResponse] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(inputs, answer))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await answer

    def batch_size(self, waiting: int) -> int:
        return largest_batch(waiting, self.max_batch, self.model.batch_sizes)

    async def _run(self) -> None:
        while self._queue:
            size = self.batch_size(len(self._queue))
            batch, self._queue = self._queue[:size], self._queue[size:]
            started = time.perf_counter()
            try:
                probabilities = await asyncio.get_running_loop().run_in_executor(
                    self.executor, self.model.predict, torch.cat([w.inputs for w in batch])
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
