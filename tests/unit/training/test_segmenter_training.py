"""`branet-train-segmenter` at toy scale: two generated sites and their normals, one epoch,
each site left out once, shipped; the shipped card served by the segmenter in every mode."""

import json
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from torch.optim.swa_utils import AveragedModel
from torchvision.ops import box_iou

from branet_runtime.files import sha256_of_file
from branet_segmenter.app import create_app
from branet_segmenter.model import LesionDetector, SegmenterCard, build_lesion_sam, detected_boxes
from branet_segmenter.settings import SegmenterSettings
from branet_training.augmentation import pasted_lesion
from branet_training.classifier.train import main as train_classifier
from branet_training.pretrained import KNOWN_FILES
from branet_training.segmenter.cards import card_markdown
from branet_training.segmenter.data import load_masked_images
from branet_training.segmenter.engine import (
    MaskDataset,
    PromptBatch,
    SegmenterTrainConfig,
    detection_loss,
    detection_targets,
    dice_loss,
    hard_iou,
    jittered_box,
    mode_loss,
    sampled_points,
    train_segmenter,
)
from branet_training.segmenter.report import FOUND_IOU, ImageScore, fitted_threshold
from branet_training.segmenter.train import main as train_main
from branet_training.segmenter.train import weights_config
from tests.conftest import Serve
from tests.images import gray_png, write_class_folders
from tests.tflite_files import random_mobilenet_v2, write_mobilenet_tflite


def write_normals(folder: Path, count: int = 4) -> Path:
    folder.mkdir(parents=True)
    for index in range(count):
        pixels = np.random.default_rng(500 + index).normal(140, 25, size=(64, 64)).clip(0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"normal ({index}).png")
    return folder


def train_toy(
    root: Path, out: Path, ship: Path | None, *options: str, folds: str = "folds"
) -> None:
    """The command on `root`'s two sites and normals, each site left out, folds kept in
    `root / folds`; the shipped model's recipe (`--fine-detail --automatic-detector`)."""
    shipped = [] if ship is None else ["--ship", str(ship)]
    train_main(
        [
            "--data", str(root / "site_a"), str(root / "site_b"),
            "--normals", str(root / "site_a_normal_64"), "--out", str(out), "--loso",
            "--fold-models", str(root / folds), *shipped, "--size", "64",
            "--batch-size", "4", "--encoder-init", str(root / "mnv2.tflite"),
            "--encoder-frozen-blocks", "2", "--fine-detail", "--automatic-detector", *options,
        ]
    )  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("segmenter")
    # Other sizes, other speckle: the second site's images are not the first's copies.
    for name, size in (("site_a", (96, 80)), ("site_b", (104, 88))):
        write_class_folders(root / name, per_class=3, size=size)
    write_normals(root / "site_a_normal_64")
    # The encoder starts from a MobileNetV2 file, as from ImageNet's (pinned here for the test).
    imagenet = write_mobilenet_tflite(random_mobilenet_v2(seed=1), root / "mnv2.tflite")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(KNOWN_FILES, imagenet.name, sha256_of_file(imagenet))
        train_toy(
            root, root / "report", root / "models", "--epochs", "1", "--version", "0.0.1-test"
        )
    return root


def test_each_site_is_left_out_once_and_scored_in_every_mode(run: Path) -> None:
    report = json.loads((run / "report" / "report.json").read_text())

    assert set(report) == {"context", "leave-out-site_a", "leave-out-site_b"}
    section = report["leave-out-site_a"]
    assert section["test"] == 6 + 4  # its lesions and its normals
    assert {"box/all", "box_jittered/all", "point/all", "none/all"} <= set(section["summary"])
    assert (run / "report" / "overlays-site_a.png").stat().st_size > 0
    assert section["summary"]["automatic"]["normal_images"] == 4
    assert all(0 <= row["dice"] <= 1 for key, row in section["summary"].items() if "/" in key)


def test_each_left_out_sites_model_is_kept(run: Path) -> None:
    for site in ("site_a", "site_b"):
        card = json.loads((run / "folds" / f"leave-out-{site}" / "segmenter.json").read_text())
        assert card["version"] == f"leave-out-{site}"


