"""BUSI split as the classifier's cross-validation splits it (`group_folds`: by near-duplicate
group, stratified by class) into `busi_a` (three folds of four, for training) and `busi_b` (the
first fold, held out), as symlinks
to the images and masks, so that `branet-train-segmenter --loso --sites busi_b` measures a
model that has seen BUSI's scanner on patients it has not seen.

    .venv/bin/python reports/segmenter-detection-limits/split_busi.py ../shared/data/busi /tmp/split
"""

import argparse
from pathlib import Path

from branet_training.classifier.data import load_samples
from branet_training.classifier.folds import group_folds

FOLDS = 4  # a quarter held out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("busi", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    samples, _ = load_samples([args.busi.resolve()])
    held_out = set(group_folds(samples, FOLDS, args.seed)[0][1])
    counts = {"busi_a": 0, "busi_b": 0}
    for index, sample in enumerate(samples):
        part = "busi_b" if index in held_out else "busi_a"
        folder = args.out / part / sample.item.path.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        for path in (sample.item.path, *sample.item.masks):
            (folder / path.name).symlink_to(path.resolve())
        counts[part] += 1
    print(counts)


if __name__ == "__main__":
    main()
