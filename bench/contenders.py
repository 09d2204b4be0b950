"""The three servers of the same ResNet18 weights that the suite compares.

- `branet`: the classifier service as deployed (its defaults: int8 where the card has it,
  micro-batching), asked the way the gateway asks it, the image as the request body.
- `flask-fp32`: the original system's way, a synchronous Flask endpoint with fp32 eager
  inference per request (bench/peers/flask_naive.py).
- `torchserve`: TorchServe 0.12 with its image-classifier handler (default workers and batch
  size), its transform swapped for the card's preprocessing (bench/peers/torchserve_handler.py);
  its predictions API also takes the image as the body.
"""

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import torch
from safetensors.torch import load_file

from bench.serving import RawRequest, Server, free_port

PEERS = Path(__file__).parent / "peers"


def multipart(
    path: str, files: dict[str, Any], data: dict[str, str] | None = None
) -> tuple[Callable[[httpx.AsyncClient], Any], RawRequest]:
    """A multipart POST, encoded once: as an httpx call and as bytes for the load generator."""
    request = httpx.Request("POST", f"http://placeholder{path}", files=files, data=data)
    body = request.read()
    content_type = request.headers["content-type"]

    def send(client: httpx.AsyncClient) -> Any:
        return client.post(path, content=body, headers={"content-type": content_type})

    return send, RawRequest(path, body, content_type)


def image_body(path: str, image: bytes) -> tuple[Callable[[httpx.AsyncClient], Any], RawRequest]:
    """A POST whose body is the image, as an httpx call and as bytes for the load generator."""

    def send(client: httpx.AsyncClient) -> Any:
        return client.post(path, content=image, headers={"content-type": "image/png"})

    return send, RawRequest(path, image, "image/png")


def branet_server(card: Path, image: bytes, modality: str, env: dict[str, str]) -> Server:
    """Asked the way the gateway asks it: the image as the body (`/v1/classify/{modality}`)."""
    port = free_port()
    send, raw = image_body(f"/v1/classify/{modality}", image)

    return Server(
        name="branet",
        command=[str(Path(sys.executable).parent / "branet-classifier")],
        url=f"http://127.0.0.1:{port}",
        send=send,
        raw=raw,
        answer=lambda response: float(response.json()["probabilities"]["malignant"]),
        env={"CLASSIFIER_PORT": str(port), "CLASSIFIER_MODEL_DIR": str(card.parent), **env},
    )


def flask_server(card: Path, image: bytes) -> Server:
    port = free_port()
    send, raw = multipart("/predict", {"file": ("scan.png", image, "image/png")})

    return Server(
        name="flask-fp32",
        command=[
            sys.executable,
            str(PEERS / "flask_naive.py"),
            "--model",
            str(card),
            "--port",
            str(port),
        ],
        url=f"http://127.0.0.1:{port}",
        send=send,
        raw=raw,
        answer=lambda response: float(response.json()["malignant"]),
    )


def torchserve_server(card: Path, image: bytes, workdir: Path) -> Server:
    """Archive the weights as TorchServe wants them (a .mar) and configure loopback ports."""
    store = workdir / "model-store"
    store.mkdir(parents=True, exist_ok=True)
    card_data = json.loads(card.read_text())
    weights = {k: v.float() for k, v in load_file(card.parent / card_data["weights_file"]).items()}
    torch.save(weights, workdir / "weights.pth")
    shutil.copy(card, workdir / "card.json")
    (workdir / "index_to_name.json").write_text(json.dumps({"0": "benign", "1": "malignant"}))
    archiver = Path(sys.executable).parent / "torch-model-archiver"
    subprocess.run(
        [
            str(archiver),
            "--model-name=branet",
            "--version=1.0",
            f"--model-file={PEERS / 'torchserve_model.py'}",
            f"--serialized-file={workdir / 'weights.pth'}",
            f"--handler={PEERS / 'torchserve_handler.py'}",
            f"--extra-files={workdir / 'card.json'},{workdir / 'index_to_name.json'}",
            f"--export-path={store}",
            "--force",
        ],
        check=True,
    )
    port = free_port()
    config = workdir / "config.properties"
    config.write_text(
        "\n".join(
            [
                f"inference_address=http://127.0.0.1:{port}",
                f"management_address=http://127.0.0.1:{free_port()}",
                f"metrics_address=http://127.0.0.1:{free_port()}",
                "disable_token_authorization=true",
                "install_py_dep_per_model=false",
                f"model_store={store}",
                "load_models=branet=branet.mar",
            ]
        )
        + "\n"
    )

    def send(client: httpx.AsyncClient) -> Any:
        return client.post("/predictions/branet", content=image)

    raw = RawRequest("/predictions/branet", image, "application/octet-stream")

    return Server(
        name="torchserve",
        command=[
            str(Path(sys.executable).parent / "torchserve"),
            "--start",
            "--foreground",
            "--ncs",
            f"--ts-config={config}",
            "--disable-token-auth",
        ],
        url=f"http://127.0.0.1:{port}",
        send=send,
        raw=raw,
        answer=lambda response: float(response.json()["malignant"]),
        env={"LOG_LOCATION": str(workdir / "logs"), "METRICS_LOCATION": str(workdir / "logs")},
    )