def test_the_classifier_is_measured_on_the_crops_automatic_mode_finds(run: Path) -> None:
    """The end-to-end effect: each left-out site classified around what the segmenter trained
    without it finds, beside its ground-truth boxes and its whole images, by the same folds;
    folds trained before the segmenters existed get it without being trained again."""

    def classifier_loso(*options: str) -> dict[str, Any]:
        train_classifier(
            [
                "--modality", "ultrasound", "--data", str(run / "site_a"), str(run / "site_b"),
                "--out", str(run / "classifier"), "--work-dir", str(run / "classifier-work"),
                "--cv", "0", "--loso", "--epochs", "1", "--size", "32", "--batch-size", "4",
                "--lesion-channel",
                *options,
            ]
        )  # fmt: skip
        report = json.loads((run / "classifier" / "report.json").read_text())
        sections: dict[str, Any] = report["sections"]
        return sections

    assert "leave-one-site-out-automatic-roi" not in classifier_loso()
    trained = {p: p.stat().st_mtime for p in (run / "classifier-work").rglob("weights.*")}

    sections = classifier_loso("--segmenter-folds", str(run / "folds"))

    crops, whole, automatic, masked = (
        sections[f"leave-one-site-out{suffix}"]
        for suffix in ("", "-whole-image", "-automatic-roi", "-automatic-roi-mask")
    )
    assert automatic["input"].startswith("crops around the box the segmenter's automatic mode")
    assert "the segmenter's mask as the lesion channel" in masked["input"]
    for section in (crops, whole, automatic, masked):
        assert 0 <= section["mean_sd"]["roc_auc"]["mean"] <= 1
    assert {p: p.stat().st_mtime for p in trained} == trained  # not trained again


def test_another_automatic_mode_has_its_crops_classified_anew(run: Path) -> None:
    """Kept classifier folds asked about another segmenter (here one that calls nothing a
    lesion: threshold 1) classify its crops, not the first segmenter's saved ones: with
    nothing found, each image is classified whole."""
    folds = run / "folds-finding-nothing"
    shutil.copytree(run / "folds", folds)
    for card_path in folds.glob("*/segmenter.json"):
        card = json.loads(card_path.read_text())
        card_path.write_text(json.dumps({**card, "lesion_threshold": 1.0}))
    train_classifier(
        [
            "--modality", "ultrasound", "--data", str(run / "site_a"), str(run / "site_b"),
            "--out", str(run / "classifier-nothing"), "--work-dir", str(run / "classifier-work"),
            "--cv", "0", "--loso", "--epochs", "1", "--size", "32", "--batch-size", "4",
            "--lesion-channel", "--segmenter-folds", str(folds),
        ]
    )  # fmt: skip

    for result in (run / "classifier-work").rglob("loso-test-*/result.json"):
        saved = json.loads(result.read_text())
        assert saved["automatic_mode"].endswith(":1.0:0.0")  # this segmenter's threshold, zoom
        # Whole images, by the fold's weights as kept (half precision) and as trained.
        automatic, whole = saved["automatic_roi"], saved["whole_image"]
        assert automatic["probability"] == pytest.approx(whole["probability"], abs=1e-3)


def test_the_shipped_card_pins_its_weights(run: Path) -> None:
    card = json.loads((run / "models" / "segmenter.json").read_text())

    assert card["weights_sha256"] == sha256_of_file(run / "models" / card["weights_file"])
    assert card["input_size"] == 64
    assert card["fine_detail"] is True  # the stride-4 detail, in the weights it pins
    assert card["automatic_detector"] is True  # and the detection head
    assert 0 <= card["lesion_threshold"] <= 1
    # The no-prompt rates, left-out sites' means: normals are only at site_a's fold.
    rates = ("loso_lesion_found_rate", "loso_lesion_outlined_rate", "loso_normal_marked_rate")
    assert all(0 <= card["metrics"][rate] <= 1 for rate in rates)


def rerun(run: Path, out: str, *options: str) -> None:
    """`run`'s command again on its kept models, their thresholds fitted on held-out sites."""
    train_toy(
        run, run / out, run / out / "models", "--version", "0.0.2-test", "--reuse-trained",
        "--threshold-fit", "held_out_sites", *options,
    )  # fmt: skip


def _no_training(*_: object) -> None:
    raise AssertionError("trained again")


@pytest.fixture(scope="module")
def rescored(run: Path) -> Path:
    """The shipped model and the folds scored again; training would fail the test."""
    (run / "rescored" / "models").mkdir(parents=True)
    for name in ("segmenter.json", "segmenter.safetensors"):
        (run / "rescored" / "models" / name).write_bytes((run / "models" / name).read_bytes())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("branet_training.segmenter.train.train_segmenter", _no_training)
        rerun(run, "rescored", "--epochs", "1")
    return run / "rescored"


