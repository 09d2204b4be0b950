"""compile_frozen: weights are frozen into the compiled model on whichever thread compiles."""

import threading

import torch

from branet_runtime.compilation import compile_frozen


def test_a_model_compiled_on_a_worker_thread_has_its_weights_frozen() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(8, 4).eval()
    compiled = compile_frozen(linear)
    x = torch.randn(2, 8)
    outputs: list[torch.Tensor] = []

    def first_and_second_call() -> None:
        with torch.inference_mode():
            outputs.append(compiled(x))  # compiles here, on this thread
            linear.weight.zero_()  # frozen weights are constants of the compiled code
            outputs.append(compiled(x))

    worker = threading.Thread(target=first_and_second_call)
    worker.start()
    worker.join()

    assert torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[1], linear(x).detach())
