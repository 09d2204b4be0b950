"""`branet-train`: cross-validate, train and ship a modality's classifier, with its report.

    branet-train --modality ultrasound --data ../shared/data/busi --out reports/ultrasound
    branet-train --modality ultrasound --data ../shared/data/{busi,breast_lesions_usg,bus_uclm} \\
        --loso --ship models --out reports/ultrasound

1. Deduplicate and group the images (`data.py`).
2. Per site, stratified 5-fold cross-validation over the groups, with a recorded seed. Inside
   each training split a stratified ~15 % is held back to fit the softmax temperature (kept only
   where it fits significantly better than 1); the test fold is only ever predicted, never used
   to choose anything.
3. With `--loso` and several sites: train on all sites but one, test on that one, for each.
   In 2 and 3 every test image with a lesion box is predicted twice: as its lesion crop, and
   whole (no box), each in its own report section.
4. With `--ship DIR`: train on every image of every site and write the weights (fp16
   safetensors) and model card to DIR — only when the cross-validated ROC AUC beats the card
   already there (or `--force`).

Every fold's result and weights are saved under `--work-dir`, and every epoch's checkpoint: an
interrupted run started again with the same arguments picks up where it stopped. With
`--jobs N`, N folds (and the final model) train at once in worker processes: on a GPU the folds
are too small to fill it, and the CPU-side augmentation of one process cannot keep it busy.
"""

import argparse
import datetime as dt
import hashlib
import json
import logging
import multiprocessing
import os
import platform
import subprocess
import textwrap
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.model_selection import StratifiedGroupKFold

from branet_classifier.classify import ClassifierCard, calibrated_probabilities, card_caveats
from branet_classifier.data import Sample, load_samples
from branet_classifier.evaluation import FoldResult, write_report
from branet_classifier.int8 import Int8Card
from branet_classifier.training import (
    ImageCache,
    TrainConfig,
    TrainedModel,
    logits_of,
    pick_device,
    train,
)
from branet_shared.checksums import sha256_of_file
from branet_shared.schemas import Label, Modality

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


@dataclass(frozen=True)
class FoldPlan:
    """One held-out evaluation: train on `train`, predict `test`."""

    name: str
    train: list[Sample]
    test: list[Sample]


def run_fold(plan: FoldPlan, config: TrainConfig, images: ImageCache, work_dir: Path) -> FoldResult:
    """Train on the plan's training split and predict its test images as ROI crops (the
    result) and, where they have boxes, whole (`result.whole_image`). A fold whose result is
    saved is not rerun."""
    name, train_samples, test_samples = plan.name, plan.train, plan.test
    folder = work_dir / name
    saved = folder / "result.json"
    if saved.exists():
        log.info("%s: already done, reusing %s", name, saved)
        return _saved_result(name, json.loads(saved.read_text()))
    started = time.perf_counter()
    fit, calibration = split_calibration(train_samples, splits_seed(config))
    model = train(fit, calibration, config, images, folder / "checkpoint.pt", describe=name)
    crops = logits_of(model.network, test_samples, config, images)
    result = _fold_result(name, test_samples, crops, model)
    whole: FoldResult | None = None
    if any(s.lesion for s in test_samples):  # without boxes the crops are the whole images
        boxless = [replace(s, lesion=None) for s in test_samples]
        logits = logits_of(model.network, boxless, config, images)
        whole = _fold_result(name, test_samples, logits, model)
        result = replace(result, whole_image=whole)
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
                "train": len(fit),
                "calibration": len(calibration),
                "seconds": time.perf_counter() - started,
                "history": model.history,
            }
        )
    )
    (folder / "checkpoint.pt").unlink(missing_ok=True)  # the optimiser state is not kept
    return result


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

    whole = data.get("whole_image")
    return replace(result(data), whole_image=result(whole) if whole else None)


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
    model = train(fit, calibration, config, images, None, describe="final")
    model.network.cpu()  # it may cross a process boundary
    return model