def test_kept_models_are_scored_again_not_trained_again(run: Path, rescored: Path) -> None:
    first, again = (
        json.loads((folder / "report.json").read_text()) for folder in (run / "report", rescored)
    )
    # The same models, to the half precision they are kept in.
    scores = [[s["score"] for s in r["leave-out-site_a"]["scores"]] for r in (first, again)]
    assert scores[1] == pytest.approx(scores[0], abs=1e-3)
    card = json.loads((rescored / "models" / "segmenter.json").read_text())
    assert card["version"] == "0.0.2-test"
    assert card["weights_sha256"] == sha256_of_file(run / "models" / "segmenter.safetensors")
    assert card["training"]["weights_from"].startswith("0.0.1-test, trained at ")


def test_a_model_trained_otherwise_is_not_reused(run: Path) -> None:
    with pytest.raises(SystemExit, match="another configuration"):
        rerun(run, "other", "--epochs", "2")


def test_a_model_trained_on_another_machine_is_reused_not_one_from_another_file() -> None:
    here = asdict(SegmenterTrainConfig(encoder_init="../shared/data/pretrained/mnv2.tflite"))
    there = {**here, "encoder_init": ".gpu/mnv2.tflite", "device": "cuda"}
    other = {**here, "encoder_init": "../shared/data/pretrained/mnv2_quant.tflite"}
    assert weights_config(there) == weights_config(here)
    assert weights_config(other) != weights_config(here)


def rescored_with_zoom(run: Path, zoom: str) -> Path:
    """`run`'s kept fold models (a copy) scored again with `--automatic-zoom zoom`."""
    folds = run / f"folds-zoom-{zoom}"
    shutil.copytree(run / "folds", folds)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("branet_training.segmenter.train.train_segmenter", _no_training)
        train_toy(
            run, run / f"zoom-{zoom}", None, "--epochs", "1", "--reuse-trained",
            "--automatic-zoom", zoom, folds=folds.name,
        )  # fmt: skip
    return folds


def test_kept_models_are_scored_again_with_a_zoom_and_their_cards_say_so(run: Path) -> None:
    """A zoom is how the model is served, not how it was trained: kept models take one
    without training again, and the kept cards the classifier's crops come from record it.
    It outlines again what the first look finds, so the threshold is the first look's."""
    zoomed, once = rescored_with_zoom(run, "2"), rescored_with_zoom(run, "0")

    for site in ("site_a", "site_b"):
        card, first = (
            json.loads((folds / f"leave-out-{site}" / "segmenter.json").read_text())
            for folds in (zoomed, once)
        )
        assert card["automatic_zoom"] == 2
        assert card["lesion_threshold"] == first["lesion_threshold"]
        markdown = (zoomed / f"leave-out-{site}" / "segmenter.md").read_text()
        assert "outlined again in a window 2 times its size" in markdown
    report = json.loads((run / "zoom-2" / "report.json").read_text())
    assert report["context"]["config"]["automatic_zoom"] == 2


def test_a_zoom_under_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SegmenterTrainConfig(automatic_zoom=0.5)


def test_a_threshold_fitted_on_held_out_sites_is_fitted_on_the_folds_scores(
    rescored: Path,
) -> None:
    """For the shipped model, each site's no-prompt scores by the fold model that never saw
    it: not its own training images, where it scores higher than at a new hospital."""
    report = json.loads((rescored / "report.json").read_text())
    held_out = [
        ImageScore(**score)
        for name, section in report.items()
        if name != "context"
        for score in section["scores"]
        if score["mode"] == "none"
    ]
    card = json.loads((rescored / "models" / "segmenter.json").read_text())

    assert card["lesion_threshold"] == fitted_threshold(held_out)


def test_a_card_from_before_a_config_field_is_read_as_its_default() -> None:
    """0.2.0's cards predate `automatic_multimask` and `fine_detail`: still reusable, and not
    by a model with one."""
    older = asdict(SegmenterTrainConfig())
    del older["automatic_multimask"]

    assert weights_config(older) == weights_config(asdict(SegmenterTrainConfig()))
    assert weights_config(older) != weights_config(
        asdict(SegmenterTrainConfig(automatic_multimask=True))
    )


