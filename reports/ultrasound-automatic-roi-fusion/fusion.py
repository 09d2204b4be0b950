"""Classifier AUC per left-out site: ground-truth box, whole image, automatic crop, and the
crop's and whole image's probabilities (or logits) averaged. Usage: fusion.py WORK_DIR, the
classifier's --work-dir after `branet-train --loso --segmenter-folds ...`."""

import json
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score


def logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)))


rows = []
for saved in sorted(Path(sys.argv[1]).rglob("loso-*/result.json")):
    fold = json.loads(saved.read_text())
    truth = np.array(fold["truth"])
    whole = np.array(fold["whole_image"]["probability"])
    crop = np.array(fold["automatic_roi"]["probability"])
    found = ~np.isclose(crop, whole)  # nothing found: the crop's answer is the whole image's
    mean_logit = (logit(crop) + logit(whole)) / 2
    views = (np.array(fold["probability"]), whole, crop, (crop + whole) / 2, mean_logit)
    aucs = [roc_auc_score(truth, v) for v in views]
    rows.append(aucs)
    print(saved.parent.name, f"found {found.mean():.0%}", " ".join(f"{a:.3f}" for a in aucs))
means = " ".join(f"{a:.3f}" for a in np.mean(rows, axis=0))
print("mean (box, whole, crop, mean of p, mean of logits):", means)
