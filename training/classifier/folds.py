"""Cross-validation and leave-one-site-out: which images train and test each fold, training
the folds (here or in worker processes), and their results, saved so that an interrupted run
resumes where it stopped.

Per site, stratified k-fold cross-validation over the duplicate/patient groups, with a
recorded seed. Inside each training split a stratified ~15 % is held back to fit the softmax
temperature (kept only where it fits significantly better than 1); the test fold is only ever
predicted, never used to choose anything. Every test image with a lesion box is predicted twice:
as its lesion crop, and whole (no box), each in its own report section; with the lesion
segmenter's leave-one-site-out models (`branet-train-segmenter --fold-models`), a third time
around the box its automatic mode finds, as the service does when only "extract ROI" is ticked.
"""

import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from sklearn.model_selection import StratifiedGroupKFold

from branet_classifier.model import calibrated_probabilities
from branet_runtime.files import load_weights
from branet_segmenter.branet_sam import BraNetSegmenter
from branet_segmenter.embeddings import EmbeddingCache
from branet_shared.images import bounding_box
from branet_shared.schemas import Label
from branet_training.classifier.data import Sample
from branet_training.classifier.engine import (
    ImageCache,
    TrainConfig,
    TrainedModel,
    build_network,
    logits_of,
    train,
)
from branet_training.classifier.report import FoldResult

log = logging.getLogger(__name__)
CALIBRATION_SPLITS = 7  # one of seven groups-stratified parts (~15 %) fits the temperature


def _truth(samples: Sequence[Sample]) -> np.ndarray:
    return np.array([int(s.label is Label.MALIGNANT) for s in samples])


def group_folds(samples: Sequence[Sample], k: int, seed: int) -> list[tuple[list[int], list[int]]]:
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    groups = [s.group for s in samples]
    return [
        (train.tolist(), test.tolist())
        for train, test in splitter.split(np.zeros(len(samples)), _truth(samples), groups)
    ]


def splits_seed(config: TrainConfig) -> int:
    return config.seed if config.split_seed is None else config.split_seed


def split_calibration(samples: Sequence[Sample], seed: int) -> tuple[list[Sample], list[Sample]]:
    """Hold back ~15 % of the training groups to fit the temperature (none if too few)."""
    per_class = min(np.bincount(_truth(samples), minlength=2))
    splits = min(CALIBRATION_SPLITS, len({s.group for s in samples}), per_class)
    if splits < 2:
        return list(samples), []
    train_index, calibration_index = group_folds(samples, splits, seed)[0]
    return [samples[i] for i in train_index], [samples[i] for i in calibration_index]


WHOLE_IMAGE = "-whole-image"  # suffix of a report section whose test images are whole
AUTOMATIC_ROI = "-automatic-roi"  # ... cropped where the segmenter's automatic mode says
AUTOMATIC_ROI_MASK = "-automatic-roi-mask"  # ... its mask as the lesion channel


@dataclass(frozen=True)
class FoldPlan:
    """One held-out evaluation: train on `train`, predict `test`."""

    name: str
    train: list[Sample]
    test: list[Sample]


def fold_segmenter(segmenters: Path | None, fold: str) -> BraNetSegmenter | None:
    """The lesion segmenter trained without the fold's test site, if there is one."""
    site = fold.removeprefix("loso-test-")
    card = None if segmenters is None else segmenters / f"leave-out-{site}" / "segmenter.json"
    if card is None or site == fold or not card.exists():
        return None
    return BraNetSegmenter.load(card, EmbeddingCache(1))


def automatic_mode(segmenter: BraNetSegmenter | None) -> str | None:
    """What decides a segmenter's automatic crops: its weights, threshold and zoom. A fold
    saved with another's crops has them redone, not reused."""
    if segmenter is None:
        return None
    card = segmenter.card
    return f"{card.weights_sha256}:{card.lesion_threshold!r}:{card.automatic_zoom!r}"


def automatic_roi_samples(
    samples: Sequence[Sample], segmenter: BraNetSegmenter, images: ImageCache
) -> list[Sample]:
    """Each sample with the box and mask the segmenter's automatic mode finds, None where it
    finds none."""
    found = []
    for sample in samples:
        lesion = segmenter.automatic(images(sample.item.path), str(sample.item.path))
        if lesion is None:
            found.append(replace(sample, lesion=None, outline=None))
            continue
        outline = Image.fromarray(lesion.mask.astype(np.uint8) * 255)
        found.append(replace(sample, lesion=bounding_box(lesion.mask), outline=outline))
    log.info(
        "automatic mode found a lesion in %d of %d images",
        sum(bool(s.lesion) for s in found),
        len(found),
    )
    return found