def test_a_card_read_back_from_json_is_the_config_it_was_trained_with() -> None:
    """A tuple (the zoom range) reads back from a card as a list: still the same config."""
    config = asdict(SegmenterTrainConfig(augment_scale=(0.75, 1.3), augment_shift=0.15))
    stored = json.loads(json.dumps(config))

    assert weights_config(stored) == weights_config(config)
    assert weights_config(stored) != weights_config(asdict(SegmenterTrainConfig()))


def test_frozen_blocks_keep_imagenets_weights_and_the_rest_learn(run: Path) -> None:
    from safetensors.torch import load_file

    from branet_training.pretrained import mobilenet_v2_from_tflite

    imagenet = mobilenet_v2_from_tflite(run / "mnv2.tflite").features.half()  # as shipped
    shipped = load_file(run / "models" / "segmenter.safetensors")

    assert torch.equal(
        shipped["image_encoder.stride16.1.conv.0.0.weight"], imagenet[1].conv[0][0].weight
    )
    assert not torch.equal(
        shipped["image_encoder.stride16.2.conv.0.0.weight"], imagenet[2].conv[0][0].weight
    )


@pytest.fixture
async def served(run: Path, serve: Serve) -> httpx.AsyncClient:
    settings = SegmenterSettings(model_card=run / "models" / "segmenter.json")
    return httpx.AsyncClient(transport=await serve(create_app(settings)), base_url="http://s")


@pytest.mark.parametrize(
    "prompt", [{"box": "20,20,70,60"}, {"points": "48,40,1"}, {"points": "48,40,1;5,5,0"}, {}]
)
async def test_the_shipped_model_answers_every_mode(
    served: httpx.AsyncClient, prompt: dict[str, str]
) -> None:
    async with served as client:
        ready = await client.get("/readyz")
        models = (await client.get("/v1/models")).json()["models"]
        response = await client.post(
            "/v1/segment",
            files={"file": ("scan.png", gray_png())},
            data={"modality": "ultrasound", **prompt},
        )

    assert ready.status_code == 200, ready.text
    assert models[0]["name"] == "branet-lesion-sam"
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["version"] == "0.0.1-test"
    if body["lesion_found"]:
        assert body["mask"]["size"] == [80, 96]


async def test_mammograms_are_refused_with_why(served: httpx.AsyncClient) -> None:
    async with served as client:
        response = await client.post(
            "/v1/segment", files={"file": ("m.png", gray_png())}, data={"modality": "mammography"}
        )

    assert response.status_code == 503
    assert "ultrasound only" in response.json()["detail"]


async def test_a_tampered_weights_file_leaves_the_segmenter_unready(
    run: Path, tmp_path: Path, serve: Serve
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    for path in (run / "models").iterdir():
        folder.joinpath(path.name).write_bytes(path.read_bytes())
    weights = folder / "segmenter.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    settings = SegmenterSettings(model_card=folder / "segmenter.json")
    async with httpx.AsyncClient(
        transport=await serve(create_app(settings)), base_url="http://s"
    ) as client:
        ready = await client.get("/readyz")

    assert ready.status_code == 503
    assert "SHA-256" in ready.json()["checks"]["sam"]["detail"]


def test_prompts_are_drawn_on_the_lesion() -> None:
    import random

    import torch

    mask = torch.zeros(1, 32, 32)
    mask[0, 10:20, 5:15] = 1
    rng = random.Random(0)
    x0, y0, x1, y1 = jittered_box(mask, rng, 0.1)
    (inside, other), (positive, second) = sampled_points(mask, rng)

    assert (4 <= x0 <= 6, 14 <= x1 <= 16, 9 <= y0 <= 11, 19 <= y1 <= 21) == (True,) * 4
    assert positive == 1
    assert mask[0, int(inside[1]), int(inside[0])] == 1
    assert second == -1 or mask[0, int(other[1]), int(other[0])] == 0


def test_losses_reward_the_right_mask() -> None:
    import torch

    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:6, 2:6] = 1
    right, wrong = target * 20 - 10, -(target * 20 - 10)

    assert float(dice_loss(right, target)) < 0.05 < float(dice_loss(wrong, target))
    assert float(hard_iou(right, target)) == 1.0
    assert float(hard_iou(wrong, target)) == 0.0


