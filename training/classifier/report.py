"""Measuring a classifier the way the original system reported it, and a little more.

Per fold: per-class accuracy, the confusion matrix, sensitivity and specificity (malignant is
the positive class), precision, F1, ROC AUC, and the expected calibration error before and after
temperature scaling. Across folds: mean ± sd, and 95 % bootstrap intervals on the pooled
out-of-fold predictions. Reports are JSON (everything) and Markdown (the tables), with the pooled
confusion matrix and the ROC curves as PNG images.
"""

import itertools
import json
import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int_]
METRICS = (
    "benign_accuracy",
    "malignant_accuracy",
    "accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "roc_auc",
    "ece",
    "ece_if_calibrated",
    "ece_uncalibrated",
)
# The binned calibration error is biased upward on a resample (its repeated images fill the
# bins with noise), so a percentile interval of it can miss the estimate itself: it gets none.
BOOTSTRAPPED = tuple(m for m in METRICS if not m.startswith("ece"))


@dataclass(frozen=True)
class FoldResult:
    """One held-out fold's predictions: truth (1 = malignant) and P(malignant)."""

    name: str
    truth: IntArray
    probability: FloatArray  # calibrated
    uncalibrated: FloatArray
    temperature: float
    ids: list[str]
    # The same fold's test images predicted whole, their lesion boxes ignored.
    whole_image: "FoldResult | None" = None
    # ... and around the box the lesion segmenter's automatic mode found (whole where none).
    automatic_roi: "FoldResult | None" = None
    # ... and again with the segmenter's mask, not the ellipse in its box, as lesion channel.
    automatic_roi_mask: "FoldResult | None" = None
    threshold: float = 0.5  # malignant from this P(malignant): the model's operating point


def expected_calibration_error(truth: IntArray, probability: FloatArray, bins: int = 15) -> float:
    """ECE of the predicted class's confidence, equal-width bins."""
    predicted = (probability >= 0.5).astype(int)
    confidence = np.where(predicted == 1, probability, 1 - probability)
    correct = (predicted == truth).astype(float)
    edges = np.linspace(0.5, 1.0, bins + 1)
    error = 0.0
    for low, high in itertools.pairwise(edges):
        chosen = (confidence > low) & (confidence <= high) if low > 0.5 else (confidence <= high)
        if chosen.any():
            error += chosen.mean() * abs(correct[chosen].mean() - confidence[chosen].mean())
    return float(error)


def ece_if_calibrated(probability: FloatArray, seed: int, draws: int = 200) -> float:
    """The ECE a perfectly calibrated model giving these probabilities would show on as many
    images (labels drawn from the probabilities): what `ece` reads from noise alone."""
    rng = np.random.default_rng(seed)
    return statistics.fmean(
        expected_calibration_error(
            (rng.random(len(probability)) < probability).astype(int), probability
        )
        for _ in range(draws)
    )


def binary_metrics(
    truth: IntArray,
    probability: FloatArray,
    uncalibrated: FloatArray | None = None,
    threshold: float | FloatArray = 0.5,
) -> dict[str, Any]:
    """Per-class accuracy and the rest at the operating point `threshold` (per image where
    folds differ); ROC AUC over all thresholds; ECE of the probabilities as they are."""
    predicted = (probability >= threshold).astype(int)
    (tn, fp), (fn, tp) = confusion_matrix(truth, predicted, labels=[0, 1])
    sensitivity = tp / (tp + fn) if tp + fn else float("nan")
    specificity = tn / (tn + fp) if tn + fp else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    both_classes = len(set(truth.tolist())) == 2
    return {
        "n": len(truth),
        "confusion_matrix": [[int(tn), int(fp)], [int(fn), int(tp)]],
        "benign_accuracy": specificity,
        "malignant_accuracy": sensitivity,
        "accuracy": float((predicted == truth).mean()),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "precision": precision,
        "f1": f1,
        "roc_auc": float(roc_auc_score(truth, probability)) if both_classes else float("nan"),
        "ece": expected_calibration_error(truth, probability),
        "ece_uncalibrated": expected_calibration_error(
            truth, probability if uncalibrated is None else uncalibrated
        ),
    }