def run_fold(
    plan: FoldPlan,
    config: TrainConfig,
    images: ImageCache,
    work_dir: Path,
    segmenters: Path | None = None,
) -> FoldResult:
    """Train on the plan's training split and predict its test images as ROI crops (the
    result), where they have boxes whole (`result.whole_image`), and with `segmenters`
    around what automatic mode finds (`result.automatic_roi`). A fold whose result is saved
    is not rerun."""
    name, train_samples, test_samples = plan.name, plan.train, plan.test
    folder = work_dir / name
    saved = folder / "result.json"
    if saved.exists():
        log.info("%s: already done, reusing %s", name, saved)
        return _with_automatic_roi(saved, test_samples, config, images, segmenters)
    started = time.perf_counter()
    fit, calibration = split_calibration(train_samples, splits_seed(config))
    model = train(fit, calibration, config, images, folder / "checkpoint.pt", progress_label=name)
    crops = logits_of(model.network, test_samples, config, images)
    result = _fold_result(name, test_samples, crops, model)
    whole: FoldResult | None = None
    if any(s.lesion for s in test_samples):  # without boxes the crops are the whole images
        boxless = [replace(s, lesion=None) for s in test_samples]
        logits = logits_of(model.network, boxless, config, images)
        whole = _fold_result(name, test_samples, logits, model)
        result = replace(result, whole_image=whole)
    automatic: FoldResult | None = None
    automatic_mask: FoldResult | None = None
    if (segmenter := fold_segmenter(segmenters, name)) is not None:
        automatic, automatic_mask = _automatic_roi(
            name, test_samples, model, config, images, segmenter
        )
        result = replace(result, automatic_roi=automatic, automatic_roi_mask=automatic_mask)
    folder.mkdir(parents=True, exist_ok=True)
    # Weights (for later looks at a fold) before the result, whose presence marks the fold done.
    save_file(half_state(model.network), folder / "weights.safetensors")
    saved.write_text(
        json.dumps(
            {
                "truth": result.truth.tolist(),
                **_predictions(result),
                "temperature": result.temperature,
                "malignant_prevalence": model.malignant_prevalence,
                "ids": result.ids,
                "whole_image": None if whole is None else _predictions(whole),
                "automatic_roi": None if automatic is None else _predictions(automatic),
                "automatic_roi_mask": None
                if automatic_mask is None
                else _predictions(automatic_mask),
                "automatic_mode": automatic_mode(segmenter),
                "train": len(fit),
                "calibration": len(calibration),
                "seconds": time.perf_counter() - started,
                "history": model.history,
            }
        )
    )
    (folder / "checkpoint.pt").unlink(missing_ok=True)  # the optimiser state is not kept
    return result


def _automatic_roi(
    name: str,
    samples: Sequence[Sample],
    model: TrainedModel,
    config: TrainConfig,
    images: ImageCache,
    segmenter: BraNetSegmenter,
) -> tuple[FoldResult, FoldResult | None]:
    """The fold's test images classified around what `segmenter` (trained without the fold's
    test site) finds in automatic mode: with the ellipse in the found box as the lesion channel,
    as served, and, for a model that reads the channel, with the found mask in its place."""
    found = automatic_roi_samples(samples, segmenter, images)
    served = [replace(sample, outline=None) for sample in found]
    boxed = _fold_result(name, samples, logits_of(model.network, served, config, images), model)
    if not config.lesion_channel:
        return boxed, None
    masked = logits_of(model.network, found, config, images)
    return boxed, _fold_result(name, samples, masked, model)


def _with_automatic_roi(
    saved: Path,
    samples: Sequence[Sample],
    config: TrainConfig,
    images: ImageCache,
    segmenters: Path | None,
) -> FoldResult:
    """A saved fold, with its automatic-ROI parts added (and saved) where a segmenter for it
    is now at hand and they are lacking or another automatic mode's (`automatic_mode`): the
    fold's weights are kept for such later looks."""
    data = json.loads(saved.read_text())
    result = _saved_result(saved.parent.name, data)
    segmenter = fold_segmenter(segmenters, result.name)
    if segmenter is None:
        return result
    lacks_mask = config.lesion_channel and result.automatic_roi_mask is None
    mode = automatic_mode(segmenter)
    same_mode = data.get("automatic_mode") == mode
    if result.automatic_roi is not None and not lacks_mask and same_mode:
        return result
    network = build_network(config)
    load_weights(network, saved.parent / "weights.safetensors", "ResNet18")
    model = TrainedModel(network, result.temperature, [], data["malignant_prevalence"])
    automatic, masked = _automatic_roi(result.name, samples, model, config, images, segmenter)
    parts = {"automatic_roi": automatic, "automatic_roi_mask": masked}
    predictions = {k: None if v is None else _predictions(v) for k, v in parts.items()}
    saved.write_text(json.dumps({**data, **predictions, "automatic_mode": mode}))
    return replace(result, automatic_roi=automatic, automatic_roi_mask=masked)