class FoldRunner:
    """Runs folds (and the final training) here, one at a time, or in `jobs` worker processes.

    Workers are spawned (CUDA cannot be forked) and each decodes the images it needs itself.
    """

    def __init__(self, config: TrainConfig, work_dir: Path, jobs: int) -> None:
        self.config, self.work_dir = config, work_dir
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
            return lambda: [run_fold(p, self.config, self.images, self.work_dir) for p in plans]
        futures = [
            self.pool.submit(_run_fold_in_worker, p, self.config, self.work_dir) for p in plans
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


def _run_fold_in_worker(plan: FoldPlan, config: TrainConfig, work_dir: Path) -> FoldResult:
    return run_fold(plan, config, ImageCache(), work_dir)


def _train_final_in_worker(samples: list[Sample], config: TrainConfig) -> TrainedModel:
    return train_final(samples, config, ImageCache())


def half_state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The network's float tensors in fp16, as shipped (batch norm's counter is dropped)."""
    return {
        k: v.detach().cpu().half().contiguous()
        for k, v in network.state_dict().items()
        if v.is_floating_point()
    }


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def ship(
    modality: Modality,
    samples: Sequence[Sample],
    config: TrainConfig,
    trained: Callable[[], TrainedModel],
    dest: Path,
    metrics: dict[str, float],
    context: dict[str, Any],
    version: str,
    force: bool,
) -> Path | None:
    """Train on everything and write `<modality>.safetensors` + card, if it beats the old one."""
    card_path = dest / f"{modality.value}.json"
    key = "cv_roc_auc_mean"
    if card_path.exists() and not force:
        old = ClassifierCard.model_validate_json(card_path.read_text())
        if old.metrics.get(key, 0.0) >= metrics.get(key, 0.0):
            log.info(
                "not shipping: %s %.3f does not beat %.3f",
                key,
                metrics.get(key, 0.0),
                old.metrics[key],
            )
            return None
    model = trained()
    dest.mkdir(parents=True, exist_ok=True)
    weights = dest / f"{modality.value}.safetensors"
    save_file(half_state(model.network), weights)
    card = ClassifierCard(
        name=f"branet-resnet18-{modality.value}",
        version=version,
        modality=modality,
        weights_file=weights.name,
        weights_sha256=sha256_of_file(weights),
        input_size=config.input_size,
        temperature=model.temperature,
        malignant_prevalence=model.malignant_prevalence,
        roi_margin=config.roi_margin,
        keep_aspect=config.keep_aspect,
        lesion_channel=config.lesion_channel,
        metrics=metrics,
        description=_describe(config, samples),
        training={**asdict(config), **context},
    )
    card_path.write_text(card.model_dump_json(indent=2))
    card_path.with_suffix(".md").write_text(card_markdown(card))
    # The old weights' int8 file no longer matches; branet-quantize makes the new one.
    (dest / f"{modality.value}.int8.onnx").unlink(missing_ok=True)
    return card_path


# What the original BraNet reported on its validation sets: our floor.
ORIGINAL_SYSTEM = {
    Modality.ULTRASOUND: {"benign_accuracy": 0.931, "malignant_accuracy": 0.949},
    Modality.MAMMOGRAPHY: {"benign_accuracy": 0.809, "malignant_accuracy": 0.769},
}
LICENCES = {
    "busi": "BUSI (Al-Dhabyani et al., Data in Brief 2020), CC0 1.0",
    "breast_lesions_usg": "BrEaST-Lesions_USG (Pawłowska et al., Sci Data 2024), CC BY 4.0",
    "bus_uclm": "BUS-UCLM (Vallez et al., Sci Data 2025), CC BY 4.0",
    "mini_mias": "mini-MIAS (Suckling et al., 1994), research use only, cite, not for sale",
}


def _fitting(card: ClassifierCard) -> str:
    if card.keep_aspect:
        return "its longer side scaled and the rest padded black (the shape kept) to"
    return "squashed to"


def card_markdown(card: ClassifierCard) -> str:
    """The human half of the model card: what it is, how it measured, what it is not for."""
    data = str(card.training.get("data", ""))
    sources = [text for key, text in LICENCES.items() if key in data]
    original = ORIGINAL_SYSTEM[card.modality]
    metric_rows = "\n".join(f"| {name} | {value:.3f} |" for name, value in card.metrics.items())
    return f"""# {card.name} {card.version}

{card.description}

**Intended use**: research and decision support in studies of breast {card.modality.value}
images. **Not** a diagnosis, not a medical device, not validated on any population or scanner
beyond the data below; a clinician decides.

## Data and licences
{chr(10).join(f"- {source}" for source in sources) or "- " + data}

Deduplicated by perceptual hash (copies dropped, near-duplicates and a patient's images kept
in one fold; images filed under both classes dropped).

## Input and preprocessing
The lesion's region of interest (its box plus {card.roi_margin:.0%} context per side, from the
segmenter or the user's box), or the whole image: grayscale, {_fitting(card)} {card.input_size}×
{card.input_size}, ImageNet normalisation (`image_to_tensor` + `model_tensor` in
`services/classifier/classify.py`, shared by training and serving).{_lesion_channel(card)}
Softmax temperature {card.temperature:.3f}: 1 unless a held-back part of the training data shows
another fits significantly better (likelihood-ratio test, 5 %).
{_prevalence(card)}

## Training
`{json.dumps({k: v for k, v in card.training.items() if k != "data"}, default=str)}`

## Measured (cross-validation, see reports/{card.modality.value}/report.md)
| metric | value |
|---|---|
{metric_rows}

