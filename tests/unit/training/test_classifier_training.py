"""Training and evaluation pipeline on a generated dataset: it must run end to end, and serve
exactly what it trained on."""

import json
import random
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file

from branet_classifier.classify import ResNet18Classifier
from branet_classifier.model import ClassifierCard
from branet_training.augmentation import augment
from branet_training.classifier.cards import card_markdown
from branet_training.classifier.data import load_samples
from branet_training.classifier.engine import (
    ImageCache,
    LesionDataset,
    TrainConfig,
    crop_tensor,
    model_input,
    temperature_for,
)
from branet_training.classifier.evaluate import main as evaluate_main
from branet_training.classifier.folds import group_folds, plan_sections, split_calibration
from branet_training.classifier.report import (
    FoldResult,
    binary_metrics,
    ece_if_calibrated,
    expected_calibration_error,
    summarise,
)
from branet_training.classifier.train import main as train_main
from tests.images import write_class_folders


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_class_folders(tmp_path_factory.mktemp("data") / "site_a")


def train_one_epoch(
    dataset: Path,
    report: Path,
    run: Path,
    version: str,
    jobs: int = 1,
    force: bool = False,
    *options: str,
) -> None:
    """`branet-train` at toy scale: two folds, one epoch, 32 px, shipped into run/models."""
    train_main(
        [
            "--modality", "ultrasound", "--data", str(dataset), "--out", str(report),
            "--work-dir", str(run / "work"), "--cv", "2", "--epochs", "1", "--size", "32",
            "--batch-size", "4", "--ship", str(run / "models"), "--version", version,
            "--jobs", str(jobs), *(["--force"] if force else []), *options,
        ]
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch, two folds, shipped: the whole `branet-train` command."""
    out = tmp_path_factory.mktemp("run")
    train_one_epoch(dataset, out / "report", out, "0.0.1-test")
    return out


def test_training_writes_the_report_and_a_loadable_model(trained: Path, dataset: Path) -> None:
    report = json.loads((trained / "report" / "report.json").read_text())
    section = report["sections"]["cv-site_a"]
    for metric in (
        "benign_accuracy",
        "malignant_accuracy",
        "sensitivity",
        "specificity",
        "precision",
        "f1",
        "roc_auc",
        "ece",
        "ece_if_calibrated",
    ):
        assert metric in section["folds"][0]
        assert metric in section["pooled"]
    assert len(section["folds"]) == 2
    assert report["seed"] == 0
    assert set(section["fold_of_image"].values()) == {0, 1}
    assert len(list((trained / "work").rglob("cv-site_a-fold*/weights.safetensors"))) == 2
    for figure in ("confusion_matrix.png", "roc.png"):
        assert Image.open(trained / "report" / "cv-site_a" / figure).size[0] > 100
    assert "mean ± sd" in (trained / "report" / "report.md").read_text()

    model = ResNet18Classifier.load(trained / "models" / "ultrasound.json")
    assert model.card.version == "0.0.1-test"
    assert model.card.training["seed"] == 0
    assert "cv_roc_auc_mean" in model.card.metrics
    fit, _ = split_calibration(load_samples([dataset])[0], seed=0)
    assert model.card.malignant_prevalence == pytest.approx(
        sum(s.label.value == "malignant" for s in fit) / len(fit)
    )
    metrics = model.card.metrics
    pooled = section["pooled"]["roc_auc"]
    assert metrics["cv_roc_auc_ci95_low"] <= pooled <= metrics["cv_roc_auc_ci95_high"]
    card_text = (trained / "models" / "ultrasound.md").read_text()
    assert "not a diagnosis" in card_text.lower()
    assert model.card.weights_sha256 in card_text
    result = model.classify(Image.new("L", (50, 40), 90))
    assert result.probabilities.benign + result.probabilities.malignant == pytest.approx(1.0)


def test_the_report_measures_each_section_on_whole_images_too(trained: Path) -> None:
    sections = json.loads((trained / "report" / "report.json").read_text())["sections"]
    crops, whole = sections["cv-site_a"], sections["cv-site_a-whole-image"]

    assert [p["id"] for p in whole["predictions"]] == [p["id"] for p in crops["predictions"]]
    # The same fold models, shown the whole image instead of the lesion crop.
    assert [p["p_malignant"] for p in whole["predictions"]] != [
        p["p_malignant"] for p in crops["predictions"]
    ]
    assert whole["input"] == "the test images whole, boxes ignored"
    card = json.loads((trained / "models" / "ultrasound.json").read_text())
    assert card["metrics"]["cv_whole_image_roc_auc_mean"] == pytest.approx(
        whole["mean_sd"]["roc_auc"]["mean"], abs=1e-4
    )


def test_folds_saved_before_whole_image_testing_are_reused_without_it(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    shutil.copytree(trained / "work", tmp_path / "work")
    for saved in (tmp_path / "work").rglob("result.json"):
        data = json.loads(saved.read_text())
        del data["whole_image"]
        saved.write_text(json.dumps(data))

    train_one_epoch(dataset, tmp_path / "report", tmp_path, "0.0.1-test")

    sections = json.loads((tmp_path / "report" / "report.json").read_text())["sections"]
    assert "cv-site_a-whole-image" not in sections
    before = json.loads((trained / "report" / "report.json").read_text())["sections"]
    assert sections["cv-site_a"]["predictions"] == before["cv-site_a"]["predictions"]


@pytest.mark.parametrize(("low", "high", "says_chance"), [(0.44, 0.66, True), (0.91, 0.95, False)])
def test_a_card_says_when_its_model_is_no_better_than_chance(
    trained: Path, low: float, high: float, says_chance: bool
) -> None:
    card = ClassifierCard.model_validate_json((trained / "models" / "ultrasound.json").read_text())
    metrics = card.metrics | {"cv_roc_auc_ci95_low": low, "cv_roc_auc_ci95_high": high}

    text = " ".join(card_markdown(card.model_copy(update={"metrics": metrics})).split())

    assert ("caveat `model_at_chance`" in text) == says_chance
    assert (f"[{low:.2f}, {high:.2f}], includes 0.5" in text) == says_chance


@pytest.mark.parametrize("modality", ["ultrasound", "mammography"])
def test_the_shipped_cards_say_what_their_json_says(modality: str) -> None:
    models = Path(__file__).parents[3] / "models"
    card = ClassifierCard.model_validate_json((models / f"{modality}.json").read_text())

    assert (models / f"{modality}.md").read_text() == card_markdown(card)


def test_evaluate_a_saved_model_on_any_class_folders(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    evaluate_main(
        [
            "--model",
            str(trained / "models" / "ultrasound.json"),
            "--data",
            str(dataset),
            "--out",
            str(tmp_path / "eval"),
        ]
    )

    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["sections"]["all images"]["pooled"]["n"] == 12
    # As the classifier serves it by default (`auto`): bf16 where the CPU has it, no int8 file.
    served = ResNet18Classifier.load(trained / "models" / "ultrasound.json", "auto")
    assert report["runtime"] == served.runtime


def another_hospitals_layout(dataset: Path, root: Path) -> Path:
    """The dataset as another hospital might hand it over: capitalised class folders, JPEG
    images with PNG masks of 0/1 for half of them, no masks for the rest, a corrupt file and a
    BMP among them."""
    for label in ("benign", "malignant"):
        folder = root / label.capitalize()
        folder.mkdir(parents=True)
        for index, path in enumerate(sorted((dataset / label).glob("case???.png"))):
            Image.open(path).save(folder / f"{path.stem}.jpg", quality=95)
            if index % 2 == 0:
                mask = np.asarray(Image.open(path.with_name(f"{path.stem}_mask.png"))) > 0
                Image.fromarray(mask.astype(np.uint8)).save(folder / f"{path.stem}_mask.png")
    (root / "Benign" / "truncated.jpg").write_bytes(
        (root / "Benign" / "case000.jpg").read_bytes()[:300]
    )
    Image.open(dataset / "benign" / "case000.png").save(root / "Benign" / "scan.bmp")
    return root


def test_evaluate_reads_another_hospitals_layout(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    data = another_hospitals_layout(dataset, tmp_path / "site_d")

    evaluate_main(
        ["--model", str(trained / "models" / "ultrasound.json"), "--data", str(data),
         "--out", str(tmp_path / "eval")]
    )  # fmt: skip

    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    section = report["sections"]["all images"]
    assert section["pooled"]["n"] == 12  # the twelve JPEGs; the truncated one and the BMP left out
    assert list(report["deduplication"]["unreadable"]) == ["site_d/truncated"]
    assert report["deduplication"]["without_lesion_box"] == [
        f"site_d/case{i:03}" for i in (1, 3, 5, 1, 3, 5)
    ]
    assert (
        section["input"] == "lesion crop, margin 0.25; whole image for the 6 without a lesion box"
    )


def test_sixteen_bit_images_are_deduplicated_on_what_they_show(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "site_16", per_class=3)
    for path in root.glob("*/case???.png"):  # 8-bit pixels spread over a 12-bit range
        Image.fromarray(np.asarray(Image.open(path)).astype(np.uint16) * 16).save(path)

    samples, summary = load_samples([root])

    assert len(samples) == 6
    assert summary.exact_copies_dropped == summary.conflicting_dropped == []


def test_runs_at_other_seeds_can_share_their_folds(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    def folds(report: Path) -> dict[str, int]:
        section = json.loads((report / "report.json").read_text())["sections"]["cv-site_a"]
        return dict(section["fold_of_image"])

    samples, _ = load_samples([dataset])
    assert group_folds(samples, 2, seed=5) != group_folds(samples, 2, seed=0)  # else no test

    train_one_epoch(dataset, tmp_path / "r", tmp_path, "0.0.9", 1, False, "--seed", "5",
                    "--split-seed", "0")  # fmt: skip

    assert folds(tmp_path / "r") == folds(trained / "report")
    card = ClassifierCard.model_validate_json((tmp_path / "models" / "ultrasound.json").read_text())
    assert (card.training["seed"], card.training["split_seed"]) == (5, 0)


def test_shipping_again_without_improvement_keeps_the_old_model(
    trained: Path, dataset: Path
) -> None:
    card = trained / "models" / "ultrasound.json"
    before = card.read_text()

    train_one_epoch(dataset, trained / "r2", trained, "0.0.2-test")

    assert card.read_text() == before


def test_parallel_folds_give_the_same_report_and_model(
    trained: Path, dataset: Path, tmp_path: Path
) -> None:
    train_one_epoch(dataset, tmp_path / "report", tmp_path, "0.0.1-test", jobs=3, force=True)

    def predictions(report: Path) -> list[tuple[str, str, float]]:
        sections = json.loads((report / "report.json").read_text())["sections"]
        rows = sections["cv-site_a"]["predictions"]
        return [(row["fold"], row["id"], row["p_malignant"]) for row in rows]

    parallel, serial = predictions(tmp_path / "report"), predictions(trained / "report")
    # Workers use fewer threads each, so sums differ in the last bits; an epoch of AdamW (steps
    # of about ±lr whatever a gradient's size) turns that into ~1e-4 in fp32, no more.
    assert [row[:2] for row in parallel] == [row[:2] for row in serial]
    np.testing.assert_allclose([r[2] for r in parallel], [r[2] for r in serial], atol=1e-3)
    serial_weights = load_file(trained / "models" / "ultrasound.safetensors")
    for name, weights in load_file(tmp_path / "models" / "ultrasound.safetensors").items():
        torch.testing.assert_close(weights, serial_weights[name], atol=2e-3, rtol=2e-3)


@pytest.fixture(scope="module")
def trained_keeping_aspect(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("aspect")
    train_one_epoch(dataset, out / "report", out, "0.0.1-test", 1, False, "--keep-aspect")
    return out


@pytest.fixture(scope="module")
def trained_with_lesion_channel(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lesion")
    train_one_epoch(
        dataset,
        out / "report",
        out,
        "0.0.1-test",
        1,
        False,
        "--lesion-channel",
        "--roi-margin",
        "0.5",
    )
    return out


@pytest.mark.parametrize(
    "run", ["trained", "trained_keeping_aspect", "trained_with_lesion_channel"]
)
def test_training_and_serving_preprocess_identically(
    run: str, dataset: Path, request: pytest.FixtureRequest
) -> None:
    model = ResNet18Classifier.load(request.getfixturevalue(run) / "models" / "ultrasound.json")
    assert model.card.keep_aspect == (run == "trained_keeping_aspect")
    assert model.card.lesion_channel == (run == "trained_with_lesion_channel")
    assert model.card.roi_margin == (0.5 if run == "trained_with_lesion_channel" else 0.25)
    samples, _ = load_samples([dataset])
    config = TrainConfig(
        input_size=model.card.input_size,
        roi_margin=model.card.roi_margin,
        keep_aspect=model.card.keep_aspect,
        lesion_channel=model.card.lesion_channel,
    )
    images = ImageCache()
    evaluation = LesionDataset(samples, images, config, train=False)

    for index in (0, len(samples) - 1):
        trained_on, _ = evaluation[index]
        crop = model_input(samples[index], images(samples[index].item.path), config.roi_margin)
        served = model.preprocess(crop.image, crop.lesion)[0]
        assert torch.equal(trained_on, served)
        # With the lesion channel, the third one marks the lesion (+1) and its context (-1).
        marks = set(torch.unique(served[2]).tolist())
        assert marks == {-1.0, 1.0} if model.card.lesion_channel else len(marks) > 2


def test_a_segmenters_mask_marks_the_lesion_in_place_of_the_ellipse(dataset: Path) -> None:
    sample = load_samples([dataset])[0][0]
    image = ImageCache()(sample.item.path)
    assert sample.lesion is not None
    box = sample.lesion
    outline = Image.new("L", image.size, 0)  # the whole box, corners too: not an ellipse
    ImageDraw.Draw(outline).rectangle((box.x0, box.y0, box.x1 - 1, box.y1 - 1), fill=255)
    config = TrainConfig(input_size=64, lesion_channel=True)

    ellipse = crop_tensor(model_input(sample, image, 0.25), config, None)
    mask = crop_tensor(model_input(replace(sample, outline=outline), image, 0.25), config, None)

    assert torch.equal(mask[:2], ellipse[:2])  # the same crop
    marked = float((mask[2] > 0).sum() / (ellipse[2] > 0).sum())
    assert marked == pytest.approx(4 / np.pi, rel=0.1)  # a box's area over its ellipse's


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("geometry", [((0.9, 1.1), 0.0), ((0.75, 1.3), 0.15)])
def test_augmentation_moves_the_lesion_marker_with_the_image(
    seed: int, geometry: tuple[tuple[float, float], float]
) -> None:
    marker = torch.zeros(1, 64, 64)
    marker[:, 10:30, 8:28] = 1  # off-centre, so a flip or turn shows
    scale, shift = geometry
    pixels, moved = augment(marker.clone(), random.Random(seed), marker, scale, shift)

    assert moved is not None
    bright = pixels > 0.4
    overlap = (bright & (moved > 0)).sum() / (bright | (moved > 0)).sum()
    assert float(overlap) > 0.8


def test_a_random_filter_changes_the_texture_not_the_geometry() -> None:
    square = torch.zeros(1, 64, 64)
    square[:, 10:30, 8:28] = 1
    speckle = square * 0.6 + torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.4

    def augmented(seed: int, share: float) -> tuple[torch.Tensor, torch.Tensor]:
        pixels, moved = augment(speckle, random.Random(seed), square, random_filter=share)
        assert moved is not None
        return pixels, moved

    for seed in range(4):
        plain, plain_marker = augmented(seed, 0.0)
        filtered, filtered_marker = augmented(seed, 1.0)
        assert torch.equal(filtered_marker, plain_marker)  # the lesion moved as before
        assert not torch.allclose(filtered, plain, atol=0.05)


def test_a_shift_moves_the_image_with_its_marker() -> None:
    square = torch.zeros(1, 64, 64)
    square[:, 24:40, 24:40] = 1  # centred, so only a shift moves its centre far

    def centre(seed: int, shift: float) -> torch.Tensor:
        _, moved = augment(square.clone(), random.Random(seed), square, (1.0, 1.0), shift)
        assert moved is not None
        return torch.nonzero(moved[0]).float().mean(dim=0)

    assert max(float((centre(seed, 0.0) - 31.5).abs().max()) for seed in range(8)) < 2
    assert max(float((centre(seed, 0.2) - 31.5).abs().max()) for seed in range(8)) > 6


def test_duplicates_are_dropped_and_conflicts_removed(dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "site_b"
    shutil.copytree(dataset, copy)
    # An exact copy under the same label, and one filed under the other label.
    shutil.copy(copy / "benign" / "case000.png", copy / "benign" / "case100.png")
    shutil.copy(copy / "benign" / "case001.png", copy / "malignant" / "case101.png")

    samples, summary = load_samples([copy])

    names = {s.item.name for s in samples}
    assert len(summary.exact_copies_dropped) == 1
    assert {"case001", "case101"}.isdisjoint(names) or len(summary.conflicting_dropped) >= 2
    assert all(s.lesion is not None for s in samples)


def test_patients_are_one_group(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "bus_uclm", per_class=3)
    for label in ("benign", "malignant"):
        for index, path in enumerate(sorted((root / label).glob("case00?.png"))):
            path.rename(root / label / f"PAT{label[0]}_{index:03}.png")
            (root / label / f"{path.stem}_mask.png").rename(
                root / label / f"PAT{label[0]}_{index:03}_mask.png"
            )

    samples, _ = load_samples([root])

    assert len({s.group for s in samples if s.label.value == "benign"}) == 1


def test_cross_validation_can_train_on_the_other_sites_too(dataset: Path, tmp_path: Path) -> None:
    other = write_class_folders(tmp_path / "site_b")
    for path in other.glob("*/case???.png"):  # distinct images, not copies of site_a's
        Image.open(path).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(path)
    # A near-duplicate of a site_a image (a 4-pixel shift: pHash 4 bits away, not a copy).
    twin = np.roll(np.asarray(Image.open(dataset / "benign" / "case000.png")), 4, axis=1)
    Image.fromarray(twin).save(other / "benign" / "twin.png")
    shutil.copy(dataset / "benign" / "case000_mask.png", other / "benign" / "twin_mask.png")
    samples, _ = load_samples([dataset, other])
    site_b = [s for s in samples if s.site == "site_b"]
    groups = {(s.site, s.label.value, s.item.name): s.group for s in samples}
    assert groups["site_b", "benign", "twin"] == groups["site_a", "benign", "case000"]

    plans, notes = plan_sections(samples, 2, ["site_a"], False, 0, cv_with_other_sites=True)[
        "cv-site_a"
    ]

    assert "other sites" in notes["protocol"]
    for plan in plans:
        assert {s.site for s in plan.test} == {"site_a"}
        test_groups = {s.group for s in plan.test}
        expected = {(s.label, s.item.name) for s in site_b if s.group not in test_groups}
        assert {(s.label, s.item.name) for s in plan.train if s.site == "site_b"} == expected
    twin_fold = next(
        p for p in plans if "case000" in {s.item.name for s in p.test if s.label.value == "benign"}
    )
    assert "twin" not in {s.item.name for s in twin_fold.train}


def test_metrics_of_a_known_confusion() -> None:
    truth = np.array([0, 0, 0, 0, 1, 1])
    probability = np.array([0.1, 0.2, 0.6, 0.3, 0.9, 0.4])

    metrics = binary_metrics(truth, probability)

    assert metrics["confusion_matrix"] == [[3, 1], [1, 1]]
    assert metrics["benign_accuracy"] == pytest.approx(0.75)
    assert metrics["malignant_accuracy"] == pytest.approx(0.5)
    assert metrics["precision"] == pytest.approx(0.5)
    assert metrics["roc_auc"] == pytest.approx(7 / 8)


def test_metrics_are_taken_at_the_models_operating_point() -> None:
    truth = np.array([0, 0, 0, 0, 1, 1])
    probability = np.array([0.1, 0.2, 0.6, 0.3, 0.9, 0.4])

    metrics = binary_metrics(truth, probability, threshold=0.35)

    assert metrics["confusion_matrix"] == [[3, 1], [0, 2]]
    assert metrics["malignant_accuracy"] == pytest.approx(1.0)
    assert metrics["roc_auc"] == pytest.approx(7 / 8)


def test_a_calibrated_models_calibration_error_is_mostly_noise_on_a_fold() -> None:
    rng = np.random.default_rng(0)
    probability = rng.uniform(0, 1, 120)
    truth = (rng.random(120) < probability).astype(int)  # calibrated by construction

    floor = ece_if_calibrated(probability, seed=1)

    # On 120 images noise alone reads as ~0.1 of miscalibration; on 100 times more, a tenth.
    assert expected_calibration_error(truth, probability) == pytest.approx(floor, abs=0.05)
    assert floor > 0.05
    assert ece_if_calibrated(np.tile(probability, 100), seed=1) < floor / 5


def logits_and_labels(
    n: int, prevalence: float, overconfidence: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """N×2 logits at even odds whose odds, moved to `prevalence`, are exact once divided by
    `overconfidence`; labels drawn from those exact probabilities."""
    generator = torch.Generator().manual_seed(3)
    margin = torch.randn(n, generator=generator) * 2
    shift = float(np.log(prevalence / (1 - prevalence)))
    truth = (torch.rand(n, generator=generator) < torch.sigmoid(margin + shift)).long()
    logits = torch.stack([torch.zeros(n), margin * overconfidence], dim=1)
    return logits, truth


def test_a_clearly_miscalibrated_model_gets_its_temperature() -> None:
    logits, truth = logits_and_labels(600, prevalence=0.35, overconfidence=3.0)
    assert temperature_for(logits, truth, 0.35) == pytest.approx(3.0, rel=0.25)


def test_a_temperature_a_few_images_cannot_tell_from_one_stays_one() -> None:
    # A calibrated model: whatever temperature 60 images suggest is noise.
    logits, truth = logits_and_labels(60, prevalence=0.35, overconfidence=1.0)
    assert temperature_for(logits, truth, 0.35) == 1.0


def test_calibration_error_is_zero_when_confidence_matches_accuracy() -> None:
    truth = np.array([1] * 8 + [0] * 2)
    assert expected_calibration_error(truth, np.full(10, 0.8)) == pytest.approx(0.0)
    assert expected_calibration_error(truth, np.full(10, 0.99)) == pytest.approx(0.19)


def test_every_pooled_interval_contains_its_estimate() -> None:
    # Well calibrated and confident, as after temperature scaling: the case where a percentile
    # interval of the calibration error would lie wholly above the error itself.
    rng = np.random.default_rng(2)
    probability = rng.beta(0.3, 0.3, 600)
    truth = (rng.uniform(0, 1, 600) < probability).astype(int)
    folds = [
        FoldResult(f"fold{i}", truth[part], probability[part], probability[part], 1.0, [])
        for i, part in enumerate(np.array_split(np.arange(600), 3))
    ]

    summary = summarise(folds, seed=0)

    assert "roc_auc" in summary["pooled_ci95"]
    for metric, (low, high) in summary["pooled_ci95"].items():
        assert low <= summary["pooled"][metric] <= high, metric
