"""The SAM evaluation script, end to end on a generated class-folder dataset."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from branet_training.segmenter.evaluate import main, overlap
from tests.images import lesion_array


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    for label in ("benign", "malignant"):
        (root / label).mkdir(parents=True)
        for index in range(2):
            Image.fromarray(lesion_array(96, 80, seed=index)).save(root / label / f"{index}.png")
            mask = np.zeros((80, 96), dtype=np.uint8)
            mask[27:53, 29:67] = 255
            Image.fromarray(mask).save(root / label / f"{index}_mask.png")
    return root


def test_overlap_scores() -> None:
    truth = np.zeros((4, 4), dtype=bool)
    truth[:2] = True
    assert overlap(truth, truth) == (1.0, 1.0)
    assert overlap(None, truth) == (0.0, 0.0)
    half = np.zeros_like(truth)
    half[0] = True
    assert overlap(half, truth) == pytest.approx((2 * 4 / 12, 4 / 8))


def test_evaluation_reports_every_mode_and_class(
    dataset: Path, sam_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"

    main(
        [
            "--model-type",
            "toy",
            "--checkpoint",
            str(sam_checkpoint),
            "--data",
            str(dataset),
            "--points-per-side",
            "4",
            "--out",
            str(out),
        ]
    )

    report = json.loads(out.read_text())
    modes = {(row["mode"], row["class"]) for row in report["summary"]}
    for mode in ("box-fill", "box", "box±10%", "automatic", "automatic-lesion"):
        for label in ("benign", "malignant", "all"):
            assert (mode, label) in modes
    box_fill = next(r for r in report["summary"] if r["mode"] == "box-fill" and r["class"] == "all")
    assert box_fill["dice_mean"] == pytest.approx(1.0)  # the masks are their own boxes
    assert len(report["scores"]) == 4 * 5
    assert all(score["seconds"] >= 0 for score in report["scores"])
    assert "Dice mean ± sd" in capsys.readouterr().out