@pytest.mark.parametrize(("every_iou", "taught"), [(False, 1), (True, 3)])
def test_three_candidates_have_every_iou_taught_only_when_asked(
    every_iou: bool, taught: int
) -> None:
    """Automatic mode keeps the candidate it scores highest, so with `automatic_multimask`
    every candidate's predicted IoU is taught; points teach the best mask's alone, as SAM."""
    card = SegmenterCard(
        name="t", version="0", weights_file="-", weights_sha256="0" * 64, input_size=64
    )
    torch.manual_seed(0)
    sam = build_lesion_sam(card)
    embeddings = torch.randn(2, card.embed_dim, 4, 4)
    masks = torch.zeros(2, 1, 64, 64)
    masks[..., 10:40, 20:50] = 1

    loss = mode_loss(sam, embeddings, PromptBatch(multimask=True, every_iou=every_iou), masks)
    loss.backward()  # type: ignore[no-untyped-call]

    iou_grad = sam.mask_decoder.iou_prediction_head.layers[-1].bias.grad
    assert iou_grad is not None
    assert int((iou_grad[1:] != 0).sum()) == taught  # the three candidates' rows


def test_the_threshold_separates_found_lesions_from_the_rest() -> None:
    def score(kind: str, iou: float, predicted: float) -> ImageScore:
        return ImageScore("x", kind, "none", iou, iou, predicted)

    scores = [score("benign", 0.8, 0.9), score("malignant", 0.7, 0.8)]
    scores += [score("normal", 0.0, 0.3), score("benign", FOUND_IOU / 2, 0.4)]

    assert 0.4 < fitted_threshold(scores) <= 0.8


def test_the_shipped_segmenters_card_says_what_its_json_says() -> None:
    folder = Path(__file__).parents[3] / "models"
    card = SegmenterCard.model_validate_json((folder / "segmenter.json").read_text())

    assert (folder / "segmenter.md").read_text() == card_markdown(card)
    assert card.weights_sha256 == sha256_of_file(folder / card.weights_file)


def lesion_masks(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """N×1×128×128 masks of one rectangle each, and their boxes."""
    generator = torch.Generator().manual_seed(seed)
    masks, boxes = torch.zeros(count, 1, 128, 128), []
    for mask in masks:
        x0, y0 = (int(v) for v in torch.randint(0, 72, (2,), generator=generator))
        w, h = (int(v) for v in torch.randint(16, 56, (2,), generator=generator))
        mask[0, y0 : y0 + h, x0 : x0 + w] = 1
        boxes.append([x0, y0, x0 + w, y0 + h])
    return masks, torch.tensor(boxes, dtype=torch.float32)


def test_what_the_detector_is_taught_decodes_to_the_lesions_box() -> None:
    masks, boxes = lesion_masks(6, seed=0)
    masks = torch.cat([masks, torch.zeros(1, 1, 128, 128)])  # and an image without a lesion

    centres, box_targets = detection_targets(masks)
    decoded, confidence = detected_boxes(torch.logit(centres.clamp(1e-6, 1 - 1e-6)), box_targets)

    assert torch.allclose(decoded[:6], boxes, atol=1e-3)
    assert confidence[:6].min() > 0.99
    assert float(centres[6].max()) == 0.0  # nothing to find: no centre anywhere


@pytest.mark.parametrize("context_layers", [0, 1])
def test_the_detector_learns_where_a_lesion_is(context_layers: int) -> None:
    """Embeddings that show the lesion (its mask at 1/16, with noise): trained on some masks,
    the detector finds others' boxes, and is unsure where there is none; with or without the
    transformer layers across the grid."""
    torch.manual_seed(0)

    def embeddings(masks: torch.Tensor) -> torch.Tensor:
        coarse = torch.nn.functional.avg_pool2d(masks, 16)
        return coarse.expand(-1, 16, -1, -1) + 0.05 * torch.randn(len(masks), 16, 8, 8)

    detector = LesionDetector(16, grid=8, context_layers=context_layers)
    optimizer = torch.optim.Adam(detector.parameters(), lr=3e-3)
    masks, _ = lesion_masks(64, seed=1)
    masks[::8] = 0  # some images without a lesion
    for _ in range(300):
        optimizer.zero_grad()
        detection_loss(detector, embeddings(masks), masks).backward()  # type: ignore[no-untyped-call]
        optimizer.step()

    unseen, boxes = lesion_masks(16, seed=2)
    with torch.no_grad():
        found, confidence = detected_boxes(*detector(embeddings(unseen)))
        _, none = detected_boxes(*detector(embeddings(torch.zeros(4, 1, 128, 128))))
    assert float(box_iou(found, boxes).diagonal().median()) > 0.6
    assert float(none.max()) < float(confidence.median())


def test_weight_averaging_ships_the_mean_of_the_last_epochs_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = load_masked_images([write_class_folders(tmp_path / "site", per_class=2)], [])
    snapshots: list[dict[str, torch.Tensor]] = []
    average = AveragedModel.update_parameters

    def kept(self: AveragedModel, model: torch.nn.Module) -> None:
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        average(self, model)

    monkeypatch.setattr(AveragedModel, "update_parameters", kept)
    config = SegmenterTrainConfig(
        input_size=64, embed_dim=32, epochs=3, batch_size=2, weight_averaging_epochs=2
    )

    trained = train_segmenter(images, config).sam.state_dict()

    assert len(snapshots) == 2  # the last two epochs, not the first
    name = "mask_decoder.output_upscaling.0.weight"
    assert not torch.equal(snapshots[0][name], snapshots[1][name])
    torch.testing.assert_close(trained[name], (snapshots[0][name] + snapshots[1][name]) / 2)
    norm = "image_encoder.stride16.1.conv.0.1.running_mean"  # batch norms' statistics too
    torch.testing.assert_close(trained[norm], (snapshots[0][norm] + snapshots[1][norm]) / 2)


@pytest.mark.parametrize(
    "fields",
    [
        {"weight_averaging_epochs": -1},
        {"weight_averaging_epochs": 21, "epochs": 20},
        {"augment_random_filter": 1.5},
        {"augment_copy_paste": -0.5},
    ],
)
def test_a_config_that_would_train_otherwise_than_asked_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="0 to"):
        SegmenterTrainConfig(**fields)