The original BraNet reported {original["benign_accuracy"]:.1%} benign and
{original["malignant_accuracy"]:.1%} malignant accuracy on its own validation split (no
deduplication or site separation described); those are the numbers to beat.
{int8_markdown(card.int8) if card.int8 else ""}
## Limits
{_limits(card)}- Site marks (calipers, text, body-marker icons) are blotted in training, not
  removed; a model may still read them.
- Weights: `{card.weights_file}`, SHA-256 `{card.weights_sha256}` (verified at load).
"""


def _prevalence(card: ClassifierCard) -> str:
    if card.malignant_prevalence is None:
        return "Probabilities are at even odds (classes weighted equally); the label at 0.5."
    share = card.malignant_prevalence
    return f"""Trained with the classes weighted equally, its odds are moved to the training data's
{100 * share:.1f} % malignant, so that probabilities read at that prevalence; the label is
malignant from P(malignant) = {share:.3f}, which weighs both classes equally (the operating
point of the per-class accuracies below)."""


def _lesion_channel(card: ClassifierCard) -> str:
    if not card.lesion_channel:
        return ""
    return """ The third channel marks the
lesion instead: +1 inside the ellipse inscribed in its box, -1 outside, 0 when no box is
known (a whole image, or a crop uploaded without one)."""


def _limits(card: ClassifierCard) -> str:
    """The limits that depend on the card: where training started, and whether the model is
    better than chance at all."""
    pretrained = card.training.get("pretrained")
    start = (
        f"from `{pretrained}`"
        if pretrained
        else "from scratch (no ImageNet weights could be downloaded)"
    )
    lines = [f"- Trained {start},\n  on the few images counted above."]
    lines += [
        textwrap.fill(
            f"- **Every answer carries the caveat `{caveat.code}`**: {caveat.detail} Do not"
            " read anything into its label.",
            width=95,
            subsequent_indent="  ",
        )
        for caveat in card_caveats(card)
    ]
    return "".join(f"{line}\n" for line in lines)


def int8_markdown(int8: Int8Card) -> str:
    agreement, calibration = int8.agreement, int8.calibration
    return f"""
