"""The naive baseline: the original system's way of serving the model.

    python bench/peers/flask_naive.py --model models/ultrasound.json --port 8090

A synchronous Flask endpoint that decodes the upload and runs fp32 eager ResNet18 per request,
written with plain torchvision (none of BraNet's code) and the card's preprocessing, so its
answers can be compared with the classifier service's. Flask's threaded development server,
as such apps usually run.
"""

import argparse
import io
import json
from pathlib import Path

import torch
import torchvision
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from PIL import Image
from safetensors.torch import load_file
from torchvision import transforms


def create_app(card_path: Path) -> Flask:
    card = json.loads(card_path.read_text())
    model = torchvision.models.resnet18(num_classes=2)
    weights = load_file(card_path.parent / card["weights_file"])
    model.load_state_dict({name: tensor.float() for name, tensor in weights.items()})
    model.eval()
    size = card["input_size"]
    preprocess = transforms.Compose(
        [
            transforms.Grayscale(),
            transforms.Resize((size, size)),
            transforms.ToTensor(),
            transforms.Lambda(lambda gray: gray.expand(3, -1, -1)),
            transforms.Normalize(card["mean"], card["std"]),
        ]
    )
    app = Flask(__name__)

    @app.post("/predict")
    def predict() -> ResponseReturnValue:
        image = Image.open(io.BytesIO(request.files["file"].read()))
        with torch.no_grad():
            logits = model(preprocess(image).unsqueeze(0))
        probabilities = torch.softmax(logits / card["temperature"], dim=1)[0].tolist()
        label = "malignant" if probabilities[1] > probabilities[0] else "benign"
        return jsonify({"label": label, "malignant": probabilities[1]})

    @app.get("/ping")
    def ping() -> ResponseReturnValue:
        return jsonify({"status": "Healthy"})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    create_app(args.model).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