def bootstrap_intervals(
    truth: IntArray,
    probability: FloatArray,
    threshold: FloatArray,
    seed: int,
    rounds: int = 1000,
) -> dict[str, list[float]]:
    """95 % percentile intervals, resampling images with replacement."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m: [] for m in BOOTSTRAPPED}
    for _ in range(rounds):
        index = rng.integers(0, len(truth), len(truth))
        if len(set(truth[index].tolist())) < 2:
            continue
        values = binary_metrics(truth[index], probability[index], threshold=threshold[index])
        for metric in draws:
            draws[metric].append(values[metric])
    return {metric: _percentile_interval(values) for metric, values in draws.items()}


def _percentile_interval(values: list[float]) -> list[float]:
    finite = np.array([v for v in values if v == v])  # precision is NaN with no positives
    if finite.size == 0:
        return [float("nan"), float("nan")]
    return [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))]


def summarise(folds: Sequence[FoldResult], seed: int) -> dict[str, Any]:
    per_fold = [
        {
            "fold": f.name,
            "temperature": f.temperature,
            **binary_metrics(f.truth, f.probability, f.uncalibrated, f.threshold),
            "ece_if_calibrated": ece_if_calibrated(f.probability, seed),
        }
        for f in folds
    ]
    mean_sd = {}
    for metric in METRICS:
        values = [row[metric] for row in per_fold if not np.isnan(row[metric])]
        if values:
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            mean_sd[metric] = {"mean": statistics.fmean(values), "sd": sd}
    truth = np.concatenate([f.truth for f in folds])
    probability = np.concatenate([f.probability for f in folds])
    uncalibrated = np.concatenate([f.uncalibrated for f in folds])
    threshold = np.concatenate([np.full(len(f.truth), f.threshold) for f in folds])
    return {
        "folds": per_fold,
        "mean_sd": mean_sd,
        "pooled": binary_metrics(truth, probability, uncalibrated, threshold)
        | {"ece_if_calibrated": ece_if_calibrated(probability, seed)},
        "pooled_ci95": bootstrap_intervals(truth, probability, threshold, seed),
    }


def plot(folds: Sequence[FoldResult], summary: dict[str, Any], out: Path, title: str) -> list[str]:
    """The pooled confusion matrix and the per-fold ROC curves, as PNG files in `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    figure, axis = plt.subplots(figsize=(4, 4))
    matrix = np.array(summary["pooled"]["confusion_matrix"])
    axis.imshow(matrix, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        axis.text(col, row, str(value), ha="center", va="center", fontsize=14)
    axis.set_xticks([0, 1], ["benign", "malignant"])
    axis.set_yticks([0, 1], ["benign", "malignant"])
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"{title}\npooled confusion matrix", fontsize=9)
    figure.tight_layout()
    figure.savefig(out / "confusion_matrix.png", dpi=120)
    plt.close(figure)
    names.append("confusion_matrix.png")

    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    for fold in folds:
        if len(set(fold.truth.tolist())) == 2:
            fpr, tpr, _ = roc_curve(fold.truth, fold.probability)
            auc = roc_auc_score(fold.truth, fold.probability)
            axis.plot(fpr, tpr, linewidth=1, label=f"{fold.name} (AUC {auc:.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axis.set_xlabel("1 − specificity")
    axis.set_ylabel("sensitivity")
    axis.set_title(f"{title}\nROC per fold", fontsize=9)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(out / "roc.png", dpi=120)
    plt.close(figure)
    names.append("roc.png")
    return names


def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.3f}"  # NaN


def markdown_table(summary: dict[str, Any]) -> str:
    header = "| | " + " | ".join(METRICS) + " |\n|---|" + "---|" * len(METRICS) + "\n"
    rows = []
    for fold in summary["folds"]:
        rows.append(f"| {fold['fold']} | " + " | ".join(_fmt(fold[m]) for m in METRICS) + " |")
    mean_sd = summary["mean_sd"]
    rows.append(
        "| **mean ± sd** | "
        + " | ".join(
            f"{_fmt(mean_sd[m]['mean'])} ± {_fmt(mean_sd[m]['sd'])}" if m in mean_sd else "–"
            for m in METRICS
        )
        + " |"
    )
    ci = summary["pooled_ci95"]
    rows.append(
        "| **pooled [95 % CI]** | "
        + " | ".join(
            f"{_fmt(summary['pooled'][m])} [{_fmt(ci[m][0])}, {_fmt(ci[m][1])}]"
            if m in ci
            else _fmt(summary["pooled"][m])
            for m in METRICS
        )
        + " |"
    )
    return header + "\n".join(rows) + "\n"


def write_report(
    out: Path,
    title: str,
    sections: Mapping[str, tuple[Sequence[FoldResult], dict[str, Any]]],
    context: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """`sections`: name → (folds, notes). Writes report.json, report.md and the figures."""
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"title": title, **context, "sections": {}}
    lines = [f"# {title}\n"]
    for key, value in context.items():
        if isinstance(value, str | int | float):
            lines.append(f"- **{key}**: {value}")
    for name, (folds, notes) in sections.items():
        summary = summarise(folds, seed)
        folder = out / name
        folder.mkdir(exist_ok=True)
        figures = plot(folds, summary, folder, f"{title}: {name}")
        predictions = [
            {"fold": f.name, "id": i, "truth": int(t), "p_malignant": float(p)}
            for f in folds
            for i, t, p in zip(f.ids, f.truth, f.probability, strict=True)
        ]
        report["sections"][name] = {**notes, **summary, "predictions": predictions}
        lines.append(f"\n## {name}\n")
        lines += [f"- {k}: {v}" for k, v in notes.items() if isinstance(v, str | int | float)]
        lines.append("")
        lines.append(markdown_table(summary))
        lines += [f"![{figure}]({name}/{figure})" for figure in figures]
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text("\n".join(lines) + "\n")
    log.info("report written to %s", out / "report.md")
    return report