## Served in int8
`{int8.file}` (SHA-256 `{int8.sha256}`, verified at load) is these weights with every
convolution quantised to int8 (static; weights per channel, activations per tensor; the
two-class head stays fp32), made by `branet-quantize`, its activation ranges calibrated on
{calibration.images} training images of {", ".join(calibration.datasets)}
(seed {calibration.seed}). On the {agreement["images"]:.0f} images not used to calibrate,
it gives the fp32 label for {agreement["label_agreement"]:.2%} of them; max |ΔP(malignant)|
{agreement["max_abs_dp_malignant"]:.4f}, mean {agreement["mean_abs_dp_malignant"]:.4f}. The
classifier serves it by default (`CLASSIFIER_PRECISION=auto`, with ONNX Runtime installed).
"""


def _describe(config: TrainConfig, samples: Sequence[Sample]) -> str:
    start = config.pretrained or "scratch (no ImageNet weights can be downloaded here)"
    sites = ", ".join(sorted({s.site for s in samples}))
    return (
        f"ResNet18 trained from {start} on {len(samples)} deduplicated images of {sites}. "
        "Research use only; not a diagnosis."
    )


def share(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def margin(text: str) -> float:
    """An argparse type: a share of the box's side, 0 or more."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="branet-train", description=__doc__.split("\n")[0])
    parser.add_argument("--modality", required=True, choices=[m.value for m in Modality])
    parser.add_argument(
        "--data", type=Path, nargs="+", required=True, help="class folders, one per site"
    )
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--work-dir", type=Path, default=Path(".branet/train"))
    parser.add_argument("--cv", type=int, default=5, help="folds per site (0: skip)")
    parser.add_argument(
        "--cv-sites", nargs="*", default=None, help="cross-validate only these sites (folder names)"
    )
    parser.add_argument(
        "--cv-with-other-sites",
        action="store_true",
        help="add the other sites' images to every CV training split (the shipped model has them)",
    )
    parser.add_argument("--loso", action="store_true", help="also leave one site out")
    parser.add_argument("--ship", type=Path, default=None, help="write the final model here")
    parser.add_argument("--force", action="store_true", help="ship even without improvement")
    parser.add_argument("--version", default=dt.date.today().isoformat())
    defaults = TrainConfig()
    parser.add_argument("--size", type=int, default=defaults.input_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument(
        "--whole-image-rate",
        type=share,
        default=defaults.whole_image_rate,
        help="share of training draws that show the whole image instead of the lesion crop",
    )
    parser.add_argument(
        "--keep-aspect",
        action="store_true",
        help="pad the input to a square instead of squashing it, keeping the lesion's shape",
    )
    parser.add_argument(
        "--roi-margin",
        type=margin,
        default=defaults.roi_margin,
        help="context around the lesion's box per side, a share of its width and height",
    )
    parser.add_argument(
        "--lesion-channel",
        action="store_true",
        help="mark the lesion's box (an ellipse in it) in the input's third channel",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="the folds' and the temperature split's seed (default: --seed); fixed while"
        " --seed varies, runs share their folds",
    )
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda")
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument(
        "--pretrained", default=None, help="ResNet18 state dict: ImageNet, or branet-pretrain's"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="folds trained at once, in worker processes"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    modality = Modality(args.modality)
    config = TrainConfig(
        input_size=args.size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        augment=not args.no_augment,
        whole_image_rate=args.whole_image_rate,
        roi_margin=args.roi_margin,
        keep_aspect=args.keep_aspect,
        lesion_channel=args.lesion_channel,
        seed=args.seed,
        split_seed=args.split_seed,
        device=args.device,
        bf16=not args.no_bf16,
        pretrained=args.pretrained,
    )
    fingerprint = hashlib.sha256(
        json.dumps(
            [asdict(config), sorted(str(d) for d in args.data), args.cv_with_other_sites]
        ).encode()
    ).hexdigest()[:10]
    work_dir = args.work_dir / f"{modality.value}-{fingerprint}"
    samples, dedup = load_samples(args.data)
    context = {
        "modality": modality.value,
        "seed": config.seed,
        "data": ", ".join(str(d) for d in args.data),
        "code_commit": git_commit(),
        "torch": torch.__version__,
        "device": str(pick_device(config.device)),
        "machine": platform.processor() or platform.machine(),
        "config": asdict(config),
        "deduplication": asdict(dedup),
    }
    plans = plan_sections(
        samples, args.cv, args.cv_sites, args.loso, splits_seed(config), args.cv_with_other_sites
    )
    with FoldRunner(config, work_dir, args.jobs) as runner:
        pending = {name: (runner.folds(folds), notes) for name, (folds, notes) in plans.items()}
        final = runner.final(samples) if args.ship is not None else None
        sections = {name: (results(), notes) for name, (results, notes) in pending.items()}
        sections |= whole_image_sections(sections)
        report = write_report(
            args.out, f"BraNet ResNet18, {modality.value}", sections, context, config.seed
        )
        metrics = headline_metrics(report)
        print(json.dumps(metrics, indent=2))
        if final is not None:
            shipped = ship(
                modality,
                samples,
                replace(config),
                final,
                args.ship,
                metrics,
                {k: context[k] for k in ("data", "code_commit", "torch", "device", "seed")},
                args.version,
                args.force,
            )
            if shipped is not None:
                print(f"shipped {shipped}")


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


def whole_image_sections(
    sections: dict[str, tuple[list[FoldResult], dict[str, Any]]],
) -> dict[str, tuple[list[FoldResult], dict[str, Any]]]:
    """Each section again with its test images whole: what the model does when neither the
    segmenter nor the user gives a box (folds saved before this existed have no such part)."""
    whole: dict[str, tuple[list[FoldResult], dict[str, Any]]] = {}
    for name, (folds, notes) in sections.items():
        parts = [fold.whole_image for fold in folds if fold.whole_image is not None]
        if parts and len(parts) == len(folds):
            whole[name + WHOLE_IMAGE] = (
                parts,
                {"protocol": notes["protocol"], "input": "the test images whole, boxes ignored"},
            )
    return whole


def headline_metrics(report: dict[str, Any]) -> dict[str, float]:
    """What the card carries: the first site's CV means, and the leave-one-site-out mean AUC,
    on lesion crops; and both AUCs on whole images where the report has them."""
    metrics: dict[str, float] = {}
    cv = [
        name
        for name in report["sections"]
        if name.startswith("cv-") and not name.endswith(WHOLE_IMAGE)
    ]
    if cv:
        crops = report["sections"][cv[0]]
        means = crops["mean_sd"]
        for name in (
            "benign_accuracy",
            "malignant_accuracy",
            "roc_auc",
            "sensitivity",
            "specificity",
            "f1",
            "ece",
            "ece_if_calibrated",
        ):
            if name in means:
                metrics[f"cv_{name}_mean"] = round(means[name]["mean"], 4)
        low, high = crops["pooled_ci95"]["roc_auc"]
        metrics |= {"cv_roc_auc_ci95_low": round(low, 4), "cv_roc_auc_ci95_high": round(high, 4)}
    auc_sections = {"loso": "leave-one-site-out"}
    if cv:
        auc_sections["cv_whole_image"] = cv[0] + WHOLE_IMAGE
    auc_sections["loso_whole_image"] = "leave-one-site-out" + WHOLE_IMAGE
    for prefix, name in auc_sections.items():
        if section := report["sections"].get(name):
            metrics[f"{prefix}_roc_auc_mean"] = round(section["mean_sd"]["roc_auc"]["mean"], 4)
    return metrics