def _fold_result(
    name: str, samples: Sequence[Sample], logits: torch.Tensor, model: TrainedModel
) -> FoldResult:
    """The test images' P(malignant) as the service would give them, and its label rule."""
    calibrated = calibrated_probabilities(logits, model.temperature, model.malignant_prevalence)
    return FoldResult(
        name,
        _truth(samples),
        calibrated[:, 1].numpy().astype(float),
        torch.softmax(logits, 1)[:, 1].numpy().astype(float),
        model.temperature,
        [f"{s.site}/{s.item.name}" for s in samples],
        threshold=model.malignant_prevalence,
    )


def _predictions(result: FoldResult) -> dict[str, list[float]]:
    return {
        "probability": result.probability.tolist(),
        "uncalibrated": result.uncalibrated.tolist(),
    }


def _saved_result(name: str, data: dict[str, Any]) -> FoldResult:
    """A fold's result.json read back; folds saved before whole-image testing lack that part,
    before the prevalence their probabilities are at even odds, labelled at 0.5."""

    def result(predictions: dict[str, Any]) -> FoldResult:
        return FoldResult(
            name,
            np.array(data["truth"]),
            np.array(predictions["probability"]),
            np.array(predictions["uncalibrated"]),
            data["temperature"],
            data["ids"],
            threshold=data.get("malignant_prevalence") or 0.5,
        )

    whole, automatic = data.get("whole_image"), data.get("automatic_roi")
    masked = data.get("automatic_roi_mask")
    return replace(
        result(data),
        whole_image=result(whole) if whole else None,
        automatic_roi=result(automatic) if automatic else None,
        automatic_roi_mask=result(masked) if masked else None,
    )


def cross_validate(
    samples: Sequence[Sample], k: int, seed: int, site: str, others: Sequence[Sample] = ()
) -> tuple[list[FoldPlan], dict[str, Any]]:
    """k folds of one site's `samples`; `others` (other sites' images) join every training
    split, as they join the shipped model's training, less any twin of a test image."""
    plans = []
    assignment: dict[str, int] = {}
    for index, (train_index, test_index) in enumerate(group_folds(samples, k, seed)):
        test = [samples[i] for i in test_index]
        test_groups = {s.group for s in test}
        train = [samples[i] for i in train_index]
        train += [s for s in others if s.group not in test_groups]
        assignment.update({f"{s.site}/{s.item.name}": index for s in test})
        plans.append(FoldPlan(f"cv-{site}-fold{index + 1}", train, test))
    protocol = f"stratified {k}-fold over duplicate/patient groups, seed {seed}"
    if others:
        protocol += f"; the other sites' {len(others)} images join every training split"
    notes = {
        "protocol": protocol,
        "images": len(samples),
        "benign": int((_truth(samples) == 0).sum()),
        "malignant": int((_truth(samples) == 1).sum()),
        "fold_of_image": assignment,
    }
    return plans, notes


def leave_one_site_out(samples: Sequence[Sample]) -> tuple[list[FoldPlan], dict[str, Any]]:
    sites = sorted({s.site for s in samples})
    plans = [
        FoldPlan(
            f"loso-test-{site}",
            [s for s in samples if s.site != site],
            [s for s in samples if s.site == site],
        )
        for site in sites
    ]
    return plans, {"protocol": "train on all sites but one, test on that one", "sites": sites}


def train_final(samples: Sequence[Sample], config: TrainConfig, images: ImageCache) -> TrainedModel:
    """The model to ship: trained on every sample, its temperature on a held-back part."""
    fit, calibration = split_calibration(samples, splits_seed(config))
    model = train(fit, calibration, config, images, None, progress_label="final")
    model.network.cpu()  # it may cross a process boundary
    return model


