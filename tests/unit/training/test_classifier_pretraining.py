"""Self-supervised pretraining: its loss, and a pretrained trunk that `branet-train` starts from."""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from branet_training.classifier.pretrain import contrastive_loss
from branet_training.classifier.pretrain import main as pretrain_main
from branet_training.classifier.train import main as train_main
from tests.images import write_class_folders


def test_matching_views_score_low_and_random_ones_near_chance() -> None:
    generator = torch.Generator().manual_seed(0)
    views = torch.randn(16, 32, generator=generator)

    matched = contrastive_loss(views, views + 0.01, temperature=0.1)
    unrelated = contrastive_loss(views, torch.randn(16, 32, generator=generator), temperature=1.0)

    assert matched < 0.01
    assert unrelated == pytest.approx(math.log(31), rel=0.1)  # one partner among 2n − 1


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs of `branet-pretrain` on class folders and an unlabelled folder beside them."""
    root = tmp_path_factory.mktemp("pretrain")
    write_class_folders(root / "site_a")
    write_class_folders(root / "normals" / "deep", per_class=2)  # any depth, no labels needed
    out = root / "trunk.pt"
    pretrain_main(
        [
            "--data", str(root / "site_a"), str(root / "normals"), "--out", str(out),
            "--epochs", "2", "--size", "32", "--batch-size", "8", "--workers", "2",
        ]
    )  # fmt: skip
    return out


def test_pretraining_writes_a_trunk_and_its_record(pretrained: Path) -> None:
    record = json.loads(pretrained.with_suffix(".json").read_text())
    trunk = torch.load(pretrained, weights_only=True)

    assert record["images"] == 12 + 4  # masks are not images
    assert [epoch["epoch"] for epoch in record["history"]] == [1, 2]
    assert all(math.isfinite(epoch["loss"]) for epoch in record["history"])
    assert "conv1.weight" in trunk
    assert not any(key.startswith("fc.") for key in trunk)
    assert not pretrained.with_suffix(".checkpoint").exists()


def test_training_starts_from_the_pretrained_trunk(pretrained: Path, tmp_path: Path) -> None:
    data = write_class_folders(tmp_path / "site_a")
    train_main(
        [
            "--modality", "ultrasound", "--data", str(data), "--out", str(tmp_path / "report"),
            "--work-dir", str(tmp_path / "work"), "--cv", "2", "--epochs", "1", "--size", "32",
            "--batch-size", "4", "--lr", "0", "--pretrained", str(pretrained),
            "--ship", str(tmp_path / "models"),
        ]
    )  # fmt: skip

    card = json.loads((tmp_path / "models" / "ultrasound.json").read_text())
    shipped = load_file(tmp_path / "models" / "ultrasound.safetensors")
    trunk = torch.load(pretrained, weights_only=True)
    assert card["training"]["pretrained"] == str(pretrained)
    # With a learning rate of 0 the convolutions are the pretrained ones (to fp16 precision).
    torch.testing.assert_close(
        shipped["conv1.weight"].float(), trunk["conv1.weight"], atol=1e-3, rtol=1e-3
    )