def dark_square(size: int, top: int, left: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1×S×S image at 0.6 with a 0.1 square lesion, and its mask."""
    pixels, mask = torch.full((1, size, size), 0.6), torch.zeros(1, size, size)
    pixels[:, top : top + side, left : left + side] = 0.1
    mask[:, top : top + side, left : left + side] = 1
    return pixels, mask


@pytest.mark.parametrize("seed", range(4))
def test_a_pasted_lesion_is_marked_where_it_lands_and_leaves_the_rest(seed: int) -> None:
    donor, donor_mask = dark_square(64, top=8, left=40, side=12)
    background = torch.full((1, 64, 64), 0.8)  # brighter tissue: the donor's level is matched

    pixels, mask = pasted_lesion(background, donor, donor_mask, random.Random(seed))

    lesion = mask[0] > 0.5
    assert 0.7**2 * 144 <= int(lesion.sum()) <= 1.3**2 * 144  # the donor's, rescaled
    # As much darker than the tissue around it as on the donor (its edge blurred by resizing).
    assert abs(float(pixels[0][lesion].median()) - 0.3) < 0.1
    rows, cols = torch.nonzero(lesion, as_tuple=True)
    near = torch.zeros(64, 64, dtype=torch.bool)
    near[
        max(0, int(rows.min()) - 8) : int(rows.max()) + 9,
        max(0, int(cols.min()) - 8) : int(cols.max()) + 9,
    ] = True
    assert torch.equal(pixels[0][~near], background[0][~near])  # beyond its ring, untouched


def test_only_images_without_a_lesion_are_given_one_and_only_when_asked() -> None:
    normal = (torch.full((1, 64, 64), 150, dtype=torch.uint8), torch.zeros(1, 64, 64))
    donor, donor_mask = dark_square(64, top=20, left=20, side=16)
    lesion = ((donor * 255).to(torch.uint8), donor_mask)

    def masks(copy_paste: float) -> list[torch.Tensor]:
        dataset = MaskDataset([], 64, train=True, seed=0, copy_paste=copy_paste)
        dataset.items = [(p, m.to(torch.uint8)) for p, m in (lesion, normal)]
        dataset.donors = [0]
        return [dataset[index][1] for index in range(2)]

    assert not masks(0.0)[1].any()
    pasted_donor, pasted_normal = masks(1.0)
    assert pasted_normal.sum() > 100
    assert abs(float(pasted_donor.sum()) - 256) < 64  # the donor keeps its own lesion only