class FoldRunner:
    """Runs folds (and the final training) here, one at a time, or in `jobs` worker processes.

    Workers are spawned (CUDA cannot be forked) and each decodes the images it needs itself.
    """

    def __init__(
        self, config: TrainConfig, work_dir: Path, jobs: int, segmenters: Path | None = None
    ) -> None:
        self.config, self.work_dir, self.segmenters = config, work_dir, segmenters
        self.images = ImageCache()
        self.pool: ProcessPoolExecutor | None = None
        if jobs > 1:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            self.pool = ProcessPoolExecutor(
                jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=torch.set_num_threads,
                initargs=(threads,),
            )

    def __enter__(self) -> "FoldRunner":
        return self

    def __exit__(self, *_: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def folds(self, plans: Sequence[FoldPlan]) -> Callable[[], list[FoldResult]]:
        """Start `plans`; the returned call waits for their results, in order."""
        if self.pool is None:
            return lambda: [
                run_fold(p, self.config, self.images, self.work_dir, self.segmenters) for p in plans
            ]
        futures = [
            self.pool.submit(_run_fold_in_worker, p, self.config, self.work_dir, self.segmenters)
            for p in plans
        ]
        return lambda: [f.result() for f in futures]

    def final(self, samples: Sequence[Sample]) -> Callable[[], TrainedModel]:
        """Start the final training. In a worker it runs alongside the folds, before the CV
        says whether it will be shipped: spent time if not, but no wait after the folds."""
        if self.pool is None:
            return lambda: train_final(samples, self.config, self.images)
        future: Future[TrainedModel] = self.pool.submit(
            _train_final_in_worker, list(samples), self.config
        )
        return future.result


def _run_fold_in_worker(
    plan: FoldPlan, config: TrainConfig, work_dir: Path, segmenters: Path | None
) -> FoldResult:
    return run_fold(plan, config, ImageCache(), work_dir, segmenters)


def _train_final_in_worker(samples: list[Sample], config: TrainConfig) -> TrainedModel:
    return train_final(samples, config, ImageCache())


def half_state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The network's float tensors in fp16, as shipped (batch norm's counter is dropped)."""
    return {
        k: v.detach().cpu().half().contiguous()
        for k, v in network.state_dict().items()
        if v.is_floating_point()
    }


def plan_sections(
    samples: Sequence[Sample],
    k: int,
    cv_sites: list[str] | None,
    loso: bool,
    seed: int,
    cv_with_other_sites: bool = False,
) -> dict[str, tuple[list[FoldPlan], dict[str, Any]]]:
    """The report's sections: k-fold CV per site (or the named sites), then leave-one-site-out."""
    sections: dict[str, tuple[list[FoldPlan], dict[str, Any]]] = {}
    if k:
        for site in dict.fromkeys(s.site for s in samples):
            if cv_sites is None or site in cv_sites:
                site_samples = [s for s in samples if s.site == site]
                others = [s for s in samples if s.site != site] if cv_with_other_sites else []
                sections[f"cv-{site}"] = cross_validate(site_samples, k, seed, site, others)
    if loso and len({s.site for s in samples}) > 1:
        sections["leave-one-site-out"] = leave_one_site_out(samples)
    return sections


def variant_sections(
    sections: dict[str, tuple[list[FoldResult], dict[str, Any]]],
) -> dict[str, tuple[list[FoldResult], dict[str, Any]]]:
    """Each section again with its test images whole (what the model does when neither the
    segmenter nor the user gives a box) and, where measured, cropped where the segmenter's
    automatic mode says (folds saved before either existed lack that part)."""
    variants = (
        ("whole_image", WHOLE_IMAGE, "the test images whole, boxes ignored"),
        (
            "automatic_roi",
            AUTOMATIC_ROI,
            "crops around the box the segmenter's automatic mode"
            " found (trained without the test site), the whole image where it found none",
        ),
        (
            "automatic_roi_mask",
            AUTOMATIC_ROI_MASK,
            "as the automatic-ROI crops, with the segmenter's mask as the lesion channel in"
            " place of the ellipse inscribed in its box",
        ),
    )
    extra: dict[str, tuple[list[FoldResult], dict[str, Any]]] = {}
    for name, (folds, notes) in sections.items():
        for field, suffix, text in variants:
            parts = [getattr(fold, field) for fold in folds if getattr(fold, field) is not None]
            if parts and len(parts) == len(folds):
                extra[name + suffix] = (parts, {"protocol": notes["protocol"], "input": text})
    return extra
